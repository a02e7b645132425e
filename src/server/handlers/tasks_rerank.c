/* POST /tasks/rerank: a cross-encoder (a sequence-classification model)
 * scores every (query, text) pair (bs_pipeline_rerank, which says how);
 * the texts come back sorted by score, cut to top_k. */
#include <stdlib.h>

#include "server/handlers/handlers.h"
#include "server/handlers/tasks.h"

static const bs_field_spec rerank_fields[] = {
    {"query", BS_T_STRING, BS_REQUIRED, 0, 0, NULL},
    {"texts", BS_T_STRINGS, BS_REQUIRED, 1, BS_PIPELINE_MAX_BATCH, NULL},
    {"model_name", BS_T_STRING, BS_REQUIRED, 0, 0, NULL},
    {"top_k", BS_T_INT, BS_NULLABLE, 1, BS_PIPELINE_MAX_BATCH, NULL},
    {"return_text", BS_T_BOOL, BS_NULLABLE, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* Scores the pairs of body into r (the hits, best first, cut to top_k). */
static int rerank(const bs_pipeline_ctx *ctx, const json_t *body, bs_render *r, bs_err *err)
{
    json_t *texts = json_object_get(body, "texts");
    size_t n = json_array_size(texts);
    const char **t = calloc(n ? n : 1, sizeof *t);
    bs_rerank_hit *hits = calloc(n ? n : 1, sizeof *hits);
    int rc = 0;
    if (!t || !hits) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) t[i] = json_string_value(json_array_get(texts, i));
    bs_rerank_req rr = {.query = json_string_value(json_object_get(body, "query")),
                        .texts = {n, t}};
    if ((rc = bs_pipeline_rerank(ctx, &rr, hits, NULL, err))) goto done;
    json_t *top = json_object_get(body, "top_k");
    size_t top_k = json_is_integer(top) ? (size_t)json_integer_value(top) : n;
    int with_text = json_is_true(json_object_get(body, "return_text"));
    if (bs_render_begin_rerank(r, hits, top_k < n ? top_k : n, with_text ? t : NULL)) {
        bs_render_free(r);
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    }
done:
    free(t);
    free(hits);
    return rc;
}

void bs_handle_task_rerank(bs_request *req, bs_response *res)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return;
    char detail[512];
    if (bs_validate(body, rerank_fields, detail, sizeof detail)) {
        bs_reply_error(res, 400, "Invalid request", "%s", detail);
        return;
    }
    const char *model_name = json_string_value(json_object_get(body, "model_name"));
    json_t *input = json_pack("{s:O, s:O}", "query", json_object_get(body, "query"), "texts",
                              json_object_get(body, "texts"));
    bs_task_model tm;
    bs_err err = {0};
    if (bs_tasks_acquire(req, res, model_name, &tm, &err)) {
        bs_tasks_log_error(req, "rerank", model_name, input, &err);
        json_decref(input);
        return;
    }
    bs_render r;
    bs_batcher_enter(tm.m->batcher, BS_ROUTE_RERANK, bs_tasks_client_alive, req);
    int rc = rerank(tm.m->ctx, body, &r, &err);
    bs_batcher_leave();
    bs_tasks_release(req, &tm);
    if (rc) {
        bs_tasks_reply_err(req, res, &err);
        bs_tasks_log_error(req, "rerank", model_name, input, &err);
    } else {
        bs_tasks_answer(req, res, &r, "rerank", model_name, input);
    }
    json_decref(input);
}
