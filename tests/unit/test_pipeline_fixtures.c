/* Every case of the pipeline fixtures (tests/fixtures/pipelines, one file
 * per task) through the JSON entry point bs_pipeline_run_json: labels, words,
 * spans, tokens exact; scores and
 * vectors within 1e-4; summarization token ids exact and beam scores within
 * 1e-4 * max(1, |score|). */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertstudio/pipeline.h"
#include "pipeline/ctx.h"

/* One loaded context per fixture model, kept for the whole file. */
typedef struct loaded {
    char name[128];
    bs_pipeline_ctx *ctx;
} loaded;

static loaded cache[32];
static size_t n_cache;

static bs_pipeline_ctx *ctx_for(const char *model)
{
    for (size_t i = 0; i < n_cache; i++)
        if (!strcmp(cache[i].name, model)) return cache[i].ctx;
    bs_err err = {0};
    bs_model_opts opts = {.n_threads = 1};
    bs_pipeline_ctx *ctx = NULL;
    if (bs_pipeline_ctx_load(bs_test_fixture("models/%s", model), &opts, &ctx, &err)) {
        print_error("loading %s: %s\n", model, err.msg);
        return NULL;
    }
    assert_true(n_cache < 32);
    snprintf(cache[n_cache].name, sizeof cache[n_cache].name, "%s", model);
    cache[n_cache++].ctx = ctx;
    return ctx;
}

static int teardown_cache(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_cache; i++) bs_pipeline_ctx_free(cache[i].ctx);
    n_cache = 0;
    return 0;
}

/* Compares expected against actual; every key of an expected object must
 * match (extra actual keys are allowed). Prints the first difference. */
static int same(const json_t *exp, const json_t *act, double tol, char *path, size_t cap)
{
    size_t plen = strlen(path);
    if (json_is_real(exp) || (json_is_integer(exp) && json_is_real(act))) {
        if (!json_is_number(act)) return 0;
        double e = json_number_value(exp), a = json_number_value(act);
        return fabs(e - a) <= tol;
    }
    if (json_is_null(exp)) return json_is_null(act);
    if (json_is_integer(exp))
        return json_is_integer(act) && json_integer_value(exp) == json_integer_value(act);
    if (json_is_string(exp))
        return json_is_string(act) && !strcmp(json_string_value(exp), json_string_value(act));
    if (json_is_boolean(exp)) return json_is_boolean(act) && json_is_true(exp) == json_is_true(act);
    if (json_is_array(exp)) {
        if (!json_is_array(act)) return 0;
        if (json_array_size(exp) != json_array_size(act)) {
            snprintf(path + plen, cap - plen, " (length %zu vs %zu)", json_array_size(exp),
                     json_array_size(act));
            return 0;
        }
        for (size_t i = 0; i < json_array_size(exp); i++) {
            snprintf(path + plen, cap - plen, "[%zu]", i);
            if (!same(json_array_get(exp, i), json_array_get(act, i), tol, path, cap)) return 0;
        }
        path[plen] = 0;
        return 1;
    }
    if (json_is_object(exp)) {
        if (!json_is_object(act)) return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)exp, k, v)
        {
            snprintf(path + plen, cap - plen, ".%s", k);
            if (!same(v, json_object_get(act, k), tol, path, cap)) return 0;
        }
        path[plen] = 0;
        return 1;
    }
    return 0;
}

/* Summarization: token ids and beam score via the two-step private API. */
static int check_generation(const bs_pipeline_ctx *ctx, const json_t *req, const json_t *expected,
                            const char *id)
{
    const json_t *r = req;
    bs_err err = {0};
    /* the fixture requests are well-formed: read them directly */
    bs_summarization_req q;
    bs_summarization_req_init(&q);
    json_t *v;
    if ((v = json_object_get(r, "max_length"))) q.max_length = (int)json_integer_value(v);
    if ((v = json_object_get(r, "min_length"))) q.min_length = (int)json_integer_value(v);
    if ((v = json_object_get(r, "num_beams"))) q.num_beams = (int)json_integer_value(v);
    if ((v = json_object_get(r, "no_repeat_ngram_size")))
        q.no_repeat_ngram_size = (int)json_integer_value(v);
    if ((v = json_object_get(r, "max_new_tokens"))) q.max_new_tokens = (int)json_integer_value(v);
    if ((v = json_object_get(r, "length_penalty"))) q.length_penalty = json_number_value(v);
    if ((v = json_object_get(r, "early_stopping")))
        q.early_stopping = json_is_string(v) ? BS_EARLY_STOP_NEVER
                           : json_is_true(v) ? BS_EARLY_STOP_TRUE
                                             : BS_EARLY_STOP_FALSE;
    bs_gen_params p;
    int ok = bs_pl_gen_params(ctx, &q, &p, &err) == 0;
    const json_t *text = json_object_get(r, "text");
    size_t n = json_is_array(text) ? json_array_size(text) : 1;
    const json_t *eids = json_object_get(expected, "token_ids");
    const json_t *escore = json_object_get(expected, "sequence_score");
    for (size_t i = 0; ok && i < n; i++) {
        const char *t = json_string_value(json_is_array(text) ? json_array_get(text, i) : text);
        const json_t *ids_i = json_is_array(text) ? json_array_get(eids, i) : eids;
        const json_t *score_i = json_is_array(escore) ? json_array_get(escore, i) : escore;
        int32_t *ids = NULL;
        size_t nid = 0;
        double score;
        int trunc = 0;
        if (bs_pl_summarize_text(ctx, &p, t, &ids, &nid, &score, &trunc, &err)) {
            ok = 0;
            break;
        }
        ok = nid == json_array_size(ids_i);
        for (size_t k = 0; ok && k < nid; k++)
            ok = ids[k] == json_integer_value(json_array_get(ids_i, k));
        if (!ok) {
            fprintf(stderr, "%s: text %zu token ids differ: got", id, i);
            for (size_t k = 0; k < nid; k++) fprintf(stderr, " %d", ids[k]);
            fprintf(stderr, "\n");
        }
        if (ok && json_is_number(score_i)) {
            double e = json_number_value(score_i);
            ok = fabs(score - e) <= 1e-4 * fmax(1, fabs(e));
            if (!ok) fprintf(stderr, "%s: sequence_score %.6f, expected %.6f\n", id, score, e);
        }
        free(ids);
    }
    if (err.code) fprintf(stderr, "%s: %s\n", id, err.msg);
    return ok;
}

static void run_file(const char *file, bs_task task)
{
    size_t len;
    char *text = bs_test_read_file(bs_test_fixture("pipelines/%s", file), &len);
    assert_non_null(text);
    int cases = 0, failures = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *c = json_loads(line, 0, &je);
        assert_non_null(c);
        const char *id = json_string_value(json_object_get(c, "id"));
        bs_pipeline_ctx *ctx = ctx_for(json_string_value(json_object_get(c, "model")));
        assert_non_null(ctx);
        json_t *data = NULL;
        bs_err err = {0};
        cases++;
        int rc = bs_pipeline_run_json(ctx, task, json_object_get(c, "request"), &data, &err);
        char path[512] = "";
        const json_t *exp = json_object_get(c, "expected");
        json_t *exp_data = json_deep_copy(exp);
        json_object_del(exp_data, "token_ids");
        json_object_del(exp_data, "sequence_score");
        if (rc) {
            fprintf(stderr, "%s: error %d: %s\n", id, rc, err.msg);
            failures++;
        } else if (!same(exp_data, data, 1e-4, path, sizeof path)) {
            char *got = json_dumps(data, JSON_COMPACT);
            fprintf(stderr, "%s: differs at data%s\n  got %.600s\n", id, path, got);
            free(got);
            failures++;
        } else if (task == BS_TASK_SUMMARIZATION &&
                   !check_generation(ctx, json_object_get(c, "request"), exp, id)) {
            failures++;
        }
        json_decref(exp_data);
        json_decref(data);
        json_decref(c);
    }
    free(text);
    fprintf(stderr, "%s: %d cases, %d failures\n", file, cases, failures);
    assert_true(cases > 0);
    assert_int_equal(failures, 0);
}

static void test_classification(void **s)
{
    (void)s;
    run_file("classification.jsonl", BS_TASK_CLASSIFICATION);
}
static void test_ner(void **s)
{
    (void)s;
    run_file("ner.jsonl", BS_TASK_NER);
}
static void test_qa(void **s)
{
    (void)s;
    run_file("qa.jsonl", BS_TASK_QA);
}
static void test_fill_mask(void **s)
{
    (void)s;
    run_file("fill-mask.jsonl", BS_TASK_FILL_MASK);
}
static void test_embeddings(void **s)
{
    (void)s;
    run_file("embeddings.jsonl", BS_TASK_EMBEDDINGS);
}
static void test_features(void **s)
{
    (void)s;
    run_file("features.jsonl", BS_TASK_FEATURES);
}
static void test_summarization(void **s)
{
    (void)s;
    run_file("summarization.jsonl", BS_TASK_SUMMARIZATION);
}

/* Runs `body` (JSON) as `task` on `model`; returns the error code. */
static int run_text(const char *model, bs_task task, const char *body, char *msg, size_t cap)
{
    bs_pipeline_ctx *ctx = ctx_for(model);
    assert_non_null(ctx);
    json_t *req = json_loads(body, 0, NULL), *data = NULL;
    assert_non_null(req);
    bs_err err = {0};
    int rc = bs_pipeline_run_json(ctx, task, req, &data, &err);
    if (rc) assert_null(data);
    snprintf(msg, cap, "%s", rc ? err.msg : "");
    json_decref(req);
    json_decref(data);
    return rc;
}

static void expect_error(const char *model, bs_task task, const char *body, int code,
                         const char *needle)
{
    char msg[512];
    int rc = run_text(model, task, body, msg, sizeof msg);
    if (rc != code || !strstr(msg, needle)) fprintf(stderr, "%s -> %d '%s'\n", body, rc, msg);
    assert_int_equal(rc, code);
    assert_non_null(strstr(msg, needle));
}

static void test_bad_input_codes(void **s)
{
    (void)s;
    expect_error("tiny-bert-classification", BS_TASK_CLASSIFICATION, "{\"text\": \"\"}", BS_EINVAL,
                 "empty");
    expect_error("tiny-bert-classification", BS_TASK_CLASSIFICATION, "{\"text\": []}", BS_EINVAL,
                 "empty list");
    expect_error("tiny-bert-classification", BS_TASK_CLASSIFICATION,
                 "{\"text\": \"a\", \"top_k\": 0}", BS_EINVAL, "top_k 0");
    expect_error("tiny-bert-classification", BS_TASK_CLASSIFICATION,
                 "{\"text\": \"a\", \"extra\": 1}", BS_EINVAL, "unknown field 'extra'");
    expect_error("tiny-bert-classification", BS_TASK_CLASSIFICATION, "[1]", BS_EINVAL,
                 "JSON object");
    expect_error("tiny-bert-classification", BS_TASK_CLASSIFICATION,
                 "{\"text\": [\"a\", \"b\"], \"text_pair\": [\"c\"]}", BS_EINVAL,
                 "text_pair has 1");
    expect_error("tiny-bert-mlm", BS_TASK_CLASSIFICATION, "{\"text\": \"a\"}", BS_EUNPROCESSABLE,
                 "sequence-classification head");
    expect_error("tiny-bert-classification", BS_TASK_NER, "{\"text\": \"a\"}", BS_EUNPROCESSABLE,
                 "token-classification head");
    expect_error("tiny-bert-ner", BS_TASK_NER,
                 "{\"text\": \"a\", \"aggregation_strategy\": \"mean\"}", BS_EINVAL,
                 "none, simple, first, average, max");
    expect_error("tiny-bert-mlm", BS_TASK_FILL_MASK, "{\"text\": \"no mask\"}", BS_EUNPROCESSABLE,
                 "no mask token");
    expect_error("tiny-bert-mlm", BS_TASK_FILL_MASK, "{\"text\": \"a [MASK]\", \"targets\": []}",
                 BS_EINVAL, "targets");
    expect_error("tiny-bert-qa", BS_TASK_QA,
                 "{\"question\": \"q\", \"context\": \"c\", \"doc_stride\": -1}", BS_EINVAL,
                 "doc_stride");
    expect_error("tiny-bert-qa", BS_TASK_QA, "{\"question\": \"\", \"context\": \"c\"}", BS_EINVAL,
                 "question");
    expect_error("tiny-bert-embeddings", BS_TASK_EMBEDDINGS, "{\"text\": \"a\", \"normalize\": 1}",
                 BS_EINVAL, "normalize must be true or false");
    expect_error("tiny-bart", BS_TASK_SUMMARIZATION, "{\"text\": \"a\", \"max_length\": 500}",
                 BS_EINVAL, "max_length 500");
    expect_error("tiny-bart", BS_TASK_SUMMARIZATION, "{\"text\": \"a\", \"length_penalty\": \"x\"}",
                 BS_EINVAL, "length_penalty");
    /* 60 masks x the whole vocabulary: over the prediction limit */
    char masks[60 * 7 + 64] = "{\"top_k\": 1000000, \"text\": \"";
    for (int i = 0; i < 60; i++) strcat(masks, "[MASK] ");
    strcat(masks, "\"}");
    expect_error("tiny-bert-mlm", BS_TASK_FILL_MASK, masks, BS_EINVAL,
                 "predictions; the limit is 100000");
    /* 257 texts: over the documented batch limit */
    json_t *req = json_pack("{s:[]}", "text");
    for (int i = 0; i < BS_PIPELINE_MAX_BATCH + 1; i++)
        json_array_append_new(json_object_get(req, "text"), json_string("a"));
    char *body = json_dumps(req, 0);
    expect_error("tiny-bert-classification", BS_TASK_CLASSIFICATION, body, BS_EINVAL,
                 "at most 256");
    free(body);
    json_decref(req);
    /* a QA question that leaves no room for the context, and a window count over the limit */
    expect_error("tiny-bert-qa", BS_TASK_QA,
                 "{\"question\": \"why why why why why why why why why why\", \"context\": \"c\", "
                 "\"max_seq_len\": 8}",
                 BS_EINVAL, "question is too long");
}

typedef struct job {
    const bs_pipeline_ctx *ctx;
    json_t *req;
    char *out;
    int rc;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    for (int k = 0; k < 5; k++) {
        json_t *data = NULL;
        bs_err err = {0};
        j->rc = bs_pipeline_run_json(j->ctx, BS_TASK_QA, j->req, &data, &err);
        if (j->rc) return NULL;
        char *s = json_dumps(data, JSON_COMPACT);
        json_decref(data);
        if (j->out && strcmp(j->out, s)) j->rc = -999;
        free(j->out);
        j->out = s;
    }
    return NULL;
}

/* One context, four threads running the same multi-window QA request: every
 * answer equals the single-threaded one. */
static void test_concurrent_runs_share_a_context(void **s)
{
    (void)s;
    bs_pipeline_ctx *ctx = ctx_for("tiny-bert-qa");
    assert_non_null(ctx);
    json_t *req =
        json_pack("{s:s, s:s, s:i, s:i}", "question", "Who discovered radium?", "context",
                  "Marie Curie was a physicist and chemist who conducted pioneering research on "
                  "radioactivity. She discovered polonium and radium with Pierre Curie.",
                  "max_seq_len", 40, "top_k", 3);
    job ref = {ctx, req, NULL, 0};
    run_job(&ref);
    assert_int_equal(ref.rc, 0);
    job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){ctx, req, NULL, 0};
        assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
        assert_string_equal(jobs[i].out, ref.out);
        free(jobs[i].out);
    }
    free(ref.out);
    json_decref(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classification),
        cmocka_unit_test(test_ner),
        cmocka_unit_test(test_qa),
        cmocka_unit_test(test_fill_mask),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_summarization),
        cmocka_unit_test(test_bad_input_codes),
        cmocka_unit_test(test_concurrent_runs_share_a_context),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_cache);
}
