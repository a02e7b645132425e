/* The route table of api.md, one line per route: method, pattern, handler,
 * the permission it needs (BS_ROUTE_PUBLIC: none; 0: any valid key or
 * session), and the field table of its body (optional). This table is the
 * only place where permissions are decided. Handlers live in
 * server/handlers/, one file per resource.
 *
 * Paths shared with the original product's API (docs/compat.md) have two
 * rows of the same method and path: first the original's, which serves
 * only the requests its predicate (bs_route_whens, below) accepts, then
 * ours for every other request. Each row carries its own permission, so a
 * permission that depends on the request's shape is still decided here. */
#include "server/handlers/compat.h"
#include "server/handlers/handlers.h"
#include "server/router.h"

#define PUBLIC      BS_ROUTE_PUBLIC
#define ANY_KEY     0u
#define EXECUTE     BS_PERM_TASKS_EXECUTE
#define SAVE        BS_PERM_TASKS_SAVE
#define DOWNLOAD    BS_PERM_MODELS_DOWNLOAD
#define ADMIN_READ  BS_PERM_ADMIN_READ
#define ADMIN_WRITE BS_PERM_ADMIN_WRITE

const bs_route bs_routes[] = {
    /* health */
    {"GET", "/health", bs_handle_health, PUBLIC, NULL},
    {"GET", "/health/db", bs_handle_health_db, PUBLIC, NULL},
    {"GET", "/metrics", bs_handle_metrics, ADMIN_READ, NULL},
    /* auth */
    {"POST", "/auth/login", bs_handle_auth_login, PUBLIC, bs_body_login},
    {"POST", "/auth/logout", bs_handle_auth_logout, ANY_KEY, NULL},
    /* the original's shape without a credential: public {"authenticated": false} */
    {"GET", "/auth/check", bs_handle_compat_auth_anonymous, PUBLIC, NULL},
    {"GET", "/auth/check", bs_handle_compat_auth_check, ANY_KEY, NULL},
    {"GET", "/auth/check", bs_handle_auth_check, ANY_KEY, NULL},
    {"POST", "/logout", bs_handle_compat_logout, ANY_KEY, NULL},
    /* keys, sessions, settings, logs, admin */
    {"POST", "/api-keys", bs_handle_compat_keys_create, ADMIN_WRITE, NULL},
    {"POST", "/api-keys", bs_handle_keys_create, ADMIN_WRITE, bs_body_key_create},
    {"GET", "/api-keys", bs_handle_compat_keys_list, ADMIN_READ, NULL},
    {"GET", "/api-keys", bs_handle_keys_list, ADMIN_READ, NULL},
    {"GET", "/api-keys/{id}", bs_handle_keys_get, ADMIN_READ, NULL},
    {"PATCH", "/api-keys/{id}", bs_handle_keys_update, ADMIN_WRITE, bs_body_key_update},
    {"DELETE", "/api-keys/{id}", bs_handle_keys_revoke, ADMIN_WRITE, NULL},
    {"GET", "/sessions", bs_handle_sessions_list, ADMIN_READ, NULL},
    {"GET", "/settings", bs_handle_compat_settings_get, ADMIN_READ, NULL},
    {"GET", "/settings", bs_handle_settings_list, ADMIN_READ, NULL},
    {"POST", "/settings", bs_handle_compat_settings_post, ADMIN_WRITE, NULL},
    {"GET", "/settings/{key}", bs_handle_settings_get, ADMIN_READ, NULL},
    {"PUT", "/settings/{key}", bs_handle_settings_put, ADMIN_WRITE, bs_body_setting_put},
    {"GET", "/logs", bs_handle_logs_list, ADMIN_READ, NULL},
    {"GET", "/logs/stats", bs_handle_logs_stats, ADMIN_READ, NULL},
    {"DELETE", "/admin/purge", bs_handle_admin_purge, ADMIN_WRITE, NULL},
    {"POST", "/admin/sweep", bs_handle_admin_sweep, ADMIN_WRITE, NULL},
    {"POST", "/admin/batcher", bs_handle_admin_batcher, ADMIN_WRITE, NULL},
    /* models (server/handlers/models.c) */
    {"GET", "/models", bs_handle_models_list, ANY_KEY, NULL},
    {"GET", "/models/available", bs_handle_compat_models_available, ANY_KEY, NULL},
    {"GET", "/models/available", bs_handle_models_available, ANY_KEY, NULL},
    {"GET", "/models/downloaded", bs_handle_compat_models_downloaded, ANY_KEY, NULL},
    {"GET", "/models/downloaded", bs_handle_models_downloaded, ANY_KEY, NULL},
    {"DELETE", "/models/downloaded", bs_handle_compat_models_delete, DOWNLOAD, NULL},
    {"DELETE", "/models/downloaded", bs_handle_models_downloaded_delete, DOWNLOAD, NULL},
    {"GET", "/models/loaded", bs_handle_compat_models_loaded, ANY_KEY, NULL},
    {"GET", "/models/loaded", bs_handle_models_loaded, ANY_KEY, NULL},
    {"GET", "/models/loading", bs_handle_compat_models_loading, ANY_KEY, NULL},
    {"GET", "/models/loading", bs_handle_models_loading, ANY_KEY, NULL},
    {"POST", "/models/load", bs_handle_compat_models_load, DOWNLOAD, NULL},
    {"POST", "/models/load", bs_handle_models_load, DOWNLOAD, NULL},
    {"POST", "/models/download", bs_handle_compat_models_download, DOWNLOAD, NULL},
    {"POST", "/models/download", bs_handle_models_download, DOWNLOAD, NULL},
    {"POST", "/models/import", bs_handle_models_import, ADMIN_WRITE, NULL},
    {"GET", "/models/{name}/info", bs_handle_models_info, ANY_KEY, NULL},
    {"GET", "/models/{org}/{name}/info", bs_handle_models_info, ANY_KEY, NULL},
    {"GET", "/models/{name}/events", bs_handle_models_events, ANY_KEY, NULL},
    {"GET", "/models/{org}/{name}/events", bs_handle_models_events, ANY_KEY, NULL},
    {"POST", "/models/{name}/load", bs_handle_models_load_named, DOWNLOAD, NULL},
    {"POST", "/models/{org}/{name}/load", bs_handle_models_load_named, DOWNLOAD, NULL},
    {"POST", "/models/{name}/unload", bs_handle_models_unload, DOWNLOAD, NULL},
    {"POST", "/models/{org}/{name}/unload", bs_handle_models_unload, DOWNLOAD, NULL},
    {"DELETE", "/models/{name}", bs_handle_models_delete, DOWNLOAD, NULL},
    {"DELETE", "/models/{org}/{name}", bs_handle_models_delete, DOWNLOAD, NULL},
    /* tasks (server/handlers/tasks*.c) */
    {"POST", "/tasks/classification", bs_handle_task_classification, EXECUTE, NULL},
    {"POST", "/tasks/ner", bs_handle_task_ner, EXECUTE, NULL},
    {"POST", "/tasks/qa", bs_handle_task_qa, EXECUTE, NULL},
    {"POST", "/tasks/fill-mask", bs_handle_task_fill_mask, EXECUTE, NULL},
    {"POST", "/tasks/embeddings", bs_handle_task_embeddings, EXECUTE, NULL},
    {"POST", "/tasks/features", bs_handle_task_features, EXECUTE, NULL},
    {"POST", "/tasks/summarization", bs_handle_task_summarization, EXECUTE, NULL},
    {"POST", "/tasks/rerank", bs_handle_task_rerank, EXECUTE, NULL},
    {"POST", "/tasks/custom", bs_handle_custom_run, EXECUTE, NULL},
    {"POST", "/tokenize", bs_handle_tokenize, EXECUTE, NULL},
    {"POST", "/v1/embeddings", bs_handle_v1_embeddings, EXECUTE, NULL},
    {"GET", "/v1/models", bs_handle_v1_models, EXECUTE, NULL},
    {"GET", "/v1/models/{name}", bs_handle_v1_model, EXECUTE, NULL},
    {"GET", "/v1/models/{org}/{name}", bs_handle_v1_model, EXECUTE, NULL},
    /* saved custom tasks (server/handlers/custom_tasks*.c, docs/custom-tasks.md): literal
     * paths before {id}; PUT and DELETE check ownership (owner: tasks:save, others:
     * admin:write) in the handler, since it depends on the stored task */
    {"GET", "/custom-tasks", bs_handle_ctasks_list, ANY_KEY, NULL},
    {"POST", "/custom-tasks", bs_handle_ctasks_save, SAVE, NULL},
    {"GET", "/custom-tasks/popular", bs_handle_ctasks_popular, ANY_KEY, NULL},
    {"GET", "/custom-tasks/stats", bs_handle_ctasks_stats, ANY_KEY, NULL},
    {"GET", "/custom-tasks/export", bs_handle_ctasks_export_original, ANY_KEY, NULL},
    {"POST", "/custom-tasks/export", bs_handle_ctasks_export, ANY_KEY, NULL},
    {"POST", "/custom-tasks/import", bs_handle_ctasks_import, SAVE, NULL},
    {"GET", "/custom-tasks/search/{query}", bs_handle_ctasks_original_search, ANY_KEY, NULL},
    {"GET", "/custom-tasks/model/{model_id}", bs_handle_ctasks_original_model, ANY_KEY, NULL},
    {"GET", "/custom-tasks/model/{org}/{name}", bs_handle_ctasks_original_model, ANY_KEY, NULL},
    {"GET", "/custom-tasks/tags/{tags}", bs_handle_ctasks_original_tags, ANY_KEY, NULL},
    {"GET", "/custom-tasks/{id}", bs_handle_ctasks_get, ANY_KEY, NULL},
    {"PUT", "/custom-tasks/{id}", bs_handle_ctasks_update, ANY_KEY, NULL},
    {"DELETE", "/custom-tasks/{id}", bs_handle_ctasks_delete, ANY_KEY, NULL},
    /* the original product's routes (docs/serving.md, docs/compat.md) */
    {"POST", "/embed", bs_handle_compat_embed, EXECUTE, NULL},
    {"POST", "/embed/batch", bs_handle_compat_embed, EXECUTE, NULL},
    {"POST", "/classify", bs_handle_compat_classify, EXECUTE, NULL},
    {"POST", "/qa", bs_handle_compat_qa, EXECUTE, NULL},
    {"POST", "/ner", bs_handle_compat_ner, EXECUTE, NULL},
    {"POST", "/fill-mask", bs_handle_compat_fill_mask, EXECUTE, NULL},
    {"POST", "/summarize", bs_handle_compat_summarize, EXECUTE, NULL},
    {"POST", "/features", bs_handle_compat_features, EXECUTE, NULL},
    /* counts only (public, as the original); the serving details need a key */
    {"GET", "/stats", bs_handle_compat_stats, PUBLIC, NULL},
    {"GET", "/stats/serving", bs_handle_stats, EXECUTE, NULL},
    {"POST", "/custom-task", bs_handle_custom_legacy, EXECUTE, NULL},
    {"POST", "/custom-task/batch", bs_handle_custom_legacy_batch, EXECUTE, NULL},
};

const size_t bs_routes_count = sizeof bs_routes / sizeof *bs_routes;

/* Which requests the original product's rows serve (server/handlers/compat.c):
 * its field names on the paths we share; for GETs, which carry none,
 * ?shape=original or the setting original_get_shapes. */
const bs_route_when bs_route_whens[] = {
    {bs_handle_compat_auth_anonymous, bs_compat_is_anonymous},
    {bs_handle_compat_auth_check, bs_compat_is_original_get},
    {bs_handle_compat_keys_create, bs_compat_is_bodyless},
    {bs_handle_compat_keys_list, bs_compat_is_original_get},
    {bs_handle_compat_settings_get, bs_compat_is_original_get},
    {bs_handle_compat_models_available, bs_compat_is_original_get},
    {bs_handle_compat_models_downloaded, bs_compat_is_original_get},
    {bs_handle_compat_models_delete, bs_compat_is_author_model_query},
    {bs_handle_compat_models_loaded, bs_compat_is_original_get},
    {bs_handle_compat_models_loading, bs_compat_is_original_get},
    {bs_handle_compat_models_load, bs_compat_is_model_id_body},
    {bs_handle_compat_models_download, bs_compat_is_model_id_body},
};

const size_t bs_route_whens_count = sizeof bs_route_whens / sizeof *bs_route_whens;
