/* Server lifecycle: open the store, start HTTP, and on stop drain in-flight
 * requests before anything they use is torn down. */
#include "server/context.h"
#include "server/http_glue.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BS_DEFAULT_MAX_BODY (10u * 1024 * 1024)

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

int bs_server_start(const bs_server_opts *opts, bs_server **out, bs_err *err)
{
    bs_server *srv = calloc(1, sizeof *srv);
    if (!srv) return bs_err_set(err, BS_ENOMEM, "out of memory");
    srv->opts = *opts;
    snprintf(srv->host, sizeof srv->host, "%s", opts->host ? opts->host : "127.0.0.1");
    snprintf(srv->data_dir, sizeof srv->data_dir, "%s", opts->data_dir ? opts->data_dir : "./data");
    if (!srv->opts.max_body_bytes) srv->opts.max_body_bytes = BS_DEFAULT_MAX_BODY;
    srv->started_ms = bs_time_now_ms();
    pthread_mutex_init(&srv->drain_mu, NULL);
    pthread_cond_init(&srv->drain_cv, NULL);

    int rc = make_dir(srv->data_dir, err);
    char uri[4200];
    snprintf(uri, sizeof uri, "%s/bertstudio.db", srv->data_dir);
    if (!rc) rc = bs_store_open(uri, NULL, &srv->store, err);
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

void bs_server_stop(bs_server *srv)
{
    if (!srv) return;
    bs_http_quiesce(srv);
    pthread_mutex_lock(&srv->drain_mu);
    while (atomic_load(&srv->in_flight) > 0) pthread_cond_wait(&srv->drain_cv, &srv->drain_mu);
    pthread_mutex_unlock(&srv->drain_mu);
    bs_http_stop(srv);
    if (srv->store) bs_store_close(srv->store);
    pthread_cond_destroy(&srv->drain_cv);
    pthread_mutex_destroy(&srv->drain_mu);
    free(srv);
}
