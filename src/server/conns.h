/* The connections the server holds, from accept to close, and the limits
 * on them (issue 17 H1): a global cap, a cap per client IP, a deadline for
 * a request's headers and a minimum rate for its body. A connection past a
 * limit is shut down (shutdown(2) on its socket, so that the HTTP library
 * notices and closes it through its usual path); the library's own records
 * are never touched from here. */
#ifndef BS_SERVER_CONNS_H
#define BS_SERVER_CONNS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* One connection, owned by the caller (embedded in its per-connection
 * state), registered from bs_conns_add until bs_conns_remove. Fields are
 * guarded by the registry's lock except body_bytes. */
typedef struct bs_conn {
    struct bs_conn *prev, *next; /* oldest first */
    int fd;
    char ip[64];     /* the peer's address */
    int trusted;     /* the peer is a trusted proxy: no per-IP cap */
    int busy;        /* a request is in progress (headers in, answer not yet sent) */
    int admitted;    /* a request of it passed the caps */
    int closing;     /* shut down by the registry: no longer counted */
    int body_open;   /* its request's body is being read */
    int64_t idle_ms; /* since when it waits for a request's headers (when !busy) */
    int64_t mark_ms; /* start of the body-rate window */
    size_t mark_bytes;
    atomic_size_t body_bytes; /* body bytes read for the request in progress */
} bs_conn;

typedef struct bs_conns_limits {
    int64_t max_total;     /* connections at once */
    int64_t max_per_ip;    /* connections at once from one IP */
    int64_t header_ms;     /* a request's headers must be in this long after connect or the previous
                              answer */
    int64_t min_body_rate; /* bytes/s of a body, over each window; 0 = none */
    int64_t body_window_ms; /* length of those windows (the first starts at the headers) */
} bs_conns_limits;

/* What bs_conns_admit decided. */
enum { BS_CONNS_OK = 0, BS_CONNS_OVER_TOTAL = 1, BS_CONNS_OVER_IP = 2 };

/* How many connections were shut down, and why (for logs and tests). */
typedef struct bs_conns_stats {
    int64_t open;
    int64_t busy;         /* of them, with a request in progress */
    int64_t evicted_idle; /* idle ones closed to make room */
    int64_t header_timeouts;
    int64_t slow_bodies;
} bs_conns_stats;

typedef struct bs_conns bs_conns;

/* limits_fn(ud, out) gives the limits in force (read by the sweeper every
 * tick, so setting changes apply at once). NULL when out of memory. */
bs_conns *bs_conns_new(void (*limits_fn)(void *ud, bs_conns_limits *out), void *ud);
/* Starts the sweeper thread (deadlines, body rate): 0, or -1. */
int bs_conns_start(bs_conns *cs);
/* Stops the sweeper and frees cs (no connection may remain registered).
 * NULL is accepted. */
void bs_conns_free(bs_conns *cs);

/* Registers c (fd, ip and trusted filled by the caller) at accept. When
 * over a cap, the oldest idle connection of the same IP (or, over the
 * global cap, of any IP) is shut down to make room. */
void bs_conns_add(bs_conns *cs, bs_conn *c, int64_t now_ms);
/* Unregisters c (the library is closing it). */
void bs_conns_remove(bs_conns *cs, bs_conn *c);
/* A request's headers are in: c is busy. For the first request of c, the
 * caps are checked again (making room as bs_conns_add does):
 * BS_CONNS_OVER_TOTAL or BS_CONNS_OVER_IP when c holds no room. */
int bs_conns_begin(bs_conns *cs, bs_conn *c, int64_t now_ms);
/* Admits c once its request proved exempt from the per-IP cap (a valid
 * admin key). */
void bs_conns_admit(bs_conns *cs, bs_conn *c);
/* The body of c's request starts (after the checks on its headers) or is
 * complete; the rate is checked in between. */
void bs_conns_body(bs_conns *cs, bs_conn *c, int open, int64_t now_ms);
static inline void bs_conns_body_bytes(bs_conn *c, size_t n)
{
    atomic_fetch_add(&c->body_bytes, n);
}
/* c's exchange is over: it waits for its next request's headers. */
void bs_conns_end(bs_conns *cs, bs_conn *c, int64_t now_ms);
/* One pass of the sweeper (exposed for the unit test): shuts down what is
 * past a deadline or under the body rate. Returns how many. */
int bs_conns_sweep(bs_conns *cs, const bs_conns_limits *lim, int64_t now_ms);
void bs_conns_stats_get(bs_conns *cs, bs_conns_stats *out);

#endif
