/* The batcher on real models (tests/fixtures/models): a served model loads
 * through the registry callbacks, concurrent requests are merged, and every
 * merged answer equals the request's lone pipeline run (labels and nesting
 * exactly, numbers within 1e-5); the group's counters and metrics follow. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "batch/batch.h"
#include "util/buf.h"

/* Structural equality, reals within tol. */
static int json_close(const json_t *a, const json_t *b, double tol)
{
    if (json_is_number(a) && json_is_number(b))
        return fabs(json_number_value(a) - json_number_value(b)) <= tol;
    if (json_typeof(a) != json_typeof(b)) return 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_close(json_array_get(a, i), json_array_get(b, i), tol)) return 0;
        return 1;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b)) return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k,
                            v) if (!json_close(v, json_object_get(b, k), tol)) return 0;
        return 1;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

typedef struct worker {
    bs_served_model *m;
    bs_task task;
    json_t *req;
    json_t *want;
    int rc, ok;
    pthread_t th;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    json_t *data = NULL;
    bs_err err = {0};
    for (int round = 0; round < 4 && !w->rc; round++) {
        w->rc = bs_batcher_run(w->m->batcher, w->task, w->req, NULL, NULL, &data, &err);
        w->ok = !w->rc && json_close(data, w->want, 1e-5);
        json_decref(data);
        data = NULL;
        if (!w->ok) break;
    }
    return NULL;
}

static void run_concurrent(const char *model, bs_task task, const char *extra, double *merged_out)
{
    bs_batcher_opts o = {.max_batch_tokens = 4096, .max_queue = 256, .window_us = 200};
    bs_batch_group *g = bs_batch_group_new(&o);
    assert_non_null(g);
    void *handle = NULL;
    bs_err err = {0};
    int rc =
        bs_batch_model_load(model, bs_test_fixture("models/%s", model), NULL, g, &handle, &err);
    if (rc) fail_msg("%s: %s", model, err.msg);
    bs_served_model *m = handle;
    enum { N = 24 };
    static const char *const words[] = {
        "cats",        "the sea",
        "Zürich café", "rain on the roof",
        "music",       "a long sentence about nothing in particular at all"};
    worker w[N];
    for (int i = 0; i < N; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"text\": \"text %d about %s\"%s}", i, words[i % 6], extra);
        memset(&w[i], 0, sizeof w[i]);
        w[i].m = m;
        w[i].task = task;
        w[i].req = json_loads(body, 0, NULL);
        assert_non_null(w[i].req);
        rc = bs_pipeline_run_json(m->ctx, task, w[i].req, &w[i].want, &err);
        if (rc) fail_msg("%s lone run: %s", model, err.msg);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < N; i++) pthread_join(w[i].th, NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].rc, 0);
        if (!w[i].ok)
            fail_msg("%s: request %d: batched answer differs from its lone run", model, i);
    }
    bs_batch_stats s;
    bs_batch_group_stats(g, &s);
    assert_int_equal(s.requests, N * 4);
    assert_true(s.batches <= s.requests);
    *merged_out = (double)(s.requests - s.batches);
    bs_batch_model_free(handle, g);
    /* Counters survive the model. */
    bs_batch_stats after;
    bs_batch_group_stats(g, &after);
    assert_int_equal(after.requests, s.requests);
    assert_int_equal(after.batches, s.batches);
    bs_batch_group_free(g);
    for (int i = 0; i < N; i++) {
        json_decref(w[i].req);
        json_decref(w[i].want);
    }
}

static void test_embeddings_batched_equal_lone(void **state)
{
    (void)state;
    double merged = 0, total = 0;
    run_concurrent("tiny-bert-embeddings", BS_TASK_EMBEDDINGS, "", &merged);
    total += merged;
    run_concurrent("tiny-bert-embeddings-cls", BS_TASK_EMBEDDINGS, ", \"normalize\": true",
                   &merged);
    total += merged;
    run_concurrent("tiny-electra-base", BS_TASK_FEATURES, "", &merged);
    total += merged;
    run_concurrent("tiny-bert-classification", BS_TASK_CLASSIFICATION, ", \"top_k\": null",
                   &merged);
    total += merged;
    run_concurrent("tiny-bert-ner", BS_TASK_NER, ", \"aggregation_strategy\": \"simple\"", &merged);
    total += merged;
    /* 24 threads x 4 rounds on each model: some calls carried several requests. */
    assert_true(total > 0);
}

static void test_load_error(void **state)
{
    (void)state;
    bs_batch_group *g = bs_batch_group_new(NULL);
    void *handle = (void *)1;
    bs_err err = {0};
    assert_int_not_equal(
        bs_batch_model_load("x", bs_test_fixture("models/no-such-model"), NULL, g, &handle, &err),
        0);
    assert_null(handle);
    assert_true(err.msg[0] != 0);
    bs_batch_group_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embeddings_batched_equal_lone),
        cmocka_unit_test(test_load_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
