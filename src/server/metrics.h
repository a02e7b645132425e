/* Counters behind GET /metrics (Prometheus text format): requests by route
 * and status, latency histograms by route, rate-limit rejections, store
 * errors, plus gauges supplied by hooks (log queue depth, loaded models). */
#ifndef BS_SERVER_METRICS_H
#define BS_SERVER_METRICS_H

#include <stddef.h>

#include "batch/batch.h"
#include "util/buf.h"

typedef struct bs_metrics bs_metrics;
struct bs_server;

/* Rejection scopes counted by bs_metrics_rate_limited. */
typedef enum bs_rl_scope {
    BS_RL_IP,
    BS_RL_KEY_MINUTE,
    BS_RL_KEY_HOUR,
    BS_RL_CUSTOM_TASKS,
    BS_RL_NSCOPES
} bs_rl_scope;

/* nroutes: size of the route table; route index nroutes means "no route". */
bs_metrics *bs_metrics_new(size_t nroutes);
void bs_metrics_free(bs_metrics *m);
/* One finished request: route index (or nroutes), HTTP status, duration. */
void bs_metrics_observe(bs_metrics *m, size_t route, int status, double seconds);
void bs_metrics_rate_limited(bs_metrics *m, bs_rl_scope scope);
void bs_metrics_store_error(bs_metrics *m);
/* Appends the counters in Prometheus text format; patterns[i] labels
 * route i. */
void bs_metrics_render(bs_metrics *m, const char *const *methods, const char *const *patterns,
                       bs_buf *out);

/* Appends the batchers' counters in Prometheus text format: the batch size
 * histogram bertstudio_batch_size, its maximum, the queue depth, and the
 * rejected, cancelled and unbatched request counts. */
void bs_metrics_batch(const bs_batch_stats *s, bs_buf *out);

/* A gauge provider: appends complete Prometheus lines (# HELP, # TYPE and
 * samples) to out. Called on every GET /metrics, from a request thread. */
typedef void (*bs_metrics_hook_fn)(bs_buf *out, void *ud);
/* Registers a provider (e.g. the model registry's bertstudio_models_loaded
 * gauge); at most 8. Thread-safe (may be called from a request that starts
 * a service lazily). Providers run in request threads only, so never after
 * the server has stopped serving; there is no unregistering.
 * Returns 0, or -1 when full. */
int bs_server_metrics_hook(struct bs_server *srv, bs_metrics_hook_fn fn, void *ud);

#endif
