/* GET /metrics: Prometheus text exposition of the server's counters and of
 * the gauges that services register through bs_server_metrics_hook. */
#include "server/context.h"
#include "server/handlers/handlers.h"
#include "server/router.h"
#include "util/time.h"

#include <stdlib.h>

void bs_handle_metrics(bs_request *req, bs_response *res)
{
    struct bs_server *srv = req->server;
    const char **methods = calloc(bs_routes_count + 1, sizeof *methods);
    const char **patterns = calloc(bs_routes_count + 1, sizeof *patterns);
    if (!methods || !patterns) {
        free(methods);
        free(patterns);
        bs_reply_error(res, 503, "Out of memory", "cannot render metrics now");
        return;
    }
    for (size_t i = 0; i < bs_routes_count; i++) {
        methods[i] = bs_routes[i].method;
        patterns[i] = bs_routes[i].pattern;
    }
    bs_buf out = {0};
    bs_metrics_render(srv->metrics, methods, patterns, &out);
    free(methods);
    free(patterns);
    bs_buf_printf(
        &out,
        "# HELP bertstudio_log_queue_depth Execution log entries waiting for the writer.\n"
        "# TYPE bertstudio_log_queue_depth gauge\n"
        "bertstudio_log_queue_depth %zu\n"
        "# HELP bertstudio_log_queue_dropped_total Log entries dropped because the queue was "
        "full.\n"
        "# TYPE bertstudio_log_queue_dropped_total counter\n"
        "bertstudio_log_queue_dropped_total %llu\n"
        "# HELP bertstudio_log_write_errors_total Log entries the store refused.\n"
        "# TYPE bertstudio_log_write_errors_total counter\n"
        "bertstudio_log_write_errors_total %llu\n"
        "# HELP bertstudio_rate_limit_counters Live rate-limit counters.\n"
        "# TYPE bertstudio_rate_limit_counters gauge\n"
        "bertstudio_rate_limit_counters %zu\n"
        "# HELP bertstudio_http_in_flight Requests being served.\n"
        "# TYPE bertstudio_http_in_flight gauge\n"
        "bertstudio_http_in_flight %ld\n"
        "# HELP bertstudio_uptime_seconds Seconds since the server started.\n"
        "# TYPE bertstudio_uptime_seconds gauge\n"
        "bertstudio_uptime_seconds %.3f\n",
        bs_logq_depth(srv->logq), (unsigned long long)bs_logq_dropped(srv->logq),
        (unsigned long long)bs_logq_write_errors(srv->logq), bs_ratelimit_size(srv->limiter),
        (long)atomic_load(&srv->in_flight), (double)(bs_time_now_ms() - srv->started_ms) / 1000.0);
    pthread_mutex_lock(&srv->hooks_mu);
    for (size_t i = 0; i < srv->n_metric_hooks; i++)
        srv->metric_hooks[i].fn(&out, srv->metric_hooks[i].ud);
    pthread_mutex_unlock(&srv->hooks_mu);
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    bs_buf_free(&res->body);
    res->body = out;
}
