/* The HTTP server: binds, serves the route table, shuts down gracefully.
 * A bs_server owns every service its handlers use (several may run in one
 * process: nothing is process-global). */
#ifndef BS_SERVER_SERVER_H
#define BS_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "bertstudio/common.h"

typedef struct bs_server_opts {
    const char *host;      /* default "127.0.0.1" */
    uint16_t port;         /* default 8000; 0 = any free port */
    const char *data_dir;  /* default "./data" */
    const char *store_uri; /* default DATA_DIR/bertstudio.db (SQLite); or mongodb://... */
    unsigned threads;      /* most requests handled at once (a worker thread each); 0 = 1024 */
    int quiet;             /* no access log */
    int precision;         /* bs_precision the models are loaded in (0 = f32, exact) */
    const char *tls_cert;  /* PEM files: both set = HTTPS */
    const char *tls_key;
    /* Serve the web studio from this folder (a Vite build) instead of the
     * files embedded in the binary; NULL = embedded. */
    const char *web_dir;
    /* Called once, before the server listens, when the store had no API
     * key and the server created the first admin key: secret is shown
     * nowhere else (the CLI prints it). May be NULL. */
    void (*on_admin_key)(const char *secret, void *ud);
    void *on_admin_key_ud;
} bs_server_opts;

typedef struct bs_server bs_server;
struct bs_store;

/* Opens the store in data_dir, creates the first admin key on an empty
 * store, binds host:port and starts serving in background threads. On
 * success *out is the running server. */
int bs_server_start(const bs_server_opts *opts, bs_server **out, bs_err *err);
/* The port actually bound (useful with port 0). */
uint16_t bs_server_port(const bs_server *srv);
/* Stops accepting, waits for in-flight requests to finish, flushes key
 * usage and the log queue, closes the store and frees the server. */
void bs_server_stop(bs_server *srv);

/* Creates an API key with every permission and no rate limits (the CLI's
 * `keys create --admin` and the first start). *secret: caller frees. */
int bs_server_create_admin_key(struct bs_store *store, const char *name, char **secret,
                               bs_err *err);

#endif
