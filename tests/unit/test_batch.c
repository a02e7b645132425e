/* The sequence-level batcher with a stand-in model: waiting forwards of
 * different routes share one pass and each caller gets exactly its rows
 * (hidden states, per-sequence, per-token and MLM-position logits, QA
 * start/end), a failing pass leaves the healthy members unharmed, the token
 * budget splits passes, and full queues and departed callers are refused. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "batch/batch.h"

enum { MAX_ROWS = 4096 };

/* Stand-in model: hidden row t = {id, t}; seq-cls row s = {first id, len};
 * token-cls row t = {id, -id}; MLM row p = {id at position, position};
 * QA start/end t = id, -id. An id of 666 fails the pass. */
typedef struct fake {
    bs_head_kind head;
    int passes;
    float hidden[MAX_ROWS * 2], logits[MAX_ROWS * 2], start[MAX_ROWS], end[MAX_ROWS];
} fake;

static int fake_forward(void *ud, const bs_batch *batch, bs_model_outputs *out, bs_err *err)
{
    fake *f = ud;
    f->passes++;
    int32_t ids[MAX_ROWS], t = 0;
    for (int32_t s = 0; s < batch->n_seqs; s++) {
        if (f->head == BS_HEAD_SEQ_CLS) {
            f->logits[2 * s] = (float)batch->seqs[s].input_ids[0];
            f->logits[2 * s + 1] = (float)batch->seqs[s].len;
        }
        for (int32_t i = 0; i < batch->seqs[s].len; i++, t++) {
            ids[t] = batch->seqs[s].input_ids[i];
            if (ids[t] == 666) return bs_err_set(err, BS_EINVAL, "sequence %d is bad", (int)s);
            f->hidden[2 * t] = (float)ids[t];
            f->hidden[2 * t + 1] = (float)t;
            f->start[t] = (float)ids[t];
            f->end[t] = (float)-ids[t];
            if (f->head == BS_HEAD_TOKEN_CLS) {
                f->logits[2 * t] = (float)ids[t];
                f->logits[2 * t + 1] = (float)-ids[t];
            }
        }
    }
    if (f->head == BS_HEAD_MLM)
        for (int32_t p = 0; p < out->n_mlm_positions; p++) {
            f->logits[2 * p] = (float)ids[out->mlm_positions[p]];
            f->logits[2 * p + 1] = (float)out->mlm_positions[p];
        }
    out->n_seqs = batch->n_seqs;
    out->total_tokens = t;
    out->hidden_size = 2;
    out->n_labels = 2;
    out->last_hidden_state = out->want & BS_OUT_HIDDEN ? f->hidden : NULL;
    out->logits = NULL;
    out->start_logits = out->end_logits = NULL;
    if (out->want & BS_OUT_LOGITS) {
        if (f->head == BS_HEAD_QA) {
            out->start_logits = f->start;
            out->end_logits = f->end;
        } else {
            out->logits = f->logits;
        }
    }
    return 0;
}

static bs_batcher *new_batcher(fake *f, bs_head_kind head, size_t max_queue, size_t max_tokens)
{
    memset(f, 0, sizeof *f);
    f->head = head;
    bs_batcher_opts o = {.forward = fake_forward,
                         .forward_ud = f,
                         .head = head,
                         .max_queue = max_queue,
                         .max_batch_tokens = max_tokens};
    bs_batcher *b = NULL;
    bs_err err = {0};
    assert_int_equal(bs_batcher_new(&o, &b, &err), 0);
    return b;
}

/* One caller: n sequences of ids base + 10 * s + i (len lens[s]). */
typedef struct client {
    bs_batcher *b;
    int route, gone;
    int32_t n, lens[4], ids[4][8];
    bs_seq seqs[4];
    unsigned want;
    int32_t mlm[2], n_mlm;
    bs_model_outputs out;
    int rc;
    bs_err err;
    pthread_t th;
} client;

static int client_alive(void *ud)
{
    return !((client *)ud)->gone;
}

static void *client_main(void *arg)
{
    client *c = arg;
    bs_batch batch = {c->seqs, c->n};
    bs_batcher_enter(c->b, c->route, client_alive, c);
    c->rc = bs_batcher_forward(c->b, &batch, &c->out, &c->err);
    bs_batcher_leave();
    return NULL;
}

static void start(client *c, bs_batcher *b, int route, int base, int n, const int32_t *lens,
                  unsigned want)
{
    memset(c, 0, sizeof *c);
    c->b = b;
    c->route = route;
    c->n = n;
    c->want = want;
    for (int s = 0; s < n; s++) {
        c->lens[s] = lens[s];
        for (int i = 0; i < lens[s]; i++) c->ids[s][i] = base + 10 * s + i;
        c->seqs[s] = (bs_seq){c->ids[s], NULL, lens[s]};
    }
    bs_model_outputs_init(&c->out);
    c->out.want = want;
}

static void launch(client *c)
{
    assert_int_equal(pthread_create(&c->th, NULL, client_main, c), 0);
}

static void wait_queued(bs_batcher *b, size_t n)
{
    for (long spins = 0;; spins++) {
        bs_batch_stats st;
        bs_batcher_stats(b, &st);
        if (st.queued >= n) return;
        assert_true(spins < 100000000L); /* a bound for a broken batcher */
        sched_yield();
    }
}

static void finish(client *c)
{
    pthread_join(c->th, NULL);
}

/* Checks the caller's own rows against its ids. */
static void assert_own_rows(const client *c, bs_head_kind head)
{
    assert_int_equal(c->rc, 0);
    const bs_model_outputs *o = &c->out;
    int32_t T = 0;
    for (int s = 0; s < c->n; s++) T += c->lens[s];
    assert_int_equal(o->n_seqs, c->n);
    assert_int_equal(o->total_tokens, T);
    int32_t t = 0;
    for (int s = 0; s < c->n; s++) {
        if (head == BS_HEAD_SEQ_CLS) {
            assert_true(o->logits[2 * s] == (float)c->ids[s][0]);
            assert_true(o->logits[2 * s + 1] == (float)c->lens[s]);
        }
        for (int i = 0; i < c->lens[s]; i++, t++) {
            if (c->want & BS_OUT_HIDDEN) assert_true(o->last_hidden_state[2 * t] == c->ids[s][i]);
            if (head == BS_HEAD_TOKEN_CLS) assert_true(o->logits[2 * t + 1] == -c->ids[s][i]);
            if (head == BS_HEAD_QA) {
                assert_true(o->start_logits[t] == c->ids[s][i]);
                assert_true(o->end_logits[t] == -c->ids[s][i]);
            }
        }
    }
}

static void test_routes_share_a_pass(void **state)
{
    (void)state;
    static const bs_head_kind heads[] = {BS_HEAD_BASE, BS_HEAD_SEQ_CLS, BS_HEAD_TOKEN_CLS,
                                         BS_HEAD_QA};
    for (size_t h = 0; h < sizeof heads / sizeof *heads; h++) {
        fake f;
        bs_batcher *b = new_batcher(&f, heads[h], 64, 100000);
        bs_batcher_hold(b, 1);
        client c[4];
        const int32_t lens[][3] = {{3, 1, 0}, {2, 0, 0}, {5, 4, 2}, {1, 0, 0}};
        const int counts[] = {2, 1, 3, 1};
        const int routes[] = {BS_TASK_CLASSIFICATION, BS_TASK_EMBEDDINGS, BS_TASK_QA,
                              BS_ROUTE_RERANK};
        for (int i = 0; i < 4; i++) {
            start(&c[i], b, routes[i], 100 * (i + 1), counts[i], lens[i],
                  heads[h] == BS_HEAD_BASE || i == 1 ? BS_OUT_HIDDEN : BS_OUT_LOGITS);
            launch(&c[i]);
            wait_queued(b, (size_t)i + 1);
        }
        bs_batcher_hold(b, 0);
        for (int i = 0; i < 4; i++) finish(&c[i]);
        for (int i = 0; i < 4; i++) {
            assert_own_rows(&c[i], c[i].want & BS_OUT_LOGITS ? heads[h] : BS_HEAD_BASE);
            bs_batcher_outputs_release(&c[i].out);
        }
        bs_batch_stats st;
        bs_batcher_stats(b, &st);
        assert_int_equal(f.passes, 1);
        assert_int_equal(st.batches, 1);
        assert_int_equal(st.requests, 4);
        assert_int_equal(st.texts, 7);
        assert_int_equal(st.mixed, 1);
        assert_int_equal(st.max_batch, 4);
        assert_int_equal(st.route_texts[BS_TASK_QA], 3);
        assert_int_equal(st.route_texts[BS_ROUTE_RERANK], 1);
        bs_batcher_free(b);
    }
}

static void test_mlm_positions_shift(void **state)
{
    (void)state;
    fake f;
    bs_batcher *b = new_batcher(&f, BS_HEAD_MLM, 64, 100000);
    bs_batcher_hold(b, 1);
    client c[2];
    const int32_t l0[] = {4}, l1[] = {3, 3};
    start(&c[0], b, BS_TASK_FILL_MASK, 100, 1, l0, BS_OUT_LOGITS);
    c[0].mlm[0] = 2;
    c[0].out.mlm_positions = c[0].mlm;
    c[0].out.n_mlm_positions = 1;
    start(&c[1], b, BS_TASK_FILL_MASK, 200, 2, l1, BS_OUT_LOGITS);
    c[1].mlm[0] = 1;
    c[1].mlm[1] = 4; /* second sequence, its second token */
    c[1].out.mlm_positions = c[1].mlm;
    c[1].out.n_mlm_positions = 2;
    for (int i = 0; i < 2; i++) {
        launch(&c[i]);
        wait_queued(b, (size_t)i + 1);
    }
    bs_batcher_hold(b, 0);
    for (int i = 0; i < 2; i++) finish(&c[i]);
    assert_int_equal(c[0].rc, 0);
    assert_int_equal(c[1].rc, 0);
    assert_true(c[0].out.logits[0] == 102);
    assert_true(c[1].out.logits[0] == 201);
    assert_true(c[1].out.logits[2] == 211);
    assert_int_equal(c[1].out.mlm_positions[1], 4); /* the caller's own positions stay */
    assert_int_equal(f.passes, 1);
    for (int i = 0; i < 2; i++) bs_batcher_outputs_release(&c[i].out);
    bs_batcher_free(b);
}

/* A pass that fails runs its members alone: only the bad one fails. */
static void test_failure_isolated(void **state)
{
    (void)state;
    fake f;
    bs_batcher *b = new_batcher(&f, BS_HEAD_SEQ_CLS, 64, 100000);
    bs_batcher_hold(b, 1);
    client c[3];
    const int32_t lens[] = {2};
    for (int i = 0; i < 3; i++) {
        start(&c[i], b, BS_TASK_CLASSIFICATION, 100 * (i + 1), 1, lens, BS_OUT_LOGITS);
        if (i == 1) c[i].ids[0][1] = 666;
        launch(&c[i]);
        wait_queued(b, (size_t)i + 1);
    }
    bs_batcher_hold(b, 0);
    for (int i = 0; i < 3; i++) finish(&c[i]);
    assert_own_rows(&c[0], BS_HEAD_SEQ_CLS);
    assert_own_rows(&c[2], BS_HEAD_SEQ_CLS);
    assert_int_equal(c[1].rc, BS_EINVAL);
    assert_non_null(strstr(c[1].err.msg, "bad"));
    bs_batch_stats st;
    bs_batcher_stats(b, &st);
    assert_int_equal(st.retried, 3);
    for (int i = 0; i < 3; i++) bs_batcher_outputs_release(&c[i].out);
    bs_batcher_free(b);
}

/* Passes stay within max_batch_tokens; a larger lead still runs alone. */
static void test_token_budget(void **state)
{
    (void)state;
    fake f;
    bs_batcher *b = new_batcher(&f, BS_HEAD_BASE, 64, 6);
    bs_batcher_hold(b, 1);
    client c[4];
    const int32_t big[] = {8}, small[] = {3};
    for (int i = 0; i < 4; i++) {
        start(&c[i], b, BS_TASK_EMBEDDINGS, 100 * (i + 1), 1, i == 0 ? big : small, BS_OUT_HIDDEN);
        launch(&c[i]);
        wait_queued(b, (size_t)i + 1);
    }
    bs_batcher_hold(b, 0);
    for (int i = 0; i < 4; i++) finish(&c[i]);
    for (int i = 0; i < 4; i++) {
        assert_own_rows(&c[i], BS_HEAD_BASE);
        bs_batcher_outputs_release(&c[i].out);
    }
    /* {8}, {3, 3}, {3} */
    assert_int_equal(f.passes, 3);
    bs_batch_stats st;
    bs_batcher_stats(b, &st);
    assert_int_equal(st.max_batch, 2);
    assert_int_equal(st.mixed, 0);
    bs_batcher_free(b);
}

static void test_queue_bound_and_cancel(void **state)
{
    (void)state;
    fake f;
    bs_batcher *b = new_batcher(&f, BS_HEAD_BASE, 2, 100000);
    bs_batcher_hold(b, 1);
    client c[2], extra;
    const int32_t lens[] = {2};
    for (int i = 0; i < 2; i++) {
        start(&c[i], b, BS_TASK_FEATURES, 100 * (i + 1), 1, lens, BS_OUT_HIDDEN);
        launch(&c[i]);
        wait_queued(b, (size_t)i + 1);
    }
    start(&extra, b, BS_TASK_FEATURES, 900, 1, lens, BS_OUT_HIDDEN);
    client_main(&extra);
    assert_int_equal(extra.rc, BS_EBUSY);
    c[0].gone = 1; /* its client left while it waited */
    bs_batcher_hold(b, 0);
    for (int i = 0; i < 2; i++) finish(&c[i]);
    assert_int_equal(c[0].rc, BS_EIO);
    assert_own_rows(&c[1], BS_HEAD_BASE);
    bs_batch_stats st;
    bs_batcher_stats(b, &st);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.cancelled, 1);
    assert_int_equal(st.requests, 1);
    for (int i = 0; i < 2; i++) bs_batcher_outputs_release(&c[i].out);
    bs_batcher_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_share_a_pass),    cmocka_unit_test(test_mlm_positions_shift),
        cmocka_unit_test(test_failure_isolated),       cmocka_unit_test(test_token_budget),
        cmocka_unit_test(test_queue_bound_and_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
