/* GET /logs and GET /logs/stats: execution logs and their analytics. Both
 * first wait for the log queue to drain, so a caller sees every execution
 * that finished before its request. */
#include "server/context.h"
#include "server/handlers/handlers.h"

#include <string.h>

static int parse_filters(bs_request *req, bs_response *res, bs_log_query *q)
{
    if (bs_request_query_name(req, res, "task_type", &q->task_type) ||
        bs_request_query_name(req, res, "model_name", &q->model_name) ||
        bs_request_query_time(req, res, "since", &q->since_ms) ||
        bs_request_query_time(req, res, "until", &q->until_ms))
        return -1;
    const char *status = bs_request_query(req, "status");
    if (status && strcmp(status, "success") && strcmp(status, "error")) {
        bs_reply_error(res, 400, "Invalid query parameter", "'status' must be success or error");
        return -1;
    }
    q->status = status;
    const char *key = bs_request_query(req, "api_key_id");
    if (key) {
        size_t n = strlen(key);
        int ok = n == 24;
        for (size_t i = 0; ok && i < n; i++) ok = strchr("0123456789abcdef", key[i]) != NULL;
        if (!ok) {
            bs_reply_error(res, 400, "Invalid query parameter",
                           "'api_key_id' must be a 24-character lowercase hex id");
            return -1;
        }
        q->api_key_id = key;
    }
    if (q->since_ms && q->until_ms && q->until_ms <= q->since_ms) {
        bs_reply_error(res, 400, "Invalid query parameter", "'until' must be after 'since'");
        return -1;
    }
    return 0;
}

void bs_handle_logs_list(bs_request *req, bs_response *res)
{
    bs_log_query q = {0};
    if (parse_filters(req, res, &q) ||
        bs_request_query_int(req, res, "limit", 100, 1, 1000, &q.limit) ||
        bs_request_query_int(req, res, "offset", 0, 0, INT32_MAX, &q.offset))
        return;
    bs_logq_flush(req->server->logq);
    json_t *list = NULL;
    int64_t total = 0;
    bs_err err = {0};
    if (bs_store_logs_find(req->server->store, &q, &list, &total, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200,
                json_pack("{s:o, s:I, s:I, s:I}", "logs", list, "total", (json_int_t)total, "limit",
                          (json_int_t)q.limit, "offset", (json_int_t)q.offset),
                NULL);
}

void bs_handle_logs_stats(bs_request *req, bs_response *res)
{
    bs_log_query q = {0};
    if (parse_filters(req, res, &q)) return;
    const char *g = bs_request_query(req, "group_by");
    bs_log_group group = BS_LOG_GROUP_TASK_TYPE;
    if (!g || !strcmp(g, "task_type"))
        g = "task_type";
    else if (!strcmp(g, "model_name"))
        group = BS_LOG_GROUP_MODEL_NAME;
    else if (!strcmp(g, "day"))
        group = BS_LOG_GROUP_DAY;
    else {
        bs_reply_error(res, 400, "Invalid query parameter",
                       "'group_by' must be task_type, model_name or day");
        return;
    }
    bs_logq_flush(req->server->logq);
    json_t *groups = NULL;
    bs_err err = {0};
    if (bs_store_logs_stats(req->server->store, &q, group, &groups, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200, json_pack("{s:s, s:o}", "group_by", g, "groups", groups), NULL);
}
