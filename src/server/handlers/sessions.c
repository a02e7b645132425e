/* GET /sessions: the sessions of every key, for administrators. Session
 * documents carry the hash of the secret, never the secret. */
#include "server/context.h"
#include "server/handlers/handlers.h"

#include <string.h>

void bs_handle_sessions_list(bs_request *req, bs_response *res)
{
    int64_t limit, offset;
    if (bs_request_query_int(req, res, "limit", 100, 1, 1000, &limit) ||
        bs_request_query_int(req, res, "offset", 0, 0, INT32_MAX, &offset))
        return;
    const char *active = bs_request_query(req, "active");
    if (active && strcmp(active, "true") && strcmp(active, "false")) {
        bs_reply_error(res, 400, "Invalid query parameter", "'active' must be true or false");
        return;
    }
    bs_logq_flush(req->server->logq); /* show activity entries still queued */
    json_t *list = NULL;
    bs_err err = {0};
    if (bs_store_sessions_list(req->server->store, active && !strcmp(active, "true"), limit, offset,
                               &list, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200,
                json_pack("{s:o, s:I, s:I}", "sessions", list, "limit", (json_int_t)limit, "offset",
                          (json_int_t)offset),
                NULL);
}
