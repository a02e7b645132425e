/* Server lifecycle: open the store, start the services (settings cache,
 * rate limiter, usage counters, log queue, maintenance thread), start
 * HTTP, and on stop drain in-flight requests before anything they use is
 * torn down. */
#include "server/context.h"
#include "server/downloads.h"
#include "server/handlers/handlers.h"
#include "server/http_glue.h"
#include "server/router.h"
#include "store/store.h"
#include "util/file.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LOG_QUEUE_CAPACITY  8192
#define RATE_LIMIT_COUNTERS 200000
#define SETTINGS_REFRESH_MS 30000

static int make_dir(const char *path, bs_err *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0700) && errno != EEXIST)
            return bs_err_set(err, BS_EIO, "cannot create %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0700) && errno != EEXIST)
        return bs_err_set(err, BS_EIO, "cannot create data directory %s: %s", tmp, strerror(errno));
    return 0;
}

static int read_pem(const char *path, char **out, bs_err *err)
{
    size_t n;
    int rc = bs_file_read(path, (1 << 20) - 2, out, &n, err);
    if (rc == BS_ENOTFOUND) { /* a missing file is a setup error, not a lookup */
        if (err) err->code = BS_EIO;
        rc = BS_EIO;
    }
    if (rc == BS_ELIMIT || (!rc && n == 0)) {
        free(*out);
        *out = NULL;
        return bs_err_set(err, BS_EFORMAT, "%s: empty or larger than 1 MB, not a PEM file", path);
    }
    return rc;
}

int bs_server_create_admin_key(struct bs_store *store, const char *name, char **secret, bs_err *err)
{
    /* rate_limits {}: a limit absent from rate_limits is no limit. */
    json_t *fields = json_pack("{s:s, s:s, s:[sssss], s:{}}", "name", name ? name : "admin",
                               "description", "Administrator key (all permissions, no rate limits)",
                               "permissions", "tasks:execute", "tasks:save", "models:download",
                               "admin:read", "admin:write", "rate_limits");
    int rc = bs_store_keys_create(store, fields, secret, NULL, err);
    json_decref(fields);
    return rc;
}

static int bootstrap_admin(bs_server *srv, bs_err *err)
{
    int64_t n = 0;
    int rc = bs_store_count(srv->store, "api_keys", &n, err);
    if (rc || n > 0) return rc;
    char *secret = NULL;
    rc = bs_server_create_admin_key(srv->store, "admin", &secret, err);
    if (rc) return rc;
    if (srv->opts.on_admin_key) srv->opts.on_admin_key(secret, srv->opts.on_admin_key_ud);
    free(secret);
    return 0;
}

int bs_server_sweep(bs_server *srv, int64_t *logs_removed, int64_t *sessions_removed, bs_err *err)
{
    int64_t l = 0, s = 0;
    int rc = bs_store_logs_sweep(srv->store, bs_settings_int(srv->settings, "log_retention_days"),
                                 &l, err);
    if (!rc)
        rc = bs_store_sessions_sweep(
            srv->store, bs_settings_int(srv->settings, "session_retention_days"), &s, err);
    if (logs_removed) *logs_removed = l;
    if (sessions_removed) *sessions_removed = s;
    return rc;
}

/* One thread for everything periodic, woken every second: usage flush,
 * settings refresh (changes made by other processes), rate-limit counter
 * reclaim, and the retention sweep. */
static void *maintenance(void *arg)
{
    bs_server *srv = arg;
    int64_t last_flush = bs_time_now_ms(), last_refresh = last_flush, last_gc = last_flush;
    int64_t last_sweep = 0;
    bs_err err = {0};
    pthread_mutex_lock(&srv->maint_mu);
    while (!srv->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&srv->maint_cv, &srv->maint_mu, &ts);
        if (srv->stopping) break;
        pthread_mutex_unlock(&srv->maint_mu);
        int64_t now = bs_time_now_ms();
        if (now - last_flush >= bs_settings_int(srv->settings, "usage_flush_seconds") * 1000) {
            if (bs_usage_flush(srv->usage, srv->store, &err))
                bs_log_warn("server", "key usage flush failed (kept for later): %s", err.msg);
            last_flush = now;
        }
        if (now - last_refresh >= SETTINGS_REFRESH_MS) {
            if (bs_settings_refresh(srv->settings, srv->store, &err))
                bs_log_warn("server", "settings refresh failed: %s", err.msg);
            last_refresh = now;
        }
        if (now - last_gc >= 60000) {
            bs_ratelimit_gc(srv->limiter, now);
            last_gc = now;
        }
        if (now - last_sweep >= bs_settings_int(srv->settings, "sweep_interval_seconds") * 1000) {
            int64_t l, s;
            if (bs_server_sweep(srv, &l, &s, &err))
                bs_log_warn("server", "retention sweep failed: %s", err.msg);
            else if (l || s)
                bs_log_info("server", "retention sweep removed %lld logs, %lld sessions",
                            (long long)l, (long long)s);
            last_sweep = now;
        }
        pthread_mutex_lock(&srv->maint_mu);
    }
    pthread_mutex_unlock(&srv->maint_mu);
    return NULL;
}

int bs_server_start(const bs_server_opts *opts, bs_server **out, bs_err *err)
{
    bs_server *srv = calloc(1, sizeof *srv);
    if (!srv) return bs_err_set(err, BS_ENOMEM, "out of memory");
    srv->opts = *opts;
    snprintf(srv->host, sizeof srv->host, "%s", opts->host ? opts->host : "127.0.0.1");
    snprintf(srv->data_dir, sizeof srv->data_dir, "%s", opts->data_dir ? opts->data_dir : "./data");
    srv->started_ms = bs_time_now_ms();
    pthread_mutex_init(&srv->drain_mu, NULL);
    pthread_cond_init(&srv->drain_cv, NULL);
    pthread_mutex_init(&srv->maint_mu, NULL);
    pthread_cond_init(&srv->maint_cv, NULL);
    pthread_mutex_init(&srv->hooks_mu, NULL);
    pthread_mutex_init(&srv->sandbox_mu, NULL);

    int rc = 0;
    if ((opts->tls_cert != NULL) != (opts->tls_key != NULL))
        rc = bs_err_set(err, BS_EINVAL, "--tls-cert and --tls-key go together");
    if (!rc && opts->tls_cert) {
        rc = read_pem(opts->tls_cert, &srv->tls_cert_pem, err);
        if (!rc) rc = read_pem(opts->tls_key, &srv->tls_key_pem, err);
        srv->tls = !rc;
    }
    srv->settings = bs_settings_new();
    srv->limiter = bs_ratelimit_new(RATE_LIMIT_COUNTERS);
    srv->authcache = bs_authcache_new(BS_AUTHCACHE_TTL_MS);
    srv->usage = bs_usage_new();
    srv->metrics = bs_metrics_new(bs_routes_count);
    if (!rc && (!srv->settings || !srv->limiter || !srv->authcache || !srv->usage || !srv->metrics))
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    if (!rc) rc = make_dir(srv->data_dir, err);
    char uri[4200];
    if (opts->store_uri)
        snprintf(uri, sizeof uri, "%s", opts->store_uri);
    else
        snprintf(uri, sizeof uri, "%s/bertstudio.db", srv->data_dir);
    bs_store_opts so = {.data_dir = srv->data_dir};
    if (!rc) rc = bs_store_open(uri, &so, &srv->store, err);
    if (!rc) rc = bs_settings_refresh(srv->settings, srv->store, err);
    if (!rc) rc = bootstrap_admin(srv, err);
    if (!rc) rc = bs_serving_new(srv, &srv->serving, err);
    if (!rc) rc = bs_downloads_startup(srv, err);
    if (!rc) rc = bs_logq_start(srv->store, LOG_QUEUE_CAPACITY, &srv->logq, err);
    if (!rc) {
        if (pthread_create(&srv->maint, NULL, maintenance, srv))
            rc = bs_err_set(err, BS_EINTERNAL, "cannot start the maintenance thread");
        else
            srv->maint_running = 1;
    }
    if (!rc) rc = bs_http_start(srv, err);
    if (rc) {
        bs_server_stop(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

uint16_t bs_server_port(const bs_server *srv)
{
    return srv->port;
}

int bs_server_metrics_hook(bs_server *srv, bs_metrics_hook_fn fn, void *ud)
{
    int rc = -1;
    pthread_mutex_lock(&srv->hooks_mu);
    if (srv->n_metric_hooks < sizeof srv->metric_hooks / sizeof *srv->metric_hooks) {
        srv->metric_hooks[srv->n_metric_hooks].fn = fn;
        srv->metric_hooks[srv->n_metric_hooks].ud = ud;
        srv->n_metric_hooks++;
        rc = 0;
    }
    pthread_mutex_unlock(&srv->hooks_mu);
    return rc;
}

int bs_server_on_stop(bs_server *srv, void (*fn)(void *ud), void *ud)
{
    int rc = -1;
    pthread_mutex_lock(&srv->hooks_mu);
    if (srv->n_stop_hooks < sizeof srv->stop_hooks / sizeof *srv->stop_hooks) {
        srv->stop_hooks[srv->n_stop_hooks].fn = fn;
        srv->stop_hooks[srv->n_stop_hooks].ud = ud;
        srv->n_stop_hooks++;
        rc = 0;
    }
    pthread_mutex_unlock(&srv->hooks_mu);
    return rc;
}

void bs_server_stop(bs_server *srv)
{
    if (!srv) return;
    bs_http_quiesce(srv);
    bs_downloads_quiesce(srv); /* event streams end, so that draining does not wait for them */
    bs_http_drain(srv);
    bs_http_stop(srv);
    /* Downloads use the hub, the hub asks the registry: stop in that order. */
    bs_downloads_shutdown(srv);
    bs_serving_free(srv->serving);
    srv->serving = NULL;
    for (size_t i = srv->n_stop_hooks; i-- > 0;) srv->stop_hooks[i].fn(srv->stop_hooks[i].ud);
    if (srv->maint_running) {
        pthread_mutex_lock(&srv->maint_mu);
        srv->stopping = 1;
        pthread_cond_broadcast(&srv->maint_cv);
        pthread_mutex_unlock(&srv->maint_mu);
        pthread_join(srv->maint, NULL);
    }
    bs_logq_stop(srv->logq);
    bs_err err = {0};
    if (srv->store && srv->usage && bs_usage_flush(srv->usage, srv->store, &err))
        bs_log_warn("server", "key usage lost at shutdown: %s", err.msg);
    if (srv->store) bs_store_close(srv->store);
    bs_metrics_free(srv->metrics);
    bs_usage_free(srv->usage);
    bs_ratelimit_free(srv->limiter);
    bs_authcache_free(srv->authcache);
    bs_settings_free(srv->settings);
    free(srv->tls_cert_pem);
    free(srv->tls_key_pem);
    pthread_cond_destroy(&srv->maint_cv);
    pthread_mutex_destroy(&srv->maint_mu);
    pthread_mutex_destroy(&srv->hooks_mu);
    pthread_mutex_destroy(&srv->sandbox_mu);
    pthread_cond_destroy(&srv->drain_cv);
    pthread_mutex_destroy(&srv->drain_mu);
    free(srv);
}
