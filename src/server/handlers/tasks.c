/* POST /tasks/{classification,ner,qa,fill-mask,embeddings,features,
 * summarization}: the body goes to the model's batcher (which merges it with
 * compatible requests or runs it at once) and the pipeline's `data` comes
 * back in the envelope. The pipeline validates every field (400 naming it,
 * 422 for a model without the needed head); this file only resolves the
 * model, logs the execution and answers. */
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
                     const char *log_type, json_t **data_out)
{
    *data_out = NULL;
    const char *model_name = json_string_value(json_object_get(body, "model_name"));
    json_t *input = log_input(body);
    bs_task_model tm;
    bs_err err = {0};
    int rc = bs_tasks_acquire(req, res, model_name ? model_name : "", &tm, &err);
    if (!rc) {
        rc = bs_batcher_run_route(tm.m->batcher, route, task, body, bs_tasks_client_alive, req,
                                  data_out, &err);
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
    json_t *data = NULL;
    if (bs_tasks_execute(req, res, (int)task, task, body, bs_task_name(task), &data)) return;
    json_t *input = log_input(body);
    const char *model = json_string_value(json_object_get(body, "model_name"));
    if (bs_tasks_reply_stream(req, res, data, 1, 0, bs_task_name(task), model, input)) {
        json_decref(input);
        return;
    }
    int64_t size = bs_tasks_reply(res, data, 1);
    bs_tasks_log(req, bs_task_name(task), json_string_value(json_object_get(body, "model_name")),
                 input, size >= 0, size >= 0 ? NULL : "out of memory", size);
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
