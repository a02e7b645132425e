/* GDPR deletion: everything an API key owns, directly (api_key_id) or
 * through its sessions (created_by / session_id hold the session hash). */
#include "store/internal.h"

static int remove_where(bs_store *s, bs_coll c, const char *field, bs_qop op, const json_t *v,
                        int64_t *count, bs_err *err)
{
    bs_query q = {0};
    bs_query_add(&q, field, op, v);
    int64_t n = 0;
    int rc = s->eng->remove(s, c, &q, &n, err);
    *count += n;
    return rc;
}

int bs_store_purge_api_key(bs_store *s, const char *api_key_id, bool delete_key,
                           bs_purge_counts *out, bs_err *err)
{
    bs_purge_counts cnt = {0};
    int rc = bs_store_check_id("purge: api_key_id", api_key_id, err);
    if (rc) return rc;
    json_t *kid = json_string(api_key_id), *sessions = NULL;
    bs_query q = {0};
    bs_query_add(&q, "api_key_id", BS_Q_EQ, kid);
    rc = s->eng->find(s, BS_COLL_SESSIONS, &q, &sessions, NULL, err);
    /* data first, sessions last: a failure half-way can be retried, since
     * the sessions that lead to the data are still there */
    for (size_t i = 0; !rc && i < json_array_size(sessions); i += 50) {
        json_t *ids = json_array();
        for (size_t j = i; j < i + 50 && j < json_array_size(sessions); j++)
            json_array_append(ids, json_object_get(json_array_get(sessions, j), "session_id"));
        rc = remove_where(s, BS_COLL_LOGS, "session_id", BS_Q_IN, ids, &cnt.logs, err);
        if (!rc) rc = remove_where(s, BS_COLL_TASKS, "created_by", BS_Q_IN, ids, &cnt.tasks, err);
        json_decref(ids);
    }
    if (!rc) rc = remove_where(s, BS_COLL_LOGS, "api_key_id", BS_Q_EQ, kid, &cnt.logs, err);
    if (!rc) rc = remove_where(s, BS_COLL_TASKS, "api_key_id", BS_Q_EQ, kid, &cnt.tasks, err);
    if (!rc) rc = remove_where(s, BS_COLL_SESSIONS, "api_key_id", BS_Q_EQ, kid, &cnt.sessions, err);
    if (!rc && delete_key)
        rc = remove_where(s, BS_COLL_KEYS, "_id", BS_Q_EQ, kid, &cnt.api_keys, err);
    json_decref(sessions);
    json_decref(kid);
    if (out) *out = cnt;
    return rc;
}
