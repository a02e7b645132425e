/* The data model of database-schema.md: the fields of each collection and the
 * validation rules (the seed's $jsonSchema for custom_tasks, and the rules we
 * derived for the other collections). Both engines validate through here. */
#include "store/internal.h"
#include "util/time.h"
#include "util/utf8.h"

#include <string.h>

#define F(n, t)                                                                                    \
    {                                                                                              \
        n, BS_F_##t                                                                                \
    }
static const bs_field tasks_f[] = {
    F("_id", OID),           F("name", STR),          F("description", STR),
    F("tags", JSON),         F("model_name", STR),    F("tokenizer_code", STR),
    F("model_code", STR),    F("function_code", STR), F("created_at", DATE),
    F("updated_at", DATE),   F("created_by", STR),    F("api_key_id", OID),
    F("usage_count", INT),   F("is_public", BOOL),    F("execution_stats", JSON),
    F("model_config", JSON),
};
static const bs_field keys_f[] = {
    F("_id", OID),          F("api_key", STR),      F("key_prefix", STR),   F("name", STR),
    F("description", STR),  F("created_at", DATE),  F("last_used", DATE),   F("is_active", BOOL),
    F("permissions", JSON), F("rate_limits", JSON), F("usage_stats", JSON),
};
static const bs_field sessions_f[] = {
    F("_id", OID),           F("session_id", STR),     F("api_key_id", OID),
    F("created_at", DATE),   F("last_activity", DATE), F("expires_at", DATE),
    F("ip_address", STR),    F("user_agent", STR),     F("is_active", BOOL),
    F("activity_log", JSON),
};
static const bs_field models_f[] = {
    F("_id", OID),          F("model_name", STR),     F("model_type", STR),
    F("task_type", STR),    F("download_url", STR),   F("local_path", STR),
    F("file_size", INT),    F("download_date", DATE), F("last_accessed", DATE),
    F("access_count", INT), F("model_config", JSON),  F("checksum", STR),
    F("is_cached", BOOL),   F("cache_priority", STR),
};
static const bs_field logs_f[] = {
    F("_id", OID),        F("session_id", STR),     F("api_key_id", OID),   F("task_type", STR),
    F("task_id", OID),    F("model_name", STR),     F("input_text", STR),   F("input_length", INT),
    F("input_hash", STR), F("execution_time", NUM), F("memory_usage", NUM), F("gpu_usage", NUM),
    F("status", STR),     F("error_message", STR),  F("result_size", INT),  F("timestamp", DATE),
    F("ip_address", STR), F("user_agent", STR),
};
static const bs_field settings_f[] = {
    F("_id", OID),         F("setting_key", STR), F("setting_value", JSON), F("setting_type", STR),
    F("description", STR), F("created_at", DATE), F("updated_at", DATE),    F("updated_by", STR),
};
#undef F

#define C(n, f)                                                                                    \
    {                                                                                              \
        n, f, (int)(sizeof f / sizeof *f)                                                          \
    }
const bs_coll_desc bs_store_colls[BS_NCOLL] = {
    C("custom_tasks", tasks_f), C("api_keys", keys_f),       C("user_sessions", sessions_f),
    C("model_cache", models_f), C("execution_logs", logs_f), C("system_settings", settings_f),
};
#undef C

const bs_field *bs_store_field(bs_coll c, const char *name)
{
    const bs_coll_desc *d = &bs_store_colls[c];
    for (int i = 0; i < d->nfields; i++)
        if (!strcmp(d->fields[i].name, name)) return &d->fields[i];
    return NULL;
}

int bs_store_coll_by_name(const char *name)
{
    for (int i = 0; i < BS_NCOLL; i++)
        if (!strcmp(bs_store_colls[i].name, name)) return i;
    return -1;
}

void bs_store_strip_nulls(json_t *doc)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(doc, tmp, k, v)
    {
        if (json_is_null(v)) json_object_del(doc, k);
    }
}

static int type_error(bs_err *err, const char *coll, const char *field, const char *want)
{
    return bs_err_set(err, BS_EINVAL, "%s: field '%s' must be %s", coll, field, want);
}

/* Type of each top-level field; unknown fields are refused so that a typo
 * never lands silently in the database. */
static int check_types(bs_coll c, const json_t *doc, bs_err *err)
{
    const char *cn = bs_store_colls[c].name;
    if (!json_is_object(doc))
        return bs_err_set(err, BS_EINVAL, "%s: document must be an object", cn);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)doc, k, v)
    {
        const bs_field *f = bs_store_field(c, k);
        if (!f) return bs_err_set(err, BS_EINVAL, "%s: unknown field '%s'", cn, k);
        if (json_is_null(v)) continue;
        switch (f->type) {
        case BS_F_STR:
            if (!json_is_string(v)) return type_error(err, cn, k, "a string");
            if (bs_utf8_validate(json_string_value(v), json_string_length(v), NULL) ||
                strlen(json_string_value(v)) != json_string_length(v))
                return bs_err_set(err, BS_EINVAL, "%s: field '%s' is not valid UTF-8 text", cn, k);
            break;
        case BS_F_INT:
            if (!json_is_integer(v)) return type_error(err, cn, k, "an integer");
            break;
        case BS_F_NUM:
            if (!json_is_number(v)) return type_error(err, cn, k, "a number");
            break;
        case BS_F_BOOL:
            if (!json_is_boolean(v)) return type_error(err, cn, k, "a boolean");
            break;
        case BS_F_DATE: {
            int64_t ms;
            if (!json_is_string(v) || bs_time_parse_iso8601(json_string_value(v), &ms))
                return type_error(err, cn, k, "an ISO-8601 UTC date string");
            break;
        }
        case BS_F_OID:
            if (!json_is_string(v) || !bs_store_oid_valid(json_string_value(v)))
                return type_error(err, cn, k, "a 24-hex ObjectId string");
            break;
        case BS_F_JSON:
            break;
        }
    }
    return 0;
}

static int require(const char *cn, const json_t *doc, const char *const *names, bs_err *err)
{
    for (; *names; names++) {
        json_t *v = json_object_get(doc, *names);
        if (!v || json_is_null(v))
            return bs_err_set(err, BS_EINVAL, "%s: field '%s' is required", cn, *names);
    }
    return 0;
}

static size_t chars(const json_t *v)
{
    return bs_utf8_count(json_string_value(v), json_string_length(v));
}

static int max_chars(const char *cn, const json_t *doc, const char *field, size_t min, size_t max,
                     bs_err *err)
{
    json_t *v = json_object_get(doc, field);
    if (!json_is_string(v)) return 0;
    size_t n = chars(v);
    if (n < min || n > max)
        return bs_err_set(err, BS_EINVAL, "%s: field '%s' must be %zu..%zu characters (got %zu)",
                          cn, field, min, max, n);
    return 0;
}

static int object_field(const char *cn, const json_t *doc, const char *field, bs_err *err)
{
    json_t *v = json_object_get(doc, field);
    if (v && !json_is_null(v) && !json_is_object(v)) return type_error(err, cn, field, "an object");
    return 0;
}

static bool model_name_ok(const char *s)
{
    if (!*s) return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '/'))
            return false;
    }
    return true;
}

static int check_model_name(const char *cn, const json_t *doc, bs_err *err)
{
    json_t *v = json_object_get(doc, "model_name");
    if (json_is_string(v) && !model_name_ok(json_string_value(v)))
        return bs_err_set(err, BS_EINVAL,
                          "%s: field 'model_name' must match ^[a-zA-Z0-9\\-_/]+$ (got \"%.80s\")",
                          cn, json_string_value(v));
    return 0;
}

static int check_tasks(const json_t *doc, bs_err *err)
{
    const char *cn = "custom_tasks";
    static const char *const req[] = {"name", "model_name", "function_code", "created_at", NULL};
    int rc;
    if ((rc = require(cn, doc, req, err))) return rc;
    if ((rc = max_chars(cn, doc, "name", 1, 100, err))) return rc;
    if ((rc = max_chars(cn, doc, "description", 0, 500, err))) return rc;
    if ((rc = check_model_name(cn, doc, err))) return rc;
    json_t *tags = json_object_get(doc, "tags");
    if (tags && !json_is_null(tags)) {
        if (!json_is_array(tags)) return type_error(err, cn, "tags", "an array of strings");
        if (json_array_size(tags) > 10)
            return bs_err_set(err, BS_EINVAL,
                              "%s: field 'tags' must have at most 10 items (got %zu)", cn,
                              json_array_size(tags));
        size_t i;
        json_t *t;
        json_array_foreach(tags, i, t)
        {
            if (!json_is_string(t)) return type_error(err, cn, "tags", "an array of strings");
            if (chars(t) < 1 || chars(t) > 50)
                return bs_err_set(err, BS_EINVAL, "%s: tags[%zu] must be 1..50 characters", cn, i);
        }
    }
    json_t *uc = json_object_get(doc, "usage_count");
    if (json_is_integer(uc) && json_integer_value(uc) < 0)
        return bs_err_set(err, BS_EINVAL, "%s: field 'usage_count' must be >= 0", cn);
    if ((rc = object_field(cn, doc, "execution_stats", err))) return rc;
    return object_field(cn, doc, "model_config", err);
}

static const char *const permissions[] = {"tasks:execute", "tasks:save",  "models:download",
                                          "admin:read",    "admin:write", NULL};

static int check_keys(const json_t *doc, bs_err *err)
{
    const char *cn = "api_keys";
    static const char *const req[] = {"api_key", "name", "created_at", "is_active", NULL};
    int rc;
    if ((rc = require(cn, doc, req, err))) return rc;
    if ((rc = max_chars(cn, doc, "name", 1, 100, err))) return rc;
    if ((rc = max_chars(cn, doc, "description", 0, 500, err))) return rc;
    json_t *p = json_object_get(doc, "permissions");
    if (p && !json_is_null(p)) {
        if (!json_is_array(p)) return type_error(err, cn, "permissions", "an array of strings");
        size_t i;
        json_t *v;
        json_array_foreach(p, i, v)
        {
            bool known = false;
            for (const char *const *k = permissions; json_is_string(v) && *k; k++)
                if (!strcmp(*k, json_string_value(v))) known = true;
            if (!known)
                return bs_err_set(err, BS_EINVAL,
                                  "%s: permissions[%zu] must be one of tasks:execute, tasks:save, "
                                  "models:download, admin:read, admin:write",
                                  cn, i);
        }
    }
    json_t *rl = json_object_get(doc, "rate_limits");
    if (rl && !json_is_null(rl)) {
        if (!json_is_object(rl)) return type_error(err, cn, "rate_limits", "an object");
        const char *k;
        json_t *v;
        json_object_foreach(rl, k, v)
        {
            if (strcmp(k, "requests_per_minute") && strcmp(k, "requests_per_hour") &&
                strcmp(k, "custom_tasks_per_hour"))
                return bs_err_set(err, BS_EINVAL, "%s: rate_limits.%s is not a known limit", cn, k);
            if (!json_is_integer(v) || json_integer_value(v) <= 0)
                return bs_err_set(err, BS_EINVAL, "%s: rate_limits.%s must be a positive integer",
                                  cn, k);
        }
    }
    return object_field(cn, doc, "usage_stats", err);
}

static int check_sessions(const json_t *doc, bs_err *err)
{
    const char *cn = "user_sessions";
    static const char *const req[] = {"session_id", "api_key_id", "created_at",
                                      "expires_at", "is_active",  NULL};
    int rc;
    if ((rc = require(cn, doc, req, err))) return rc;
    json_t *log = json_object_get(doc, "activity_log");
    if (log && !json_is_null(log)) {
        if (!json_is_array(log)) return type_error(err, cn, "activity_log", "an array of objects");
        size_t i;
        json_t *e;
        json_array_foreach(log, i, e)
        {
            if (!json_is_object(e) || !json_is_string(json_object_get(e, "action")))
                return bs_err_set(err, BS_EINVAL,
                                  "%s: activity_log[%zu] must be an object with an 'action'", cn,
                                  i);
        }
    }
    return 0;
}

static int check_models(const json_t *doc, bs_err *err)
{
    const char *cn = "model_cache";
    static const char *const req[] = {"model_name", "task_type", NULL};
    int rc;
    if ((rc = require(cn, doc, req, err))) return rc;
    if ((rc = check_model_name(cn, doc, err))) return rc;
    json_t *v = json_object_get(doc, "file_size");
    if (json_is_integer(v) && json_integer_value(v) < 0)
        return bs_err_set(err, BS_EINVAL, "%s: field 'file_size' must be >= 0", cn);
    v = json_object_get(doc, "cache_priority");
    if (json_is_string(v) && strcmp(json_string_value(v), "low") &&
        strcmp(json_string_value(v), "normal") && strcmp(json_string_value(v), "high"))
        return bs_err_set(err, BS_EINVAL, "%s: field 'cache_priority' must be low, normal or high",
                          cn);
    return object_field(cn, doc, "model_config", err);
}

static int check_logs(const json_t *doc, bs_err *err)
{
    const char *cn = "execution_logs";
    static const char *const req[] = {"task_type", "model_name", "execution_time",
                                      "status",    "timestamp",  NULL};
    int rc;
    if ((rc = require(cn, doc, req, err))) return rc;
    json_t *v = json_object_get(doc, "status");
    if (strcmp(json_string_value(v), "success") && strcmp(json_string_value(v), "error"))
        return bs_err_set(err, BS_EINVAL, "%s: field 'status' must be \"success\" or \"error\"",
                          cn);
    if (json_number_value(json_object_get(doc, "execution_time")) < 0)
        return bs_err_set(err, BS_EINVAL, "%s: field 'execution_time' must be >= 0", cn);
    return max_chars(cn, doc, "task_type", 1, 100, err);
}

int bs_store_setting_check(const char *type, const json_t *value, bs_err *err)
{
    bool ok;
    if (!strcmp(type, "integer"))
        ok = json_is_integer(value);
    else if (!strcmp(type, "float"))
        ok = json_is_number(value);
    else if (!strcmp(type, "boolean"))
        ok = json_is_boolean(value);
    else if (!strcmp(type, "string"))
        ok = json_is_string(value);
    else if (!strcmp(type, "json"))
        ok = value != NULL;
    else
        return bs_err_set(err, BS_EINVAL,
                          "system_settings: setting_type must be integer, float, boolean, string "
                          "or json (got \"%.40s\")",
                          type);
    if (!ok)
        return bs_err_set(err, BS_EINVAL,
                          "system_settings: setting_value does not match setting_type %s", type);
    return 0;
}

static int check_settings(const json_t *doc, bs_err *err)
{
    const char *cn = "system_settings";
    static const char *const req[] = {"setting_key", "setting_type", "created_at", NULL};
    int rc;
    if ((rc = require(cn, doc, req, err))) return rc;
    if ((rc = max_chars(cn, doc, "setting_key", 1, 100, err))) return rc;
    json_t *v = json_object_get(doc, "setting_value");
    if (!v) return bs_err_set(err, BS_EINVAL, "%s: field 'setting_value' is required", cn);
    return bs_store_setting_check(json_string_value(json_object_get(doc, "setting_type")), v, err);
}

int bs_store_validate(bs_coll c, const json_t *doc, bs_err *err)
{
    int rc = check_types(c, doc, err);
    if (rc) return rc;
    switch (c) {
    case BS_COLL_TASKS:
        return check_tasks(doc, err);
    case BS_COLL_KEYS:
        return check_keys(doc, err);
    case BS_COLL_SESSIONS:
        return check_sessions(doc, err);
    case BS_COLL_MODELS:
        return check_models(doc, err);
    case BS_COLL_LOGS:
        return check_logs(doc, err);
    case BS_COLL_SETTINGS:
        return check_settings(doc, err);
    default:
        return bs_err_set(err, BS_EINTERNAL, "unknown collection");
    }
}
