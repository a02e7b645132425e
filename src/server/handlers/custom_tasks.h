/* Shared pieces of the saved-task routes (custom_tasks.c: save, list, get,
 * update, delete, popular, stats and the original product's lookups;
 * custom_tasks_io.c: export and import). Private to server/handlers/. */
#ifndef BS_SERVER_HANDLERS_CUSTOM_TASKS_H
#define BS_SERVER_HANDLERS_CUSTOM_TASKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/http.h"

/* Limits of a task's fields beyond the store's own rules (docs/custom-tasks.md). */
#define BS_CTASK_CODE_MAX       65536 /* characters per code field */
#define BS_CTASK_CONFIG_MAX     4096  /* bytes of model_config as compact JSON */
#define BS_CTASK_IMPORT_MAX     1000  /* tasks per import */
#define BS_CTASK_EXPORT_MAX     1000  /* task_ids per export */
#define BS_CTASK_EXPORT_FORMAT  "bertstudio.custom_tasks"
#define BS_CTASK_EXPORT_VERSION 1

/* What a task carries besides its content, in an import of our format. */
typedef enum bs_ctask_mode {
    BS_CTASK_SAVE,   /* POST /custom-tasks: content fields, name etc. required */
    BS_CTASK_PATCH,  /* PUT /custom-tasks/{id}: content fields, all optional */
    BS_CTASK_IMPORT, /* an exported task: content + counters and dates */
} bs_ctask_mode;

/* Checks a task in our shape (field names of custom_tasks): accepted
 * fields, types, sizes, tag rules, the model_name pattern, and in import
 * mode the counters and dates. 0, or -1 with detail naming the field. */
int bs_ctask_check(const json_t *task, bs_ctask_mode mode, char *detail, size_t len);

/* True when body is in the original product's shape (it names the model
 * "model_id" and not "model_name"). */
bool bs_ctask_is_original(const json_t *body);

/* Converts a task of the original product ({name, description, model_id,
 * tokenizer_code, model_code, function_code, tags "a,b", batch_mode}) into
 * our shape (a new object). Unknown fields, wrong types and missing
 * required ones fail with detail naming them (NULL returned). The ignore
 * list of the original's export (id, created_at, updated_at) is dropped
 * when export_file is true. */
json_t *bs_ctask_from_original(const json_t *orig, bool export_file, char *detail, size_t len);

/* A stored task in the original's TaskInfo shape ({id, name, description,
 * model_id, tokenizer_code, model_code, function_code, tags "a,b" or null,
 * created_at, updated_at, batch_mode}). */
json_t *bs_ctask_to_original(const json_t *doc);

/* The api_key_id whose view the caller has on ONE task (get, change,
 * export by id): own + public tasks, or NULL (every task) when the caller
 * holds admin:read. */
const char *bs_ctask_viewer(const bs_request *req);

/* The view of a LIST (list, stats, the original's lookups and export):
 * own + public tasks; with ?all=true every task, which needs admin:read.
 * 0 with *viewer set (NULL = all), or -1 with res holding the 400/403. */
int bs_ctask_list_viewer(bs_request *req, bs_response *res, const char **viewer);

/* The tasks api_key_id owns, as an object _id -> name; NULL on a store
 * error (res filled). */
json_t *bs_ctask_owned(bs_request *req, bs_response *res, const char *api_key_id);

/* The _id of the task named name in owned (from bs_ctask_owned) other
 * than except_id (may be NULL), or NULL. */
const char *bs_ctask_name_taken(const json_t *owned, const char *name, const char *except_id);

/* Model names a task refers to (model_name and every from_pretrained('...')
 * in its code) that are not in the model cache, as a new array. */
json_t *bs_ctask_missing_models(bs_request *req, const json_t *task);

/* The one place where a task's code is checked before it is stored (save,
 * update, import), after the field rules of bs_ctask_check; task is the
 * whole task as it will be stored. The sandbox's compile check (syntax
 * errors with their line, custom_function defined) belongs here. Returns
 * 0, or -1 with res holding the 400 that names the field; prefix (e.g.
 * "tasks[3]: ", or "") goes before the detail. */
int bs_ctask_validate_code(bs_request *req, bs_response *res, const json_t *task,
                           const char *prefix);

#endif
