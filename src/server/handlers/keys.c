/* /api-keys: create (the secret is in the creation response and nowhere
 * else, ever), list, get, update, revoke. Two rules hold for every change:
 * a key grants only permissions it holds itself, and the last active
 * admin:write key keeps admin:write (else nobody could administer). */
#include "server/context.h"
#include "server/guard.h"
#include "server/handlers/handlers.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Held from the last-admin check to the store write, so that two
 * concurrent revokes cannot each see the other as the remaining admin
 * (per process: processes sharing a store check without it). */
static pthread_mutex_t change_mu = PTHREAD_MUTEX_INITIALIZER;

/* Active keys other than except_id holding admin:write (capped at 1: only
 * whether one exists matters). */
static int other_admin_writers(bs_request *req, const char *except_id, int *n, bs_err *err)
{
    *n = 0;
    for (int64_t off = 0;; off += 1000) {
        json_t *list = NULL;
        int rc = bs_store_keys_list(req->server->store, 1000, off, &list, err);
        if (rc) return rc;
        size_t i, count = json_array_size(list);
        json_t *k;
        json_array_foreach(list, i, k)
        {
            const char *id = json_string_value(json_object_get(k, "_id"));
            if (id && except_id && !strcmp(id, except_id)) continue;
            if (json_is_true(json_object_get(k, "is_active")) &&
                (bs_perms_from_json(json_object_get(k, "permissions")) & BS_PERM_ADMIN_WRITE))
                *n = 1;
        }
        json_decref(list);
        if (*n || count < 1000) return 0;
    }
}

int bs_keys_check_change(bs_request *req, bs_response *res, const char *id, const json_t *old,
                         const json_t *patch)
{
    int old_active = old && json_is_true(json_object_get(old, "is_active"));
    unsigned old_perms = old ? bs_perms_from_json(json_object_get(old, "permissions")) : 0;
    const json_t *p = json_object_get(patch, "permissions");
    unsigned new_perms = p ? bs_perms_from_json(p) : old_perms;
    const json_t *a = json_object_get(patch, "is_active");
    int new_active = a ? json_is_true(a) : (old ? old_active : 1);
    /* What the change grants: every permission of a key it (re)activates,
     * the added ones of a key that stays active. */
    unsigned granted = new_active ? new_perms & ~(old_active ? old_perms : 0u) : 0u;
    const char *missing = bs_perm_missing(granted, req->auth.perms);
    if (missing) {
        bs_reply_error(res, 403, "Missing permission",
                       "this API key cannot grant %s, which it does not hold itself", missing);
        return -1;
    }
    if (old_active && (old_perms & BS_PERM_ADMIN_WRITE) &&
        !(new_active && (new_perms & BS_PERM_ADMIN_WRITE))) {
        int others = 0;
        bs_err err = {0};
        if (other_admin_writers(req, id, &others, &err)) {
            bs_reply_err(req, res, &err);
            return -1;
        }
        if (!others) {
            bs_reply_error(res, 409, "Last administrator key",
                           "this is the last active key with admin:write: give admin:write to "
                           "another key before removing it from this one");
            return -1;
        }
    }
    return 0;
}

void bs_keys_lock(void)
{
    pthread_mutex_lock(&change_mu);
}

void bs_keys_unlock(void)
{
    pthread_mutex_unlock(&change_mu);
}

static const char *const perm_choices[] = {"tasks:execute", "tasks:save",  "models:download",
                                           "admin:read",    "admin:write", NULL};

const bs_field_spec bs_body_key_create[] = {
    {"name", BS_T_STRING, BS_REQUIRED, 1, 100, NULL},
    {"description", BS_T_STRING, 0, 0, 500, NULL},
    {"permissions", BS_T_STRINGS, 0, 0, 5, perm_choices},
    {"rate_limits", BS_T_OBJECT, BS_NULLABLE, 0, 0, NULL},
    {"is_active", BS_T_BOOL, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

const bs_field_spec bs_body_key_update[] = {
    {"name", BS_T_STRING, 0, 1, 100, NULL},
    {"description", BS_T_STRING, 0, 0, 500, NULL},
    {"permissions", BS_T_STRINGS, 0, 0, 5, perm_choices},
    {"rate_limits", BS_T_OBJECT, 0, 0, 0, NULL},
    {"is_active", BS_T_BOOL, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

json_t *bs_keys_create_doc(bs_request *req, bs_response *res)
{
    struct bs_server *srv = req->server;
    json_t *fields = json_deep_copy(req->json);
    json_t *rl = json_object_get(fields, "rate_limits");
    if (!rl || json_is_null(rl))
        json_object_set_new(fields, "rate_limits",
                            bs_settings_value(srv->settings, "default_rate_limits"));
    if (!json_object_get(fields, "permissions"))
        json_object_set_new(fields, "permissions", json_pack("[s]", "tasks:execute"));
    char *secret = NULL;
    json_t *doc = NULL;
    bs_err err = {0};
    if (bs_keys_check_change(req, res, NULL, NULL, fields)) {
        json_decref(fields);
        return NULL;
    }
    int rc = bs_store_keys_create(srv->store, fields, &secret, &doc, &err);
    json_decref(fields);
    if (rc) {
        bs_reply_err(req, res, &err);
        return NULL;
    }
    json_object_set_new(doc, "api_key", json_string(secret));
    free(secret);
    return doc;
}

void bs_handle_keys_create(bs_request *req, bs_response *res)
{
    json_t *doc = bs_keys_create_doc(req, res);
    if (doc) bs_reply_ok(res, 201, doc, "Store this key now: it is not shown again");
}

json_t *bs_keys_list_data(bs_request *req, bs_response *res)
{
    int64_t limit, offset;
    if (bs_request_query_int(req, res, "limit", 100, 1, 1000, &limit) ||
        bs_request_query_int(req, res, "offset", 0, 0, INT32_MAX, &offset))
        return NULL;
    json_t *list = NULL;
    bs_err err = {0};
    /* Usage counters are batched in memory: write them first so that the
     * answer is up to date. */
    if (bs_usage_flush(req->server->usage, req->server->store, &err)) {
        bs_reply_err(req, res, &err);
        return NULL;
    }
    if (bs_store_keys_list(req->server->store, limit, offset, &list, &err)) {
        bs_reply_err(req, res, &err);
        return NULL;
    }
    json_t *data = json_pack("{s:o, s:I, s:I}", "api_keys", list, "limit", (json_int_t)limit,
                             "offset", (json_int_t)offset);
    if (!data) bs_reply_error(res, 500, "Out of memory", "the key list could not be built");
    return data;
}

void bs_handle_keys_list(bs_request *req, bs_response *res)
{
    json_t *data = bs_keys_list_data(req, res);
    if (data) bs_reply_ok(res, 200, data, NULL);
}

void bs_handle_keys_get(bs_request *req, bs_response *res)
{
    const char *id = bs_request_id_param(req, res, "id");
    if (!id) return;
    json_t *doc = NULL;
    bs_err err = {0};
    if (bs_usage_flush(req->server->usage, req->server->store, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    if (bs_store_keys_get(req->server->store, id, &doc, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200, doc, NULL);
}

void bs_handle_keys_update(bs_request *req, bs_response *res)
{
    const char *id = bs_request_id_param(req, res, "id");
    if (!id) return;
    json_t *doc = NULL, *old = NULL;
    bs_err err = {0};
    bs_keys_lock();
    int rc = bs_store_keys_get(req->server->store, id, &old, &err);
    if (!rc && bs_keys_check_change(req, res, id, old, req->json)) {
        bs_keys_unlock();
        json_decref(old);
        return;
    }
    json_decref(old);
    if (!rc) rc = bs_store_keys_update(req->server->store, id, req->json, &doc, &err);
    bs_keys_unlock();
    /* Also on failure: part of a change may have reached the store. */
    bs_authcache_invalidate(req->server->authcache);
    if (rc) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200, doc, NULL);
}

void bs_handle_keys_revoke(bs_request *req, bs_response *res)
{
    const char *id = bs_request_id_param(req, res, "id");
    if (!id) return;
    json_t *patch = json_pack("{s:b}", "is_active", 0), *doc = NULL, *old = NULL;
    bs_err err = {0};
    bs_keys_lock();
    int rc = bs_store_keys_get(req->server->store, id, &old, &err);
    if (!rc && bs_keys_check_change(req, res, id, old, patch)) {
        bs_keys_unlock();
        json_decref(old);
        json_decref(patch);
        return;
    }
    json_decref(old);
    if (!rc) rc = bs_store_keys_update(req->server->store, id, patch, &doc, &err);
    bs_keys_unlock();
    bs_authcache_invalidate(req->server->authcache);
    json_decref(patch);
    if (rc) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200, doc, "API key revoked");
}
