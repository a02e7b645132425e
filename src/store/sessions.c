/* user_sessions: login state of the studio. The session secret (cookie) is
 * returned once; the stored session_id is its keyed hash, which is also the
 * session's reference in execution_logs and custom_tasks. */
#include "store/internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static int by_id(const char *id, bs_query *q, json_t **idv, bs_err *err)
{
    int rc = bs_store_check_id("user_sessions", id, err);
    if (rc) return rc;
    *idv = json_string(id);
    bs_query_add(q, "_id", BS_Q_EQ, *idv);
    return 0;
}

int bs_store_sessions_create(bs_store *s, const char *api_key_id, int64_t ttl_ms, const char *ip,
                             const char *user_agent, char **secret, json_t **out, bs_err *err)
{
    *secret = NULL;
    int rc = bs_store_check_id("user_sessions: api_key_id", api_key_id, err);
    if (rc) return rc;
    if (ttl_ms <= 0) return bs_err_set(err, BS_EINVAL, "user_sessions: ttl must be positive");
    char *sec = bs_store_random_secret("sess_", 32);
    json_t *d = json_object();
    if (!sec || !d) {
        free(sec);
        json_decref(d);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    char id[25], hash[65], ipbuf[64];
    int64_t now = bs_store_now(s);
    bs_store_oid_new(now, id);
    bs_store_hash(s, sec, strlen(sec), hash);
    json_object_set_new(d, "_id", json_string(id));
    json_object_set_new(d, "session_id", json_string(hash));
    json_object_set_new(d, "api_key_id", json_string(api_key_id));
    json_object_set_new(d, "created_at", bs_store_date_json(now));
    json_object_set_new(d, "last_activity", bs_store_date_json(now));
    json_object_set_new(d, "expires_at", bs_store_date_json(now + ttl_ms));
    const char *aip = bs_store_anonymize_ip(ip, ipbuf, sizeof ipbuf);
    if (aip) json_object_set_new(d, "ip_address", json_string(aip));
    if (user_agent)
        json_object_set_new(d, "user_agent", json_stringn(user_agent, strnlen(user_agent, 512)));
    json_object_set_new(d, "is_active", json_true());
    json_object_set_new(d, "activity_log",
                        json_pack("[{s:s,s:o,s:s}]", "action", "login", "timestamp",
                                  bs_store_date_json(now), "endpoint", "/auth/login"));
    rc = bs_store_validate(BS_COLL_SESSIONS, d, err);
    if (!rc) rc = s->eng->insert(s, BS_COLL_SESSIONS, &d, 1, false, err);
    if (rc) {
        sodium_memzero(sec, strlen(sec));
        free(sec);
    } else {
        *secret = sec;
        if (out) *out = json_incref(d);
    }
    json_decref(d);
    return rc;
}

int bs_store_sessions_get_by_secret(bs_store *s, const char *secret, json_t **out, bs_err *err)
{
    size_t n = secret ? strnlen(secret, 257) : 0;
    if (n == 0 || n > 256) return bs_err_set(err, BS_ENOTFOUND, "user_sessions: unknown session");
    char hash[65];
    bs_store_hash(s, secret, n, hash);
    json_t *doc = NULL;
    int rc = bs_store_find_one(s, BS_COLL_SESSIONS, "session_id", hash, &doc, NULL);
    if (rc == BS_ENOTFOUND) return bs_err_set(err, BS_ENOTFOUND, "user_sessions: unknown session");
    if (rc) return bs_err_set(err, rc, "user_sessions: lookup failed");
    const char *stored = json_string_value(json_object_get(doc, "session_id"));
    if (!stored || strlen(stored) != 64 || sodium_memcmp(stored, hash, 64) != 0) {
        json_decref(doc);
        return bs_err_set(err, BS_ENOTFOUND, "user_sessions: unknown session");
    }
    *out = doc;
    return 0;
}

int bs_store_sessions_get(bs_store *s, const char *id, json_t **out, bs_err *err)
{
    int rc = bs_store_check_id("user_sessions", id, err);
    return rc ? rc : bs_store_find_one(s, BS_COLL_SESSIONS, "_id", id, out, err);
}

static int update_one(bs_store *s, const char *id, json_t *set, bs_err *err)
{
    bs_query q = {0};
    json_t *idv = NULL;
    int rc = by_id(id, &q, &idv, err);
    int64_t matched = 0;
    if (!rc) rc = s->eng->update(s, BS_COLL_SESSIONS, &q, set, NULL, &matched, err);
    if (!rc && !matched) rc = bs_err_set(err, BS_ENOTFOUND, "user_sessions: no session %s", id);
    json_decref(idv);
    json_decref(set);
    return rc;
}

int bs_store_sessions_touch(bs_store *s, const char *id, int64_t ttl_ms, bs_err *err)
{
    if (ttl_ms <= 0) return bs_err_set(err, BS_EINVAL, "user_sessions: ttl must be positive");
    int64_t now = bs_store_now(s);
    return update_one(s, id,
                      json_pack("{s:o,s:o}", "last_activity", bs_store_date_json(now), "expires_at",
                                bs_store_date_json(now + ttl_ms)),
                      err);
}

int bs_store_sessions_log_activity(bs_store *s, const char *id, const char *action,
                                   const char *endpoint, const char *task_id, bs_err *err)
{
    int rc = bs_store_check_id("user_sessions", id, err);
    if (rc) return rc;
    if (!action || !*action)
        return bs_err_set(err, BS_EINVAL, "user_sessions: activity needs an action");
    if (task_id && (rc = bs_store_check_id("user_sessions: task_id", task_id, err))) return rc;
    json_t *e = json_pack("{s:s,s:o}", "action", action, "timestamp", bs_store_now_json(s));
    if (endpoint)
        json_object_set_new(e, "endpoint", json_stringn(endpoint, strnlen(endpoint, 256)));
    if (task_id) json_object_set_new(e, "task_id", json_string(task_id));
    rc = s->eng->session_push(s, id, e, 100, err);
    json_decref(e);
    return rc;
}

int bs_store_sessions_end(bs_store *s, const char *id, bs_err *err)
{
    return update_one(s, id, json_pack("{s:b}", "is_active", 0), err);
}

int bs_store_sessions_list(bs_store *s, bool active_only, int64_t limit, int64_t offset,
                           json_t **out, bs_err *err)
{
    if (limit < 0 || offset < 0)
        return bs_err_set(err, BS_EINVAL, "user_sessions: limit and offset must be >= 0");
    bs_query q = {
        .sort = "last_activity", .desc = true, .limit = limit ? limit : 100, .offset = offset};
    if (active_only) bs_query_add(&q, "is_active", BS_Q_EQ, json_true());
    return s->eng->find(s, BS_COLL_SESSIONS, &q, out, NULL, err);
}

int bs_store_sessions_sweep(bs_store *s, int64_t retention_days, int64_t *removed, bs_err *err)
{
    return bs_store_sweep_older(s, BS_COLL_SESSIONS, "expires_at", "session_retention_days", 30,
                                retention_days, removed, err);
}
