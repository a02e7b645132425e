/* What a running server holds and every handler may reach through
 * req->server: options, the store, the settings cache, the rate limiter,
 * usage counters, the log queue, metrics, and the in-flight request count
 * that graceful shutdown waits on. */
#ifndef BS_SERVER_CONTEXT_H
#define BS_SERVER_CONTEXT_H

#include <pthread.h>
#include <stdatomic.h>

#include "server/authcache.h"
#include "server/execlog.h"
#include "server/metrics.h"
#include "server/ratelimit.h"
#include "server/server.h"
#include "server/serving.h"
#include "server/settings.h"
#include "server/usage.h"
#include "store/store.h"

/* How long a key document read for authentication is reused. Changes
 * through this process apply at once (the cache is invalidated); changes
 * made by another process sharing the store apply within this time. */
#define BS_AUTHCACHE_TTL_MS 2000

struct bs_server {
    bs_server_opts opts;
    char host[256];
    char data_dir[4096];
    void *daemon; /* struct MHD_Daemon */
    /* server/http.c: the handler threads, the connections held and their
     * bound by the open-file limit (max_connections never exceeds it). */
    struct bs_workers *workers;
    struct bs_conns *conns;
    int64_t conn_hard_cap;
    uint16_t port;
    int tls; /* serving HTTPS */
    char *tls_cert_pem, *tls_key_pem;
    bs_store *store;
    int64_t started_ms;
    atomic_long in_flight;
    /* Graceful shutdown (server/http.c): set once stopping begins; the
     * connections a request may still arrive on, that the drain waits for. */
    atomic_int draining;
    atomic_long conns_waiting;
    pthread_mutex_t drain_mu;
    pthread_cond_t drain_cv;

    bs_settings *settings;
    bs_authcache *authcache; /* key documents by secret, for BS_AUTHCACHE_TTL_MS */
    bs_ratelimiter *limiter;
    bs_usage *usage;
    bs_logq *logq;
    bs_metrics *metrics;
    /* Model serving (hub, registry, batchers) and the /models download
     * jobs: made at start, freed by bs_server_stop after the last request,
     * before the store closes. */
    bs_serving *serving;
    /* The custom-task worker (server/handlers/custom_run.c): started by the
     * first custom task, stopped by a stop hook; guarded by sandbox_mu. */
    pthread_mutex_t sandbox_mu;
    struct bs_sandbox *sandbox;
    struct bs_downloads *models; /* the Hub download jobs (downloads.c) */
    pthread_mutex_t hooks_mu;    /* guards metric_hooks and stop_hooks */
    struct {
        bs_metrics_hook_fn fn;
        void *ud;
    } metric_hooks[8];
    size_t n_metric_hooks;
    struct {
        void (*fn)(void *ud);
        void *ud;
    } stop_hooks[8];
    size_t n_stop_hooks;

    /* The maintenance thread: usage flush, settings refresh, sweeps. */
    pthread_t maint;
    int maint_running;
    int stopping;
    pthread_mutex_t maint_mu;
    pthread_cond_t maint_cv;
};

/* Registers fn(ud) to run at shutdown, after in-flight requests have
 * finished and before the store closes (services that handlers start
 * lazily, such as the model registry, stop their threads there). Hooks run
 * in reverse order of registration; at most 8. Thread-safe. Returns 0, or
 * -1 when full. */
int bs_server_on_stop(struct bs_server *srv, void (*fn)(void *ud), void *ud);

/* Runs the retention sweep now (logs and sessions, with the current
 * settings); counts may be NULL. */
int bs_server_sweep(struct bs_server *srv, int64_t *logs_removed, int64_t *sessions_removed,
                    bs_err *err);

#endif
