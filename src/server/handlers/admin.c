/* DELETE /admin/purge (GDPR erasure of one key's data), POST /admin/sweep
 * (run the retention sweep now instead of waiting for it) and POST
 * /admin/batcher (hold or release the batchers). */
#include "server/context.h"
#include "server/handlers/handlers.h"

#include <string.h>

void bs_handle_admin_purge(bs_request *req, bs_response *res)
{
    struct bs_server *srv = req->server;
    const char *id = bs_request_query(req, "api_key_id");
    size_t n = id ? strlen(id) : 0;
    int ok = n == 24;
    for (size_t i = 0; ok && i < n; i++) ok = strchr("0123456789abcdef", id[i]) != NULL;
    if (!ok) {
        bs_reply_error(res, 400, "Invalid query parameter",
                       "'api_key_id' is required: the 24-character lowercase hex id of a key");
        return;
    }
    const char *dk = bs_request_query(req, "delete_key");
    if (dk && strcmp(dk, "true") && strcmp(dk, "false")) {
        bs_reply_error(res, 400, "Invalid query parameter", "'delete_key' must be true or false");
        return;
    }
    bs_err err = {0};
    json_t *key = NULL;
    bs_keys_lock();
    if (bs_store_keys_get(srv->store, id, &key, &err)) {
        bs_keys_unlock();
        bs_reply_err(req, res, &err);
        return;
    }
    int delete_key = !dk || !strcmp(dk, "true");
    json_t *patch = json_pack("{s:b}", "is_active", 0);
    int refused = delete_key && bs_keys_check_change(req, res, id, key, patch);
    json_decref(patch);
    json_decref(key);
    if (refused) {
        bs_keys_unlock();
        return;
    }
    /* Logs still queued belong to the key too. */
    bs_logq_flush(srv->logq);
    bs_purge_counts c = {0};
    int rc = bs_store_purge_api_key(srv->store, id, delete_key, &c, &err);
    bs_keys_unlock();
    bs_authcache_invalidate(srv->authcache);
    if (rc) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200,
                json_pack("{s:s, s:{s:I, s:I, s:I, s:I}}", "api_key_id", id, "deleted", "sessions",
                          (json_int_t)c.sessions, "custom_tasks", (json_int_t)c.tasks,
                          "execution_logs", (json_int_t)c.logs, "api_keys", (json_int_t)c.api_keys),
                "Purged");
}

void bs_handle_admin_sweep(bs_request *req, bs_response *res)
{
    int64_t logs = 0, sessions = 0;
    bs_err err = {0};
    bs_logq_flush(req->server->logq);
    if (bs_server_sweep(req->server, &logs, &sessions, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200,
                json_pack("{s:I, s:I}", "execution_logs_removed", (json_int_t)logs,
                          "sessions_removed", (json_int_t)sessions),
                NULL);
}

/* {"hold": true} stops every model's batcher from taking new batches
 * (requests queue up to batch_max_queue and wait; loading and unbatched
 * requests are unaffected); {"hold": false} releases them, and what queued
 * meanwhile runs as full batches. For maintenance, and so that batching,
 * a full queue and disconnected clients can be observed deterministically
 * (tests/api/test_tasks_concurrency.py). */
void bs_handle_admin_batcher(bs_request *req, bs_response *res)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return;
    json_t *hold = json_object_get(body, "hold");
    if (!json_is_object(body) || !json_is_boolean(hold) || json_object_size(body) != 1) {
        bs_reply_error(res, 400, "Invalid request body",
                       "expected {\"hold\": true} or {\"hold\": false}");
        return;
    }
    bs_batch_group_hold(req->server->serving->group, json_is_true(hold));
    bs_reply_ok(res, 200, json_pack("{s:b}", "hold", json_is_true(hold)),
                json_is_true(hold) ? "batchers held" : "batchers released");
}
