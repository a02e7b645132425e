/* POST /tasks/custom, and the original product's POST /custom-task and
 * /custom-task/batch: users' Python code run in the sandbox worker's jail
 * (src/sandbox/) against the server's models. This file owns the worker's
 * life in the server, the request shapes, the rate limit, the execution
 * log and a saved task's usage counters; the code itself is never trusted. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub.h"
#include "server/context.h"
#include "server/handlers/custom.h"
#include "server/handlers/custom_tasks.h"
#include "server/handlers/handlers.h"
#include "server/handlers/tasks.h"
#include "util/log.h"
#include "util/time.h"

#define MAX_CODE_CHARS 200000
#define MAX_INPUTS     1000

static void stop_sandbox(void *ud)
{
    struct bs_server *srv = ud;
    pthread_mutex_lock(&srv->sandbox_mu);
    bs_sandbox_close(srv->sandbox);
    srv->sandbox = NULL;
    pthread_mutex_unlock(&srv->sandbox_mu);
}

bs_sandbox *bs_custom_sandbox(bs_request *req, bs_err *err)
{
    struct bs_server *srv = req->server;
    pthread_mutex_lock(&srv->sandbox_mu);
    bs_sandbox *sb = srv->sandbox;
    if (!sb) {
        char path[PATH_MAX];
        const char *env = getenv("BERTSTUDIO_SANDBOX");
        if (env && *env) {
            snprintf(path, sizeof path, "%s", env);
        } else {
            ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
            if (n < 0) n = 0;
            path[n] = 0;
            char *slash = strrchr(path, '/');
            snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0),
                     "bertstudio-sandbox");
        }
        if (!bs_sandbox_open(path, NULL, &sb, err)) {
            srv->sandbox = sb;
            bs_server_on_stop(srv, stop_sandbox, srv);
        }
    }
    pthread_mutex_unlock(&srv->sandbox_mu);
    return sb;
}

static void reply_unavailable(bs_response *res, const bs_err *err)
{
    bs_reply_error(res, 503, "Custom tasks are unavailable", "%s", err->msg);
}

static int in_cache(bs_request *req, const char *name)
{
    json_t *doc = NULL;
    bs_err err = {0};
    int rc = bs_hub_info(req->server->serving->hub, name, NULL, &doc, &err);
    int cached = !rc && json_is_true(json_object_get(doc, "is_cached"));
    json_decref(doc);
    return cached;
}

int bs_custom_check(bs_request *req, const char *tokenizer_code, const char *model_code,
                    const char *function_code, json_t **report, bs_err *err)
{
    *report = NULL;
    bs_sandbox *sb = bs_custom_sandbox(req, err);
    if (!sb) return err->code ? err->code : BS_ENOTFOUND;
    int rc = bs_sandbox_check(sb, tokenizer_code, model_code, function_code, report, err);
    if (rc) return rc;
    json_t *missing = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(*report, "models"), i, m)
    {
        const char *name = json_string_value(m);
        if (name && !in_cache(req, name)) json_array_append(missing, m);
    }
    json_object_set_new(*report, "missing_models", missing);
    return 0;
}

int bs_custom_check_code(bs_request *req, bs_response *res, const char *tokenizer_code,
                         const char *model_code, const char *function_code, const char *prefix)
{
    json_t *rep = NULL;
    bs_err err = {0};
    int rc = bs_custom_check(req, tokenizer_code, model_code, function_code, &rep, &err);
    if (rc == BS_ENOTFOUND) {
        bs_log_warn("custom", "code saved unchecked: %s", err.msg);
        return 0;
    }
    if (rc) {
        bs_reply_error(res, 503, "Custom tasks are unavailable", "%s", err.msg);
        return -1;
    }
    json_t *e = json_array_get(json_object_get(rep, "errors"), 0);
    if (e) {
        json_t *line = json_object_get(e, "line");
        if (json_is_integer(line))
            bs_reply_error(res, 400, "Invalid custom task code", "%s%s line %lld: %s", prefix,
                           json_string_value(json_object_get(e, "part")),
                           (long long)json_integer_value(line),
                           json_string_value(json_object_get(e, "message")));
        else
            bs_reply_error(res, 400, "Invalid custom task code", "%s%s: %s", prefix,
                           json_string_value(json_object_get(e, "part")),
                           json_string_value(json_object_get(e, "message")));
    }
    json_decref(rep);
    return e ? -1 : 0;
}

/* The route's answer shape. */
typedef enum shape { SHAPE_API, SHAPE_LEGACY, SHAPE_LEGACY_BATCH } shape;

typedef struct run_args {
    const char *tokenizer_code, *model_code, *function_code, *model_id, *task_id;
    const json_t *input;
    int batch;
} run_args;

static void log_run(bs_request *req, const run_args *a, const char *model, int success,
                    const char *error, double seconds, int64_t size)
{
    char *text = json_is_string(a->input) ? strdup(json_string_value(a->input))
                                          : json_dumps(a->input, JSON_COMPACT);
    bs_exec_record rec = {
        .task_type = "custom",
        .model_name = model && *model ? model : "(none)",
        .task_id = a->task_id,
        .input_text = text,
        .execution_time = seconds,
        .success = success,
        .error_message = error,
        .result_size = size,
        .memory_usage = -1,
    };
    bs_server_log_execution(req, &rec);
    free(text);
    if (a->task_id) {
        bs_err err = {0};
        if (bs_store_tasks_record_execution(req->server->store, a->task_id, seconds, success, &err))
            bs_log_warn("custom", "task %s: its execution stats were not updated: %s", a->task_id,
                        err.msg);
    }
}

static void limits_from_settings(bs_request *req, bs_sandbox_limits *lim)
{
    bs_settings *s = req->server->settings;
    bs_sandbox_limits_default(lim);
    lim->memory_mb = (int)bs_settings_int(s, "custom_task_memory_mb");
    lim->wall_ms = (int)(bs_settings_float(s, "custom_task_timeout_seconds") * 1000.0 + 0.5);
    lim->max_output = (size_t)bs_settings_int(s, "custom_task_max_output_bytes");
    if (lim->wall_ms < 100) lim->wall_ms = 100;
    if (lim->memory_mb < 64) lim->memory_mb = 64;
    if (lim->max_output < 1024) lim->max_output = 1024;
}

static const char *status_title(bs_sandbox_status st)
{
    switch (st) {
    case BS_SANDBOX_LIMIT:
        return "Custom task exceeded a limit";
    case BS_SANDBOX_REFUSED:
        return "Custom task refused by the sandbox";
    default:
        return "Custom task failed";
    }
}

static void execute(bs_request *req, bs_response *res, const run_args *a, shape sh)
{
    if (bs_server_limit_custom_task(req, res)) return;
    bs_err err = {0};
    bs_sandbox *sb = bs_custom_sandbox(req, &err);
    if (!sb) {
        reply_unavailable(res, &err);
        return;
    }
    bs_sandbox_limits lim;
    limits_from_settings(req, &lim);
    bs_custom_bridge bridge = {.req = req,
                               .deadline_ns = bs_time_mono_ns() + (int64_t)lim.wall_ms * 1000000};
    bs_sandbox_job job = {
        .tokenizer_code = a->tokenizer_code,
        .model_code = a->model_code,
        .function_code = a->function_code,
        .model_id = a->model_id,
        .input = a->input,
        .batch = a->batch,
        .strict = sh != SHAPE_API,
    };
    bs_sandbox_result r;
    if (bs_sandbox_run(sb, &job, &lim, bs_custom_bridge_call, &bridge, &r, &err)) {
        bs_reply_error(res, 503, "Custom task sandbox failed", "%s", err.msg);
        return;
    }
    const char *model = a->model_id && *a->model_id ? a->model_id : bridge.model_name;
    int ok = r.status == BS_SANDBOX_OK;
    json_t *data = NULL;
    size_t n = a->batch ? json_array_size(a->input) : 1;
    switch (sh) {
    case SHAPE_API:
        if (!ok) {
            bs_reply_error(res, 422, status_title(r.status), "%s", r.error);
            log_run(req, a, model, 0, r.error, r.seconds, -1);
            bs_sandbox_result_clear(&r);
            return;
        }
        data = json_pack("{s:O,s:f,s:s?}", "result", r.result, "execution_time", r.seconds,
                         "task_id", a->task_id);
        break;
    case SHAPE_LEGACY:
        data = json_pack("{s:O,s:s?}", "result", ok ? r.result : json_null(), "error",
                         ok ? NULL : r.error);
        break;
    case SHAPE_LEGACY_BATCH: {
        json_t *results = json_array(), *errors = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append(results, ok ? json_array_get(r.result, i) : json_null());
            json_array_append_new(errors, ok ? json_null() : json_string(r.error));
        }
        data = json_pack("{s:o,s:o}", "results", results, "errors", errors);
        break;
    }
    }
    int64_t size = bs_tasks_reply(res, data, sh == SHAPE_API);
    log_run(req, a, model, ok && size >= 0, ok ? NULL : r.error, r.seconds, size);
    bs_sandbox_result_clear(&r);
}

static const bs_field_spec api_fields[] = {
    {"tokenizer_code", BS_T_STRING, BS_NULLABLE, 0, MAX_CODE_CHARS, NULL},
    {"model_code", BS_T_STRING, BS_NULLABLE, 0, MAX_CODE_CHARS, NULL},
    {"function_code", BS_T_STRING, BS_NULLABLE, 0, MAX_CODE_CHARS, NULL},
    {"input_text", BS_T_STRING, BS_NULLABLE, 0, 1000000, NULL},
    {"input_texts", BS_T_STRINGS, BS_NULLABLE, 1, MAX_INPUTS, NULL},
    {"model_id", BS_T_STRING, BS_NULLABLE, 0, 256, NULL},
    {"model_name", BS_T_STRING, BS_NULLABLE, 0, 256, NULL},
    {"task_id", BS_T_STRING, BS_NULLABLE, 24, 24, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *str(const json_t *body, const char *key)
{
    return json_string_value(json_object_get(body, key));
}

/* A saved task the caller may run: its owner's, a public one, or any for
 * an admin. */
static json_t *load_task(bs_request *req, bs_response *res, const char *id)
{
    for (const char *p = id; *p; p++)
        if (!strchr("0123456789abcdefABCDEF", *p)) {
            bs_reply_error(res, 400, "Invalid request", "task_id: '%s' is not a 24-hex id", id);
            return NULL;
        }
    json_t *doc = NULL;
    bs_err err = {0};
    int rc = bs_store_tasks_get(req->server->store, id, &doc, &err);
    if (rc == BS_ENOTFOUND) {
        bs_reply_error(res, 404, "Custom task not found", "no custom task with _id %s", id);
        return NULL;
    }
    if (rc) {
        bs_reply_err(req, res, &err);
        return NULL;
    }
    /* The same view as GET /custom-tasks/{id} (custom_tasks_shape.c). */
    const char *owner = str(doc, "api_key_id"), *viewer = bs_ctask_viewer(req);
    int visible = !viewer || json_is_true(json_object_get(doc, "is_public")) ||
                  (owner && !strcmp(owner, viewer));
    if (!visible) {
        json_decref(doc);
        bs_reply_error(res, 404, "Custom task not found", "no custom task with _id %s", id);
        return NULL;
    }
    return doc;
}

void bs_handle_custom_run(bs_request *req, bs_response *res)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return;
    char detail[512];
    if (bs_validate(body, api_fields, detail, sizeof detail)) {
        bs_reply_error(res, 400, "Invalid request", "%s", detail);
        return;
    }
    run_args a = {0};
    json_t *input_texts = json_object_get(body, "input_texts");
    json_t *input_text = json_object_get(body, "input_text");
    a.batch = json_is_array(input_texts);
    a.input = a.batch ? input_texts : input_text;
    if (!a.input || json_is_null(a.input) || (a.batch && json_is_string(input_text))) {
        bs_reply_error(
            res, 400, "Invalid request",
            "give input_text (a string) or input_texts (a list of strings for a batch-mode "
            "custom_function), not both");
        return;
    }
    a.model_id = str(body, "model_id") ? str(body, "model_id") : str(body, "model_name");
    json_t *doc = NULL;
    if (str(body, "task_id")) {
        if (str(body, "function_code") || str(body, "tokenizer_code") || str(body, "model_code")) {
            bs_reply_error(res, 400, "Invalid request",
                           "give either task_id (a saved task) or its code, not both");
            return;
        }
        if (!(doc = load_task(req, res, str(body, "task_id")))) return;
        a.task_id = str(doc, "_id");
        a.tokenizer_code = str(doc, "tokenizer_code");
        a.model_code = str(doc, "model_code");
        a.function_code = str(doc, "function_code");
        if (!a.model_id) a.model_id = str(doc, "model_name");
    } else {
        a.tokenizer_code = str(body, "tokenizer_code");
        a.model_code = str(body, "model_code");
        a.function_code = str(body, "function_code");
        if (!a.function_code) {
            bs_reply_error(res, 400, "Invalid request",
                           "function_code: required (it defines custom_function), or give the "
                           "task_id of a saved task");
            return;
        }
    }
    execute(req, res, &a, SHAPE_API);
    json_decref(doc);
}

static const bs_field_spec legacy_fields[] = {
    {"tokenizer_code", BS_T_STRING, BS_REQUIRED, 0, MAX_CODE_CHARS, NULL},
    {"model_code", BS_T_STRING, BS_REQUIRED, 0, MAX_CODE_CHARS, NULL},
    {"function_code", BS_T_STRING, BS_REQUIRED, 0, MAX_CODE_CHARS, NULL},
    {"input_text", BS_T_STRING, BS_REQUIRED, 0, 1000000, NULL},
    {"model_id", BS_T_STRING, BS_REQUIRED, 0, 256, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const bs_field_spec legacy_batch_fields[] = {
    {"tokenizer_code", BS_T_STRING, BS_REQUIRED, 0, MAX_CODE_CHARS, NULL},
    {"model_code", BS_T_STRING, BS_REQUIRED, 0, MAX_CODE_CHARS, NULL},
    {"function_code", BS_T_STRING, BS_REQUIRED, 0, MAX_CODE_CHARS, NULL},
    {"input_texts", BS_T_STRINGS, BS_REQUIRED, 1, MAX_INPUTS, NULL},
    {"model_id", BS_T_STRING, BS_REQUIRED, 0, 256, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static void run_legacy(bs_request *req, bs_response *res, int batch)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return;
    char detail[512];
    if (bs_validate(body, batch ? legacy_batch_fields : legacy_fields, detail, sizeof detail)) {
        bs_reply_error(res, 400, "Invalid request", "%s", detail);
        return;
    }
    run_args a = {
        .tokenizer_code = str(body, "tokenizer_code"),
        .model_code = str(body, "model_code"),
        .function_code = str(body, "function_code"),
        .model_id = str(body, "model_id"),
        .input = json_object_get(body, batch ? "input_texts" : "input_text"),
        .batch = batch,
    };
    execute(req, res, &a, batch ? SHAPE_LEGACY_BATCH : SHAPE_LEGACY);
}

void bs_handle_custom_legacy(bs_request *req, bs_response *res)
{
    run_legacy(req, res, 0);
}

void bs_handle_custom_legacy_batch(bs_request *req, bs_response *res)
{
    run_legacy(req, res, 1);
}
