/* custom_tasks: users' saved tasks. Ownership is the api_key_id (so a key
 * sees its tasks across sessions) plus created_by (the session, as in the
 * seed); public tasks are visible to every key. */
#include "store/internal.h"

#include <math.h>
#include <string.h>

static const char *const patchable[] = {
    "name",       "description",   "tags",      "model_name",   "tokenizer_code",
    "model_code", "function_code", "is_public", "model_config", NULL};

int bs_store_tasks_insert(bs_store *s, const json_t *doc, json_t **out, bs_err *err)
{
    if (!json_is_object(doc))
        return bs_err_set(err, BS_EINVAL, "custom_tasks: document must be an object");
    json_t *d = json_deep_copy(doc);
    if (!d) return bs_err_set(err, BS_ENOMEM, "out of memory");
    bs_store_strip_nulls(d);
    char id[25];
    int64_t now = bs_store_now(s);
    bs_store_oid_new(now, id);
    json_object_set_new(d, "_id", json_string(id));
    if (!json_object_get(d, "created_at"))
        json_object_set_new(d, "created_at", bs_store_date_json(now));
    if (!json_object_get(d, "updated_at"))
        json_object_set(d, "updated_at", json_object_get(d, "created_at"));
    if (!json_object_get(d, "usage_count")) json_object_set_new(d, "usage_count", json_integer(0));
    if (!json_object_get(d, "is_public")) json_object_set_new(d, "is_public", json_false());
    if (!json_object_get(d, "tags")) json_object_set_new(d, "tags", json_array());
    if (!json_object_get(d, "execution_stats"))
        json_object_set_new(d, "execution_stats",
                            json_pack("{s:f,s:f,s:i}", "avg_execution_time", 0.0, "success_rate",
                                      0.0, "total_executions", 0));
    int rc = bs_store_validate(BS_COLL_TASKS, d, err);
    if (!rc) rc = s->eng->insert(s, BS_COLL_TASKS, &d, 1, false, err);
    if (!rc && out) *out = json_incref(d);
    json_decref(d);
    return rc;
}

int bs_store_tasks_get(bs_store *s, const char *id, json_t **out, bs_err *err)
{
    int rc = bs_store_check_id("custom_tasks", id, err);
    return rc ? rc : bs_store_find_one(s, BS_COLL_TASKS, "_id", id, out, err);
}

int bs_store_tasks_update(bs_store *s, const char *id, const json_t *patch, json_t **out,
                          bs_err *err)
{
    if (!json_is_object(patch))
        return bs_err_set(err, BS_EINVAL, "custom_tasks: update must be an object");
    json_t *cur = NULL;
    int rc = bs_store_tasks_get(s, id, &cur, err);
    if (rc) return rc;
    json_t *set = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        bool ok = false;
        for (const char *const *p = patchable; *p; p++)
            if (!strcmp(*p, k)) ok = true;
        if (!ok) {
            rc = bs_err_set(err, BS_EINVAL, "custom_tasks: field '%s' cannot be updated", k);
            break;
        }
        json_object_set(set, k, v);
        if (json_is_null(v))
            json_object_del(cur, k);
        else
            json_object_set(cur, k, v);
    }
    if (!rc) {
        json_t *now = bs_store_now_json(s);
        json_object_set(set, "updated_at", now);
        json_object_set_new(cur, "updated_at", now);
        rc = bs_store_validate(BS_COLL_TASKS, cur, err);
    }
    if (!rc) {
        bs_query q = {0};
        json_t *idv = json_string(id);
        bs_query_add(&q, "_id", BS_Q_EQ, idv);
        int64_t matched = 0;
        rc = s->eng->update(s, BS_COLL_TASKS, &q, set, NULL, &matched, err);
        json_decref(idv);
        if (!rc && !matched) rc = bs_err_set(err, BS_ENOTFOUND, "custom_tasks: no task %s", id);
    }
    if (!rc && out) *out = json_incref(cur);
    json_decref(set);
    json_decref(cur);
    return rc;
}

int bs_store_tasks_delete(bs_store *s, const char *id, bs_err *err)
{
    int rc = bs_store_check_id("custom_tasks", id, err);
    if (rc) return rc;
    json_t *idv = json_string(id);
    bs_query q = {0};
    bs_query_add(&q, "_id", BS_Q_EQ, idv);
    int64_t n = 0;
    rc = s->eng->remove(s, BS_COLL_TASKS, &q, &n, err);
    json_decref(idv);
    if (!rc && !n) rc = bs_err_set(err, BS_ENOTFOUND, "custom_tasks: no task %s", id);
    return rc;
}

/* Visibility of a key's view: its own tasks or public ones. */
static void add_visibility(bs_query *q, const char *viewer, json_t **tmp)
{
    tmp[0] = json_string(viewer);
    bs_query_add_any(q, "api_key_id", BS_Q_EQ, tmp[0]);
    bs_query_add_any(q, "is_public", BS_Q_EQ, json_true());
}

int bs_store_tasks_find(bs_store *s, const bs_task_query *tq, json_t **out, int64_t *total,
                        bs_err *err)
{
    bs_query q = {0};
    json_t *tmp[6] = {0};
    int nt = 0;
    if (tq->viewer_api_key_id) {
        if (bs_store_check_id("viewer api_key_id", tq->viewer_api_key_id, err)) return err->code;
        add_visibility(&q, tq->viewer_api_key_id, &tmp[nt++]);
    }
    if (tq->owner_api_key_id) {
        if (bs_store_check_id("api_key_id", tq->owner_api_key_id, err)) return err->code;
        tmp[nt] = json_string(tq->owner_api_key_id);
        bs_query_add(&q, "api_key_id", BS_Q_EQ, tmp[nt++]);
    }
    if (tq->created_by) {
        tmp[nt] = json_string(tq->created_by);
        bs_query_add(&q, "created_by", BS_Q_EQ, tmp[nt++]);
    }
    if (tq->model_name) {
        tmp[nt] = json_string(tq->model_name);
        bs_query_add(&q, "model_name", BS_Q_EQ, tmp[nt++]);
    }
    if (tq->ntags) {
        if (tq->ntags > 10)
            return bs_err_set(err, BS_EINVAL, "custom_tasks: at most 10 tags per query");
        json_t *arr = json_array();
        for (size_t i = 0; i < tq->ntags; i++) json_array_append_new(arr, json_string(tq->tags[i]));
        tmp[nt++] = arr;
        bs_query_add(&q, "tags", BS_Q_IN, arr);
    }
    if (tq->public_only) bs_query_add(&q, "is_public", BS_Q_EQ, json_true());
    if (tq->limit < 0 || tq->offset < 0)
        return bs_err_set(err, BS_EINVAL, "custom_tasks: limit and offset must be >= 0");
    q.limit = tq->limit == 0 ? 50 : tq->limit > 1000 ? 1000 : tq->limit;
    q.offset = tq->offset;
    q.desc = true;
    if (tq->search && *tq->search) {
        q.text = tq->search;
        q.sort_text_score = tq->sort == BS_TASK_SORT_DEFAULT;
    }
    if (!q.sort_text_score)
        q.sort = tq->sort == BS_TASK_SORT_USAGE_COUNT ? "usage_count" : "created_at";
    int rc = s->eng->find(s, BS_COLL_TASKS, &q, out, total, err);
    for (int i = 0; i < nt; i++) json_decref(tmp[i]);
    return rc;
}

int bs_store_tasks_popular(bs_store *s, int64_t limit, json_t **out, bs_err *err)
{
    bs_task_query tq = {
        .public_only = true, .sort = BS_TASK_SORT_USAGE_COUNT, .limit = limit ? limit : 10};
    return bs_store_tasks_find(s, &tq, out, NULL, err);
}

int bs_store_tasks_record_execution(bs_store *s, const char *id, double seconds, bool success,
                                    bs_err *err)
{
    int rc = bs_store_check_id("custom_tasks", id, err);
    if (rc) return rc;
    if (!(seconds >= 0) || !isfinite(seconds))
        return bs_err_set(err, BS_EINVAL, "custom_tasks: execution time must be >= 0");
    return s->eng->task_exec(s, id, seconds, success, err);
}

int bs_store_tasks_stats(bs_store *s, const char *viewer, json_t **out, bs_err *err)
{
    bs_query q = {0};
    json_t *tmp[1] = {0};
    if (viewer) {
        if (bs_store_check_id("viewer api_key_id", viewer, err)) return err->code;
        add_visibility(&q, viewer, tmp);
    }
    json_t *none = NULL, *models = NULL, *tags = NULL;
    int64_t total = 0, pub = 0, usage = 0;
    bs_query cq = q;
    cq.limit = 1;
    int rc = s->eng->find(s, BS_COLL_TASKS, &cq, &none, &total, err);
    json_decref(none);
    if (!rc) rc = s->eng->sum(s, BS_COLL_TASKS, &q, "usage_count", &usage, err);
    if (!rc) rc = s->eng->group_count(s, BS_COLL_TASKS, &q, "model_name", 20, &models, err);
    if (!rc) rc = s->eng->group_count(s, BS_COLL_TASKS, &q, "tags", 20, &tags, err);
    if (!rc) {
        bs_query pq = {.limit = 1};
        bs_query_add(&pq, "is_public", BS_Q_EQ, json_true());
        rc = s->eng->find(s, BS_COLL_TASKS, &pq, &none, &pub, err);
        json_decref(none);
    }
    if (!rc) {
        /* rename the engine's {value, count} into the API's names */
        size_t i;
        json_t *e;
        json_array_foreach(models, i, e)
        {
            json_object_set(e, "model_name", json_object_get(e, "value"));
            json_object_del(e, "value");
        }
        json_array_foreach(tags, i, e)
        {
            json_object_set(e, "tag", json_object_get(e, "value"));
            json_object_del(e, "value");
        }
        *out = json_pack("{s:I,s:I,s:I,s:O,s:O}", "total_tasks", (json_int_t)total, "public_tasks",
                         (json_int_t)pub, "total_usage", (json_int_t)usage, "models", models,
                         "tags", tags);
        if (!*out) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    json_decref(models);
    json_decref(tags);
    json_decref(tmp[0]);
    return rc;
}
