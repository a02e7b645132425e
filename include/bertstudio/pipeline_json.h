/*
 * The JSON entry points of the task pipelines (jansson), for the CLI, the
 * server and library users who speak the API's JSON: a /tasks/<task>
 * request body in, the typed result or the response's `data` object out.
 */
#ifndef BERTSTUDIO_PIPELINE_JSON_H
#define BERTSTUDIO_PIPELINE_JSON_H

#include <jansson.h>

#include "bertstudio/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Validates `request` (a /tasks/<task> body: field types, ranges, enums; an
 * unknown field is rejected by name; `model_name` is accepted and ignored)
 * into the task's request struct and runs it: *res gets the typed result
 * (free with bs_task_result_free, also after an error). Errors as
 * bs_pipeline.h describes. */
BS_API int bs_pipeline_run_request(const bs_pipeline_ctx *ctx, bs_task task, const json_t *request,
                                   bs_task_result *res, bs_err *err);

/* bs_pipeline_run_request, answered as exactly the `data` object of the
 * HTTP response (docs/pipelines.md): *data_out is the caller's
 * (json_decref). */
BS_API int bs_pipeline_run_json(const bs_pipeline_ctx *ctx, bs_task task, const json_t *request,
                                json_t **data_out, bs_err *err);

/* The `data` object of a typed result (a new reference; NULL on ENOMEM). */
BS_API json_t *bs_task_result_json(const bs_task_result *res);

#ifdef __cplusplus
}
#endif
#endif
