/* Shared pieces of the task endpoints (tasks*.c): getting a loaded model by
 * name, logging an execution, answering with compact shortest-float JSON,
 * and noticing a client that has gone away. */
#ifndef BS_SERVER_HANDLERS_TASKS_H
#define BS_SERVER_HANDLERS_TASKS_H

#include <jansson.h>
#include <stdbool.h>

#include "batch/batch.h"
#include "server/http.h"

/* A model acquired for one request. */
typedef struct bs_task_model {
    char name[256];
    bs_served_model *m;
} bs_task_model;

/* Acquires model_name: 0 on success (call bs_tasks_release). Otherwise res
 * holds the answer (400 bad name, 404 unknown model with a hint to download
 * it, 503 + Retry-After while it loads, 500/422 when it cannot load) and
 * *err the reason (for the execution log). */
int bs_tasks_acquire(bs_request *req, bs_response *res, const char *model_name, bs_task_model *tm,
                     bs_err *err);
/* bs_tasks_acquire asking for a bs_precision (-1: the loaded model as it
 * is, else the default_precision setting / serve --precision). A model
 * loaded in another precision is loaded again (bs_registry_acquire_opt):
 * 503 + Retry-After until then. 422 when this CPU cannot run it. */
int bs_tasks_acquire_at(bs_request *req, bs_response *res, const char *model_name, int precision,
                        bs_task_model *tm, bs_err *err);
/* Releases the model and counts one access (model_cache access_count and
 * last_accessed, written off the request path). */
void bs_tasks_release(bs_request *req, bs_task_model *tm);

/* Unloads model_name from the task endpoints' registry (POST
 * /models/{name}/unload, and before DELETE /models/{name}): at once when
 * idle, else when its last in-flight request ends (*deferred true; may be
 * NULL). BS_ENOTFOUND when it is not loaded. */
int bs_tasks_unload(bs_request *req, const char *model_name, bool *deferred, bs_err *err);
/* Keeps a model loaded or loading through POST /models/{name}/load out of
 * the LRU until it is unloaded. */
void bs_tasks_pin(bs_request *req, const char *model_name);

/* The batch counters of every model (for /stats). */
void bs_tasks_batch_stats(bs_request *req, bs_batch_stats *out);
/* Names and states of the models the server knows ([{"model_name",...}]),
 * from the registry and the cache; NULL on error (res filled). */
json_t *bs_tasks_model_list(bs_request *req, bs_response *res);

/* 1 while the client of req is still connected (polled by the batcher). */
int bs_tasks_client_alive(void *req);

/* Logs one execution: task_type, model, the input (as text), duration since
 * req->started_ns, success or the error, result size. */
void bs_tasks_log(bs_request *req, const char *task_type, const char *model_name,
                  const json_t *input, int success, const char *error_message, int64_t result_size);

/* Logs one failed execution with err's message, except a 503 answer
 * (BS_EBUSY: the model is still loading or its queue is full): nothing ran,
 * so it is no execution and must not lower the success rate of /logs/stats. */
void bs_tasks_log_error(bs_request *req, const char *task_type, const char *model_name,
                        const json_t *input, const bs_err *err);

/* Runs a /tasks/<task> body (its model_name names the model) through the
 * model's batcher: 0 and *data_out (caller frees) on success; otherwise res
 * holds the error answer and the failure is logged (as log_type). */
int bs_tasks_execute(bs_request *req, bs_response *res, int route, bs_task task, const json_t *body,
                     const char *log_type, json_t **data_out);

/* Replies 200 with the envelope {"success": true, "data": data} (data
 * stolen); envelope 0 writes data alone (OpenAI and legacy shapes). Reals
 * under the members named "embeddings", "features", "embedding" are
 * printed as float32, others as float64, shortest round-trip. Returns the
 * body size. */
int64_t bs_tasks_reply(bs_response *res, json_t *data, int envelope);

/* Streams the answer of data (stolen; a JSON object) when it holds more
 * numbers than the setting stream_answer_numbers (0: never): numbers is how
 * many it carries (0: count those in data; a base64 embedding counts its
 * floats). The bytes are exactly those of bs_tasks_reply(res, data,
 * envelope), sent chunked a member, or an element of an array member, at a
 * time; the execution (task_type, model_name, input borrowed) is logged
 * when the stream ends, with bs_tasks_reply's size. Returns 1 when it took
 * the answer over, 0 when the caller answers as usual (data untouched). */
int bs_tasks_reply_stream(bs_request *req, bs_response *res, json_t *data, int envelope,
                          size_t numbers, const char *task_type, const char *model_name,
                          const json_t *input);

/* Maps err to the envelope (bs_reply_err), 503 answers with Retry-After. */
void bs_tasks_reply_err(bs_request *req, bs_response *res, const bs_err *err);

#endif
