/* model_cache: which models are on disk, for the hub's cache management
 * (least recently accessed first for eviction, access counts for priority). */
#include "store/internal.h"

#include <string.h>

static void key_query(bs_query *q, json_t **tmp, const char *model_name, const char *task_type)
{
    tmp[0] = json_string(model_name);
    bs_query_add(q, "model_name", BS_Q_EQ, tmp[0]);
    tmp[1] = task_type ? json_string(task_type) : NULL;
    if (tmp[1]) bs_query_add(q, "task_type", BS_Q_EQ, tmp[1]);
}

static int check_names(const char *model_name, bs_err *err)
{
    if (!model_name || !*model_name)
        return bs_err_set(err, BS_EINVAL, "model_cache: model_name is required");
    return 0;
}

int bs_store_models_get(bs_store *s, const char *model_name, const char *task_type, json_t **out,
                        bs_err *err)
{
    int rc = check_names(model_name, err);
    if (rc) return rc;
    bs_query q = {.sort = "last_accessed", .desc = true, .limit = 1};
    json_t *tmp[2], *arr = NULL;
    key_query(&q, tmp, model_name, task_type);
    rc = s->eng->find(s, BS_COLL_MODELS, &q, &arr, NULL, err);
    json_decref(tmp[0]);
    json_decref(tmp[1]);
    if (rc) return rc;
    if (!json_array_size(arr)) {
        json_decref(arr);
        return bs_err_set(err, BS_ENOTFOUND, "model_cache: no entry for %s%s%s", model_name,
                          task_type ? " / " : "", task_type ? task_type : "");
    }
    *out = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return 0;
}

int bs_store_models_upsert(bs_store *s, const json_t *doc, json_t **out, bs_err *err)
{
    if (!json_is_object(doc))
        return bs_err_set(err, BS_EINVAL, "model_cache: document must be an object");
    const char *name = json_string_value(json_object_get(doc, "model_name"));
    const char *task = json_string_value(json_object_get(doc, "task_type"));
    if (!name || !task)
        return bs_err_set(err, BS_EINVAL,
                          "model_cache: model_name and task_type are required strings");
    int rc = 0;
    /* two rounds: a concurrent insert of the same key turns ours into an update */
    for (int round = 0; round < 2; round++) {
        json_t *cur = NULL;
        rc = bs_store_models_get(s, name, task, &cur, NULL);
        if (rc && rc != BS_ENOTFOUND)
            return bs_err_set(err, rc, "model_cache: lookup of %s failed", name);
        json_t *d = cur ? cur : json_object();
        json_object_update(d, (json_t *)doc);
        bs_store_strip_nulls(d);
        int64_t now = bs_store_now(s);
        if (!cur) {
            char id[25];
            bs_store_oid_new(now, id);
            json_object_set_new(d, "_id", json_string(id));
        } else {
            json_object_set(d, "_id", json_object_get(cur, "_id"));
        }
        if (!json_object_get(d, "download_date"))
            json_object_set_new(d, "download_date", bs_store_date_json(now));
        if (!json_object_get(d, "last_accessed"))
            json_object_set_new(d, "last_accessed", bs_store_date_json(now));
        if (!json_object_get(d, "access_count"))
            json_object_set_new(d, "access_count", json_integer(0));
        if (!json_object_get(d, "is_cached")) json_object_set_new(d, "is_cached", json_true());
        rc = bs_store_validate(BS_COLL_MODELS, d, err);
        if (!rc) rc = s->eng->insert(s, BS_COLL_MODELS, &d, 1, cur != NULL, err);
        if (!rc && out) *out = json_incref(d);
        json_decref(d);
        if (rc != BS_ECONFLICT || cur) break;
    }
    return rc;
}

int bs_store_models_list(bs_store *s, json_t **out, bs_err *err)
{
    bs_query q = {.sort = "last_accessed", .desc = false};
    return s->eng->find(s, BS_COLL_MODELS, &q, out, NULL, err);
}

int bs_store_models_delete(bs_store *s, const char *model_name, const char *task_type,
                           int64_t *removed, bs_err *err)
{
    int rc = check_names(model_name, err);
    if (rc) return rc;
    bs_query q = {0};
    json_t *tmp[2];
    key_query(&q, tmp, model_name, task_type);
    int64_t n = 0;
    rc = s->eng->remove(s, BS_COLL_MODELS, &q, &n, err);
    json_decref(tmp[0]);
    json_decref(tmp[1]);
    if (removed) *removed = n;
    if (!rc && !n) rc = bs_err_set(err, BS_ENOTFOUND, "model_cache: no entry for %s", model_name);
    return rc;
}

int bs_store_models_touch(bs_store *s, const char *model_name, const char *task_type, bs_err *err)
{
    int rc = check_names(model_name, err);
    if (rc) return rc;
    bs_query q = {0};
    json_t *tmp[2];
    key_query(&q, tmp, model_name, task_type);
    json_t *set = json_pack("{s:o}", "last_accessed", bs_store_now_json(s));
    json_t *inc = json_pack("{s:i}", "access_count", 1);
    int64_t n = 0;
    rc = s->eng->update(s, BS_COLL_MODELS, &q, set, inc, &n, err);
    json_decref(set);
    json_decref(inc);
    json_decref(tmp[0]);
    json_decref(tmp[1]);
    if (!rc && !n) rc = bs_err_set(err, BS_ENOTFOUND, "model_cache: no entry for %s", model_name);
    return rc;
}
