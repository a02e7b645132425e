/* Model serving belongs to its server: two servers in one process each get
 * their own hub, registry and batchers (no process-global state), and
 * stopping one leaves the other serving. */
#include "testutil.h"

#include "hub/hub.h"
#include "server/context.h"

#include <stdlib.h>
#include <string.h>

static bs_server *start(const char *tag)
{
    bs_server_opts o = {.port = 0, .data_dir = bs_test_tmpdir(tag), .quiet = 1, .threads = 8};
    bs_server *srv = NULL;
    bs_err err = {0};
    int rc = bs_server_start(&o, &srv, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    return srv;
}

static void test_two_servers_own_their_serving(void **state)
{
    (void)state;
    setenv("BERTSTUDIO_DEMO_MODELS", "", 1); /* no demo import: an empty cache each */
    bs_server *a = start("serving-a"), *b = start("serving-b");
    assert_non_null(a->serving);
    assert_non_null(b->serving);
    assert_ptr_not_equal(a->serving, b->serving);
    assert_ptr_not_equal(a->serving->hub, b->serving->hub);
    assert_ptr_not_equal(a->serving->reg, b->serving->reg);
    assert_ptr_not_equal(a->serving->group, b->serving->group);
    assert_non_null(a->models);
    assert_ptr_not_equal(a->models, b->models);
    /* Each hub works in its own server's data directory. */
    assert_memory_equal(bs_hub_models_dir(a->serving->hub), a->data_dir, strlen(a->data_dir));
    assert_memory_equal(bs_hub_models_dir(b->serving->hub), b->data_dir, strlen(b->data_dir));

    bs_server_stop(a);
    /* b is untouched by a's shutdown. */
    json_t *docs = NULL;
    bs_err err = {0};
    assert_int_equal(bs_hub_list(b->serving->hub, &docs, &err), 0);
    assert_int_equal(json_array_size(docs), 0);
    json_decref(docs);
    assert_int_equal(bs_registry_state(b->serving->reg, "demo/x", NULL), BS_MODEL_NOT_LOADED);
    bs_server_stop(b);
}

/* The batchers' counters as Prometheus lines: a cumulative histogram whose
 * count is the forward passes and whose sum is the requests. */
static void test_batch_metrics_render(void **state)
{
    (void)state;
    bs_batch_stats st = {0};
    st.batches = 5;
    st.requests = 9;
    st.sizes[0] = 3; /* 3 lone runs */
    st.sizes[1] = 1; /* one batch of 2 or 3 */
    st.sizes[2] = 1; /* one batch of 4..7 */
    st.max_batch = 4;
    st.queued = 2;
    bs_buf out;
    bs_buf_init(&out);
    bs_metrics_batch(&st, &out);
    assert_non_null(strstr(out.data, "bertstudio_batch_size_bucket{le=\"1\"} 3\n"));
    assert_non_null(strstr(out.data, "bertstudio_batch_size_bucket{le=\"3\"} 4\n"));
    assert_non_null(strstr(out.data, "bertstudio_batch_size_bucket{le=\"7\"} 5\n"));
    assert_non_null(strstr(out.data, "bertstudio_batch_size_bucket{le=\"+Inf\"} 5\n"));
    assert_non_null(
        strstr(out.data, "bertstudio_batch_size_sum 9\nbertstudio_batch_size_count 5\n"));
    assert_non_null(strstr(out.data, "bertstudio_batch_max_size 4\n"));
    assert_non_null(strstr(out.data, "bertstudio_batch_queue_depth 2\n"));
    bs_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_servers_own_their_serving),
        cmocka_unit_test(test_batch_metrics_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
