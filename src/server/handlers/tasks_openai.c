/* The OpenAI-compatible routes: POST /v1/embeddings and GET /v1/models, in
 * OpenAI's shapes (no envelope; errors as {"error": {"message", "type",
 * "param", "code"}}), so that OpenAI client libraries work unchanged. The
 * embeddings come from the pipeline as C values (bs_pipeline_embed, its
 * forward pass batched with the model's other requests) and are rendered
 * once, in OpenAI's shape (server/render.c). */
#include <stdlib.h>
#include <string.h>

#include "server/handlers/handlers.h"
#include "server/handlers/tasks.h"
#include "util/time.h"

static void openai_error(bs_response *res, int status, const char *type, const char *param,
                         const char *code, const char *msg)
{
    bs_buf_free(&res->body);
    bs_buf_init(&res->body);
    json_t *e = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", msg, "type", type,
                          "param", param, "code", code);
    /* Status and headers (Retry-After) of an answer already made are kept. */
    bs_reply_json(res, status, e);
}

/* An envelope error made by the shared task code, re-shaped. */
static void reshape_error(bs_response *res, const bs_err *err)
{
    int status = res->status ? res->status : 500;
    const char *type = status == 404  ? "invalid_request_error"
                       : status < 500 ? "invalid_request_error"
                                      : "server_error";
    const char *code = status == 404 ? "model_not_found" : status == 503 ? "model_loading" : NULL;
    openai_error(res, status, type, status == 404 ? "model" : NULL, code,
                 err->msg[0] ? err->msg : "request failed");
}

void bs_handle_v1_embeddings(bs_request *req, bs_response *res)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return; /* the parser's 400, already in OpenAI's shape (res->openai_errors) */
    if (!json_is_object(body)) {
        openai_error(res, 400, "invalid_request_error", NULL, NULL,
                     "the body must be a JSON object");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "input") && strcmp(k, "model") && strcmp(k, "encoding_format") &&
            strcmp(k, "dimensions") && strcmp(k, "user")) {
            char msg[300];
            snprintf(msg, sizeof msg, "Unrecognized request argument supplied: %.200s", k);
            openai_error(res, 400, "invalid_request_error", k, NULL, msg);
            return;
        }
    }
    json_t *input = json_object_get(body, "input"), *model = json_object_get(body, "model");
    int input_ok = json_is_string(input) || (json_is_array(input) && json_array_size(input) > 0 &&
                                             json_array_size(input) <= BS_PIPELINE_MAX_BATCH);
    size_t i;
    json_array_foreach(input, i, v) if (!json_is_string(v)) input_ok = 0;
    if (!input_ok) {
        openai_error(res, 400, "invalid_request_error", "input", "invalid_input",
                     "input must be a string or a list of 1 to 256 strings (token arrays are not "
                     "supported)");
        return;
    }
    if (!json_is_string(model)) {
        openai_error(res, 400, "invalid_request_error", "model", NULL,
                     "you must provide a model parameter");
        return;
    }
    json_t *fmt = json_object_get(body, "encoding_format");
    int b64out = 0;
    if (fmt && !json_is_null(fmt)) {
        const char *f = json_string_value(fmt);
        if (!f || (strcmp(f, "float") && strcmp(f, "base64"))) {
            openai_error(res, 400, "invalid_request_error", "encoding_format", NULL,
                         "encoding_format must be \"float\" or \"base64\"");
            return;
        }
        b64out = !strcmp(f, "base64");
    }
    json_t *dj = json_object_get(body, "dimensions");
    json_int_t dims = 0;
    if (dj && !json_is_null(dj)) {
        if (!json_is_integer(dj) || json_integer_value(dj) < 1) {
            openai_error(res, 400, "invalid_request_error", "dimensions", NULL,
                         "dimensions must be a positive integer");
            return;
        }
        dims = json_integer_value(dj);
    }
    const char *model_name = json_string_value(model);
    size_t n_in = json_is_string(input) ? 1 : json_array_size(input);
    const char **texts = calloc(n_in, sizeof *texts);
    if (!texts) {
        openai_error(res, 500, "server_error", NULL, NULL, "out of memory");
        return;
    }
    if (json_is_string(input))
        texts[0] = json_string_value(input);
    else
        json_array_foreach(input, i, v) texts[i] = json_string_value(v);
    bs_embeddings_req ereq;
    bs_embeddings_req_init(&ereq);
    ereq.input.n = n_in;
    ereq.input.texts = texts;
    bs_embeddings_result emb = {0};
    bs_task_model tm;
    bs_err err = {0};
    int rc = bs_tasks_acquire(req, res, model_name, &tm, &err);
    if (rc) {
        reshape_error(res, &err);
        bs_tasks_log_error(req, "embeddings", model_name, input, &err);
        free(texts);
        return;
    }
    /* Prepared and finished here; the forward pass queues in the batcher. */
    bs_batcher_enter(tm.m->batcher, BS_ROUTE_OPENAI, bs_tasks_client_alive, req);
    rc = bs_pipeline_embed(tm.m->ctx, &ereq, &emb, &err);
    bs_batcher_leave();
    bs_tasks_release(req, &tm);
    free(texts);
    if (!rc && dims > 0 && (size_t)dims > emb.dim)
        rc = bs_err_set(&err, BS_EINVAL, "dimensions %lld is larger than the model's %zu",
                        (long long)dims, emb.dim);
    if (rc) {
        bs_tasks_log_error(req, "embeddings", model_name, input, &err);
        int status = err.code == BS_EBUSY            ? 503
                     : err.code == BS_EUNPROCESSABLE ? 422
                     : (err.code == BS_EINVAL || err.code == BS_EUTF8 || err.code == BS_ERANGE)
                         ? 400
                         : 500;
        if (status == 503) bs_response_header(res, "Retry-After", "1");
        openai_error(res, status, status < 500 ? "invalid_request_error" : "server_error",
                     err.code == BS_EINVAL && dims ? "dimensions" : NULL, NULL, err.msg);
        bs_embeddings_result_free(&emb);
        return;
    }
    bs_task_result result = {.task = BS_TASK_EMBEDDINGS, .u.embeddings = emb};
    bs_render_opts o = {.shape = BS_SHAPE_OPENAI_EMBEDDINGS,
                        .model = model_name,
                        .base64 = b64out,
                        .dims = dims > 0 ? (size_t)dims : 0};
    bs_render r;
    if (bs_render_begin(&r, &result, &o)) {
        bs_render_free(&r);
        openai_error(res, 500, "server_error", NULL, NULL, "out of memory");
        bs_tasks_log(req, "embeddings", model_name, input, 0, "out of memory", -1);
        return;
    }
    /* Many long vectors go out one embedding at a time. */
    bs_tasks_answer(req, res, &r, "embeddings", model_name, input);
}

json_t *bs_v1_models_list(bs_request *req, bs_response *res)
{
    json_t *models = bs_tasks_model_list(req, res);
    if (!models) return NULL;
    json_t *data = json_array(), *seen = json_object();
    size_t i;
    json_t *d;
    json_array_foreach(models, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "model_name"));
        if (!name || json_object_get(seen, name)) continue;
        json_object_set_new(seen, name, json_true());
        int64_t ms = 0;
        const char *date = json_string_value(json_object_get(d, "download_date"));
        if (!date || bs_time_parse_iso8601(date, &ms)) ms = 0;
        json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}", "id", name, "object", "model",
                                              "created", (json_int_t)(ms / 1000), "owned_by",
                                              "bertstudio"));
    }
    json_decref(seen);
    json_decref(models);
    return data;
}

void bs_handle_v1_models(bs_request *req, bs_response *res)
{
    json_t *data = bs_v1_models_list(req, res);
    if (data) bs_reply_json(res, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}
