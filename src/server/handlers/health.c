/* GET /health (the process answers) and GET /health/db (a store round trip). */
#include "bertstudio/model.h"
#include "server/context.h"
#include "server/handlers/handlers.h"
#include "util/time.h"

#include <string.h>

/* How many loaded models run in each precision ({"int8": 1, ...}). Counts,
 * not names: /health is public, and model names are for keys (GET /models). */
static json_t *loaded_precisions(bs_server *srv)
{
    json_t *out = json_object(), *list = bs_registry_list(srv->serving->reg);
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        json_int_t p = json_integer_value(json_object_get(m, "option"));
        if (strcmp(json_string_value(json_object_get(m, "state")), "loaded") || p < 0) continue;
        const char *name = bs_precision_name((bs_precision)p);
        json_object_set_new(out, name,
                            json_integer(json_integer_value(json_object_get(out, name)) + 1));
    }
    json_decref(list);
    return out;
}

void bs_handle_health(bs_request *req, bs_response *res)
{
    /* precision: what the next load without a precision of its own uses
     * (setting default_precision, else serve --precision). */
    json_t *data = json_pack(
        "{s:s, s:s, s:f, s:s, s:o}", "status", "ok", "version", bs_version(), "uptime_seconds",
        (double)(bs_time_now_ms() - req->server->started_ms) / 1000.0, "precision",
        bs_precision_name((bs_precision)bs_serving_default_precision(req->server)),
        "loaded_precisions", loaded_precisions(req->server));
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
