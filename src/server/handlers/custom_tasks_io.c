/* Export and import of saved tasks: our versioned export document, the
 * original product's export file (a list of tasks with model_id and tags
 * "a,b") and its import request {"tasks": [...]}, as a JSON body or a
 * multipart/form-data upload. An import is hostile input: every task is
 * checked before anything is stored, and a failure part-way removes what
 * this import stored, so an import lands whole or not at all. */
#include "server/context.h"
#include "server/handlers/compat.h"
#include "server/handlers/custom_tasks.h"
#include "server/handlers/handlers.h"
#include "server/multipart.h"
#include "util/time.h"
#include "util/utf8.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ── export ── */

static const bs_field_spec export_fields[] = {
    {"task_ids", BS_T_STRINGS, BS_NULLABLE, 0, BS_CTASK_EXPORT_MAX, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* Every task matching q (paged), or NULL with res filled. */
static json_t *find_all(bs_request *req, bs_response *res, bs_task_query *q)
{
    json_t *all = json_array();
    q->limit = 1000;
    for (;;) {
        json_t *page = NULL;
        int64_t total = 0;
        bs_err err = {0};
        if (bs_store_tasks_find(req->server->store, q, &page, &total, &err)) {
            json_decref(all);
            bs_reply_err(req, res, &err);
            return NULL;
        }
        size_t got = json_array_size(page);
        json_array_extend(all, page);
        json_decref(page);
        q->offset += (int64_t)got;
        if (got == 0 || q->offset >= total) return all;
    }
}

/* A stored task as it goes into our export: every field but the owner's
 * identity, which is not portable between servers or keys. */
static json_t *export_task(const json_t *doc)
{
    json_t *t = json_deep_copy(doc);
    json_object_del(t, "api_key_id");
    json_object_del(t, "created_by");
    return t;
}

void bs_handle_ctasks_export(bs_request *req, bs_response *res)
{
    json_t *ids = NULL, *tasks = NULL;
    if (req->body_len) {
        json_t *body = bs_request_json(req, res);
        char detail[512];
        if (!body) return;
        if (bs_validate(body, export_fields, detail, sizeof detail)) {
            bs_reply_error(res, 400, "Invalid request", "%s", detail);
            return;
        }
        ids = json_object_get(body, "task_ids");
        if (json_is_null(ids)) ids = NULL;
    }
    const char *viewer = bs_ctask_viewer(req);
    if (!ids) {
        /* No list: every task of the caller's key (a backup of its own). */
        bs_task_query q = {.owner_api_key_id = req->auth.api_key_id,
                           .sort = BS_TASK_SORT_CREATED_AT};
        tasks = find_all(req, res, &q);
        if (!tasks) return;
        size_t i;
        json_t *t;
        json_array_foreach(tasks, i, t) json_array_set_new(tasks, i, export_task(t));
    } else {
        tasks = json_array();
        json_t *seen = json_object();
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v)
        {
            const char *id = json_string_value(v);
            if (json_object_get(seen, id)) continue;
            json_object_set_new(seen, id, json_true());
            json_t *doc = NULL;
            bs_err err = {0};
            int rc = bs_store_tasks_get(req->server->store, id, &doc, &err);
            const char *owner = json_string_value(json_object_get(doc, "api_key_id"));
            if (!rc && viewer && !json_is_true(json_object_get(doc, "is_public")) &&
                !(owner && !strcmp(owner, viewer)))
                rc = BS_ENOTFOUND;
            if (rc) {
                json_decref(doc);
                json_decref(seen);
                json_decref(tasks);
                if (rc == BS_ENOTFOUND || rc == BS_EINVAL)
                    bs_reply_error(res, rc == BS_EINVAL ? 400 : 404,
                                   rc == BS_EINVAL ? "Invalid request" : "Not found",
                                   "task_ids[%zu]: no task \"%.40s\" that this API key may see", i,
                                   id);
                else
                    bs_reply_err(req, res, &err);
                return;
            }
            json_array_append_new(tasks, export_task(doc));
            json_decref(doc);
        }
        json_decref(seen);
    }
    char now[40];
    bs_time_iso8601(bs_store_now(req->server->store), now, sizeof now);
    json_t *out = json_pack("{s:s, s:i, s:s, s:I, s:o}", "format", BS_CTASK_EXPORT_FORMAT,
                            "version", BS_CTASK_EXPORT_VERSION, "exported_at", now, "count",
                            (json_int_t)json_array_size(tasks), "tasks", tasks);
    bs_reply_ok(res, 200, out, NULL);
}

/* GET /custom-tasks/export: the original's export file, a list of its
 * task dicts, of every task the caller may see. */
void bs_handle_ctasks_export_original(bs_request *req, bs_response *res)
{
    bs_task_query q = {.sort = BS_TASK_SORT_CREATED_AT};
    json_t *tasks = NULL;
    if (!bs_ctask_list_viewer(req, res, &q.viewer_api_key_id)) tasks = find_all(req, res, &q);
    if (!tasks) {
        bs_compat_detail_only(res);
        return;
    }
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        json_t *o = bs_ctask_to_original(t);
        json_object_del(o, "batch_mode"); /* the original's export has none */
        json_array_append_new(out, o);
    }
    json_decref(tasks);
    bs_reply_json(res, 200, out);
}

/* The JSON of an uploaded file, or NULL with res holding the 400. */
static json_t *parse_upload(bs_request *req, bs_response *res, const char *ctype)
{
    const char *data = NULL;
    size_t n = 0;
    char detail[256];
    if (bs_multipart_file(ctype, req->body, req->body_len, &data, &n, detail, sizeof detail)) {
        bs_reply_error(res, 400, "Invalid upload", "%s", detail);
        return NULL;
    }
    size_t bad;
    if (bs_utf8_validate(data, n, &bad)) {
        size_t line = 1;
        for (size_t i = 0; i < bad; i++) line += data[i] == '\n';
        bs_reply_error(res, 400, "Uploaded file is not valid UTF-8",
                       "invalid UTF-8 sequence at byte %zu of the file (line %zu)", bad, line);
        return NULL;
    }
    if (bs_json_depth(data, n, BS_JSON_MAX_DEPTH) > BS_JSON_MAX_DEPTH) {
        bs_reply_error(res, 400, "JSON nested too deeply",
                       "arrays and objects may nest at most %d levels", BS_JSON_MAX_DEPTH);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(data, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!j)
        bs_reply_error(res, 400, "Malformed JSON", "uploaded file: %s at line %d, column %d",
                       jerr.text, jerr.line, jerr.column);
    return j;
}

/* ── import ── */

typedef enum conflict_mode {
    ON_CONFLICT_ERROR,
    ON_CONFLICT_SKIP,
    ON_CONFLICT_RENAME
} conflict_mode;

/* name, or "name (k)" for the smallest k >= 2 that neither taken (this
 * import's names) nor stored (the key's names -> _id) holds, cut to stay
 * within 100 characters. */
static json_t *free_name(const char *name, const json_t *taken, const json_t *stored)
{
    char buf[512];
    for (int k = 2; k < 100000; k++) {
        char suffix[16];
        int sl = snprintf(suffix, sizeof suffix, " (%d)", k);
        /* Cut on a character boundary so that the name stays valid UTF-8. */
        size_t keep = 0, chars = 0;
        while (name[keep] && chars < (size_t)(100 - sl)) {
            keep++;
            while ((name[keep] & 0xc0) == 0x80) keep++;
            chars++;
        }
        snprintf(buf, sizeof buf, "%.*s%s", (int)keep, name, suffix);
        if (!json_object_get(taken, buf) && !json_object_get(stored, buf)) return json_string(buf);
    }
    return NULL;
}

/* The tasks of an import payload in our shape, checked; NULL with res
 * filled. *orig_request: the original's {"tasks": [...]} request. */
static json_t *import_tasks(bs_request *req, bs_response *res, json_t *payload, bool *orig_request)
{
    json_t *list = NULL;
    char detail[512];
    /* A saved answer of POST /custom-tasks/export is accepted whole. */
    json_t *data = json_object_get(payload, "data");
    if (json_is_object(payload) && json_is_true(json_object_get(payload, "success")) &&
        json_is_object(data))
        payload = data;
    if (json_is_array(payload)) {
        list = payload;
    } else if (json_is_object(payload) && json_object_get(payload, "format")) {
        static const bs_field_spec top[] = {
            {"format", BS_T_STRING, BS_REQUIRED, 0, 0, NULL},
            {"version", BS_T_INT, BS_REQUIRED, 0, 0, NULL},
            {"exported_at", BS_T_STRING, BS_NULLABLE, 0, 0, NULL},
            {"count", BS_T_INT, BS_NULLABLE, 0, 0, NULL},
            {"tasks", BS_T_ARRAY, BS_REQUIRED, 0, 0, NULL},
            {NULL, 0, 0, 0, 0, NULL},
        };
        if (bs_validate(payload, top, detail, sizeof detail)) {
            bs_reply_error(res, 400, "Invalid import", "%s", detail);
            return NULL;
        }
        const char *fmt = json_string_value(json_object_get(payload, "format"));
        json_int_t ver = json_integer_value(json_object_get(payload, "version"));
        if (strcmp(fmt, BS_CTASK_EXPORT_FORMAT) || ver != BS_CTASK_EXPORT_VERSION) {
            bs_reply_error(res, 400, "Unsupported import format",
                           "format \"%.64s\" version %lld: this server reads \"%s\" version %d",
                           fmt, (long long)ver, BS_CTASK_EXPORT_FORMAT, BS_CTASK_EXPORT_VERSION);
            return NULL;
        }
        list = json_object_get(payload, "tasks");
        /* A count that disagrees means a cut or edited file. */
        json_t *count = json_object_get(payload, "count");
        if (json_is_integer(count) && (size_t)json_integer_value(count) != json_array_size(list)) {
            bs_reply_error(
                res, 400, "Invalid import",
                "field 'count' is %lld but 'tasks' holds %zu tasks (a cut or edited file?)",
                (long long)json_integer_value(count), json_array_size(list));
            return NULL;
        }
    } else if (json_is_object(payload) && json_is_array(json_object_get(payload, "tasks")) &&
               json_object_size(payload) == 1) {
        *orig_request = true;
        list = json_object_get(payload, "tasks");
    } else {
        bs_reply_error(res, 400, "Invalid import",
                       "expected our export document {\"format\": \"%s\", \"version\": %d, "
                       "\"tasks\": [...]}, the original product's export file (a list of tasks) "
                       "or {\"tasks\": [...]}",
                       BS_CTASK_EXPORT_FORMAT, BS_CTASK_EXPORT_VERSION);
        return NULL;
    }
    if (json_array_size(list) > BS_CTASK_IMPORT_MAX) {
        bs_reply_error(res, 400, "Too many tasks", "tasks: %zu tasks; at most %d per import",
                       json_array_size(list), BS_CTASK_IMPORT_MAX);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        json_t *task = NULL;
        if (!json_is_object(t)) {
            snprintf(detail, sizeof detail, "must be an object");
        } else if (bs_ctask_is_original(t)) {
            task = bs_ctask_from_original(t, true, detail, sizeof detail);
        } else if (!bs_ctask_check(t, BS_CTASK_IMPORT, detail, sizeof detail)) {
            task = json_deep_copy(t);
            json_object_del(task, "_id");
            json_object_del(task, "api_key_id");
            json_object_del(task, "created_by");
            const char *k;
            json_t *v;
            void *tmp;
            json_object_foreach_safe(task, tmp, k, v)
            {
                if (json_is_null(v)) json_object_del(task, k);
            }
        }
        if (!task) {
            json_decref(out);
            bs_reply_error(res, 400, "Invalid task in import", "tasks[%zu]: %s", i, detail);
            return NULL;
        }
        char prefix[32];
        snprintf(prefix, sizeof prefix, "tasks[%zu]: ", i);
        if (bs_ctask_validate_code(req, res, task, prefix)) {
            json_decref(task);
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, task);
    }
    return out;
}

/* Removes the tasks this import stored (ids), after a failure. */
static void roll_back(bs_request *req, const json_t *ids)
{
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        bs_err err = {0};
        bs_store_tasks_delete(req->server->store, json_string_value(v), &err);
    }
}

static void import(bs_request *req, bs_response *res, bool *orig)
{
    struct bs_server *srv = req->server;
    const char *ctype = bs_request_header(req, "Content-Type");
    const char *mode_s = bs_request_query(req, "on_conflict");
    conflict_mode mode = ON_CONFLICT_ERROR;
    if (mode_s && !strcmp(mode_s, "skip"))
        mode = ON_CONFLICT_SKIP;
    else if (mode_s && !strcmp(mode_s, "rename"))
        mode = ON_CONFLICT_RENAME;
    else if (mode_s && strcmp(mode_s, "error")) {
        bs_reply_error(res, 400, "Invalid query parameter",
                       "'on_conflict' must be error, skip or rename");
        return;
    }
    json_t *payload = NULL, *tasks = NULL, *owned = NULL, *taken = NULL, *ids = NULL,
           *report = NULL, *missing = NULL, *kept_idx = NULL, *by_name = NULL;
    if (ctype && !strncasecmp(ctype, "multipart/form-data", 19)) {
        payload = parse_upload(req, res, ctype);
        if (!payload) return;
    } else {
        payload = bs_request_json(req, res);
        if (!payload) return;
        json_incref(payload);
    }
    tasks = import_tasks(req, res, payload, orig);
    if (!tasks) goto done;
    owned = bs_ctask_owned(req, res, req->auth.api_key_id);
    if (!owned) goto done;
    /* Names: unique per key, within the file and against the stored tasks. */
    /* The key's names, looked up once per task. */
    by_name = json_object();
    const char *oid;
    json_t *oname;
    json_object_foreach(owned, oid, oname)
    {
        if (json_is_string(oname))
            json_object_set_new(by_name, json_string_value(oname), json_string(oid));
    }
    taken = json_object();
    report = json_array();
    json_t *kept = json_array();
    kept_idx = json_array();
    size_t i;
    json_t *t;
    int64_t skipped = 0;
    json_array_foreach(tasks, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        json_t *first = json_object_get(taken, name);
        const char *stored = json_string_value(json_object_get(by_name, name));
        json_t *entry = json_pack("{s:I, s:s}", "index", (json_int_t)i, "name", name);
        if ((first || stored) && mode == ON_CONFLICT_ERROR) {
            if (first)
                bs_reply_error(res, 409, "Duplicate task name",
                               "tasks[%zu]: field 'name': \"%s\" repeats tasks[%lld] (use "
                               "?on_conflict=rename or skip)",
                               i, name, (long long)json_integer_value(first));
            else
                bs_reply_error(res, 409, "Task name taken",
                               "tasks[%zu]: field 'name': this API key already has a task named "
                               "\"%s\" (_id %s; use ?on_conflict=rename or skip)",
                               i, name, stored);
            json_decref(entry);
            json_decref(kept);
            goto done;
        }
        if ((first || stored) && mode == ON_CONFLICT_SKIP) {
            json_object_set_new(entry, "skipped", json_true());
            json_array_append_new(report, entry);
            skipped++;
            continue;
        }
        if (first || stored) {
            json_t *nn = free_name(name, taken, by_name);
            if (!nn) {
                json_decref(entry);
                bs_reply_error(res, 409, "Task name taken",
                               "tasks[%zu]: field 'name': no free name like \"%s (k)\"", i, name);
                json_decref(kept);
                goto done;
            }
            json_object_set_new(entry, "renamed_from", json_string(name));
            json_object_set(entry, "name", nn);
            json_object_set_new(t, "name", nn);
            name = json_string_value(nn);
        }
        json_object_set_new(taken, name, json_integer((json_int_t)i));
        json_array_append_new(report, entry);
        json_array_append(kept, t);
        json_array_append_new(kept_idx, json_integer((json_int_t)i));
    }
    json_decref(tasks);
    tasks = kept;
    int64_t max = bs_settings_int(srv->settings, "max_custom_tasks_per_user");
    size_t n = json_array_size(tasks);
    if ((int64_t)(json_object_size(owned) + n) > max) {
        bs_reply_error(res, 403, "Task limit reached",
                       "this API key has %zu saved tasks and the import adds %zu; the limit "
                       "(setting max_custom_tasks_per_user) is %lld",
                       json_object_size(owned), n, (long long)max);
        goto done;
    }
    /* Store them; on the first failure, remove what was stored. */
    ids = json_array();
    missing = json_object();
    json_array_foreach(tasks, i, t)
    {
        json_object_set_new(t, "api_key_id", json_string(req->auth.api_key_id));
        if (req->auth.session_id[0])
            json_object_set_new(t, "created_by", json_string(req->auth.session_id));
        json_t *doc = NULL;
        bs_err err = {0};
        if (bs_store_tasks_insert(srv->store, t, &doc, &err)) {
            roll_back(req, ids);
            bs_err_prefix(&err, "tasks[%lld] (nothing was imported)",
                          (long long)json_integer_value(json_array_get(kept_idx, i)));
            bs_reply_err(req, res, &err);
            goto done;
        }
        json_array_append(ids, json_object_get(doc, "_id"));
        json_t *mm = bs_ctask_missing_models(req, doc);
        size_t k;
        json_t *m;
        json_array_foreach(mm, k, m) json_object_set(missing, json_string_value(m), json_true());
        json_decref(mm);
        json_decref(doc);
    }
    /* Imports or saves racing past the limit: seen after the insert, the
     * import gives way whole. */
    json_decref(owned);
    owned = bs_ctask_owned(req, res, req->auth.api_key_id);
    if (!owned) {
        roll_back(req, ids);
        goto done;
    }
    if ((int64_t)json_object_size(owned) > max) {
        roll_back(req, ids);
        bs_reply_error(res, 403, "Task limit reached",
                       "this API key reached the limit of %lld saved tasks (setting "
                       "max_custom_tasks_per_user); nothing was imported",
                       (long long)max);
        goto done;
    }
    if (*orig) {
        char msg[128];
        snprintf(msg, sizeof msg, "Successfully imported %zu tasks", json_array_size(ids));
        bs_reply_json(res, 200, json_pack("{s:s}", "message", msg));
        goto done;
    }
    /* The _id of each stored task goes into its report entry. */
    size_t j = 0;
    json_array_foreach(report, i, t)
    {
        if (!json_object_get(t, "skipped")) json_object_set(t, "_id", json_array_get(ids, j++));
    }
    json_t *mlist = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(missing, k, v) json_array_append_new(mlist, json_string(k));
    char msg[128];
    snprintf(msg, sizeof msg, "Imported %zu tasks", json_array_size(ids));
    bs_reply_ok(res, 201,
                json_pack("{s:I, s:I, s:O, s:o}", "imported", (json_int_t)json_array_size(ids),
                          "skipped", (json_int_t)skipped, "tasks", report, "missing_models", mlist),
                msg);
done:
    json_decref(by_name);
    json_decref(kept_idx);
    json_decref(missing);
    json_decref(report);
    json_decref(ids);
    json_decref(taken);
    json_decref(owned);
    json_decref(tasks);
    json_decref(payload);
}

void bs_handle_ctasks_import(bs_request *req, bs_response *res)
{
    bool orig = false;
    import(req, res, &orig);
    if (orig) bs_compat_detail_only(res);
}
