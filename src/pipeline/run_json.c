/* The JSON entry points (bertstudio/pipeline_json.h): a /tasks/<task>
 * request body validated (types, ranges, enums, unknown fields) into the
 * task's request struct and run into its typed result; and, for the CLI and
 * library users, that result as the `data` object of the API. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/ctx.h"
#include "pipeline/internal.h"

static const char *const task_names[BS_TASK_COUNT] = {
    "classification", "ner", "qa", "fill-mask", "embeddings", "features", "summarization",
};

const char *bs_task_name(bs_task task)
{
    return (unsigned)task < BS_TASK_COUNT ? task_names[task] : NULL;
}

int bs_task_from_name(const char *name, bs_task *out, bs_err *err)
{
    for (int t = 0; t < BS_TASK_COUNT; t++)
        if (name && !strcmp(name, task_names[t])) {
            *out = (bs_task)t;
            return 0;
        }
    return bs_err_set(
        err, BS_EINVAL,
        "unknown task '%s' (expected classification, ner, qa, fill-mask, embeddings, features or "
        "summarization)",
        name ? name : "");
}

/* Fields each task accepts (model_name everywhere). */
static const char *const fields[BS_TASK_COUNT][12] = {
    [BS_TASK_CLASSIFICATION] = {"text", "text_pair", "model_name", "top_k", "function_to_apply"},
    [BS_TASK_NER] = {"text", "model_name", "aggregation_strategy", "ignore_labels"},
    [BS_TASK_QA] = {"question", "context", "model_name", "top_k", "doc_stride", "max_answer_len",
                    "max_seq_len", "handle_impossible_answer"},
    [BS_TASK_FILL_MASK] = {"text", "model_name", "top_k", "targets"},
    [BS_TASK_EMBEDDINGS] = {"text", "model_name", "pooling", "normalize"},
    [BS_TASK_FEATURES] = {"text", "model_name"},
    [BS_TASK_SUMMARIZATION] = {"text", "model_name", "max_length", "min_length", "num_beams",
                               "no_repeat_ngram_size", "length_penalty", "early_stopping",
                               "max_new_tokens", "truncation"},
};

static int check_fields(bs_task task, const json_t *req, bs_err *err)
{
    if (!json_is_object(req))
        return bs_err_set(err, BS_EINVAL, "the request body must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)req, key, v)
    {
        int ok = 0;
        for (size_t i = 0; i < 12 && fields[task][i]; i++) ok |= !strcmp(key, fields[task][i]);
        if (!ok) {
            char allowed[256] = "";
            for (size_t i = 0; i < 12 && fields[task][i]; i++) {
                strncat(allowed, i ? ", " : "", sizeof allowed - strlen(allowed) - 1);
                strncat(allowed, fields[task][i], sizeof allowed - strlen(allowed) - 1);
            }
            return bs_err_set(err, BS_EINVAL, "unknown field '%.64s' for %s (allowed: %s)", key,
                              task_names[task], allowed);
        }
    }
    const json_t *mn = json_object_get(req, "model_name");
    if (mn && !json_is_string(mn) && !json_is_null(mn))
        return bs_err_set(err, BS_EINVAL, "model_name must be a string");
    return 0;
}

/* A string or a list of strings -> array of pointers into the request
 * (free() the array only). */
static int get_texts(const json_t *req, const char *field, int required, bs_texts *out, bs_err *err)
{
    const json_t *v = json_object_get(req, field);
    out->n = 0;
    out->texts = NULL;
    if (!v || json_is_null(v))
        return required ? bs_err_set(err, BS_EINVAL, "%s is required", field) : 0;
    if (json_is_string(v)) {
        const char **a = malloc(sizeof *a);
        if (!a) return bs_err_set(err, BS_ENOMEM, "out of memory");
        a[0] = json_string_value(v);
        out->n = 1;
        out->texts = a;
        return 0;
    }
    if (!json_is_array(v))
        return bs_err_set(err, BS_EINVAL, "%s must be a string or a list of strings", field);
    size_t n = json_array_size(v);
    if (n == 0) return bs_err_set(err, BS_EINVAL, "%s must not be an empty list", field);
    if (n > BS_PIPELINE_MAX_BATCH)
        return bs_err_set(err, BS_EINVAL, "%s has %zu entries, at most %d per request", field, n,
                          BS_PIPELINE_MAX_BATCH);
    const char **a = malloc(n * sizeof *a);
    if (!a) return bs_err_set(err, BS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        a[i] = json_string_value(json_array_get(v, i));
        if (!a[i]) {
            free(a);
            return bs_err_set(err, BS_EINVAL, "%s[%zu] must be a string", field, i);
        }
    }
    out->n = n;
    out->texts = a;
    return 0;
}

/* An optional integer in [lo, INT_MAX]; larger values are capped (top_k of
 * a million means "all there is"). Absent or null leaves *out unchanged. */
static int get_int(const json_t *req, const char *field, long long lo, int *out, bs_err *err)
{
    const json_t *v = json_object_get(req, field);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return bs_err_set(err, BS_EINVAL, "%s must be an integer", field);
    long long x = json_integer_value(v);
    if (x < lo) return bs_err_set(err, BS_EINVAL, "%s %lld must be >= %lld", field, x, lo);
    *out = x > INT_MAX ? INT_MAX : (int)x;
    return 0;
}

static int get_bool(const json_t *req, const char *field, int *out, bs_err *err)
{
    const json_t *v = json_object_get(req, field);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return bs_err_set(err, BS_EINVAL, "%s must be true or false", field);
    *out = json_is_true(v);
    return 0;
}

/* An optional enum string; *out = index into names. */
static int get_enum(const json_t *req, const char *field, const char *const *names, size_t n,
                    int *out, bs_err *err)
{
    const json_t *v = json_object_get(req, field);
    if (!v || json_is_null(v)) return 0;
    const char *s = json_string_value(v);
    for (size_t i = 0; s && i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = (int)i;
            return 0;
        }
    char allowed[200] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(allowed, i ? ", " : "", sizeof allowed - strlen(allowed) - 1);
        strncat(allowed, names[i], sizeof allowed - strlen(allowed) - 1);
    }
    return bs_err_set(err, BS_EINVAL, "%s must be one of %s%s%.64s%s", field, allowed,
                      s ? " (got '" : "", s ? s : "", s ? "')" : " (got a non-string)");
}

static int run_classification(const bs_pipeline_ctx *ctx, const json_t *r, bs_task_result *out,
                              bs_err *err)
{
    static const char *const fns[] = {"softmax", "sigmoid", "none"};
    bs_classification_req q;
    bs_classification_req_init(&q);
    bs_texts pairs = {0};
    int fn = -1;
    int rc = get_texts(r, "text", 1, &q.input, err);
    if (!rc) rc = get_texts(r, "text_pair", 0, &pairs, err);
    if (!rc && pairs.n && pairs.n != q.input.n)
        rc = bs_err_set(err, BS_EINVAL, "text_pair has %zu entries but text has %zu", pairs.n,
                        q.input.n);
    if (!rc && pairs.n &&
        json_is_string(json_object_get(r, "text_pair")) !=
            json_is_string(json_object_get(r, "text")))
        rc = bs_err_set(err, BS_EINVAL,
                        "text_pair must be a string when text is, and a list when text is");
    const json_t *tk = json_object_get(r, "top_k");
    if (!rc && tk && json_is_null(tk)) q.top_k = 0;
    if (!rc) rc = get_int(r, "top_k", 1, &q.top_k, err);
    if (!rc) rc = get_enum(r, "function_to_apply", fns, 3, &fn, err);
    if (!rc) {
        q.pairs = pairs.n ? pairs.texts : NULL;
        if (fn >= 0) q.function = (bs_cls_function)(BS_CLS_FN_SOFTMAX + fn);
        rc = bs_pipeline_classify(ctx, &q, &out->u.classification, err);
    }
    free((void *)q.input.texts);
    free((void *)pairs.texts);
    return rc;
}

static int run_ner(const bs_pipeline_ctx *ctx, const json_t *r, bs_task_result *out, bs_err *err)
{
    static const char *const aggs[] = {"none", "simple", "first", "average", "max"};
    bs_ner_req q;
    bs_ner_req_init(&q);
    int agg = 0;
    bs_texts ignore = {0};
    int rc = get_texts(r, "text", 1, &q.input, err);
    if (!rc) rc = get_enum(r, "aggregation_strategy", aggs, 5, &agg, err);
    const json_t *il = json_object_get(r, "ignore_labels");
    if (!rc && il && !json_is_null(il)) {
        if (!json_is_array(il)) {
            rc = bs_err_set(err, BS_EINVAL, "ignore_labels must be a list of strings");
        } else if (json_array_size(il) > 0) {
            rc = get_texts(r, "ignore_labels", 1, &ignore, err);
        }
        q.has_ignore_labels = 1;
    }
    if (!rc) {
        q.aggregation = (bs_ner_aggregation)agg;
        q.ignore_labels = ignore.texts;
        q.n_ignore_labels = ignore.n;
        rc = bs_pipeline_ner(ctx, &q, &out->u.ner, err);
    }
    free((void *)q.input.texts);
    free((void *)ignore.texts);
    return rc;
}

static int run_qa(const bs_pipeline_ctx *ctx, const json_t *r, bs_task_result *out, bs_err *err)
{
    bs_qa_req q;
    bs_qa_req_init(&q);
    const json_t *qs = json_object_get(r, "question"), *cs = json_object_get(r, "context");
    if (!json_is_string(qs))
        return bs_err_set(err, BS_EINVAL, "question is required and must be a string");
    if (!json_is_string(cs))
        return bs_err_set(err, BS_EINVAL, "context is required and must be a string");
    q.question = json_string_value(qs);
    q.context = json_string_value(cs);
    int rc = get_int(r, "top_k", 1, &q.top_k, err);
    if (!rc) rc = get_int(r, "doc_stride", 0, &q.doc_stride, err);
    if (!rc) rc = get_int(r, "max_answer_len", 1, &q.max_answer_len, err);
    if (!rc) rc = get_int(r, "max_seq_len", 1, &q.max_seq_len, err);
    if (!rc) rc = get_bool(r, "handle_impossible_answer", &q.handle_impossible_answer, err);
    if (!rc) rc = bs_pipeline_qa(ctx, &q, &out->u.qa, err);
    return rc;
}

static int run_fill_mask(const bs_pipeline_ctx *ctx, const json_t *r, bs_task_result *out,
                         bs_err *err)
{
    bs_fill_mask_req q;
    bs_fill_mask_req_init(&q);
    bs_texts targets = {0};
    int rc = get_texts(r, "text", 1, &q.input, err);
    if (!rc) rc = get_int(r, "top_k", 1, &q.top_k, err);
    if (!rc) rc = get_texts(r, "targets", 0, &targets, err);
    if (!rc) {
        q.targets = targets.n ? targets.texts : NULL;
        q.n_targets = targets.n;
        rc = bs_pipeline_fill_mask(ctx, &q, &out->u.fill_mask, err);
    }
    free((void *)q.input.texts);
    free((void *)targets.texts);
    return rc;
}

static int run_embeddings(const bs_pipeline_ctx *ctx, const json_t *r, bs_task_result *out,
                          bs_err *err)
{
    static const char *const pools[] = {"mean", "cls", "max", "mean_sqrt_len"};
    bs_embeddings_req q;
    bs_embeddings_req_init(&q);
    int pool = -1;
    int rc = get_texts(r, "text", 1, &q.input, err);
    if (!rc) rc = get_enum(r, "pooling", pools, 4, &pool, err);
    if (!rc) rc = get_bool(r, "normalize", &q.normalize, err);
    if (!rc) {
        if (pool >= 0) q.pooling = (bs_pooling)(BS_POOL_MEAN + pool);
        rc = bs_pipeline_embed(ctx, &q, &out->u.embeddings, err);
    }
    free((void *)q.input.texts);
    return rc;
}

static int run_features(const bs_pipeline_ctx *ctx, const json_t *r, bs_task_result *out,
                        bs_err *err)
{
    bs_features_req q = {0};
    int rc = get_texts(r, "text", 1, &q.input, err);
    if (!rc) rc = bs_pipeline_features(ctx, &q, &out->u.features, err);
    free((void *)q.input.texts);
    return rc;
}

static int run_summarization(const bs_pipeline_ctx *ctx, const json_t *r, bs_task_result *out,
                             bs_err *err)
{
    bs_summarization_req q;
    bs_summarization_req_init(&q);
    int rc = get_texts(r, "text", 1, &q.input, err);
    if (!rc) rc = get_int(r, "max_length", 2, &q.max_length, err);
    if (!rc) rc = get_int(r, "min_length", 0, &q.min_length, err);
    if (!rc) rc = get_int(r, "num_beams", 1, &q.num_beams, err);
    if (!rc) rc = get_int(r, "no_repeat_ngram_size", 0, &q.no_repeat_ngram_size, err);
    if (!rc) rc = get_int(r, "max_new_tokens", 1, &q.max_new_tokens, err);
    if (!rc) rc = get_bool(r, "truncation", &q.truncation, err);
    const json_t *lp = json_object_get(r, "length_penalty");
    if (!rc && lp && !json_is_null(lp)) {
        if (!json_is_number(lp) || !isfinite(json_number_value(lp)))
            rc = bs_err_set(err, BS_EINVAL, "length_penalty must be a number");
        else
            q.length_penalty = json_number_value(lp);
    }
    const json_t *es = json_object_get(r, "early_stopping");
    if (!rc && es && !json_is_null(es)) {
        if (json_is_boolean(es))
            q.early_stopping = json_is_true(es) ? BS_EARLY_STOP_TRUE : BS_EARLY_STOP_FALSE;
        else if (json_is_string(es) && !strcmp(json_string_value(es), "never"))
            q.early_stopping = BS_EARLY_STOP_NEVER;
        else
            rc = bs_err_set(err, BS_EINVAL, "early_stopping must be true, false or \"never\"");
    }
    if (!rc) rc = bs_pipeline_summarize(ctx, &q, &out->u.summarization, err);
    free((void *)q.input.texts);
    return rc;
}

int bs_pipeline_run_request(const bs_pipeline_ctx *ctx, bs_task task, const json_t *request,
                            bs_task_result *res, bs_err *err)
{
    static int (*const runners[BS_TASK_COUNT])(const bs_pipeline_ctx *, const json_t *,
                                               bs_task_result *, bs_err *) = {
        run_classification, run_ner,           run_qa, run_fill_mask, run_embeddings,
        run_features,       run_summarization,
    };
    memset(res, 0, sizeof *res);
    if ((unsigned)task >= BS_TASK_COUNT)
        return bs_err_set(err, BS_EINVAL, "unknown task %d", (int)task);
    res->task = task;
    int rc = check_fields(task, request, err);
    if (rc) return rc;
    return runners[task](ctx, request, res, err);
}

int bs_pipeline_run_json(const bs_pipeline_ctx *ctx, bs_task task, const json_t *request,
                         json_t **data_out, bs_err *err)
{
    bs_task_result res;
    *data_out = NULL;
    int rc = bs_pipeline_run_request(ctx, task, request, &res, err);
    if (!rc && !(*data_out = bs_task_result_json(&res)))
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    bs_task_result_free(&res);
    return rc;
}
