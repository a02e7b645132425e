/* Private to server/: the HTTP library's start/stop, used by server.c. */
#ifndef BS_SERVER_HTTP_GLUE_H
#define BS_SERVER_HTTP_GLUE_H

#include "bertstudio/common.h"

struct bs_server;
struct bs_conns_limits;

int bs_http_start(struct bs_server *srv, bs_err *err);
/* Stops accepting new connections; in-flight exchanges continue, and any
 * request that begins from now on is answered 503 + Connection: close. */
void bs_http_quiesce(struct bs_server *srv);
/* Waits until no exchange is in flight and no connection accepted before
 * the stop still owes its request (those get BS_HTTP_DRAIN_WAIT_MS to send
 * it). */
void bs_http_drain(struct bs_server *srv);
void bs_http_stop(struct bs_server *srv);
/* The connection limits in force (settings max_connections, bounded by the
 * open-file limit, max_connections_per_ip, header_timeout_seconds,
 * min_body_bytes_per_second, body_rate_window_seconds). */
void bs_http_limits(struct bs_server *srv, struct bs_conns_limits *out);

#endif
