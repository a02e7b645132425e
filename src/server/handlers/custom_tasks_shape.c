/* The shapes of a saved task at the API's edge: the field rules a task must
 * meet before it reaches the store (ours and the store's own, so that a
 * refusal names the field), and the translation to and from the original
 * product's shape (model_id, tags as one comma-separated string). Every
 * task here comes from a client or a file and is treated as hostile. */
#include "server/handlers/custom_tasks.h"
#include "server/context.h"
#include "server/validate.h"
#include "util/time.h"

#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CODE_FIELDS(flag)                                                                          \
    {"tokenizer_code", BS_T_STRING, BS_NULLABLE, 0, BS_CTASK_CODE_MAX, NULL},                      \
        {"model_code", BS_T_STRING, BS_NULLABLE, 0, BS_CTASK_CODE_MAX, NULL},                      \
    {                                                                                              \
        "function_code", BS_T_STRING, flag, 1, BS_CTASK_CODE_MAX, NULL                             \
    }

static const bs_field_spec save_fields[] = {
    {"name", BS_T_STRING, BS_REQUIRED, 1, 100, NULL},
    {"description", BS_T_STRING, BS_NULLABLE, 0, 500, NULL},
    {"tags", BS_T_STRINGS, BS_NULLABLE, 0, 10, NULL},
    {"model_name", BS_T_STRING, BS_REQUIRED, 1, 200, NULL},
    CODE_FIELDS(BS_REQUIRED),
    {"is_public", BS_T_BOOL, 0, 0, 0, NULL},
    {"model_config", BS_T_OBJECT, BS_NULLABLE, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* PUT: any content field; null removes an optional one. */
static const bs_field_spec patch_fields[] = {
    {"name", BS_T_STRING, 0, 1, 100, NULL},
    {"description", BS_T_STRING, BS_NULLABLE, 0, 500, NULL},
    {"tags", BS_T_STRINGS, BS_NULLABLE, 0, 10, NULL},
    {"model_name", BS_T_STRING, 0, 1, 200, NULL},
    CODE_FIELDS(0),
    {"is_public", BS_T_BOOL, 0, 0, 0, NULL},
    {"model_config", BS_T_OBJECT, BS_NULLABLE, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* A task of our export file: content, counters and dates; its identity
 * (_id, owner) is accepted and replaced by the importer's. */
static const bs_field_spec import_fields[] = {
    {"name", BS_T_STRING, BS_REQUIRED, 1, 100, NULL},
    {"description", BS_T_STRING, BS_NULLABLE, 0, 500, NULL},
    {"tags", BS_T_STRINGS, BS_NULLABLE, 0, 10, NULL},
    {"model_name", BS_T_STRING, BS_REQUIRED, 1, 200, NULL},
    CODE_FIELDS(BS_REQUIRED),
    {"is_public", BS_T_BOOL, BS_NULLABLE, 0, 0, NULL},
    {"model_config", BS_T_OBJECT, BS_NULLABLE, 0, 0, NULL},
    {"usage_count", BS_T_INT, BS_NULLABLE, 0, 1e15, NULL},
    {"execution_stats", BS_T_OBJECT, BS_NULLABLE, 0, 0, NULL},
    {"created_at", BS_T_STRING, BS_NULLABLE, 1, 40, NULL},
    {"updated_at", BS_T_STRING, BS_NULLABLE, 1, 40, NULL},
    {"_id", BS_T_ANY, BS_NULLABLE, 0, 0, NULL},
    {"api_key_id", BS_T_ANY, BS_NULLABLE, 0, 0, NULL},
    {"created_by", BS_T_ANY, BS_NULLABLE, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* The original's SaveTaskRequest; its export file adds id and dates. */
static const bs_field_spec original_fields[] = {
    {"name", BS_T_STRING, BS_REQUIRED, 1, 100, NULL},
    {"description", BS_T_STRING, BS_REQUIRED | BS_NULLABLE, 0, 500, NULL},
    {"model_id", BS_T_STRING, BS_REQUIRED, 1, 200, NULL},
    CODE_FIELDS(BS_REQUIRED),
    {"tags", BS_T_STRING, BS_NULLABLE, 0, 600, NULL},
    {"batch_mode", BS_T_BOOL, BS_NULLABLE, 0, 0, NULL},
    {"id", BS_T_ANY, BS_NULLABLE, 0, 0, NULL},
    {"created_at", BS_T_ANY, BS_NULLABLE, 0, 0, NULL},
    {"updated_at", BS_T_ANY, BS_NULLABLE, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static int check_model_name(const char *s, const char *field, char *detail, size_t len)
{
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '/')) {
            snprintf(detail, len, "field '%s': \"%.80s\" must match ^[a-zA-Z0-9\\-_/]+$", field, s);
            return -1;
        }
    }
    return 0;
}

static int check_tags(const json_t *tags, char *detail, size_t len)
{
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t)
    {
        const char *s = json_string_value(t);
        size_t n = 0;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xc0) != 0x80;
        if (n < 1 || n > 50) {
            snprintf(detail, len, "field 'tags': item %zu has %zu characters, allowed 1 to 50", i,
                     n);
            return -1;
        }
        /* The original product keeps tags as one "a,b" string. */
        if (strchr(s, ',')) {
            snprintf(detail, len, "field 'tags': item %zu contains ',', which separates tags", i);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s, json_string_value(json_array_get(tags, j)))) {
                snprintf(detail, len, "field 'tags': item %zu repeats \"%.50s\"", i, s);
                return -1;
            }
    }
    return 0;
}

static int check_config(const json_t *cfg, char *detail, size_t len)
{
    char *s = json_dumps(cfg, JSON_COMPACT);
    size_t n = s ? strlen(s) : SIZE_MAX;
    free(s);
    if (n > BS_CTASK_CONFIG_MAX) {
        snprintf(detail, len, "field 'model_config' is %s; at most %d bytes of JSON",
                 n == SIZE_MAX ? "not serializable" : "too large", BS_CTASK_CONFIG_MAX);
        return -1;
    }
    return 0;
}

static int check_stats(const json_t *st, char *detail, size_t len)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)st, k, v)
    {
        double x = json_number_value(v);
        int ok;
        if (!strcmp(k, "total_executions"))
            ok = json_is_integer(v) && json_integer_value(v) >= 0;
        else if (!strcmp(k, "avg_execution_time"))
            ok = json_is_number(v) && isfinite(x) && x >= 0;
        else if (!strcmp(k, "success_rate"))
            ok = json_is_number(v) && x >= 0 && x <= 1;
        else {
            snprintf(detail, len,
                     "field 'execution_stats': unknown member '%.64s' (accepted: "
                     "avg_execution_time, success_rate, total_executions)",
                     k);
            return -1;
        }
        if (!ok) {
            snprintf(detail, len, "field 'execution_stats': '%s' must be %s", k,
                     !strcmp(k, "total_executions") ? "an integer >= 0"
                     : !strcmp(k, "success_rate")   ? "a number from 0 to 1"
                                                    : "a number >= 0");
            return -1;
        }
    }
    return 0;
}

int bs_ctask_check(const json_t *task, bs_ctask_mode mode, char *detail, size_t len)
{
    const bs_field_spec *spec = mode == BS_CTASK_SAVE    ? save_fields
                                : mode == BS_CTASK_PATCH ? patch_fields
                                                         : import_fields;
    if (bs_validate(task, spec, detail, len)) return -1;
    json_t *v = json_object_get(task, "model_name");
    if (json_is_string(v) && check_model_name(json_string_value(v), "model_name", detail, len))
        return -1;
    v = json_object_get(task, "tags");
    if (json_is_array(v) && check_tags(v, detail, len)) return -1;
    v = json_object_get(task, "model_config");
    if (json_is_object(v) && check_config(v, detail, len)) return -1;
    v = json_object_get(task, "execution_stats");
    if (json_is_object(v) && check_stats(v, detail, len)) return -1;
    static const char *const dates[] = {"created_at", "updated_at", NULL};
    for (const char *const *d = dates; mode == BS_CTASK_IMPORT && *d; d++) {
        int64_t ms;
        v = json_object_get(task, *d);
        if (json_is_string(v) && bs_time_parse_iso8601(json_string_value(v), &ms)) {
            snprintf(detail, len, "field '%s': \"%.40s\" is not an ISO-8601 UTC date", *d,
                     json_string_value(v));
            return -1;
        }
    }
    return 0;
}

bool bs_ctask_is_original(const json_t *body)
{
    return json_is_object(body) && json_object_get(body, "model_id") &&
           !json_object_get(body, "model_name");
}

/* "a, b,,c" -> ["a", "b", "c"]: the original's tags, trimmed, empties dropped. */
static json_t *split_tags(const char *s)
{
    json_t *out = json_array();
    while (s && *s) {
        const char *end = strchr(s, ',');
        const char *e = end ? end : s + strlen(s);
        const char *a = s, *b = e;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (b > a) json_array_append_new(out, json_stringn(a, (size_t)(b - a)));
        s = end ? end + 1 : e;
    }
    return out;
}

json_t *bs_ctask_from_original(const json_t *orig, bool export_file, char *detail, size_t len)
{
    (void)export_file; /* id and dates are accepted and dropped either way, as the original */
    if (bs_validate(orig, original_fields, detail, len)) return NULL;
    if (check_model_name(json_string_value(json_object_get(orig, "model_id")), "model_id", detail,
                         len))
        return NULL;
    json_t *t = json_object();
    static const char *const same[] = {"name",       "description",   "tokenizer_code",
                                       "model_code", "function_code", NULL};
    for (const char *const *k = same; *k; k++) {
        json_t *v = json_object_get(orig, *k);
        if (v && !json_is_null(v)) json_object_set(t, *k, v);
    }
    json_object_set(t, "model_name", json_object_get(orig, "model_id"));
    json_t *tags = split_tags(json_string_value(json_object_get(orig, "tags")));
    json_object_set_new(t, "tags", tags);
    json_t *bm = json_object_get(orig, "batch_mode");
    if (json_is_boolean(bm))
        json_object_set_new(t, "model_config", json_pack("{s:O}", "batch_mode", bm));
    if (json_array_size(tags) > 10) {
        snprintf(detail, len, "field 'tags' has %zu tags, allowed 0 to 10", json_array_size(tags));
        json_decref(t);
        return NULL;
    }
    if (check_tags(tags, detail, len)) {
        json_decref(t);
        return NULL;
    }
    return t;
}

json_t *bs_ctask_to_original(const json_t *doc)
{
    json_t *o = json_object();
    json_object_set(o, "id", json_object_get(doc, "_id"));
    static const char *const same[] = {"name",       "description",   "tokenizer_code",
                                       "model_code", "function_code", NULL};
    for (const char *const *k = same; *k; k++) {
        json_t *v = json_object_get(doc, *k);
        json_object_set_new(o, *k, v ? json_incref(v) : json_string(""));
    }
    json_object_set(o, "model_id", json_object_get(doc, "model_name"));
    json_t *tags = json_object_get(doc, "tags");
    if (json_array_size(tags)) {
        bs_buf b;
        bs_buf_init(&b);
        size_t i;
        json_t *t;
        json_array_foreach(tags, i, t)
        {
            if (i) bs_buf_putc(&b, ',');
            bs_buf_puts(&b, json_string_value(t));
        }
        json_object_set_new(o, "tags", json_stringn(b.data ? b.data : "", b.len));
        bs_buf_free(&b);
    } else {
        json_object_set_new(o, "tags", json_null());
    }
    json_object_set(o, "created_at", json_object_get(doc, "created_at"));
    json_object_set(o, "updated_at", json_object_get(doc, "updated_at"));
    json_t *bm = json_object_get(json_object_get(doc, "model_config"), "batch_mode");
    json_object_set_new(o, "batch_mode", json_is_boolean(bm) ? json_incref(bm) : json_null());
    return o;
}

const char *bs_ctask_viewer(const bs_request *req)
{
    return (req->auth.perms & BS_PERM_ADMIN_READ) ? NULL : req->auth.api_key_id;
}

int bs_ctask_list_viewer(bs_request *req, bs_response *res, const char **viewer)
{
    const char *all = bs_request_query(req, "all");
    *viewer = req->auth.api_key_id;
    if (!all || !strcmp(all, "false")) return 0;
    if (strcmp(all, "true")) {
        bs_reply_error(res, 400, "Invalid query parameter", "'all' must be true or false");
        return -1;
    }
    if (!(req->auth.perms & BS_PERM_ADMIN_READ)) {
        bs_reply_error(res, 403, "Missing permission",
                       "%s %s?all=true needs the permission admin:read, which this API key does "
                       "not have",
                       req->method, req->path);
        return -1;
    }
    *viewer = NULL;
    return 0;
}

json_t *bs_ctask_owned(bs_request *req, bs_response *res, const char *api_key_id)
{
    json_t *owned = json_object();
    bs_task_query q = {
        .owner_api_key_id = api_key_id, .sort = BS_TASK_SORT_CREATED_AT, .limit = 1000};
    for (;;) {
        json_t *page = NULL;
        int64_t total = 0;
        bs_err err = {0};
        if (bs_store_tasks_find(req->server->store, &q, &page, &total, &err)) {
            json_decref(owned);
            bs_reply_err(req, res, &err);
            return NULL;
        }
        size_t i;
        json_t *t;
        json_array_foreach(page, i, t)
        {
            const char *id = json_string_value(json_object_get(t, "_id"));
            if (id) json_object_set(owned, id, json_object_get(t, "name"));
        }
        size_t got = json_array_size(page);
        json_decref(page);
        q.offset += (int64_t)got;
        if (got == 0 || q.offset >= total) break;
    }
    return owned;
}

const char *bs_ctask_name_taken(const json_t *owned, const char *name, const char *except_id)
{
    const char *id;
    json_t *v;
    json_object_foreach((json_t *)owned, id, v)
    {
        if (except_id && !strcmp(id, except_id)) continue;
        if (json_is_string(v) && !strcmp(json_string_value(v), name)) return id;
    }
    return NULL;
}

/* Adds to names every 'X' of from_pretrained('X') / ("X") in code. */
static void referenced_models(const char *code, json_t *names)
{
    static const char call[] = "from_pretrained(";
    for (const char *p = code ? strstr(code, call) : NULL; p; p = strstr(p, call)) {
        p += sizeof call - 1;
        while (*p == ' ' || *p == '\t') p++;
        char q = *p;
        if (q != '\'' && q != '"') continue;
        const char *s = ++p, *e = strchr(s, q);
        if (!e || e - s > 200 || memchr(s, '\n', (size_t)(e - s))) continue;
        char name[201];
        memcpy(name, s, (size_t)(e - s));
        name[e - s] = 0;
        if (name[0]) json_object_set_new(names, name, json_true());
        p = e + 1;
    }
}

json_t *bs_ctask_missing_models(bs_request *req, const json_t *task)
{
    json_t *names = json_object(), *missing = json_array();
    const char *mn = json_string_value(json_object_get(task, "model_name"));
    if (mn) json_object_set_new(names, mn, json_true());
    static const char *const code[] = {"tokenizer_code", "model_code", "function_code", NULL};
    for (const char *const *k = code; *k; k++)
        referenced_models(json_string_value(json_object_get(task, *k)), names);
    const char *name;
    json_t *v;
    json_object_foreach(names, name, v)
    {
        json_t *doc = NULL;
        bs_err err = {0};
        int rc = bs_store_models_get(req->server->store, name, NULL, &doc, &err);
        json_decref(doc);
        /* Only a model known to be absent is reported; a store failure
         * says nothing about the model. */
        if (rc && rc != BS_ESTORE && rc != BS_EBUSY && rc != BS_ENOMEM)
            json_array_append_new(missing, json_string(name));
    }
    json_decref(names);
    return missing;
}
