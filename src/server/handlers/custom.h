/* Running custom tasks (custom_run.c, custom_bridge.c): the server's
 * sandbox worker, the engine calls of the task's code, and the check of a
 * task's code that the save handlers call. */
#ifndef BS_SERVER_HANDLERS_CUSTOM_H
#define BS_SERVER_HANDLERS_CUSTOM_H

#include <jansson.h>
#include <stdint.h>

#include "sandbox/sandbox.h"
#include "server/http.h"

/* What one run's engine calls share: the request (for the model registry
 * and the client's liveness) and the first model the code loaded (for the
 * execution log). */
typedef struct bs_custom_bridge {
    bs_request *req;
    int64_t deadline_ns; /* the run's wall time: a loading model is waited for until then */
    char model_name[256];
    int calls;
} bs_custom_bridge;

/* bs_sandbox_call_fn over the server's models (ud: a bs_custom_bridge). */
int bs_custom_bridge_call(void *ud, const json_t *call, json_t **reply, bs_err *err);

/* The server's sandbox, started on first use: the worker is
 * $BERTSTUDIO_SANDBOX, else bertstudio-sandbox beside the running binary.
 * NULL with err set (BS_ENOTFOUND names the missing program) when it
 * cannot start; the caller answers 503. */
bs_sandbox *bs_custom_sandbox(bs_request *req, bs_err *err);

/* Checks a task's three parts for the save and update handlers: *report as
 * bs_sandbox_check's, plus "missing_models": the referenced models that
 * are not in the cache. 0, or a negative BS_E* (BS_ENOTFOUND: no worker;
 * answer 503). */
int bs_custom_check(bs_request *req, const char *tokenizer_code, const char *model_code,
                    const char *function_code, json_t **report, bs_err *err);

/* For the save, update and import handlers: compiles the three parts (NULL
 * = empty) and answers 400 when one has a syntax error ("function_code
 * line 2: invalid syntax") or function_code does not define
 * custom_function; prefix (e.g. "tasks[3]: ", or "") goes before the
 * detail. 0 when the code is fine, and also when no worker is there to
 * check it (saving is the store's business; running it answers 503); -1
 * with res filled otherwise. */
int bs_custom_check_code(bs_request *req, bs_response *res, const char *tokenizer_code,
                         const char *model_code, const char *function_code, const char *prefix);

#endif
