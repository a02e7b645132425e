/* The HTTP server: binds, serves the route table, shuts down gracefully.
 * One bs_server per process; it owns the services the handlers use. */
#ifndef BS_SERVER_SERVER_H
#define BS_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "bertstudio/common.h"

typedef struct bs_server_opts {
    const char *host;      /* default "127.0.0.1" */
    uint16_t port;         /* default 8000; 0 = any free port */
    const char *data_dir;  /* default "./data" */
    unsigned threads;      /* connection threads; 0 = default */
    size_t max_body_bytes; /* default 10 MB (setting max_request_bytes) */
    int quiet;             /* no access log */
} bs_server_opts;

typedef struct bs_server bs_server;

/* Opens the store in data_dir, binds host:port and starts serving in
 * background threads. On success *out is the running server. */
int bs_server_start(const bs_server_opts *opts, bs_server **out, bs_err *err);
/* The port actually bound (useful with port 0). */
uint16_t bs_server_port(const bs_server *srv);
/* Stops accepting, waits for in-flight requests to finish, closes the store
 * and frees the server. */
void bs_server_stop(bs_server *srv);

#endif
