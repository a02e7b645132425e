/* Batcher tests with a fake task runner: merging, exact per-request
 * answers, failure isolation, queue bound, cancelled callers, and the
 * shortest round-trip number formatting of answers. */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "batch/batch.h"
#include "util/buf.h"

/* ── fake runner: results[i] = {"text": text_i, "len": strlen(text_i)} ── */

typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    size_t max_texts;
    int gate_open; /* the first call blocks until the test opens the gate */
    json_t *seen;  /* every text the runner processed */
} fake;

static int fake_run(void *ud, bs_task task, const json_t *req, json_t **data, bs_err *err)
{
    fake *f = ud;
    (void)task;
    pthread_mutex_lock(&f->mu);
    f->calls++;
    while (!f->gate_open) pthread_cond_wait(&f->cv, &f->mu);
    json_t *text = json_object_get(req, "text");
    json_t *list = json_is_string(text) ? json_pack("[O]", text) : json_incref(text);
    if (json_array_size(list) > f->max_texts) f->max_texts = json_array_size(list);
    size_t i;
    json_t *t;
    int truncated = 0, rc = 0;
    json_t *results = json_array();
    json_array_foreach(list, i, t)
    {
        const char *s = json_string_value(t);
        json_array_append(f->seen, t);
        if (!strcmp(s, "FAIL")) rc = bs_err_set(err, BS_EINVAL, "text: FAIL is not allowed");
        if (!strcmp(s, "LONG")) truncated = 1;
        json_array_append_new(results,
                              json_pack("{s:s, s:I}", "text", s, "len", (json_int_t)strlen(s)));
    }
    pthread_mutex_unlock(&f->mu);
    json_decref(list);
    if (rc) {
        json_decref(results);
        return rc;
    }
    *data =
        json_pack("{s:o, s:b, s:i}", "results", results, "truncated", truncated, "dimensions", 7);
    return 0;
}

static void fake_init(fake *f, int gate_open)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->gate_open = gate_open;
    f->seen = json_array();
}

static void fake_open(fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->gate_open = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void fake_done(fake *f)
{
    json_decref(f->seen);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
}

static bs_batcher *new_batcher(fake *f, size_t max_queue, size_t max_tokens)
{
    bs_batcher_opts o = {
        .run = fake_run, .run_ud = f, .max_queue = max_queue, .max_batch_tokens = max_tokens};
    bs_batcher *b = NULL;
    bs_err err = {0};
    assert_int_equal(bs_batcher_new(&o, &b, &err), 0);
    return b;
}

typedef struct client {
    bs_batcher *b;
    bs_task task;
    json_t *req;
    int alive;
    int rc;
    bs_err err;
    json_t *data;
    pthread_t th;
} client;

static int client_alive(void *ud)
{
    return ((client *)ud)->alive;
}

static void *client_main(void *arg)
{
    client *c = arg;
    c->rc = bs_batcher_run(c->b, c->task, c->req, client_alive, c, &c->data, &c->err);
    return NULL;
}

static void start_client(client *c, bs_batcher *b, bs_task task, const char *body)
{
    memset(c, 0, sizeof *c);
    c->b = b;
    c->task = task;
    c->alive = 1;
    c->req = json_loads(body, 0, NULL);
    assert_non_null(c->req);
    assert_int_equal(pthread_create(&c->th, NULL, client_main, c), 0);
}

static void finish_client(client *c)
{
    pthread_join(c->th, NULL);
}

static void free_client(client *c)
{
    json_decref(c->req);
    json_decref(c->data);
}

/* Waits until n requests are queued (the runner is blocked on its gate). */
static void wait_queued(bs_batcher *b, size_t n)
{
    bs_batch_stats st;
    for (;;) {
        bs_batcher_stats(b, &st);
        if (st.queued >= n) return;
        sched_yield();
    }
}

static void wait_calls(fake *f, int n)
{
    for (;;) {
        pthread_mutex_lock(&f->mu);
        int c = f->calls;
        pthread_mutex_unlock(&f->mu);
        if (c >= n) return;
        sched_yield();
    }
}

static void assert_answer(const client *c, const char *const *texts, size_t n)
{
    assert_int_equal(c->rc, 0);
    json_t *res = json_object_get(c->data, "results");
    assert_int_equal(json_array_size(res), n);
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(res, i);
        assert_string_equal(json_string_value(json_object_get(r, "text")), texts[i]);
        assert_int_equal(json_integer_value(json_object_get(r, "len")),
                         (json_int_t)strlen(texts[i]));
    }
    assert_true(json_is_false(json_object_get(c->data, "truncated")));
    assert_int_equal(json_integer_value(json_object_get(c->data, "dimensions")), 7);
}

/* 1 request runs alone (and blocks the runner); 15 more queue up meanwhile
 * and must run as one merged call, each getting exactly its own slice. */
static void test_merges_waiting_requests(void **state)
{
    (void)state;
    fake f;
    fake_init(&f, 0);
    bs_batcher *b = new_batcher(&f, 64, 100000);
    enum { N = 16 };
    client c[N];
    char bodies[N][128];
    start_client(&c[0], b, BS_TASK_EMBEDDINGS, "{\"text\": \"first\", \"model_name\": \"m\"}");
    wait_calls(&f, 1);
    for (int i = 1; i < N; i++) {
        if (i % 3 == 0)
            snprintf(bodies[i], sizeof bodies[i],
                     "{\"text\": [\"a%d\", \"bb%d\"], \"model_name\": \"m\"}", i, i);
        else
            snprintf(bodies[i], sizeof bodies[i], "{\"text\": \"t%d\", \"model_name\": \"x\"}", i);
        start_client(&c[i], b, BS_TASK_EMBEDDINGS, bodies[i]);
    }
    wait_queued(b, N - 1);
    fake_open(&f);
    for (int i = 0; i < N; i++) finish_client(&c[i]);
    const char *first[] = {"first"};
    assert_answer(&c[0], first, 1);
    for (int i = 1; i < N; i++) {
        char a[16], bb[16];
        if (i % 3 == 0) {
            snprintf(a, sizeof a, "a%d", i);
            snprintf(bb, sizeof bb, "bb%d", i);
            const char *t[] = {a, bb};
            assert_answer(&c[i], t, 2);
        } else {
            snprintf(a, sizeof a, "t%d", i);
            const char *t[] = {a};
            assert_answer(&c[i], t, 1);
        }
    }
    bs_batch_stats st;
    bs_batcher_stats(b, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(f.calls, 2);
    assert_int_equal(st.max_batch, N - 1);
    assert_int_equal(st.requests, N);
    assert_int_equal(st.sizes[0], 1);
    assert_int_equal(st.sizes[3], 1); /* 15 requests: bucket [8, 16) */
    assert_int_equal(f.max_texts, 15 + 5);
    for (int i = 0; i < N; i++) free_client(&c[i]);
    bs_batcher_free(b);
    fake_done(&f);
}

/* A request that fails (or truncates) in a merged call is re-run alone:
 * its batch-mates still succeed with their own unbatched flags. */
static void test_failure_isolated(void **state)
{
    (void)state;
    fake f;
    fake_init(&f, 0);
    bs_batcher *b = new_batcher(&f, 64, 100000);
    client lead, ok1, bad, lng, ok2;
    start_client(&lead, b, BS_TASK_CLASSIFICATION, "{\"text\": \"lead\", \"top_k\": 2}");
    wait_calls(&f, 1);
    start_client(&ok1, b, BS_TASK_CLASSIFICATION, "{\"text\": \"ok1\", \"top_k\": 2}");
    wait_queued(b, 1);
    start_client(&bad, b, BS_TASK_CLASSIFICATION, "{\"text\": [\"x\", \"FAIL\"], \"top_k\": 2}");
    wait_queued(b, 2);
    start_client(&lng, b, BS_TASK_CLASSIFICATION, "{\"text\": \"LONG\", \"top_k\": 2}");
    wait_queued(b, 3);
    start_client(&ok2, b, BS_TASK_CLASSIFICATION, "{\"text\": \"ok2\", \"top_k\": 2}");
    wait_queued(b, 4);
    fake_open(&f);
    finish_client(&lead);
    finish_client(&ok1);
    finish_client(&bad);
    finish_client(&lng);
    finish_client(&ok2);
    const char *t1[] = {"ok1"}, *t2[] = {"ok2"};
    assert_answer(&ok1, t1, 1);
    assert_answer(&ok2, t2, 1);
    assert_int_equal(bad.rc, BS_EINVAL);
    assert_string_equal(bad.err.msg, "text: FAIL is not allowed");
    assert_null(bad.data);
    assert_int_equal(lng.rc, 0);
    assert_true(json_is_true(json_object_get(lng.data, "truncated")));
    bs_batch_stats st;
    bs_batcher_stats(b, &st);
    assert_int_equal(st.retried, 4);
    free_client(&lead);
    free_client(&ok1);
    free_client(&bad);
    free_client(&lng);
    free_client(&ok2);
    bs_batcher_free(b);
    fake_done(&f);
}

/* Different options, different tasks and unmergeable bodies never share a
 * call; unmergeable ones run in the caller's thread. */
static void test_keys_and_direct(void **state)
{
    (void)state;
    fake f;
    fake_init(&f, 0);
    bs_batcher *b = new_batcher(&f, 64, 100000);
    client lead, k2a, k3, k2b, direct;
    start_client(&lead, b, BS_TASK_EMBEDDINGS, "{\"text\": \"lead\"}");
    wait_calls(&f, 1);
    start_client(&k2a, b, BS_TASK_EMBEDDINGS, "{\"text\": \"a\", \"pooling\": \"cls\"}");
    wait_queued(b, 1);
    start_client(&k3, b, BS_TASK_FEATURES, "{\"text\": \"f\"}");
    wait_queued(b, 2);
    start_client(&k2b, b, BS_TASK_EMBEDDINGS, "{\"pooling\": \"cls\", \"text\": \"b\"}");
    wait_queued(b, 3);
    /* QA is never merged: it runs at once, in its own thread. */
    start_client(&direct, b, BS_TASK_QA, "{\"text\": \"q\"}");
    wait_calls(&f, 2);
    fake_open(&f);
    finish_client(&lead);
    finish_client(&k2a);
    finish_client(&k3);
    finish_client(&k2b);
    finish_client(&direct);
    const char *ta[] = {"a"}, *tb[] = {"b"}, *tf[] = {"f"}, *tq[] = {"q"};
    assert_answer(&k2a, ta, 1);
    assert_answer(&k2b, tb, 1);
    assert_answer(&k3, tf, 1);
    assert_answer(&direct, tq, 1);
    bs_batch_stats st;
    bs_batcher_stats(b, &st);
    assert_int_equal(st.direct, 1);
    assert_int_equal(st.batches, 3); /* lead; {a, b}; {f} */
    assert_int_equal(st.max_batch, 2);
    free_client(&lead);
    free_client(&k2a);
    free_client(&k3);
    free_client(&k2b);
    free_client(&direct);
    bs_batcher_free(b);
    fake_done(&f);
}

/* The token budget splits a long queue into several calls. */
static void test_token_budget(void **state)
{
    (void)state;
    fake f;
    fake_init(&f, 0);
    /* each one-word text is estimated at 3 tokens: 4 fit in 12 */
    bs_batcher *b = new_batcher(&f, 64, 12);
    enum { N = 9 };
    client c[N];
    start_client(&c[0], b, BS_TASK_FEATURES, "{\"text\": \"lead\"}");
    wait_calls(&f, 1);
    for (int i = 1; i < N; i++) {
        start_client(&c[i], b, BS_TASK_FEATURES, "{\"text\": \"word\"}");
        wait_queued(b, (size_t)i);
    }
    fake_open(&f);
    for (int i = 0; i < N; i++) finish_client(&c[i]);
    bs_batch_stats st;
    bs_batcher_stats(b, &st);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.max_batch, 4);
    for (int i = 1; i < N; i++) {
        const char *t[] = {"word"};
        assert_answer(&c[i], t, 1);
    }
    for (int i = 0; i < N; i++) free_client(&c[i]);
    bs_batcher_free(b);
    fake_done(&f);
}

/* Beyond max_queue waiting requests: BS_EBUSY at once. A caller that has
 * gone away gets BS_EIO and its text is never computed. */
static void test_queue_bound_and_cancel(void **state)
{
    (void)state;
    fake f;
    fake_init(&f, 0);
    bs_batcher *b = new_batcher(&f, 2, 100000);
    client lead, q1, q2, over;
    start_client(&lead, b, BS_TASK_NER, "{\"text\": \"lead\"}");
    wait_calls(&f, 1);
    start_client(&q1, b, BS_TASK_NER, "{\"text\": \"gone\"}");
    wait_queued(b, 1);
    start_client(&q2, b, BS_TASK_NER, "{\"text\": \"stay\"}");
    wait_queued(b, 2);
    start_client(&over, b, BS_TASK_NER, "{\"text\": \"over\"}");
    finish_client(&over);
    assert_int_equal(over.rc, BS_EBUSY);
    q1.alive = 0; /* read by the batcher thread only after the gate opens */
    fake_open(&f);
    finish_client(&lead);
    finish_client(&q1);
    finish_client(&q2);
    assert_int_equal(q1.rc, BS_EIO);
    const char *t[] = {"stay"};
    assert_answer(&q2, t, 1);
    size_t i;
    json_t *s;
    json_array_foreach(f.seen, i, s) assert_string_not_equal(json_string_value(s), "gone");
    bs_batch_stats st;
    bs_batcher_stats(b, &st);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.cancelled, 1);
    free_client(&lead);
    free_client(&q1);
    free_client(&q2);
    free_client(&over);
    bs_batcher_free(b);
    fake_done(&f);
}

static void test_mergeable_rules(void **state)
{
    (void)state;
    const struct {
        bs_task task;
        const char *body;
        int ok;
        size_t n;
    } cases[] = {
        {BS_TASK_EMBEDDINGS, "{\"text\": \"a\"}", 1, 1},
        {BS_TASK_EMBEDDINGS, "{\"text\": [\"a\", \"b\"], \"normalize\": true}", 1, 2},
        {BS_TASK_EMBEDDINGS, "{\"text\": []}", 0, 0},
        {BS_TASK_EMBEDDINGS, "{\"text\": [\"a\", 3]}", 0, 0},
        {BS_TASK_EMBEDDINGS, "{\"text\": \"a\", \"extra\": 1}", 0, 0},
        {BS_TASK_CLASSIFICATION, "{\"text\": \"a\", \"text_pair\": \"b\"}", 0, 0},
        {BS_TASK_QA, "{\"question\": \"a\", \"context\": \"b\"}", 0, 0},
        {BS_TASK_SUMMARIZATION, "{\"text\": \"a\"}", 0, 0},
        {BS_TASK_FILL_MASK, "{\"text\": \"a [MASK]\", \"targets\": [\"x\"]}", 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *r = json_loads(cases[i].body, 0, NULL);
        char *key = NULL;
        size_t n = 99;
        assert_int_equal(bs_batch_mergeable(cases[i].task, r, &key, &n), cases[i].ok);
        assert_int_equal(n, cases[i].n);
        assert_true((key != NULL) == cases[i].ok);
        free(key);
        json_decref(r);
    }
    /* Key order and model_name do not matter; option values do. */
    json_t *a = json_loads(
        "{\"text\": \"x\", \"top_k\": 3, \"function_to_apply\": \"none\", \"model_name\": \"m\"}",
        0, NULL);
    json_t *b =
        json_loads("{\"function_to_apply\": \"none\", \"top_k\": 3, \"text\": [\"y\"]}", 0, NULL);
    json_t *c =
        json_loads("{\"function_to_apply\": \"none\", \"top_k\": 2, \"text\": [\"y\"]}", 0, NULL);
    char *ka, *kb, *kc;
    size_t n;
    assert_true(bs_batch_mergeable(BS_TASK_CLASSIFICATION, a, &ka, &n));
    assert_true(bs_batch_mergeable(BS_TASK_CLASSIFICATION, b, &kb, &n));
    assert_true(bs_batch_mergeable(BS_TASK_CLASSIFICATION, c, &kc, &n));
    assert_string_equal(ka, kb);
    assert_string_not_equal(ka, kc);
    free(ka);
    free(kb);
    free(kc);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merges_waiting_requests), cmocka_unit_test(test_failure_isolated),
        cmocka_unit_test(test_keys_and_direct),         cmocka_unit_test(test_token_budget),
        cmocka_unit_test(test_queue_bound_and_cancel),  cmocka_unit_test(test_mergeable_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
