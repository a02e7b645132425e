/* Every request handler, grouped by resource (one .c file each), and the
 * field tables of their bodies (server/validate.h). */
#ifndef BS_SERVER_HANDLERS_H
#define BS_SERVER_HANDLERS_H

#include "server/http.h"
#include "server/validate.h"

/* health.c */
void bs_handle_health(bs_request *req, bs_response *res);
void bs_handle_health_db(bs_request *req, bs_response *res);

/* auth.c */
extern const bs_field_spec bs_body_login[];
void bs_handle_auth_login(bs_request *req, bs_response *res);
void bs_handle_auth_logout(bs_request *req, bs_response *res);
void bs_handle_auth_check(bs_request *req, bs_response *res);

/* keys.c */
extern const bs_field_spec bs_body_key_create[];
extern const bs_field_spec bs_body_key_update[];
void bs_handle_keys_create(bs_request *req, bs_response *res);
void bs_handle_keys_list(bs_request *req, bs_response *res);
/* What POST /keys and GET /keys answer as data (the new key's document with
 * its api_key; {"api_keys", "limit", "offset"}), for the original's routes
 * to reshape: NULL when res holds the error. */
json_t *bs_keys_create_doc(bs_request *req, bs_response *res);
json_t *bs_keys_list_data(bs_request *req, bs_response *res);
void bs_handle_keys_get(bs_request *req, bs_response *res);
void bs_handle_keys_update(bs_request *req, bs_response *res);
void bs_handle_keys_revoke(bs_request *req, bs_response *res);
/* The rules of a change to key id (NULL: a new key) from document old
 * (NULL: none) by patch: 403 when it grants a permission the caller lacks,
 * 409 when it takes admin:write from the last active key holding it
 * (revoke: patch {"is_active": false}; purge: the same). Answers and
 * returns -1 when refused. Call between bs_keys_lock and bs_keys_unlock,
 * around the store write. */
int bs_keys_check_change(bs_request *req, bs_response *res, const char *id, const json_t *old,
                         const json_t *patch);
void bs_keys_lock(void);
void bs_keys_unlock(void);

/* sessions.c */
void bs_handle_sessions_list(bs_request *req, bs_response *res);

/* settings.c */
extern const bs_field_spec bs_body_setting_put[];
void bs_handle_settings_list(bs_request *req, bs_response *res);
void bs_handle_settings_get(bs_request *req, bs_response *res);
void bs_handle_settings_put(bs_request *req, bs_response *res);

/* logs.c */
void bs_handle_logs_list(bs_request *req, bs_response *res);
void bs_handle_logs_stats(bs_request *req, bs_response *res);

/* admin.c */
void bs_handle_admin_purge(bs_request *req, bs_response *res);
void bs_handle_admin_sweep(bs_request *req, bs_response *res);
void bs_handle_admin_batcher(bs_request *req, bs_response *res);

/* metrics.c */
void bs_handle_metrics(bs_request *req, bs_response *res);

/* models.c (the model cache; {name} routes also exist as {org}/{name}) */
struct bs_server;
/* The cache's documents, each with its "state" (cached, loading, loaded,
 * downloading...); only: NULL for all, or one state ("cached": any cached
 * one). NULL after an error answer in res. Shared with compat_models.c,
 * which reshapes the list instead of re-reading our rendered answer. */
/* The Hub's models of GET /models/available (?search, ?tag, ?limit); NULL
 * when res holds the error. */
json_t *bs_models_available_list(bs_request *req, bs_response *res);
json_t *bs_models_listing(bs_request *req, bs_response *res, const char *only);
/* [{path, sha256}] from the manifest of a model folder ([] without one). */
json_t *bs_models_manifest_files(const char *dir);
void bs_handle_models_list(bs_request *req, bs_response *res);
void bs_handle_models_available(bs_request *req, bs_response *res);
void bs_handle_models_downloaded(bs_request *req, bs_response *res);
void bs_handle_models_downloaded_delete(bs_request *req, bs_response *res);
void bs_handle_models_loaded(bs_request *req, bs_response *res);
void bs_handle_models_loading(bs_request *req, bs_response *res);
void bs_handle_models_load(bs_request *req, bs_response *res);
void bs_handle_models_download(bs_request *req, bs_response *res);
void bs_handle_models_import(bs_request *req, bs_response *res);
void bs_handle_models_info(bs_request *req, bs_response *res);
void bs_handle_models_events(bs_request *req, bs_response *res);
void bs_handle_models_load_named(bs_request *req, bs_response *res);
void bs_handle_models_delete(bs_request *req, bs_response *res);
void bs_handle_models_unload(bs_request *req, bs_response *res);
/* DELETE of model name (checked), as DELETE /models/{name} answers. */
void bs_models_delete_named(bs_request *req, bs_response *res, const char *name);

/* custom_tasks*.c (saved custom tasks; the original product's lookups and
 * export in its own shapes) */
void bs_handle_ctasks_save(bs_request *req, bs_response *res);
void bs_handle_ctasks_list(bs_request *req, bs_response *res);
void bs_handle_ctasks_get(bs_request *req, bs_response *res);
void bs_handle_ctasks_update(bs_request *req, bs_response *res);
void bs_handle_ctasks_delete(bs_request *req, bs_response *res);
void bs_handle_ctasks_popular(bs_request *req, bs_response *res);
void bs_handle_ctasks_stats(bs_request *req, bs_response *res);
void bs_handle_ctasks_export(bs_request *req, bs_response *res);
void bs_handle_ctasks_export_original(bs_request *req, bs_response *res);
void bs_handle_ctasks_import(bs_request *req, bs_response *res);
void bs_handle_ctasks_original_search(bs_request *req, bs_response *res);
void bs_handle_ctasks_original_model(bs_request *req, bs_response *res);
void bs_handle_ctasks_original_tags(bs_request *req, bs_response *res);

/* custom_run.c (custom tasks run in the sandbox; the original's routes too) */
void bs_handle_custom_run(bs_request *req, bs_response *res);
void bs_handle_custom_legacy(bs_request *req, bs_response *res);
void bs_handle_custom_legacy_batch(bs_request *req, bs_response *res);

/* tasks*.c (task endpoints, OpenAI-compatible and legacy routes) */
void bs_handle_task_classification(bs_request *req, bs_response *res);
void bs_handle_task_ner(bs_request *req, bs_response *res);
void bs_handle_task_qa(bs_request *req, bs_response *res);
void bs_handle_task_fill_mask(bs_request *req, bs_response *res);
void bs_handle_task_embeddings(bs_request *req, bs_response *res);
void bs_handle_task_features(bs_request *req, bs_response *res);
void bs_handle_task_summarization(bs_request *req, bs_response *res);
void bs_handle_task_rerank(bs_request *req, bs_response *res);
void bs_handle_tokenize(bs_request *req, bs_response *res);
void bs_handle_v1_embeddings(bs_request *req, bs_response *res);
void bs_handle_v1_models(bs_request *req, bs_response *res);
/* OpenAI's model objects of GET /v1/models ([{id, object, created,
 * owned_by}]); NULL when res holds the error. */
json_t *bs_v1_models_list(bs_request *req, bs_response *res);
void bs_handle_legacy_embed(bs_request *req, bs_response *res);
void bs_handle_legacy_classify(bs_request *req, bs_response *res);
void bs_handle_legacy_qa(bs_request *req, bs_response *res);
void bs_handle_legacy_ner(bs_request *req, bs_response *res);
void bs_handle_legacy_fill_mask(bs_request *req, bs_response *res);
void bs_handle_legacy_summarize(bs_request *req, bs_response *res);
void bs_handle_legacy_features(bs_request *req, bs_response *res);
void bs_handle_stats(bs_request *req, bs_response *res);

/* compat*.c (the original product's API on its own paths, docs/compat.md):
 * variants of shared paths chosen by the request's shape (server/routes.c)
 * and the original's routes in its shapes. */
void bs_handle_compat_embed(bs_request *req, bs_response *res);
void bs_handle_compat_classify(bs_request *req, bs_response *res);
void bs_handle_compat_qa(bs_request *req, bs_response *res);
void bs_handle_compat_ner(bs_request *req, bs_response *res);
void bs_handle_compat_fill_mask(bs_request *req, bs_response *res);
void bs_handle_compat_summarize(bs_request *req, bs_response *res);
void bs_handle_compat_features(bs_request *req, bs_response *res);
void bs_handle_compat_stats(bs_request *req, bs_response *res);
void bs_handle_compat_settings_get(bs_request *req, bs_response *res);
void bs_handle_compat_settings_post(bs_request *req, bs_response *res);
void bs_handle_compat_keys_list(bs_request *req, bs_response *res);
void bs_handle_compat_keys_create(bs_request *req, bs_response *res);
void bs_handle_compat_auth_anonymous(bs_request *req, bs_response *res);
void bs_handle_compat_auth_check(bs_request *req, bs_response *res);
void bs_handle_compat_logout(bs_request *req, bs_response *res);
void bs_handle_compat_models_available(bs_request *req, bs_response *res);
void bs_handle_compat_models_downloaded(bs_request *req, bs_response *res);
void bs_handle_compat_models_loaded(bs_request *req, bs_response *res);
void bs_handle_compat_models_loading(bs_request *req, bs_response *res);
void bs_handle_compat_models_download(bs_request *req, bs_response *res);
void bs_handle_compat_models_load(bs_request *req, bs_response *res);
void bs_handle_compat_models_delete(bs_request *req, bs_response *res);
void bs_handle_v1_model(bs_request *req, bs_response *res);

#endif
