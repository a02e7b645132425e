/* api_keys: the credentials of the API. The secret is generated here and
 * leaves exactly once; the database keeps a keyed hash of it (field api_key,
 * unique index) and an 8-character display prefix. */
#include "store/internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* What clients may see of a key document: never the hash. */
static json_t *public_view(json_t *doc)
{
    json_object_del(doc, "api_key");
    return doc;
}

static const char *const editable[] = {"name",        "description", "permissions",
                                       "rate_limits", "is_active",   NULL};

static int check_editable(const json_t *fields, bs_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fields, k, v)
    {
        bool ok = false;
        for (const char *const *p = editable; *p; p++)
            if (!strcmp(*p, k)) ok = true;
        if (!ok) return bs_err_set(err, BS_EINVAL, "api_keys: field '%s' cannot be set", k);
    }
    return 0;
}

int bs_store_keys_create(bs_store *s, const json_t *fields, char **secret, json_t **out,
                         bs_err *err)
{
    *secret = NULL;
    if (!json_is_object(fields))
        return bs_err_set(err, BS_EINVAL, "api_keys: fields must be an object");
    int rc = check_editable(fields, err);
    if (rc) return rc;
    json_t *d = json_deep_copy(fields);
    char *sec = bs_store_random_secret("ak_", 43); /* 43 base62 chars ~ 256 bits */
    if (!d || !sec) {
        json_decref(d);
        free(sec);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    bs_store_strip_nulls(d);
    char id[25], hash[65], prefix[9];
    int64_t now = bs_store_now(s);
    bs_store_oid_new(now, id);
    bs_store_hash(s, sec, strlen(sec), hash);
    memcpy(prefix, sec, 8);
    prefix[8] = 0;
    json_object_set_new(d, "_id", json_string(id));
    json_object_set_new(d, "api_key", json_string(hash));
    json_object_set_new(d, "key_prefix", json_string(prefix));
    json_object_set_new(d, "created_at", bs_store_date_json(now));
    if (!json_object_get(d, "is_active")) json_object_set_new(d, "is_active", json_true());
    if (!json_object_get(d, "permissions"))
        json_object_set_new(d, "permissions", json_pack("[s]", "tasks:execute"));
    if (!json_object_get(d, "rate_limits"))
        json_object_set_new(d, "rate_limits",
                            json_pack("{s:i,s:i,s:i}", "requests_per_minute", 100,
                                      "requests_per_hour", 1000, "custom_tasks_per_hour", 50));
    json_object_set_new(d, "usage_stats",
                        json_pack("{s:i,s:i}", "total_requests", 0, "requests_today", 0));
    rc = bs_store_validate(BS_COLL_KEYS, d, err);
    if (!rc) rc = s->eng->insert(s, BS_COLL_KEYS, &d, 1, false, err);
    if (rc) {
        sodium_memzero(sec, strlen(sec));
        free(sec);
    } else {
        *secret = sec;
        if (out) *out = public_view(json_incref(d));
    }
    json_decref(d);
    return rc;
}

int bs_store_keys_get(bs_store *s, const char *id, json_t **out, bs_err *err)
{
    int rc = bs_store_check_id("api_keys", id, err);
    if (!rc) rc = bs_store_find_one(s, BS_COLL_KEYS, "_id", id, out, err);
    if (!rc) public_view(*out);
    return rc;
}

int bs_store_keys_find_by_secret(bs_store *s, const char *secret, json_t **out, bs_err *err)
{
    size_t n = secret ? strnlen(secret, 257) : 0;
    if (n == 0 || n > 256) return bs_err_set(err, BS_ENOTFOUND, "api_keys: unknown API key");
    char hash[65];
    bs_store_hash(s, secret, n, hash);
    json_t *doc = NULL;
    int rc = bs_store_find_one(s, BS_COLL_KEYS, "api_key", hash, &doc, NULL);
    if (rc == BS_ENOTFOUND) return bs_err_set(err, BS_ENOTFOUND, "api_keys: unknown API key");
    if (rc) return bs_err_set(err, rc, "api_keys: lookup failed");
    /* The engine matched the hash with ordinary comparisons; the final
     * decision is constant-time so its timing says nothing about the hash. */
    const char *stored = json_string_value(json_object_get(doc, "api_key"));
    if (!stored || strlen(stored) != 64 || sodium_memcmp(stored, hash, 64) != 0) {
        json_decref(doc);
        return bs_err_set(err, BS_ENOTFOUND, "api_keys: unknown API key");
    }
    *out = public_view(doc);
    return 0;
}

int bs_store_keys_list(bs_store *s, int64_t limit, int64_t offset, json_t **out, bs_err *err)
{
    if (limit < 0 || offset < 0)
        return bs_err_set(err, BS_EINVAL, "api_keys: limit and offset must be >= 0");
    bs_query q = {
        .sort = "created_at", .desc = true, .limit = limit ? limit : 100, .offset = offset};
    int rc = s->eng->find(s, BS_COLL_KEYS, &q, out, NULL, err);
    if (rc) return rc;
    size_t i;
    json_t *e;
    json_array_foreach(*out, i, e) public_view(e);
    return 0;
}

int bs_store_keys_update(bs_store *s, const char *id, const json_t *patch, json_t **out,
                         bs_err *err)
{
    if (!json_is_object(patch))
        return bs_err_set(err, BS_EINVAL, "api_keys: update must be an object");
    int rc = check_editable(patch, err);
    json_t *cur = NULL;
    if (!rc) rc = bs_store_check_id("api_keys", id, err);
    if (!rc) rc = bs_store_find_one(s, BS_COLL_KEYS, "_id", id, &cur, err);
    if (rc) return rc;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (json_is_null(v))
            json_object_del(cur, k);
        else
            json_object_set(cur, k, v);
    }
    rc = bs_store_validate(BS_COLL_KEYS, cur, err);
    if (!rc && json_object_size(patch)) {
        bs_query q = {0};
        json_t *idv = json_string(id);
        bs_query_add(&q, "_id", BS_Q_EQ, idv);
        rc = s->eng->update(s, BS_COLL_KEYS, &q, patch, NULL, NULL, err);
        json_decref(idv);
    }
    if (!rc && out) *out = public_view(json_incref(cur));
    json_decref(cur);
    return rc;
}

int bs_store_keys_delete(bs_store *s, const char *id, bs_err *err)
{
    int rc = bs_store_check_id("api_keys", id, err);
    if (rc) return rc;
    json_t *idv = json_string(id);
    bs_query q = {0};
    bs_query_add(&q, "_id", BS_Q_EQ, idv);
    int64_t n = 0;
    rc = s->eng->remove(s, BS_COLL_KEYS, &q, &n, err);
    json_decref(idv);
    if (!rc && !n) rc = bs_err_set(err, BS_ENOTFOUND, "api_keys: no key %s", id);
    return rc;
}

/* One key's flush. requests_today restarts when last_used falls on a new
 * UTC day; the common case is one atomic conditional update. */
static int usage_one(bs_store *s, const bs_key_usage *u, bs_err *err)
{
    if (!bs_store_oid_valid(u->api_key_id) || u->requests < 0) return 0;
    int64_t day0 = u->last_used_ms - u->last_used_ms % 86400000;
    char ipbuf[64];
    const char *ip = bs_store_anonymize_ip(u->last_request_ip, ipbuf, sizeof ipbuf);
    json_t *idv = json_string(u->api_key_id), *dayv = json_integer(day0);
    json_t *set = json_object(), *inc = json_object();
    json_object_set_new(set, "last_used", bs_store_date_json(u->last_used_ms));
    if (ip) json_object_set_new(set, "usage_stats.last_request_ip", json_string(ip));
    json_object_set_new(inc, "usage_stats.total_requests", json_integer(u->requests));
    json_object_set_new(inc, "usage_stats.requests_today", json_integer(u->requests));
    bs_query q = {0};
    bs_query_add(&q, "_id", BS_Q_EQ, idv);
    bs_query_add(&q, "last_used", BS_Q_GTE, dayv);
    int64_t matched = 0;
    int rc = s->eng->update(s, BS_COLL_KEYS, &q, set, inc, &matched, err);
    if (!rc && !matched) {
        q.nall = 1; /* first use today (or ever) */
        json_object_del(inc, "usage_stats.requests_today");
        json_object_set_new(set, "usage_stats.requests_today", json_integer(u->requests));
        rc = s->eng->update(s, BS_COLL_KEYS, &q, set, inc, &matched, err);
    }
    json_decref(idv);
    json_decref(dayv);
    json_decref(set);
    json_decref(inc);
    return rc;
}

int bs_store_keys_record_usage(bs_store *s, const bs_key_usage *u, size_t n, bs_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = usage_one(s, &u[i], err);
        if (rc) return rc;
    }
    return 0;
}
