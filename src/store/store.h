/*
 * The store: the six collections of database-schema.md (custom_tasks,
 * api_keys, user_sessions, model_cache, execution_logs, system_settings)
 * behind one interface, on embedded SQLite (the default) or MongoDB.
 *
 * Documents travel as jansson objects with the seed's field names:
 *   - ids ("_id", "api_key_id", "task_id") are 24-hex ObjectId strings;
 *   - dates are UTC ISO-8601 strings "2024-01-15T10:30:00.000Z" in JSON and the
 *     engine's native date type inside (SQLite: INTEGER ms; MongoDB: BSON date).
 * Every function returning a json_t ** hands the caller a NEW reference
 * (json_decref it). Input documents are borrowed, never stolen.
 *
 * Errors: BS_EINVAL for a document that breaks a validation rule (the message
 * names the collection, field and rule), BS_ECONFLICT for a duplicate unique
 * key (the message names the field), BS_ENOTFOUND for an unknown id or secret,
 * BS_ESTORE when the engine fails or is unreachable, BS_EBUSY when the
 * database stayed locked beyond the busy timeout.
 *
 * Secrets: API keys ("ak_...") and session ids ("sess_...") are generated here,
 * returned ONCE to the caller and stored only as a keyed BLAKE2b hash (server
 * secret in DATA_DIR/store.key). The "api_key" field of api_keys and the
 * "session_id" field of user_sessions hold that hash (hex). Documents of
 * api_keys returned by this API never contain "api_key"; they carry
 * "key_prefix" (the first 8 characters of the secret) for display. A
 * session's "session_id" hash is its public reference: execution_logs
 * .session_id and custom_tasks.created_by hold it, never the secret.
 *
 * Thread safety: one bs_store may be used from any number of threads at once.
 */
#ifndef BS_STORE_H
#define BS_STORE_H

#include "bertstudio/common.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bs_store bs_store;

/* Returns the current time in ms since the Unix epoch (UTC). */
typedef int64_t (*bs_store_clock_fn)(void *ud);

typedef struct bs_store_opts {
    /* Directory of the hashing secret (store.key, created 0600 on first
     * open). NULL: the SQLite file's directory, or "./data" for MongoDB.
     * Every process sharing one database must see the same store.key. */
    const char *data_dir;
    /* Injectable clock (tests); NULL = wall clock. */
    bs_store_clock_fn clock;
    void *clock_ud;
    /* SQLite: reader connections in the pool (0 = 4) and busy timeout
     * (0 = 5000 ms). Ignored by MongoDB. */
    int readers;
    int busy_timeout_ms;
    /* MongoDB: database name when the URI names none (NULL = "bertstudio"). */
    const char *mongo_db;
} bs_store_opts;

/* Opens the store named by uri: "sqlite:///abs/path.db", "sqlite://rel.db",
 * a plain file path (SQLite), or "mongodb://..." / "mongodb+srv://...".
 * Creates tables / collections, validators and every index idempotently.
 * opts may be NULL. On success *out owns the store (bs_store_close it). */
int bs_store_open(const char *uri, const bs_store_opts *opts, bs_store **out, bs_err *err);
/* Closes the store and frees it; NULL is a no-op. */
void bs_store_close(bs_store *s);
/* "sqlite" or "mongodb". */
const char *bs_store_engine_name(const bs_store *s);
/* Round trip to the database (SQLite: a read on a pooled connection;
 * MongoDB: the ping command); *latency_ms gets the time it took. */
int bs_store_ping(bs_store *s, double *latency_ms, bs_err *err);
/* Replaces the clock (tests); NULL restores the wall clock. Not to be called
 * while other threads use the store. */
void bs_store_set_clock(bs_store *s, bs_store_clock_fn clock, void *ud);
/* The store's current time (ms since epoch) according to its clock. */
int64_t bs_store_now(const bs_store *s);
/* Number of documents in a collection named as in the seed ("custom_tasks"...). */
int bs_store_count(bs_store *s, const char *collection, int64_t *n, bs_err *err);

/* ───────────────────────────── custom_tasks ───────────────────────────── */

typedef enum bs_task_sort {
    BS_TASK_SORT_DEFAULT = 0, /* relevance (bm25 / textScore) when searching, else created_at */
    BS_TASK_SORT_CREATED_AT,  /* newest first */
    BS_TASK_SORT_USAGE_COUNT, /* most used first */
} bs_task_sort;

typedef struct bs_task_query {
    /* Visibility: when set, only tasks owned by this api_key_id OR public. */
    const char *viewer_api_key_id;
    /* Restrictions (NULL / 0 = none). */
    const char *created_by;       /* a session's session_id (seed query 1) */
    const char *owner_api_key_id; /* the tasks of one key, across its sessions */
    const char *search;           /* words matched in name + description (seed query 2) */
    const char *const *tags;      /* any of these tags (seed query 3) */
    size_t ntags;
    const char *model_name; /* exact model (seed query 3) */
    bool public_only;       /* only is_public tasks (seed query 4) */
    bs_task_sort sort;
    int64_t limit; /* 0 = 50; at most 1000 */
    int64_t offset;
} bs_task_query;

/* Validates and inserts a task. doc needs name, model_name, function_code;
 * the store fills _id, created_at, updated_at, usage_count 0, is_public false,
 * execution_stats zeros when absent. api_key_id / created_by record the owner.
 * *out (may be NULL) gets the stored document. */
int bs_store_tasks_insert(bs_store *s, const json_t *doc, json_t **out, bs_err *err);
int bs_store_tasks_get(bs_store *s, const char *id, json_t **out, bs_err *err);
/* Applies patch (any of name, description, tags, model_name, tokenizer_code,
 * model_code, function_code, is_public, model_config), validates the result
 * and sets updated_at. *out (may be NULL) gets the new document. */
int bs_store_tasks_update(bs_store *s, const char *id, const json_t *patch, json_t **out,
                          bs_err *err);
int bs_store_tasks_delete(bs_store *s, const char *id, bs_err *err);
/* Finds tasks; *out is an array; *total (may be NULL) the count before
 * limit/offset. */
int bs_store_tasks_find(bs_store *s, const bs_task_query *q, json_t **out, int64_t *total,
                        bs_err *err);
/* Public tasks by usage_count, most used first (seed query 4). */
int bs_store_tasks_popular(bs_store *s, int64_t limit, json_t **out, bs_err *err);
/* One execution of a task: usage_count += 1 and execution_stats
 * (total_executions, avg_execution_time, success_rate) updated atomically. */
int bs_store_tasks_record_execution(bs_store *s, const char *id, double seconds, bool success,
                                    bs_err *err);
/* Summary over the tasks visible to viewer_api_key_id (NULL = all):
 * {"total_tasks", "public_tasks", "total_usage", "models": [{"model_name",
 * "count"}...], "tags": [{"tag", "count"}...]} (lists most frequent first). */
int bs_store_tasks_stats(bs_store *s, const char *viewer_api_key_id, json_t **out, bs_err *err);

/* ─────────────────────────────── api_keys ─────────────────────────────── */

/* Creates a key from fields (name required; description, permissions
 * (subset of tasks:execute, tasks:save, models:download, admin:read,
 * admin:write), rate_limits (positive integers), is_active). *secret gets the
 * generated "ak_" + 43 base62 chars (caller frees; shown once); *out (may be
 * NULL) the stored document without the hash. */
int bs_store_keys_create(bs_store *s, const json_t *fields, char **secret, json_t **out,
                         bs_err *err);
int bs_store_keys_get(bs_store *s, const char *id, json_t **out, bs_err *err);
/* Looks a key up by its secret (keyed-hash lookup, constant-time compare).
 * BS_ENOTFOUND when no key matches; inactive keys are returned (check
 * is_active). */
int bs_store_keys_find_by_secret(bs_store *s, const char *secret, json_t **out, bs_err *err);
/* Keys, newest first (limit 0 = 100). */
int bs_store_keys_list(bs_store *s, int64_t limit, int64_t offset, json_t **out, bs_err *err);
/* patch: any of name, description, permissions, rate_limits, is_active. */
int bs_store_keys_update(bs_store *s, const char *id, const json_t *patch, json_t **out,
                         bs_err *err);
/* Deletes the key document (its data stays; see bs_store_purge_api_key). */
int bs_store_keys_delete(bs_store *s, const char *id, bs_err *err);

typedef struct bs_key_usage {
    const char *api_key_id;
    int64_t requests;            /* requests since the last flush */
    int64_t last_used_ms;        /* time of the last of them */
    const char *last_request_ip; /* stored anonymized; may be NULL */
} bs_key_usage;
/* Flushes usage counters of n keys, each key's update atomic: last_used,
 * usage_stats.total_requests += requests, usage_stats.requests_today
 * (restarted when last_used falls on a new UTC day), last_request_ip
 * (anonymized). Unknown ids are skipped. */
int bs_store_keys_record_usage(bs_store *s, const bs_key_usage *u, size_t n, bs_err *err);

/* ───────────────────────────── user_sessions ──────────────────────────── */

/* Opens a session for api_key_id lasting ttl_ms. *secret gets "sess_" + 32
 * base62 chars (caller frees; shown once); *out (may be NULL) the document
 * (its "session_id" is the hash). ip is stored anonymized. */
int bs_store_sessions_create(bs_store *s, const char *api_key_id, int64_t ttl_ms, const char *ip,
                             const char *user_agent, char **secret, json_t **out, bs_err *err);
/* The session whose secret this is. BS_ENOTFOUND when unknown; ended or
 * expired sessions are returned (check is_active and expires_at). */
int bs_store_sessions_get_by_secret(bs_store *s, const char *secret, json_t **out, bs_err *err);
/* Session by _id. */
int bs_store_sessions_get(bs_store *s, const char *id, json_t **out, bs_err *err);
/* last_activity = now, expires_at = now + ttl_ms (sliding expiry). */
int bs_store_sessions_touch(bs_store *s, const char *id, int64_t ttl_ms, bs_err *err);
/* Appends {action, timestamp, endpoint, task_id?} to activity_log, keeping the
 * last 100 entries. task_id may be NULL. */
int bs_store_sessions_log_activity(bs_store *s, const char *id, const char *action,
                                   const char *endpoint, const char *task_id, bs_err *err);
/* is_active = false. */
int bs_store_sessions_end(bs_store *s, const char *id, bs_err *err);
/* Sessions by last_activity, newest first (admin; limit 0 = 100). */
int bs_store_sessions_list(bs_store *s, bool active_only, int64_t limit, int64_t offset,
                           json_t **out, bs_err *err);
/* Deletes sessions whose expires_at is more than retention_days in the past
 * (retention_days <= 0: setting session_retention_days, default 30). */
int bs_store_sessions_sweep(bs_store *s, int64_t retention_days, int64_t *removed, bs_err *err);

/* ────────────────────────────── model_cache ───────────────────────────── */

/* Inserts or replaces the entry keyed by (model_name, task_type); keeps _id,
 * download_date and access_count of an existing entry unless given. */
int bs_store_models_upsert(bs_store *s, const json_t *doc, json_t **out, bs_err *err);
/* task_type NULL: the most recently accessed entry of that model. */
int bs_store_models_get(bs_store *s, const char *model_name, const char *task_type, json_t **out,
                        bs_err *err);
/* Entries by last_accessed, least recently used first (eviction order). */
int bs_store_models_list(bs_store *s, json_t **out, bs_err *err);
/* task_type NULL: every entry of the model. *removed may be NULL. */
int bs_store_models_delete(bs_store *s, const char *model_name, const char *task_type,
                           int64_t *removed, bs_err *err);
/* access_count += 1, last_accessed = now. */
int bs_store_models_touch(bs_store *s, const char *model_name, const char *task_type, bs_err *err);

/* ───────────────────────────── execution_logs ─────────────────────────── */

typedef struct bs_log_query {
    const char *task_type, *model_name, *session_id, *api_key_id, *status; /* NULL = any */
    int64_t since_ms; /* timestamp >= since (0 = unbounded) */
    int64_t until_ms; /* timestamp < until (0 = unbounded) */
    int64_t limit;    /* find: 0 = 100, at most 1000; ignored by stats */
    int64_t offset;
} bs_log_query;

typedef enum bs_log_group {
    BS_LOG_GROUP_TASK_TYPE,
    BS_LOG_GROUP_MODEL_NAME,
    BS_LOG_GROUP_DAY, /* UTC day "YYYY-MM-DD" */
} bs_log_group;

/* Inserts one log. doc: task_type, model_name, execution_time, status
 * ("success"|"error") required; timestamp defaults to now. Privacy: unless
 * setting log_input_text is true, input_text is replaced by input_length
 * (code points) and input_hash (keyed hash); ip_address is anonymized (IPv4
 * last octet zeroed, IPv6 last 80 bits zeroed). *id (may be NULL) receives
 * the new _id (25 bytes). */
int bs_store_logs_insert(bs_store *s, const json_t *doc, char id[25], bs_err *err);
/* Inserts n logs (the async logger's batch). Every document is validated
 * before anything is written; SQLite then writes them in one transaction
 * (all or none), MongoDB in one ordered insertMany. */
int bs_store_logs_insert_many(bs_store *s, json_t *const *docs, size_t n, bs_err *err);
/* Logs newest first. */
int bs_store_logs_find(bs_store *s, const bs_log_query *q, json_t **out, int64_t *total,
                       bs_err *err);
/* Analytics (seed query 5, extended): an array, ascending by group, of
 * {"_id": group, "count", "avg_execution_time", "p50_execution_time",
 * "p95_execution_time", "success_rate"} over the logs matching q.
 * Percentiles are nearest-rank. */
int bs_store_logs_stats(bs_store *s, const bs_log_query *q, bs_log_group group, json_t **out,
                        bs_err *err);
/* Deletes logs older than retention_days (<= 0: setting log_retention_days,
 * default 90). */
int bs_store_logs_sweep(bs_store *s, int64_t retention_days, int64_t *removed, bs_err *err);

/* ──────────────────────────── system_settings ─────────────────────────── */

/* The setting document {setting_key, setting_value, setting_type, ...}. */
int bs_store_settings_get(bs_store *s, const char *key, json_t **out, bs_err *err);
/* All settings by key. */
int bs_store_settings_list(bs_store *s, json_t **out, bs_err *err);
/* Creates or updates a setting. type: "integer", "float", "boolean",
 * "string" or "json" (NULL: keep the existing type, or infer from value);
 * value must match it. description may be NULL (kept). */
int bs_store_settings_put(bs_store *s, const char *key, const json_t *value, const char *type,
                          const char *description, const char *updated_by, json_t **out,
                          bs_err *err);
int bs_store_settings_delete(bs_store *s, const char *key, bs_err *err);
/* Convenience readers: the value, or dflt when absent or of another type. */
int64_t bs_store_settings_int(bs_store *s, const char *key, int64_t dflt);
bool bs_store_settings_bool(bs_store *s, const char *key, bool dflt);

/* ───────────────────────── privacy, backup, migration ─────────────────── */

typedef struct bs_purge_counts {
    int64_t sessions, tasks, logs, api_keys;
} bs_purge_counts;
/* GDPR deletion: removes every session of api_key_id, every task it owns
 * (api_key_id or created_by one of its sessions), every log of it or its
 * sessions, and the key itself when delete_key. Counts go to *out. */
int bs_store_purge_api_key(bs_store *s, const char *api_key_id, bool delete_key,
                           bs_purge_counts *out, bs_err *err);

/* Consistent snapshot while serving. SQLite: online backup API into a
 * SQLite file; MongoDB: JSON lines {"collection": ..., "doc": ...}. */
int bs_store_backup(bs_store *s, const char *path, bs_err *err);
/* Replaces the whole content of the store with a backup made by
 * bs_store_backup on the same engine. */
int bs_store_restore(bs_store *s, const char *path, bs_err *err);
/* Writes DIR/<collection>.jsonl for each collection (portable between
 * engines, dates ISO, hashes kept). *counts (may be NULL): {collection: n}. */
int bs_store_export(bs_store *s, const char *dir, json_t **counts, bs_err *err);
/* Reads DIR/<collection>.jsonl files (absent files are skipped), validating
 * every document and keeping _id; existing _ids are replaced. Errors:
 * BS_ENOTFOUND (no directory dir), BS_EINVAL (dir is not a directory). */
int bs_store_import(bs_store *s, const char *dir, json_t **counts, bs_err *err);

#ifdef __cplusplus
}
#endif
#endif
