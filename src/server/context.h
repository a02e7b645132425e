/* What a running server holds and every handler may reach through
 * req->server: options, the store, and the in-flight request count that
 * graceful shutdown waits on. */
#ifndef BS_SERVER_CONTEXT_H
#define BS_SERVER_CONTEXT_H

#include <pthread.h>
#include <stdatomic.h>

#include "server/server.h"
#include "store/store.h"

struct bs_server {
    bs_server_opts opts;
    char host[256];
    char data_dir[4096];
    void *daemon; /* struct MHD_Daemon */
    uint16_t port;
    bs_store *store;
    int64_t started_ms;
    atomic_long in_flight;
    pthread_mutex_t drain_mu;
    pthread_cond_t drain_cv;
};

#endif
