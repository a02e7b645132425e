/* POST /tasks/{classification,ner,qa,fill-mask,embeddings,features,
 * summarization}: the pipeline validates the body (400 naming a field, 422
 * for a model without the needed head) and runs it, its forward passes
 * queued in the model's batcher with those of other requests; the typed
 * result is rendered once, in the envelope (server/render.c). This file
 * resolves the model, logs the execution and answers. */
#include <string.h>

#include "server/handlers/handlers.h"
#include "server/handlers/tasks.h"

/* The input as it goes to the execution log. */
static json_t *log_input(const json_t *body)
{
    json_t *text = json_object_get(body, "text");
    if (text) return json_incref(text);
    json_t *o = json_object();
    json_t *q = json_object_get(body, "question"), *c = json_object_get(body, "context");
    if (q) json_object_set(o, "question", q);
    if (c) json_object_set(o, "context", c);
    return o;
}

int bs_tasks_execute(bs_request *req, bs_response *res, int route, bs_task task, const json_t *body,
                     const char *log_type, bs_task_result *out)
{
    memset(out, 0, sizeof *out);
    const char *model_name = json_string_value(json_object_get(body, "model_name"));
    json_t *input = log_input(body);
    bs_task_model tm;
    bs_err err = {0};
    int rc = bs_tasks_acquire(req, res, model_name ? model_name : "", &tm, &err);
    if (!rc) {
        bs_batcher_enter(tm.m->batcher, route, bs_tasks_client_alive, req);
        rc = bs_pipeline_run_request(tm.m->ctx, task, body, out, &err);
        bs_batcher_leave();
        bs_tasks_release(req, &tm);
        if (rc) bs_tasks_reply_err(req, res, &err);
    }
    if (rc) bs_tasks_log_error(req, log_type, model_name, input, &err);
    json_decref(input);
    return rc;
}

static void run_task(bs_request *req, bs_response *res, bs_task task)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return;
    if (!json_is_object(body)) {
        bs_reply_error(res, 400, "Invalid request", "the body must be a JSON object");
        return;
    }
    if (!json_is_string(json_object_get(body, "model_name"))) {
        bs_reply_error(res, 400, "Invalid request",
                       "model_name: required, a string naming a model of the cache (e.g. "
                       "\"demo/tiny-bert-classification\")");
        return;
    }
    bs_task_result result;
    if (bs_tasks_execute(req, res, (int)task, task, body, bs_task_name(task), &result)) return;
    json_t *input = log_input(body);
    const char *model = json_string_value(json_object_get(body, "model_name"));
    bs_render r;
    bs_render_opts o = {.shape = BS_SHAPE_ENVELOPE};
    if (bs_render_begin(&r, &result, &o)) {
        bs_render_free(&r);
        bs_reply_error(res, 500, "Out of memory", "the answer could not be built");
        bs_tasks_log(req, bs_task_name(task), model, input, 0, "out of memory", -1);
    } else {
        bs_tasks_answer(req, res, &r, bs_task_name(task), model, input);
    }
    json_decref(input);
}

void bs_handle_task_classification(bs_request *req, bs_response *res)
{
    run_task(req, res, BS_TASK_CLASSIFICATION);
}

void bs_handle_task_ner(bs_request *req, bs_response *res)
{
    run_task(req, res, BS_TASK_NER);
}

void bs_handle_task_qa(bs_request *req, bs_response *res)
{
    run_task(req, res, BS_TASK_QA);
}

void bs_handle_task_fill_mask(bs_request *req, bs_response *res)
{
    run_task(req, res, BS_TASK_FILL_MASK);
}

void bs_handle_task_embeddings(bs_request *req, bs_response *res)
{
    run_task(req, res, BS_TASK_EMBEDDINGS);
}

void bs_handle_task_features(bs_request *req, bs_response *res)
{
    run_task(req, res, BS_TASK_FEATURES);
}

void bs_handle_task_summarization(bs_request *req, bs_response *res)
{
    run_task(req, res, BS_TASK_SUMMARIZATION);
}
