/* GET /health (the process answers) and GET /health/db (a store round trip). */
#include "bertstudio/model.h"
#include "server/context.h"
#include "server/handlers/handlers.h"
#include "util/time.h"

void bs_handle_health(bs_request *req, bs_response *res)
{
    /* precision: the arithmetic models are loaded in (serve --precision) */
    json_t *data =
        json_pack("{s:s, s:s, s:f, s:s}", "status", "ok", "version", bs_version(), "uptime_seconds",
                  (double)(bs_time_now_ms() - req->server->started_ms) / 1000.0, "precision",
                  bs_precision_name((bs_precision)req->server->opts.precision));
    bs_reply_ok(res, 200, data, NULL);
}

void bs_handle_health_db(bs_request *req, bs_response *res)
{
    bs_err err = {0};
    double ms = 0;
    bs_store *store = req->server->store;
    if (bs_store_ping(store, &ms, &err)) {
        bs_response_header(res, "Retry-After", "5");
        bs_reply_error(res, 503, "Store unreachable", "%s", err.msg);
        return;
    }
    bs_reply_ok(res, 200,
                json_pack("{s:s, s:s, s:f}", "status", "ok", "engine", bs_store_engine_name(store),
                          "latency_ms", ms),
                NULL);
}
