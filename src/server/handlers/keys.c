/* /api-keys: create (the secret is in the creation response and nowhere
 * else, ever), list, get, update, revoke. */
#include "server/context.h"
#include "server/handlers/handlers.h"

#include <stdlib.h>

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

void bs_handle_keys_create(bs_request *req, bs_response *res)
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
    int rc = bs_store_keys_create(srv->store, fields, &secret, &doc, &err);
    json_decref(fields);
    if (rc) {
        bs_reply_err(req, res, &err);
        return;
    }
    json_object_set_new(doc, "api_key", json_string(secret));
    free(secret);
    bs_reply_ok(res, 201, doc, "Store this key now: it is not shown again");
}

void bs_handle_keys_list(bs_request *req, bs_response *res)
{
    int64_t limit, offset;
    if (bs_request_query_int(req, res, "limit", 100, 1, 1000, &limit) ||
        bs_request_query_int(req, res, "offset", 0, 0, INT32_MAX, &offset))
        return;
    json_t *list = NULL;
    bs_err err = {0};
    /* Usage counters are batched in memory: write them first so that the
     * answer is up to date. */
    if (bs_usage_flush(req->server->usage, req->server->store, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    if (bs_store_keys_list(req->server->store, limit, offset, &list, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200,
                json_pack("{s:o, s:I, s:I}", "api_keys", list, "limit", (json_int_t)limit, "offset",
                          (json_int_t)offset),
                NULL);
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
    json_t *doc = NULL;
    bs_err err = {0};
    int rc = bs_store_keys_update(req->server->store, id, req->json, &doc, &err);
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
    json_t *patch = json_pack("{s:b}", "is_active", 0), *doc = NULL;
    bs_err err = {0};
    int rc = bs_store_keys_update(req->server->store, id, patch, &doc, &err);
    bs_authcache_invalidate(req->server->authcache);
    json_decref(patch);
    if (rc) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200, doc, "API key revoked");
}
