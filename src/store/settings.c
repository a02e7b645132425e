/* system_settings: typed key/value configuration shared by every server
 * process (retention periods, log_input_text, limits). */
#include "store/internal.h"

#include <string.h>

int bs_store_settings_get(bs_store *s, const char *key, json_t **out, bs_err *err)
{
    if (!key || !*key) return bs_err_set(err, BS_EINVAL, "system_settings: key is empty");
    return bs_store_find_one(s, BS_COLL_SETTINGS, "setting_key", key, out, err);
}

int bs_store_settings_list(bs_store *s, json_t **out, bs_err *err)
{
    bs_query q = {.sort = "setting_key"};
    return s->eng->find(s, BS_COLL_SETTINGS, &q, out, NULL, err);
}

static const char *infer_type(const json_t *v)
{
    if (json_is_integer(v)) return "integer";
    if (json_is_real(v)) return "float";
    if (json_is_boolean(v)) return "boolean";
    if (json_is_string(v)) return "string";
    return "json";
}

int bs_store_settings_put(bs_store *s, const char *key, const json_t *value, const char *type,
                          const char *description, const char *updated_by, json_t **out,
                          bs_err *err)
{
    if (!key || !*key) return bs_err_set(err, BS_EINVAL, "system_settings: key is empty");
    if (!value || json_is_null(value))
        return bs_err_set(err, BS_EINVAL, "system_settings: %s: setting_value is required", key);
    int rc = 0;
    for (int round = 0; round < 2; round++) {
        json_t *cur = NULL;
        rc = bs_store_settings_get(s, key, &cur, NULL);
        if (rc && rc != BS_ENOTFOUND)
            return bs_err_set(err, rc, "system_settings: lookup of %s failed", key);
        int64_t now = bs_store_now(s);
        json_t *d = cur ? cur : json_object();
        if (!cur) {
            char id[25];
            bs_store_oid_new(now, id);
            json_object_set_new(d, "_id", json_string(id));
            json_object_set_new(d, "setting_key", json_string(key));
            json_object_set_new(d, "created_at", bs_store_date_json(now));
        }
        const char *t = type  ? type
                        : cur ? json_string_value(json_object_get(cur, "setting_type"))
                              : NULL;
        if (!t) t = infer_type(value);
        /* an integer is a fine float: store it under the declared type */
        json_object_set_new(d, "setting_type", json_string(t));
        json_object_set(d, "setting_value", (json_t *)value);
        if (description) json_object_set_new(d, "description", json_string(description));
        if (updated_by) json_object_set_new(d, "updated_by", json_string(updated_by));
        json_object_set_new(d, "updated_at", bs_store_date_json(now));
        rc = bs_store_validate(BS_COLL_SETTINGS, d, err);
        if (!rc) rc = s->eng->insert(s, BS_COLL_SETTINGS, &d, 1, cur != NULL, err);
        if (!rc && out) *out = json_incref(d);
        json_decref(d);
        if (rc != BS_ECONFLICT || cur) break;
    }
    return rc;
}

int bs_store_settings_delete(bs_store *s, const char *key, bs_err *err)
{
    if (!key || !*key) return bs_err_set(err, BS_EINVAL, "system_settings: key is empty");
    json_t *kv = json_string(key);
    bs_query q = {0};
    bs_query_add(&q, "setting_key", BS_Q_EQ, kv);
    int64_t n = 0;
    int rc = s->eng->remove(s, BS_COLL_SETTINGS, &q, &n, err);
    json_decref(kv);
    if (!rc && !n) rc = bs_err_set(err, BS_ENOTFOUND, "system_settings: no setting %s", key);
    return rc;
}

int64_t bs_store_settings_int(bs_store *s, const char *key, int64_t dflt)
{
    json_t *d = NULL;
    if (bs_store_settings_get(s, key, &d, NULL)) return dflt;
    json_t *v = json_object_get(d, "setting_value");
    int64_t r = json_is_integer(v) ? json_integer_value(v) : dflt;
    json_decref(d);
    return r;
}

bool bs_store_settings_bool(bs_store *s, const char *key, bool dflt)
{
    json_t *d = NULL;
    if (bs_store_settings_get(s, key, &d, NULL)) return dflt;
    json_t *v = json_object_get(d, "setting_value");
    bool r = json_is_boolean(v) ? json_is_true(v) : dflt;
    json_decref(d);
    return r;
}
