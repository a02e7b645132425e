/* Generation batched across requests (tests/fixtures/models/tiny-bart): one
 * decoder pass over several KV caches of different rows and lengths gives
 * each cache the logits it gets alone, and summarization requests in flight
 * together on a served model share their encoder pass and decoder steps
 * while each answer stays the one it gets alone. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#include "batch/batch.h"
#include "bertstudio/model.h"

static const char *const texts[] = {
    "The city council voted on Tuesday to expand the bus network.",
    "A small bakery in the old town has won a national award for its sourdough bread, which "
    "the owners say is made from a starter that is fifty years old.",
    "Rain.",
    "Scientists at the coastal research institute reported that the coral reef has begun to "
    "recover after two years of cooler water temperatures, and that fish have returned.",
    "Tickets for the concert sold out in four minutes.",
    "The library will close for renovation in March and reopen in the autumn with a new "
    "reading room, a cafe and longer opening hours on weekends."};

static void encode_text(const bs_model *m, int k, bs_encoder_state **st)
{
    /* Token ids straight from the text's bytes (the model does not care
     * what they mean): different inputs of different lengths. */
    const char *t = texts[k];
    int32_t ids[256];
    int n = 0;
    ids[n++] = 0;
    for (const char *p = t; *p && n < 100; p++) ids[n++] = 100 + (unsigned char)*p * 7 + k;
    ids[n++] = 2;
    bs_seq seq = {ids, NULL, n};
    bs_batch b = {&seq, 1};
    bs_err err = {0};
    int rc = bs_model_encode(m, &b, st, &err);
    if (rc) fail_msg("encode: %s", err.msg);
}

/* Caches of 1, 3 and 2 rows on three inputs, the second one two tokens
 * ahead: stepped alone and stepped together, the logits are the same bits
 * (f32; every precision this CPU runs is tried). */
static void decode_batch_equals_alone(bs_precision precision)
{
    bs_model *m = NULL;
    bs_err err = {0};
    bs_model_opts o = {.n_threads = 2, .precision = precision};
    assert_int_equal(bs_model_load(bs_test_fixture("models/tiny-bart"), &o, &m, &err), 0);
    enum { N = 3, MAXR = 3, STEPS = 6 };
    static const int rows[N] = {1, 3, 2};
    int V = bs_model_vocab_size(m);
    bs_encoder_state *st[N];
    bs_kv_cache *alone[N], *together[N];
    float *la[N], *lt[N];
    for (int i = 0; i < N; i++) {
        encode_text(m, i, &st[i]);
        int32_t row_seq[MAXR] = {0};
        assert_int_equal(bs_kv_cache_new(m, st[i], row_seq, rows[i], 16, &alone[i], &err), 0);
        assert_int_equal(bs_kv_cache_new(m, st[i], row_seq, rows[i], 16, &together[i], &err), 0);
        la[i] = malloc((size_t)rows[i] * 2 * V * sizeof(float)); /* room for 2 tokens per row */
        lt[i] = malloc((size_t)rows[i] * V * sizeof(float));
        assert_non_null(la[i]);
        assert_non_null(lt[i]);
    }
    int32_t pre[MAXR * 2] = {2, 0, 2, 0, 2, 0};
    for (int c = 0; c < 2; c++) { /* the second cache starts two tokens ahead */
        bs_kv_cache *both[2] = {alone[1], together[1]};
        assert_int_equal(bs_model_decode(m, both[c], pre, 2, la[1], &err), 0);
    }
    for (int s = 0; s < STEPS; s++) {
        int32_t tok[N][MAXR];
        const int32_t *tp[N];
        for (int i = 0; i < N; i++) {
            for (int r = 0; r < rows[i]; r++) tok[i][r] = (int32_t)(1000 + 37 * s + 11 * r + i);
            tp[i] = tok[i];
            assert_int_equal(bs_model_decode_step(m, alone[i], tok[i], la[i], &err), 0);
        }
        assert_int_equal(bs_model_decode_batch(m, together, N, tp, 1, lt, &err), 0);
        for (int i = 0; i < N; i++) {
            assert_int_equal(bs_kv_cache_len(together[i]), bs_kv_cache_len(alone[i]));
            /* f32: the same bits on every kernel path. The portable path's
             * half-precision weights round a 1-row product differently from
             * a 4-row tile (seen: 5e-6); a near tie in a beam could then
             * differ, so the bound is checked there. */
            size_t nf = (size_t)rows[i] * V;
            if (precision != BS_PRECISION_F32 && memcmp(la[i], lt[i], nf * sizeof(float))) {
                for (size_t z = 0; z < nf; z++)
                    if (!(fabsf(la[i][z] - lt[i][z]) <= 1e-4f * (1 + fabsf(la[i][z]))))
                        fail_msg("precision %d, step %d: cache %d's logit %zu: %g alone, %g "
                                 "together",
                                 (int)precision, s, i, z, la[i][z], lt[i][z]);
            } else if (memcmp(la[i], lt[i], nf * sizeof(float)))
                fail_msg("precision %d, step %d: cache %d's logits differ from its lone step",
                         (int)precision, s, i);
        }
        /* beams reorder between steps, each cache on its own */
        int32_t src[MAXR] = {rows[1] - 1, 0, 0};
        assert_int_equal(bs_kv_cache_reorder(alone[1], src, rows[1], &err), 0);
        assert_int_equal(bs_kv_cache_reorder(together[1], src, rows[1], &err), 0);
    }
    /* A bad token in one cache fails the pass before any cache changes. */
    int32_t ok[MAXR] = {5, 5, 5}, bad[MAXR] = {5, V, 5};
    const int32_t *tp[N] = {ok, bad, ok};
    int32_t len0 = bs_kv_cache_len(together[0]);
    assert_int_equal(bs_model_decode_batch(m, together, N, tp, 1, lt, &err), BS_ERANGE);
    assert_int_equal(bs_kv_cache_len(together[0]), len0);
    bs_kv_cache *twice[2] = {together[0], together[0]};
    const int32_t *tp2[2] = {ok, ok};
    assert_int_equal(bs_model_decode_batch(m, twice, 2, tp2, 1, lt, &err), BS_EINVAL);
    for (int i = 0; i < N; i++) {
        bs_kv_cache_free(alone[i]);
        bs_kv_cache_free(together[i]);
        bs_encoder_state_free(st[i]);
        free(la[i]);
        free(lt[i]);
    }
    bs_model_free(m);
}

static void test_decode_batch_equals_alone(void **state)
{
    (void)state;
    for (int p = BS_PRECISION_F32; p <= BS_PRECISION_INT8; p++)
        if (bs_precision_supported((bs_precision)p)) decode_batch_equals_alone((bs_precision)p);
}

typedef struct worker {
    bs_served_model *m;
    json_t *req, *got;
    int rc;
    bs_err err;
    pthread_t th;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    w->rc =
        bs_batcher_run(w->m->batcher, BS_TASK_SUMMARIZATION, w->req, NULL, NULL, &w->got, &w->err);
    return NULL;
}

/* Six requests (greedy and beam search, different lengths) alone, then
 * together: the same summaries, and their decoder steps shared passes. */
static void test_summaries_together_equal_alone(void **state)
{
    (void)state;
    bs_batcher_opts o = {.max_batch_tokens = 8192, .max_queue = 256, .window_us = 500};
    bs_batch_group *g = bs_batch_group_new(&o);
    assert_non_null(g);
    void *handle = NULL;
    bs_err err = {0};
    int rc = bs_batch_model_load("tiny-bart", bs_test_fixture("models/tiny-bart"), NULL, g, &handle,
                                 &err);
    if (rc) fail_msg("load: %s", err.msg);
    bs_served_model *m = handle;
    enum { N = 6 };
    static const char *const params[N] = {
        "",
        ", \"num_beams\": 1, \"max_length\": 12",
        ", \"num_beams\": 4, \"max_length\": 20, \"min_length\": 5",
        ", \"num_beams\": 2",
        ", \"num_beams\": 3, \"max_length\": 9, \"no_repeat_ngram_size\": 2",
        ", \"max_new_tokens\": 15, \"length_penalty\": 2.0"};
    worker w[N];
    for (int i = 0; i < N; i++) {
        json_t *req = json_pack("{s:s}", "text", texts[i]);
        char extra[160];
        snprintf(extra, sizeof extra, "{\"x\": 0%s}", params[i]);
        json_t *more = json_loads(extra, 0, NULL);
        assert_non_null(more);
        json_object_del(more, "x");
        json_object_update(req, more);
        json_decref(more);
        memset(&w[i], 0, sizeof w[i]);
        w[i].m = m;
        w[i].req = req;
    }
    /* alone, one after the other, through the batcher */
    json_t *want[N];
    for (int i = 0; i < N; i++) {
        rc =
            bs_batcher_run(m->batcher, BS_TASK_SUMMARIZATION, w[i].req, NULL, NULL, &want[i], &err);
        if (rc) fail_msg("request %d alone: %s", i, err.msg);
    }
    bs_batch_stats s0;
    bs_batcher_stats(m->batcher, &s0);
    assert_int_equal(s0.dec_max, 1);
    assert_int_equal(s0.dec_requests, s0.dec_steps);
    /* together: held until every encoder pass is queued, so they start as one */
    bs_batcher_hold(m->batcher, 1);
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
    for (;;) {
        bs_batch_stats q;
        bs_batcher_stats(m->batcher, &q);
        if (q.queued == N) break;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    bs_batcher_hold(m->batcher, 0);
    for (int i = 0; i < N; i++) pthread_join(w[i].th, NULL);
    for (int i = 0; i < N; i++) {
        if (w[i].rc) fail_msg("request %d together: %s", i, w[i].err.msg);
        if (!json_equal(w[i].got, want[i])) {
            char *a = json_dumps(w[i].got, 0), *b = json_dumps(want[i], 0);
            fail_msg("request %d: together %s, alone %s", i, a, b);
        }
    }
    bs_batch_stats s;
    bs_batcher_stats(m->batcher, &s);
    /* the encoder passes ran as one forward, and decoder steps were shared */
    assert_true(s.max_batch >= N);
    assert_true(s.dec_max > 1);
    assert_true(s.dec_requests - s0.dec_requests > s.dec_steps - s0.dec_steps);
    bs_batch_model_free(handle, g);
    bs_batch_group_free(g);
    for (int i = 0; i < N; i++) {
        json_decref(w[i].req);
        json_decref(w[i].got);
        json_decref(want[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_batch_equals_alone),
        cmocka_unit_test(test_summaries_together_equal_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
