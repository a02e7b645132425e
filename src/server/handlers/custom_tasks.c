/* /custom-tasks: users' saved tasks (save, list, get, update, delete,
 * popular, stats) and the original product's lookups (search/{query},
 * model/{model_id}, tags/{tags}) in its own shapes. A key sees its own
 * tasks and public ones (admin:read: all); only the owner (tasks:save) or
 * admin:write changes one. Export and import: custom_tasks_io.c. */
#include "server/context.h"
#include "server/guard.h"
#include "server/handlers/custom.h"
#include "server/handlers/compat.h"
#include "server/handlers/custom_tasks.h"
#include "server/handlers/handlers.h"
#include "util/utf8.h"

#include <stdio.h>
#include <string.h>

int bs_ctask_validate_code(bs_request *req, bs_response *res, const json_t *task,
                           const char *prefix)
{
    /* Compiled in the sandbox's jail (custom_run.c): a syntax error names
     * its part and line, and function_code must define custom_function. */
    return bs_custom_check_code(req, res,
                                json_string_value(json_object_get(task, "tokenizer_code")),
                                json_string_value(json_object_get(task, "model_code")),
                                json_string_value(json_object_get(task, "function_code")), prefix);
}

static void reply_detail(bs_response *res, int status, const char *fmt, const char *arg)
{
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, arg);
    bs_reply_json(res, status, json_pack("{s:s}", "detail", msg));
}

/* The stored task id, if the caller may see it; else res holds the 404. */
static json_t *visible_task(bs_request *req, bs_response *res, const char *id)
{
    json_t *doc = NULL;
    bs_err err = {0};
    if (bs_store_tasks_get(req->server->store, id, &doc, &err)) {
        bs_reply_err(req, res, &err);
        return NULL;
    }
    const char *viewer = bs_ctask_viewer(req);
    const char *owner = json_string_value(json_object_get(doc, "api_key_id"));
    if (viewer && !json_is_true(json_object_get(doc, "is_public")) &&
        !(owner && !strcmp(owner, viewer))) {
        json_decref(doc);
        /* Someone else's private task is answered as absent: its existence
         * is not the caller's business. */
        bs_reply_error(res, 404, "Not found", "custom_tasks: no task %s", id);
        return NULL;
    }
    return doc;
}

/* Changing doc needs tasks:save for its owner, admin:write for anyone else. */
static int may_change(bs_request *req, bs_response *res, const json_t *doc)
{
    const char *owner = json_string_value(json_object_get(doc, "api_key_id"));
    bool own = owner && !strcmp(owner, req->auth.api_key_id);
    unsigned need = own ? BS_PERM_TASKS_SAVE : BS_PERM_ADMIN_WRITE;
    if (!(req->auth.perms & need)) {
        bs_reply_error(res, 403, "Missing permission",
                       "%s %s needs the permission %s (%s), which this API key does not have",
                       req->method, req->path, bs_perm_missing(need, req->auth.perms),
                       own ? "the task's owner" : "the task belongs to another key");
        return -1;
    }
    return 0;
}

static void log_activity(bs_request *req, const char *action, const char *task_id)
{
    if (!req->auth.session_doc_id[0]) return;
    bs_logq_push_activity(req->server->logq, req->auth.session_doc_id, action, req->route_pattern,
                          task_id);
    req->activity_logged = 1;
}

/* Stores task (ours, checked) for the caller. Name unique per key and the
 * limit max_custom_tasks_per_user are checked before the insert and again
 * after it against everything then stored: of saves racing each other,
 * one that sees a clash after its insert removes itself, so both rules
 * hold (racers may all give way; none is kept over the rule). *out gets
 * the stored document. */
static int save_task(bs_request *req, bs_response *res, json_t *task, json_t **out)
{
    struct bs_server *srv = req->server;
    const char *name = json_string_value(json_object_get(task, "name"));
    int64_t max = bs_settings_int(srv->settings, "max_custom_tasks_per_user");
    if (bs_ctask_validate_code(req, res, task, "")) return -1;
    json_t *owned = bs_ctask_owned(req, res, req->auth.api_key_id);
    if (!owned) return -1;
    const char *dup = bs_ctask_name_taken(owned, name, NULL);
    if (dup) {
        bs_reply_error(res, 409, "Task name taken",
                       "field 'name': this API key already has a task named \"%s\" (_id %s)", name,
                       dup);
        json_decref(owned);
        return -1;
    }
    if ((int64_t)json_object_size(owned) >= max) {
        bs_reply_error(res, 403, "Task limit reached",
                       "this API key has %zu saved tasks, the limit (setting "
                       "max_custom_tasks_per_user) is %lld",
                       json_object_size(owned), (long long)max);
        json_decref(owned);
        return -1;
    }
    json_decref(owned);
    json_object_set_new(task, "api_key_id", json_string(req->auth.api_key_id));
    if (req->auth.session_id[0])
        json_object_set_new(task, "created_by", json_string(req->auth.session_id));
    bs_err err = {0};
    json_t *doc = NULL;
    if (bs_store_tasks_insert(srv->store, task, &doc, &err)) {
        bs_reply_err(req, res, &err);
        return -1;
    }
    const char *id = json_string_value(json_object_get(doc, "_id"));
    owned = bs_ctask_owned(req, res, req->auth.api_key_id);
    int refused = 0;
    if (!owned) {
        refused = 1;
    } else if ((dup = bs_ctask_name_taken(owned, name, id))) {
        bs_reply_error(res, 409, "Task name taken",
                       "field 'name': this API key already has a task named \"%s\" (_id %s)", name,
                       dup);
        refused = 1;
    } else if ((int64_t)json_object_size(owned) > max) {
        bs_reply_error(res, 403, "Task limit reached",
                       "this API key reached the limit of %lld saved tasks (setting "
                       "max_custom_tasks_per_user)",
                       (long long)max);
        refused = 1;
    }
    json_decref(owned);
    if (refused) {
        bs_store_tasks_delete(srv->store, id, &err);
        json_decref(doc);
        return -1;
    }
    log_activity(req, "save_task", id);
    *out = doc;
    return 0;
}

/* POST /custom-tasks; a body in the original's shape gets its answers. */
static void save(bs_request *req, bs_response *res, bool *orig)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return;
    char detail[512];
    json_t *task;
    *orig = bs_ctask_is_original(body);
    if (*orig) {
        task = bs_ctask_from_original(body, false, detail, sizeof detail);
        if (!task) {
            reply_detail(res, 400, "Failed to save task: %s", detail);
            return;
        }
    } else {
        if (bs_ctask_check(body, BS_CTASK_SAVE, detail, sizeof detail)) {
            bs_reply_error(res, 400, "Invalid task", "%s", detail);
            return;
        }
        task = json_deep_copy(body);
    }
    json_t *doc = NULL;
    int rc = save_task(req, res, task, &doc);
    json_decref(task);
    if (rc) return;
    if (*orig) {
        char msg[512];
        snprintf(msg, sizeof msg, "Task '%s' saved successfully with ID %s",
                 json_string_value(json_object_get(doc, "name")),
                 json_string_value(json_object_get(doc, "_id")));
        json_decref(doc);
        bs_reply_json(res, 200, json_pack("{s:s}", "message", msg));
        return;
    }
    json_t *missing = bs_ctask_missing_models(req, doc);
    const char *msg = json_array_size(missing)
                          ? "Task saved; some models it names are not in the model cache"
                          : "Task saved";
    json_object_set_new(doc, "missing_models", missing);
    bs_reply_ok(res, 201, doc, msg);
}

void bs_handle_ctasks_save(bs_request *req, bs_response *res)
{
    bool orig = false;
    save(req, res, &orig);
    if (orig) bs_compat_detail_only(res);
}

/* "a, b" -> up to 10 trimmed tags in buf; -1 with res filled on abuse. */
static int parse_tags(bs_response *res, const char *s, char *buf, size_t buflen, const char **tags,
                      size_t *n, bool fastapi)
{
    *n = 0;
    if (!s) return 0;
    if (strlen(s) >= buflen) {
        if (fastapi)
            reply_detail(res, 400, "Failed to get tasks by tags: %s", "too long");
        else
            bs_reply_error(res, 400, "Invalid query parameter", "'tags' is too long");
        return -1;
    }
    strcpy(buf, s);
    for (char *p = buf; p && *p;) {
        char *end = strchr(p, ',');
        if (end) *end = 0;
        while (*p == ' ') p++;
        size_t l = strlen(p);
        while (l && p[l - 1] == ' ') p[--l] = 0;
        if (l) {
            if (*n == 10) {
                if (fastapi)
                    reply_detail(res, 400, "Failed to get tasks by tags: %s", "at most 10 tags");
                else
                    bs_reply_error(res, 400, "Invalid query parameter", "'tags': at most 10 tags");
                return -1;
            }
            tags[(*n)++] = p;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

void bs_handle_ctasks_list(bs_request *req, bs_response *res)
{
    bs_task_query q = {0};
    int64_t limit, offset;
    if (bs_ctask_list_viewer(req, res, &q.viewer_api_key_id) ||
        bs_request_query_int(req, res, "limit", 50, 1, 1000, &limit) ||
        bs_request_query_int(req, res, "offset", 0, 0, INT32_MAX, &offset) ||
        bs_request_query_name(req, res, "model", &q.model_name))
        return;
    q.limit = limit, q.offset = offset;
    const char *search = bs_request_query(req, "search");
    const char *tagq = bs_request_query(req, "tags");
    if ((search && bs_utf8_validate(search, strlen(search), NULL)) ||
        (tagq && bs_utf8_validate(tagq, strlen(tagq), NULL))) {
        bs_reply_error(res, 400, "Invalid query parameter",
                       "'search' and 'tags' must be valid UTF-8 text");
        return;
    }
    if (search && strlen(search) > 200) {
        bs_reply_error(res, 400, "Invalid query parameter", "'search' is at most 200 characters");
        return;
    }
    q.search = search && *search ? search : NULL;
    const char *sort = bs_request_query(req, "sort");
    if (sort && !strcmp(sort, "created_at"))
        q.sort = BS_TASK_SORT_CREATED_AT;
    else if (sort && !strcmp(sort, "usage_count"))
        q.sort = BS_TASK_SORT_USAGE_COUNT;
    else if (sort && *sort) {
        bs_reply_error(res, 400, "Invalid query parameter",
                       "'sort' must be created_at or usage_count");
        return;
    }
    const char *mine = bs_request_query(req, "mine");
    if (mine && strcmp(mine, "true") && strcmp(mine, "false")) {
        bs_reply_error(res, 400, "Invalid query parameter", "'mine' must be true or false");
        return;
    }
    if (mine && !strcmp(mine, "true")) q.owner_api_key_id = req->auth.api_key_id;
    char tagbuf[1024];
    const char *tags[10];
    if (parse_tags(res, tagq, tagbuf, sizeof tagbuf, tags, &q.ntags, false)) return;
    q.tags = tags;
    json_t *list = NULL;
    int64_t total = 0;
    bs_err err = {0};
    if (bs_store_tasks_find(req->server->store, &q, &list, &total, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200,
                json_pack("{s:o, s:I, s:I, s:I}", "tasks", list, "total", (json_int_t)total,
                          "limit", (json_int_t)limit, "offset", (json_int_t)offset),
                NULL);
}

void bs_handle_ctasks_get(bs_request *req, bs_response *res)
{
    const char *id = bs_request_id_param(req, res, "id");
    if (!id) return;
    json_t *doc = visible_task(req, res, id);
    if (doc) bs_reply_ok(res, 200, doc, NULL);
}

/* The patch of a PUT in the original's shape: every field replaced, as
 * its update did; batch_mode goes into model_config. */
static json_t *original_patch(bs_response *res, const json_t *body, const json_t *doc)
{
    char detail[512];
    json_t *t = bs_ctask_from_original(body, false, detail, sizeof detail);
    if (!t) {
        reply_detail(res, 400, "Failed to update task: %s", detail);
        return NULL;
    }
    static const char *const optional[] = {"description", "tokenizer_code", "model_code", NULL};
    for (const char *const *k = optional; *k; k++)
        if (!json_object_get(t, *k)) json_object_set_new(t, *k, json_null());
    json_t *cfg = json_object_get(doc, "model_config");
    cfg = cfg ? json_deep_copy(cfg) : json_object();
    json_t *bm = json_object_get(body, "batch_mode");
    if (json_is_boolean(bm))
        json_object_set(cfg, "batch_mode", bm);
    else
        json_object_del(cfg, "batch_mode");
    json_object_set_new(t, "model_config", json_object_size(cfg) ? cfg : json_null());
    if (!json_object_size(cfg)) json_decref(cfg);
    return t;
}

static void update(bs_request *req, bs_response *res, bool *orig)
{
    const char *id = bs_request_id_param(req, res, "id");
    if (!id) return;
    json_t *body = bs_request_json(req, res);
    if (!body) return;
    *orig = bs_ctask_is_original(body);
    char detail[512];
    if (!*orig && bs_ctask_check(body, BS_CTASK_PATCH, detail, sizeof detail)) {
        bs_reply_error(res, 400, "Invalid task", "%s", detail);
        return;
    }
    json_t *doc = visible_task(req, res, id), *patch = NULL, *merged = NULL, *owned = NULL;
    if (!doc || may_change(req, res, doc)) goto done;
    patch = *orig ? original_patch(res, body, doc) : json_deep_copy(body);
    if (!patch) goto done;
    merged = json_deep_copy(doc);
    json_object_update(merged, patch);
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(merged, tmp, k, v)
    {
        if (json_is_null(v)) json_object_del(merged, k);
    }
    const char *name = json_string_value(json_object_get(patch, "name"));
    const char *owner = json_string_value(json_object_get(doc, "api_key_id"));
    if (name && owner) {
        owned = bs_ctask_owned(req, res, owner);
        if (!owned) goto done;
        const char *dup = bs_ctask_name_taken(owned, name, id);
        if (dup) {
            bs_reply_error(
                res, 409, "Task name taken",
                "field 'name': the task's owner already has a task named \"%s\" (_id %s)", name,
                dup);
            goto done;
        }
    }
    if (bs_ctask_validate_code(req, res, merged, "")) goto done;
    json_t *out = NULL;
    bs_err err = {0};
    if (bs_store_tasks_update(req->server->store, id, patch, &out, &err)) {
        bs_reply_err(req, res, &err);
        goto done;
    }
    log_activity(req, "update_task", id);
    if (*orig) {
        char msg[512];
        snprintf(msg, sizeof msg, "Task '%s' updated successfully",
                 json_string_value(json_object_get(out, "name")));
        json_decref(out);
        bs_reply_json(res, 200, json_pack("{s:s}", "message", msg));
    } else {
        json_object_set_new(out, "missing_models", bs_ctask_missing_models(req, out));
        bs_reply_ok(res, 200, out, "Task updated");
    }
done:
    json_decref(owned);
    json_decref(merged);
    json_decref(patch);
    json_decref(doc);
}

void bs_handle_ctasks_update(bs_request *req, bs_response *res)
{
    bool orig = false;
    update(req, res, &orig);
    if (orig) bs_compat_detail_only(res);
}

void bs_handle_ctasks_delete(bs_request *req, bs_response *res)
{
    const char *id = bs_request_id_param(req, res, "id");
    if (!id) return;
    json_t *doc = visible_task(req, res, id);
    if (!doc) return;
    if (may_change(req, res, doc)) {
        json_decref(doc);
        return;
    }
    json_decref(doc);
    bs_err err = {0};
    if (bs_store_tasks_delete(req->server->store, id, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    log_activity(req, "delete_task", id);
    /* "message" as the original answered, inside our envelope. */
    bs_reply_ok(res, 200, json_pack("{s:s, s:b}", "_id", id, "deleted", 1),
                "Task deleted successfully");
}

void bs_handle_ctasks_popular(bs_request *req, bs_response *res)
{
    int64_t limit;
    if (bs_request_query_int(req, res, "limit", 10, 1, 100, &limit)) return;
    json_t *list = NULL;
    bs_err err = {0};
    if (bs_store_tasks_popular(req->server->store, limit, &list, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200, json_pack("{s:o}", "tasks", list), NULL);
}

void bs_handle_ctasks_stats(bs_request *req, bs_response *res)
{
    struct bs_server *srv = req->server;
    json_t *stats = NULL;
    bs_err err = {0};
    const char *viewer;
    if (bs_ctask_list_viewer(req, res, &viewer)) return;
    if (bs_store_tasks_stats(srv->store, viewer, &stats, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_task_query q = {.owner_api_key_id = req->auth.api_key_id, .limit = 1};
    json_t *none = NULL;
    int64_t own = 0;
    if (bs_store_tasks_find(srv->store, &q, &none, &own, &err)) {
        json_decref(stats);
        {
            bs_reply_err(req, res, &err);
            return;
        }
    }
    json_decref(none);
    json_object_set_new(stats, "own_tasks", json_integer(own));
    json_object_set_new(stats, "max_custom_tasks_per_user",
                        json_integer(bs_settings_int(srv->settings, "max_custom_tasks_per_user")));
    bs_reply_ok(res, 200, stats, NULL);
}

/* ── the original product's lookups: {"tasks": [TaskInfo...]}, errors {"detail"} ── */

/* Runs q (and, when also_tag, a lookup of that tag) and answers the
 * original's {"tasks": [...]}, each task once. */
static void original_find(bs_request *req, bs_response *res, bs_task_query *q, const char *also_tag,
                          const char *what)
{
    const char *checked[] = {q->search, q->model_name, q->ntags ? q->tags[0] : NULL};
    for (size_t i = 0; i < sizeof checked / sizeof *checked; i++)
        if (checked[i] && bs_utf8_validate(checked[i], strlen(checked[i]), NULL)) {
            reply_detail(res, 400, "Failed to %s: the path is not valid UTF-8", what);
            return;
        }
    if (bs_ctask_list_viewer(req, res, &q->viewer_api_key_id)) {
        bs_compat_detail_only(res);
        return;
    }
    q->limit = 1000;
    json_t *list = NULL, *more = NULL;
    bs_err err = {0};
    if (bs_store_tasks_find(req->server->store, q, &list, NULL, &err)) goto fail;
    if (also_tag) {
        bs_task_query tq = {.viewer_api_key_id = q->viewer_api_key_id,
                            .tags = &also_tag,
                            .ntags = 1,
                            .limit = 1000};
        if (bs_store_tasks_find(req->server->store, &tq, &more, NULL, &err)) goto fail;
    }
    json_t *seen = json_object(), *tasks = json_array();
    json_t *lists[2] = {list, more};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *t;
        json_array_foreach(lists[l], i, t)
        {
            const char *id = json_string_value(json_object_get(t, "_id"));
            if (!id || json_object_get(seen, id)) continue;
            json_object_set_new(seen, id, json_true());
            json_array_append_new(tasks, bs_ctask_to_original(t));
        }
    }
    json_decref(seen);
    json_decref(list);
    json_decref(more);
    bs_reply_json(res, 200, json_pack("{s:o}", "tasks", tasks));
    return;
fail:
    json_decref(list);
    json_decref(more);
    bs_reply_err(req, res, &err);
    char msg[1100];
    snprintf(msg, sizeof msg, "Failed to %s: %s", what, err.msg);
    bs_reply_json(res, res->status, json_pack("{s:s}", "detail", msg));
}

void bs_handle_ctasks_original_search(bs_request *req, bs_response *res)
{
    const char *query = bs_request_param(req, "query");
    bs_task_query q = {.search = query};
    original_find(req, res, &q, query, "search tasks");
}

void bs_handle_ctasks_original_model(bs_request *req, bs_response *res)
{
    const char *org = bs_request_param(req, "org"), *name = bs_request_param(req, "name");
    char model[512];
    if (org)
        snprintf(model, sizeof model, "%s/%s", org, name);
    else
        snprintf(model, sizeof model, "%s", bs_request_param(req, "model_id"));
    bs_task_query q = {.model_name = model, .sort = BS_TASK_SORT_CREATED_AT};
    original_find(req, res, &q, NULL, "get tasks for model");
}

void bs_handle_ctasks_original_tags(bs_request *req, bs_response *res)
{
    char buf[1024];
    const char *tags[10];
    bs_task_query q = {.sort = BS_TASK_SORT_CREATED_AT};
    const char *raw = bs_request_param(req, "tags");
    if (raw && bs_utf8_validate(raw, strlen(raw), NULL)) {
        reply_detail(res, 400, "Failed to get tasks by tags: %s", "the path is not valid UTF-8");
        return;
    }
    if (parse_tags(res, raw, buf, sizeof buf, tags, &q.ntags, true)) return;
    if (!q.ntags) {
        bs_reply_json(res, 200, json_pack("{s:[]}", "tasks"));
        return;
    }
    q.tags = tags;
    original_find(req, res, &q, NULL, "get tasks by tags");
}
