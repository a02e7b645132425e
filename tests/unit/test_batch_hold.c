/* bs_batcher_hold and bs_batcher_set_max_queue: a held batcher runs nothing,
 * requests queue up to the bound (more are refused with BS_EBUSY at once),
 * and on release everything queued runs as one forward pass. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "batch/batch.h"

/* The model stand-in: hidden row t of the pass = {input id, t}; counts passes. */
static float fake_rows[64 * 2];
static int fake_forward(void *ud, const bs_batch *batch, bs_model_outputs *out, bs_err *err)
{
    (void)err;
    __atomic_add_fetch((int *)ud, 1, __ATOMIC_SEQ_CST); /* passes made */
    int32_t t = 0;
    for (int32_t s = 0; s < batch->n_seqs; s++)
        for (int32_t i = 0; i < batch->seqs[s].len && t < 64; i++, t++) {
            fake_rows[2 * t] = (float)batch->seqs[s].input_ids[i];
            fake_rows[2 * t + 1] = (float)t;
        }
    out->n_seqs = batch->n_seqs;
    out->total_tokens = t;
    out->hidden_size = 2;
    out->last_hidden_state = fake_rows;
    return 0;
}

static bs_batcher *the_batcher;

/* The task stand-in: its text's bytes as token ids through the queue;
 * data.results[0] = {"text": the text read back from its own rows}. */
static int echo_run(void *ud, bs_task task, const json_t *req, json_t **data, bs_err *err)
{
    (void)ud;
    (void)task;
    const char *text = json_string_value(json_object_get(req, "text"));
    int32_t ids[16], n = 0;
    for (; text[n] && n < 15; n++) ids[n] = (unsigned char)text[n];
    bs_seq seq = {ids, NULL, n};
    bs_batch batch = {&seq, 1};
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    out.want = BS_OUT_HIDDEN;
    int rc = bs_batcher_forward(the_batcher, &batch, &out, err);
    if (rc) return rc;
    char back[16];
    for (int32_t i = 0; i < out.total_tokens; i++) back[i] = (char)out.last_hidden_state[2 * i];
    back[out.total_tokens] = 0;
    bs_batcher_outputs_release(&out);
    *data = json_pack("{s:[{s:s}]}", "results", "text", back);
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
    bs_batcher_opts o = {
        .run = echo_run, .forward = fake_forward, .forward_ud = &calls, .max_queue = 256};
    bs_batcher *b = NULL;
    bs_err err = {0};
    assert_int_equal(bs_batcher_new(&o, &b, &err), 0);
    the_batcher = b;
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
    assert_int_equal(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 1); /* one pass */
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
    bs_batcher_opts o = {.run = echo_run, .forward = fake_forward, .forward_ud = &calls};
    bs_batcher *b = NULL;
    bs_err err = {0};
    assert_int_equal(bs_batcher_new(&o, &b, &err), 0);
    the_batcher = b;
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
