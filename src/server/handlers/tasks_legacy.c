/* The original product's task routes (/embed, /embed/batch, /classify,
 * /qa, /ner, /fill-mask, /summarize, /features) with its request and
 * response shapes (no envelope on success), so that its clients keep
 * working, and our GET /stats/serving. Each is translated into a /tasks
 * request and run the same way (same batcher, same execution log); the
 * typed result is rendered in the route's shape (server/render.c).
 * Shapes: docs/serving.md, docs/compat.md (compat.c wraps them). */
#include <string.h>

#include "server/context.h"
#include "server/handlers/compat.h"
#include "server/handlers/handlers.h"
#include "server/handlers/tasks.h"
#include "util/time.h"

/* Parses and checks a legacy body; NULL when res already holds the 400. */
static json_t *legacy_body(bs_request *req, bs_response *res, const bs_field_spec *fields)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return NULL;
    bs_compat_default_model(req, body); /* "model" is optional (docs/compat.md) */
    char detail[512];
    if (bs_validate(body, fields, detail, sizeof detail)) {
        bs_reply_error(res, 400, "Invalid request", "%s", detail);
        return NULL;
    }
    return body;
}

/* Runs treq (stolen) and answers in the shape of o (no envelope). */
static void run_legacy(bs_request *req, bs_response *res, bs_task task, const char *log_type,
                       json_t *treq, bs_render_opts o)
{
    bs_task_result result;
    if (bs_tasks_execute(req, res, BS_ROUTE_ORIGINAL, task, treq, log_type, &result)) {
        json_decref(treq);
        return;
    }
    json_t *input = json_object_get(treq, "text") ? json_object_get(treq, "text")
                                                  : json_object_get(treq, "context");
    const char *model = json_string_value(json_object_get(treq, "model_name"));
    o.model = model;
    bs_render r;
    if (bs_render_begin(&r, &result, &o)) {
        bs_render_free(&r);
        bs_reply_error(res, 500, "Out of memory", "the answer could not be built");
        bs_tasks_log(req, log_type, model, input, 0, "out of memory", -1);
    } else {
        /* Long answers (/features of many long texts) go out a row at a time. */
        bs_tasks_answer(req, res, &r, log_type, model, input);
    }
    json_decref(treq);
}

/* "texts" (or "text"): the inputs of the old routes. */
static json_t *texts_of(const json_t *body)
{
    json_t *t = json_object_get(body, "texts");
    return t ? t : json_object_get(body, "text");
}

static int need_texts(bs_response *res, const json_t *body)
{
    if (texts_of(body)) return 1;
    bs_reply_error(res, 400, "Invalid request", "texts: required (a string or a list of strings)");
    return 0;
}

/* ── /embed, /embed/batch: mean pooling, no normalisation ── */

static const bs_field_spec embed_fields[] = {
    {"texts", BS_T_TEXT, 0, 0, 0, NULL},
    {"text", BS_T_TEXT, 0, 0, 0, NULL},
    {"model", BS_T_STRING, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void bs_handle_legacy_embed(bs_request *req, bs_response *res)
{
    json_t *body = legacy_body(req, res, embed_fields);
    if (!body || !need_texts(res, body)) return;
    json_t *treq = json_pack("{s:O, s:O, s:s, s:b}", "text", texts_of(body), "model_name",
                             json_object_get(body, "model"), "pooling", "mean", "normalize", 0);
    run_legacy(req, res, BS_TASK_EMBEDDINGS, "embeddings", treq,
               (bs_render_opts){.shape = BS_SHAPE_ORIG_EMBED});
}

/* ── /features ── */

void bs_handle_legacy_features(bs_request *req, bs_response *res)
{
    json_t *body = legacy_body(req, res, embed_fields);
    if (!body || !need_texts(res, body)) return;
    json_t *treq = json_pack("{s:O, s:O}", "text", texts_of(body), "model_name",
                             json_object_get(body, "model"));
    /* The original's {"text": "..."}: that text's tokens x hidden matrix. */
    int single = !json_object_get(body, "texts") && json_is_string(json_object_get(body, "text"));
    run_legacy(req, res, BS_TASK_FEATURES, "features", treq,
               (bs_render_opts){.shape = BS_SHAPE_ORIG_FEATURES, .single = single});
}

/* ── /classify: the top label of each text ── */

static const bs_field_spec classify_fields[] = {
    {"texts", BS_T_TEXT, 0, 0, 0, NULL},
    {"text", BS_T_TEXT, 0, 0, 0, NULL},
    {"model", BS_T_STRING, 0, 0, 0, NULL},
    {"top_k", BS_T_INT, BS_NULLABLE, 1, 1000000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void bs_handle_legacy_classify(bs_request *req, bs_response *res)
{
    json_t *body = legacy_body(req, res, classify_fields);
    if (!body || !need_texts(res, body)) return;
    json_t *top = json_object_get(body, "top_k");
    json_t *treq = json_pack("{s:O, s:O}", "text", texts_of(body), "model_name",
                             json_object_get(body, "model"));
    json_object_set_new(treq, "top_k", json_is_integer(top) ? json_incref(top) : json_integer(1));
    run_legacy(req, res, BS_TASK_CLASSIFICATION, "classification", treq,
               (bs_render_opts){.shape = BS_SHAPE_ORIG_CLASSIFY, .single = !json_is_integer(top)});
}

/* ── /qa: the best answer ── */

static const bs_field_spec qa_fields[] = {
    {"question", BS_T_STRING, BS_REQUIRED, 0, 0, NULL},
    {"context", BS_T_STRING, BS_REQUIRED, 0, 0, NULL},
    {"model", BS_T_STRING, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void bs_handle_legacy_qa(bs_request *req, bs_response *res)
{
    json_t *body = legacy_body(req, res, qa_fields);
    if (!body) return;
    json_t *treq =
        json_pack("{s:O, s:O, s:O}", "question", json_object_get(body, "question"), "context",
                  json_object_get(body, "context"), "model_name", json_object_get(body, "model"));
    run_legacy(req, res, BS_TASK_QA, "qa", treq, (bs_render_opts){.shape = BS_SHAPE_ORIG_QA});
}

/* ── /ner: entities of one text, simple aggregation ── */

static const bs_field_spec ner_fields[] = {
    {"text", BS_T_STRING, BS_REQUIRED, 0, 0, NULL},
    {"model", BS_T_STRING, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void bs_handle_legacy_ner(bs_request *req, bs_response *res)
{
    json_t *body = legacy_body(req, res, ner_fields);
    if (!body) return;
    json_t *treq = json_pack("{s:O, s:O, s:s}", "text", json_object_get(body, "text"), "model_name",
                             json_object_get(body, "model"), "aggregation_strategy", "simple");
    run_legacy(req, res, BS_TASK_NER, "ner", treq, (bs_render_opts){.shape = BS_SHAPE_ORIG_NER});
}

/* ── /fill-mask: predictions for one text ── */

static const bs_field_spec fm_fields[] = {
    {"text", BS_T_STRING, BS_REQUIRED, 0, 0, NULL},
    {"model", BS_T_STRING, 0, 0, 0, NULL},
    {"top_k", BS_T_INT, BS_NULLABLE, 1, 1000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void bs_handle_legacy_fill_mask(bs_request *req, bs_response *res)
{
    json_t *body = legacy_body(req, res, fm_fields);
    if (!body) return;
    json_t *treq = json_pack("{s:O, s:O}", "text", json_object_get(body, "text"), "model_name",
                             json_object_get(body, "model"));
    json_t *top = json_object_get(body, "top_k");
    if (json_is_integer(top)) json_object_set(treq, "top_k", top);
    run_legacy(req, res, BS_TASK_FILL_MASK, "fill-mask", treq,
               (bs_render_opts){.shape = BS_SHAPE_ORIG_FILL_MASK});
}

/* ── /summarize ── */

static const bs_field_spec sum_fields[] = {
    {"text", BS_T_STRING, BS_REQUIRED, 0, 0, NULL},
    {"model", BS_T_STRING, 0, 0, 0, NULL},
    {"max_length", BS_T_INT, BS_NULLABLE, 1, 100000, NULL},
    {"min_length", BS_T_INT, BS_NULLABLE, 0, 100000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

void bs_handle_legacy_summarize(bs_request *req, bs_response *res)
{
    json_t *body = legacy_body(req, res, sum_fields);
    if (!body) return;
    json_t *treq = json_pack("{s:O, s:O}", "text", json_object_get(body, "text"), "model_name",
                             json_object_get(body, "model"));
    json_t *v;
    if (json_is_integer(v = json_object_get(body, "max_length")))
        json_object_set(treq, "max_length", v);
    if (json_is_integer(v = json_object_get(body, "min_length")))
        json_object_set(treq, "min_length", v);
    run_legacy(req, res, BS_TASK_SUMMARIZATION, "summarization", treq,
               (bs_render_opts){.shape = BS_SHAPE_ORIG_SUMMARY});
}

/* ── GET /stats/serving: batching and serving counters ── */

/* A histogram of batch sizes as {"1-1": n, "2-3": n, ..., "128+": n}. */
static json_t *size_buckets(const uint64_t counts[BS_BATCH_SIZE_BUCKETS])
{
    json_t *o = json_object();
    for (int i = 0; i < BS_BATCH_SIZE_BUCKETS; i++) {
        char k[32];
        if (i + 1 < BS_BATCH_SIZE_BUCKETS)
            snprintf(k, sizeof k, "%u-%u", 1u << i, (2u << i) - 1);
        else
            snprintf(k, sizeof k, "%u+", 1u << i);
        json_object_set_new(o, k, json_integer((json_int_t)counts[i]));
    }
    return o;
}

void bs_handle_stats(bs_request *req, bs_response *res)
{
    bs_batch_stats s;
    bs_tasks_batch_stats(req, &s);
    json_t *sizes = size_buckets(s.sizes);
    /* Sequences per route: with mixed_route_batches, shows that forwards of
     * different tasks and routes share passes. */
    json_t *routes = json_object();
    for (int r = 0; r < BS_ROUTE_COUNT; r++) {
        static const char *const extra[] = {"rerank", "v1-embeddings", "original", "other"};
        const char *name = r < BS_TASK_COUNT ? bs_task_name((bs_task)r) : extra[r - BS_TASK_COUNT];
        json_object_set_new(routes, name, json_integer((json_int_t)s.route_texts[r]));
    }
    /* Decoder steps of generation: with max_requests > 1, summarization
     * requests in flight together shared their steps. */
    json_t *dec_sizes = size_buckets(s.dec_sizes);
    json_t *steps =
        json_pack("{s:I, s:I, s:I, s:I, s:o}", "steps", (json_int_t)s.dec_steps, "requests",
                  (json_int_t)s.dec_requests, "rows", (json_int_t)s.dec_rows, "max_requests",
                  (json_int_t)s.dec_max, "sizes", dec_sizes);
    json_t *models = bs_tasks_model_list(req, res);
    if (!models) {
        json_decref(sizes);
        json_decref(routes);
        json_decref(steps);
        return;
    }
    json_t *loaded = json_array(), *per_model = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(models, i, d)
    {
        json_t *name = json_object_get(d, "model_name");
        if (!strcmp(json_string_value(json_object_get(d, "state")), "loaded"))
            json_array_append(loaded, name);
        json_array_append_new(per_model,
                              json_pack("{s:O, s:O?, s:O, s:O?, s:O?}", "model_name", name,
                                        "task_type", json_object_get(d, "task_type"), "state",
                                        json_object_get(d, "state"), "access_count",
                                        json_object_get(d, "access_count"), "last_accessed",
                                        json_object_get(d, "last_accessed")));
    }
    json_decref(models);
    /* what every model computes with: the kernel path chosen at start
     * (docs/engine.md) and the compute threads they share */
    bs_kernels_info k;
    bs_kernels_get(&k, NULL);
    json_t *engine = json_pack("{s:s, s:s, s:s, s:i}", "kernels", k.path, "kernels_reason",
                               k.reason, "int8_kernel", k.int8, "compute_threads",
                               bs_ctx_n_threads(req->server->serving->engine));
    json_t *out = json_pack(
        "{s:f, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:o, s:o}}",
        "uptime_seconds", (double)(bs_time_now_ms() - req->server->started_ms) / 1000.0,
        "loaded_models", loaded, "models", per_model, "engine", engine, "batching", "batches",
        (json_int_t)s.batches, "batched_requests", (json_int_t)s.requests, "batched_texts",
        (json_int_t)s.texts, "unbatched_requests", (json_int_t)s.direct, "max_batch_size",
        (json_int_t)s.max_batch, "queued", (json_int_t)s.queued, "rejected", (json_int_t)s.rejected,
        "cancelled", (json_int_t)s.cancelled, "retried_alone", (json_int_t)s.retried, "batch_sizes",
        sizes, "mixed_route_batches", (json_int_t)s.mixed, "route_sequences", routes,
        "decoder_steps", steps);
    bs_tasks_reply(res, out, 0);
}
