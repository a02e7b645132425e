/* bs_batcher_hold and bs_batcher_set_max_queue: a held batcher runs nothing,
 * requests queue up to the bound (more are refused with BS_EBUSY at once),
 * and on release everything queued runs as one merged call. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "batch/batch.h"

/* data.results[i] = {"text": text_i}: what bs_batch_split cuts per request. */
static int echo_run(void *ud, bs_task task, const json_t *req, json_t **data, bs_err *err)
{
    (void)task;
    (void)err;
    __atomic_add_fetch((int *)ud, 1, __ATOMIC_SEQ_CST); /* calls made */
    json_t *text = json_object_get(req, "text");
    json_t *list = json_is_string(text) ? json_pack("[O]", text) : json_incref(text);
    json_t *results = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t) json_array_append_new(results, json_pack("{s:O}", "text", t));
    json_decref(list);
    *data = json_pack("{s:o}", "results", results);
    return 0;
}

typedef struct client {
    bs_batcher *b;
    json_t *req;
    json_t *data;
    int rc;
    pthread_t th;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    bs_err err = {0};
    c->rc = bs_batcher_run(c->b, BS_TASK_EMBEDDINGS, c->req, NULL, NULL, &c->data, &err);
    return NULL;
}

static size_t queued(bs_batcher *b)
{
    bs_batch_stats s;
    bs_batcher_stats(b, &s);
    return s.queued;
}

static void test_hold_queue_bound_release(void **state)
{
    (void)state;
    int calls = 0;
    bs_batcher_opts o = {.run = echo_run, .run_ud = &calls, .max_queue = 256};
    bs_batcher *b = NULL;
    bs_err err = {0};
    assert_int_equal(bs_batcher_new(&o, &b, &err), 0);
    bs_batcher_set_max_queue(b, 3);
    bs_batcher_hold(b, 1);
    client c[3];
    const char *texts[] = {"ta", "tb", "tc"};
    for (int i = 0; i < 3; i++) {
        memset(&c[i], 0, sizeof c[i]);
        c[i].b = b;
        c[i].req = json_pack("{s:s, s:s}", "text", texts[i], "model_name", "m");
        assert_non_null(c[i].req);
        assert_int_equal(pthread_create(&c[i].th, NULL, client_main, &c[i]), 0);
    }
    /* Waiting for the three to queue (they cannot run while held); a bound
     * for a broken batcher, not a timing assumption. */
    for (long spins = 0; queued(b) < 3; spins++) {
        assert_true(spins < 100000000L);
        sched_yield();
    }
    assert_int_equal(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 0);
    /* Full: a fourth is refused at once. */
    json_t *extra = json_pack("{s:s, s:s}", "text", "d", "model_name", "m"), *data = NULL;
    assert_int_equal(bs_batcher_run(b, BS_TASK_EMBEDDINGS, extra, NULL, NULL, &data, &err),
                     BS_EBUSY);
    assert_null(data);
    json_decref(extra);

    bs_batcher_hold(b, 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(c[i].th, NULL);
        assert_int_equal(c[i].rc, 0);
        json_t *r = json_array_get(json_object_get(c[i].data, "results"), 0);
        assert_string_equal(json_string_value(json_object_get(r, "text")),
                            json_string_value(json_object_get(c[i].req, "text")));
        assert_int_equal(json_array_size(json_object_get(c[i].data, "results")), 1);
        json_decref(c[i].data);
        json_decref(c[i].req);
    }
    bs_batch_stats s;
    bs_batcher_stats(b, &s);
    assert_int_equal(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 1); /* one merged call */
    assert_int_equal(s.batches, 1);
    assert_int_equal(s.max_batch, 3);
    assert_int_equal(s.rejected, 1);
    bs_batcher_free(b);
}

/* Stopping a held batcher still runs what is queued (no caller is left waiting). */
static void test_stop_while_held(void **state)
{
    (void)state;
    int calls = 0;
    bs_batcher_opts o = {.run = echo_run, .run_ud = &calls};
    bs_batcher *b = NULL;
    bs_err err = {0};
    assert_int_equal(bs_batcher_new(&o, &b, &err), 0);
    bs_batcher_hold(b, 1);
    client c = {.b = b, .req = json_pack("{s:s, s:s}", "text", "x", "model_name", "m")};
    assert_int_equal(pthread_create(&c.th, NULL, client_main, &c), 0);
    for (long spins = 0; queued(b) < 1; spins++) {
        assert_true(spins < 100000000L);
        sched_yield();
    }
    bs_batcher_stop(b);
    pthread_join(c.th, NULL);
    assert_int_equal(c.rc, 0);
    assert_int_equal(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 1);
    json_decref(c.data);
    json_decref(c.req);
    bs_batcher_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_queue_bound_release),
        cmocka_unit_test(test_stop_while_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
