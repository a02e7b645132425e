/* MongoDB collections as the seed defines them: the $jsonSchema validators
 * and every index (createIndex exactly as the seed writes them, unique where
 * it says so, TTL for retention), created or updated idempotently at open. */
#include "store/mongo_int.h"

#include <stdio.h>
#include <string.h>

static const char *cname(bs_coll c)
{
    return bs_store_colls[c].name;
}

/* The seed's $jsonSchema for custom_tasks, verbatim, and the rules we
 * derived for the other collections (the store checks the same rules in
 * schema.c before any write; the validators guard other writers). */
static const char *const validators[BS_NCOLL] = {
    [BS_COLL_TASKS] =
        "{\"$jsonSchema\": {\"bsonType\": \"object\","
        " \"required\": [\"name\", \"model_name\", \"function_code\", \"created_at\"],"
        " \"properties\": {"
        "  \"name\": {\"bsonType\": \"string\", \"minLength\": 1, \"maxLength\": 100},"
        "  \"description\": {\"bsonType\": \"string\", \"maxLength\": 500},"
        "  \"tags\": {\"bsonType\": \"array\", \"items\": {\"bsonType\": \"string\"}, "
        "\"maxItems\": 10},"
        "  \"model_name\": {\"bsonType\": \"string\", \"pattern\": \"^[a-zA-Z0-9\\\\-_/]+$\"}}}}",
    [BS_COLL_KEYS] =
        "{\"$jsonSchema\": {\"bsonType\": \"object\","
        " \"required\": [\"api_key\", \"name\", \"created_at\", \"is_active\"],"
        " \"properties\": {"
        "  \"name\": {\"bsonType\": \"string\", \"minLength\": 1, \"maxLength\": 100},"
        "  \"is_active\": {\"bsonType\": \"bool\"},"
        "  \"permissions\": {\"bsonType\": \"array\", \"items\": {\"enum\": [\"tasks:execute\","
        "   \"tasks:save\", \"models:download\", \"admin:read\", \"admin:write\"]}},"
        "  \"rate_limits\": {\"bsonType\": \"object\", \"additionalProperties\": false, "
        "\"properties\": {"
        "   \"requests_per_minute\": {\"bsonType\": \"long\", \"minimum\": 1},"
        "   \"requests_per_hour\": {\"bsonType\": \"long\", \"minimum\": 1},"
        "   \"custom_tasks_per_hour\": {\"bsonType\": \"long\", \"minimum\": 1}}}}}}",
    [BS_COLL_SESSIONS] = "{\"$jsonSchema\": {\"bsonType\": \"object\","
                         " \"required\": [\"session_id\", \"api_key_id\", \"created_at\", "
                         "\"expires_at\", \"is_active\"],"
                         " \"properties\": {\"api_key_id\": {\"bsonType\": \"objectId\"},"
                         "  \"expires_at\": {\"bsonType\": \"date\"}, \"activity_log\": "
                         "{\"bsonType\": \"array\"}}}}",
    [BS_COLL_MODELS] = "{\"$jsonSchema\": {\"bsonType\": \"object\", \"required\": "
                       "[\"model_name\", \"task_type\"],"
                       " \"properties\": {\"model_name\": {\"bsonType\": \"string\", \"pattern\": "
                       "\"^[a-zA-Z0-9\\\\-_/]+$\"},"
                       "  \"file_size\": {\"bsonType\": \"long\", \"minimum\": 0},"
                       "  \"cache_priority\": {\"enum\": [\"low\", \"normal\", \"high\"]}}}}",
    [BS_COLL_LOGS] = "{\"$jsonSchema\": {\"bsonType\": \"object\","
                     " \"required\": [\"task_type\", \"model_name\", \"execution_time\", "
                     "\"status\", \"timestamp\"],"
                     " \"properties\": {\"status\": {\"enum\": [\"success\", \"error\"]},"
                     "  \"execution_time\": {\"bsonType\": \"double\", \"minimum\": 0},"
                     "  \"timestamp\": {\"bsonType\": \"date\"}}}}",
    [BS_COLL_SETTINGS] =
        "{\"$jsonSchema\": {\"bsonType\": \"object\","
        " \"required\": [\"setting_key\", \"setting_value\", \"setting_type\", \"created_at\"],"
        " \"properties\": {\"setting_type\": {\"enum\": [\"integer\", \"float\", \"boolean\", "
        "\"string\","
        "  \"json\"]}}}}",
};

typedef struct index_spec {
    bs_coll c;
    const char *keys; /* as the seed writes them */
    bool unique;
    const char *ttl_setting; /* expireAfterSeconds = setting days * 86400 */
    int64_t ttl_days;
} index_spec;

static const index_spec indexes[] = {
    {BS_COLL_TASKS, "{\"name\": \"text\", \"description\": \"text\"}", false, NULL, 0},
    {BS_COLL_TASKS, "{\"tags\": 1, \"model_name\": 1}", false, NULL, 0},
    {BS_COLL_TASKS, "{\"created_at\": -1}", false, NULL, 0},
    {BS_COLL_TASKS, "{\"usage_count\": -1}", false, NULL, 0},
    {BS_COLL_TASKS, "{\"created_by\": 1, \"created_at\": -1}", false, NULL, 0},
    {BS_COLL_TASKS, "{\"api_key_id\": 1, \"created_at\": -1}", false, NULL,
     0}, /* ours: key's tasks */
    {BS_COLL_TASKS, "{\"is_public\": 1, \"usage_count\": -1}", false, NULL, 0}, /* ours: popular */
    {BS_COLL_KEYS, "{\"api_key\": 1}", true, NULL, 0},
    {BS_COLL_KEYS, "{\"is_active\": 1, \"last_used\": -1}", false, NULL, 0},
    {BS_COLL_SESSIONS, "{\"session_id\": 1}", true, NULL, 0},
    {BS_COLL_SESSIONS, "{\"expires_at\": 1}", false, "session_retention_days", 30},
    {BS_COLL_SESSIONS, "{\"is_active\": 1, \"last_activity\": -1}", false, NULL, 0},
    {BS_COLL_SESSIONS, "{\"api_key_id\": 1}", false, NULL, 0}, /* ours: purge */
    {BS_COLL_MODELS, "{\"model_name\": 1, \"task_type\": 1}", true, NULL, 0},
    {BS_COLL_MODELS, "{\"last_accessed\": 1}", false, NULL, 0},
    {BS_COLL_MODELS, "{\"access_count\": -1}", false, NULL, 0},
    {BS_COLL_LOGS, "{\"timestamp\": -1}", false, "log_retention_days", 90},
    {BS_COLL_LOGS, "{\"session_id\": 1, \"timestamp\": -1}", false, NULL, 0},
    {BS_COLL_LOGS, "{\"task_type\": 1, \"model_name\": 1, \"timestamp\": -1}", false, NULL, 0},
    {BS_COLL_LOGS, "{\"api_key_id\": 1}", false, NULL, 0}, /* ours: purge */
    {BS_COLL_SETTINGS, "{\"setting_key\": 1}", true, NULL, 0},
};

/* MongoDB's default index name: "field_dir" joined by '_'. */
static void index_name(const bson_t *keys, char *out, size_t len)
{
    bson_iter_t it;
    size_t n = 0;
    out[0] = 0;
    if (!bson_iter_init(&it, keys)) return;
    while (bson_iter_next(&it) && n < len) {
        if (BSON_ITER_HOLDS_UTF8(&it))
            n += (size_t)snprintf(out + n, len - n, "%s%s_%s", n ? "_" : "", bson_iter_key(&it),
                                  bson_iter_utf8(&it, NULL));
        else
            n += (size_t)snprintf(out + n, len - n, "%s%s_%d", n ? "_" : "", bson_iter_key(&it),
                                  (int)bson_iter_as_int64(&it));
    }
}

static int run_command(mongoc_database_t *db, bson_t *cmd, const char *what, bs_err *err,
                       int ignore_code)
{
    bson_t reply;
    bson_error_t e;
    bool ok = mongoc_database_write_command_with_opts(db, cmd, NULL, &reply, &e);
    bson_destroy(&reply);
    bson_destroy(cmd);
    if (!ok && (int)e.code == ignore_code) return 1;
    return ok ? 0 : bs_mg_fail(&e, what, err);
}

static int setup_collection(bs_store *s, mongoc_database_t *db, bs_coll c, bs_err *err)
{
    bson_error_t e;
    bson_t *validator = bson_new_from_json((const uint8_t *)validators[c], -1, &e);
    if (!validator)
        return bs_err_set(err, BS_EINTERNAL, "validator of %s: %s", cname(c), e.message);
    bson_t *cmd = bson_new();
    BSON_APPEND_UTF8(cmd, "create", cname(c));
    BSON_APPEND_DOCUMENT(cmd, "validator", validator);
    int rc = run_command(db, cmd, cname(c), err, 48 /* NamespaceExists */);
    if (rc == 1) { /* created earlier: bring its validator up to date */
        cmd = bson_new();
        BSON_APPEND_UTF8(cmd, "collMod", cname(c));
        BSON_APPEND_DOCUMENT(cmd, "validator", validator);
        rc = run_command(db, cmd, cname(c), err, -1);
    }
    bson_destroy(validator);
    if (rc) return rc;
    for (size_t i = 0; i < sizeof indexes / sizeof *indexes; i++) {
        const index_spec *x = &indexes[i];
        if (x->c != c) continue;
        bson_t *keys = bson_new_from_json((const uint8_t *)x->keys, -1, &e);
        if (!keys) return bs_err_set(err, BS_EINTERNAL, "index of %s: %s", cname(c), e.message);
        char name[128];
        index_name(keys, name, sizeof name);
        int64_t ttl = 0;
        if (x->ttl_setting) {
            int64_t days = bs_store_settings_int(s, x->ttl_setting, x->ttl_days);
            ttl = (days > 0 ? days : x->ttl_days) * 86400;
        }
        bson_t idx, arr;
        cmd = bson_new();
        BSON_APPEND_UTF8(cmd, "createIndexes", cname(c));
        bson_append_array_begin(cmd, "indexes", -1, &arr);
        bson_append_document_begin(&arr, "0", -1, &idx);
        BSON_APPEND_DOCUMENT(&idx, "key", keys);
        BSON_APPEND_UTF8(&idx, "name", name);
        if (x->unique) BSON_APPEND_BOOL(&idx, "unique", true);
        if (ttl) BSON_APPEND_INT64(&idx, "expireAfterSeconds", ttl);
        bson_append_document_end(&arr, &idx);
        bson_append_array_end(cmd, &arr);
        rc = run_command(db, cmd, cname(c), err, 85 /* IndexOptionsConflict: TTL changed */);
        if (rc == 1) {
            bson_t index;
            cmd = bson_new();
            BSON_APPEND_UTF8(cmd, "collMod", cname(c));
            bson_append_document_begin(cmd, "index", -1, &index);
            BSON_APPEND_UTF8(&index, "name", name);
            BSON_APPEND_INT64(&index, "expireAfterSeconds", ttl);
            bson_append_document_end(cmd, &index);
            rc = run_command(db, cmd, cname(c), err, -1);
        }
        bson_destroy(keys);
        if (rc) return rc;
    }
    return 0;
}

int bs_mg_setup(bs_store *s, mongoc_database_t *db, bs_err *err)
{
    /* settings first: the TTL of the other collections comes from them */
    int rc = setup_collection(s, db, BS_COLL_SETTINGS, err);
    for (int c = 0; c < BS_NCOLL && !rc; c++)
        if (c != BS_COLL_SETTINGS) rc = setup_collection(s, db, (bs_coll)c, err);
    return rc;
}
