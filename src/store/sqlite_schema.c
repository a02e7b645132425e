/* The SQLite form of the six collections: one table per collection with a
 * column per seed field, every seed index (FTS5 for the text index, a side
 * table for the multikey tags index), created idempotently at open. */
#include "store/sqlite_int.h"

#include <stdio.h>

static const char *coltype(bs_ftype t)
{
    switch (t) {
    case BS_F_INT:
    case BS_F_BOOL:
    case BS_F_DATE:
        return "INTEGER";
    case BS_F_NUM:
        return "REAL";
    default:
        return "TEXT";
    }
}

/* Seed indexes plus the ones our own queries need (api_key_id lookups for
 * visibility and GDPR purge). Names are stable so IF NOT EXISTS works. */
static const char *const indexes =
    /* custom_tasks */
    "CREATE INDEX IF NOT EXISTS custom_tasks_created_at ON custom_tasks(created_at DESC);"
    "CREATE INDEX IF NOT EXISTS custom_tasks_usage_count ON custom_tasks(usage_count DESC);"
    "CREATE INDEX IF NOT EXISTS custom_tasks_created_by_created_at ON custom_tasks(created_by, "
    "created_at DESC);"
    "CREATE INDEX IF NOT EXISTS custom_tasks_api_key_id_created_at ON custom_tasks(api_key_id, "
    "created_at DESC);"
    "CREATE INDEX IF NOT EXISTS custom_tasks_is_public_usage_count ON custom_tasks(is_public, "
    "usage_count DESC);"
    "CREATE INDEX IF NOT EXISTS custom_tasks_tags_model_name ON custom_tasks_tags(tag, model_name);"
    "CREATE INDEX IF NOT EXISTS custom_tasks_tags_task ON custom_tasks_tags(task);"
    /* api_keys */
    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_api_key ON api_keys(api_key);"
    "CREATE INDEX IF NOT EXISTS api_keys_is_active_last_used ON api_keys(is_active, last_used "
    "DESC);"
    /* user_sessions */
    "CREATE UNIQUE INDEX IF NOT EXISTS user_sessions_session_id ON user_sessions(session_id);"
    "CREATE INDEX IF NOT EXISTS user_sessions_expires_at ON user_sessions(expires_at);"
    "CREATE INDEX IF NOT EXISTS user_sessions_is_active_last_activity ON user_sessions(is_active, "
    "last_activity DESC);"
    "CREATE INDEX IF NOT EXISTS user_sessions_api_key_id ON user_sessions(api_key_id);"
    /* model_cache */
    "CREATE UNIQUE INDEX IF NOT EXISTS model_cache_model_name_task_type ON model_cache(model_name, "
    "task_type);"
    "CREATE INDEX IF NOT EXISTS model_cache_last_accessed ON model_cache(last_accessed);"
    "CREATE INDEX IF NOT EXISTS model_cache_access_count ON model_cache(access_count DESC);"
    /* execution_logs */
    "CREATE INDEX IF NOT EXISTS execution_logs_timestamp ON execution_logs(timestamp DESC);"
    "CREATE INDEX IF NOT EXISTS execution_logs_session_id_timestamp ON execution_logs(session_id, "
    "timestamp DESC);"
    "CREATE INDEX IF NOT EXISTS execution_logs_task_type_model_name_timestamp ON "
    "execution_logs(task_type, model_name, timestamp DESC);"
    "CREATE INDEX IF NOT EXISTS execution_logs_api_key_id ON execution_logs(api_key_id);"
    /* system_settings */
    "CREATE UNIQUE INDEX IF NOT EXISTS system_settings_setting_key ON "
    "system_settings(setting_key);";

/* The text index and the tags index follow the table through triggers, so
 * every write path (including import and restore) keeps them exact. */
static const char *const tasks_extra =
    "CREATE VIRTUAL TABLE IF NOT EXISTS tasks_fts USING fts5(name, description, "
    "content='custom_tasks', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics "
    "2');"
    "CREATE TABLE IF NOT EXISTS custom_tasks_tags(tag TEXT NOT NULL, model_name TEXT, "
    "task INTEGER NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS custom_tasks_ai AFTER INSERT ON custom_tasks BEGIN "
    " INSERT INTO tasks_fts(rowid, name, description) VALUES (new.rowid, new.name, "
    "  coalesce(new.description, ''));"
    " INSERT INTO custom_tasks_tags(tag, model_name, task) SELECT value, new.model_name, new.rowid "
    "  FROM json_each(coalesce(new.tags, '[]'));"
    "END;"
    "CREATE TRIGGER IF NOT EXISTS custom_tasks_ad AFTER DELETE ON custom_tasks BEGIN "
    " INSERT INTO tasks_fts(tasks_fts, rowid, name, description) VALUES ('delete', old.rowid, "
    "  old.name, coalesce(old.description, ''));"
    " DELETE FROM custom_tasks_tags WHERE task = old.rowid;"
    "END;"
    "CREATE TRIGGER IF NOT EXISTS custom_tasks_au AFTER UPDATE OF name, description, tags, "
    "model_name ON custom_tasks BEGIN "
    " INSERT INTO tasks_fts(tasks_fts, rowid, name, description) VALUES ('delete', old.rowid, "
    "  old.name, coalesce(old.description, ''));"
    " INSERT INTO tasks_fts(rowid, name, description) VALUES (new.rowid, new.name, "
    "  coalesce(new.description, ''));"
    " DELETE FROM custom_tasks_tags WHERE task = old.rowid;"
    " INSERT INTO custom_tasks_tags(tag, model_name, task) SELECT value, new.model_name, new.rowid "
    "  FROM json_each(coalesce(new.tags, '[]'));"
    "END;";

int bs_sq_schema(bs_sq_conn *c, bs_err *err)
{
    bs_buf b;
    bs_buf_init(&b);
    for (int i = 0; i < BS_NCOLL; i++) {
        const bs_coll_desc *d = &bs_store_colls[i];
        bs_buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (rowid INTEGER PRIMARY KEY", d->name);
        for (int f = 0; f < d->nfields; f++)
            bs_buf_printf(&b, ", \"%s\" %s%s", d->fields[f].name, coltype(d->fields[f].type),
                          f == 0 ? " NOT NULL UNIQUE" : "");
        bs_buf_puts(&b, ");");
    }
    bs_buf_puts(&b, tasks_extra);
    bs_buf_puts(&b, indexes);
    bs_buf_puts(&b, "PRAGMA user_version=1;");
    if (b.oom) {
        bs_buf_free(&b);
        return bs_err_set(err, BS_ENOMEM, "sqlite schema: out of memory");
    }
    int rc = bs_sq_exec(c, b.data, err);
    bs_buf_free(&b);
    if (rc) bs_err_prefix(err, "creating the schema");
    return rc;
}
