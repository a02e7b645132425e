/* The connection registry (conns.h): a list oldest first and a count per
 * client IP, under one lock, and a sweeper thread that enforces the header
 * deadline and the body rate. Only shutdown(2) is ever done to a socket
 * here, under the lock, and a connection leaves the registry (under the
 * same lock) before the HTTP library closes its socket: an fd shut down
 * here is always still the connection's own. */
#include "server/conns.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "util/time.h"

#define IP_BUCKETS 1024

typedef struct ip_count {
    struct ip_count *next;
    int64_t n;
    char ip[64];
} ip_count;

struct bs_conns {
    pthread_mutex_t mu;
    bs_conn *head, *tail;
    int64_t total; /* registered and not closing */
    ip_count *ips[IP_BUCKETS];
    bs_conns_stats stats;
    void (*limits_fn)(void *ud, bs_conns_limits *out);
    void *ud;
    /* the sweeper */
    pthread_t thread;
    int running, stopping;
    pthread_cond_t wake;
};

static unsigned ip_hash(const char *s)
{
    unsigned h = 2166136261u;
    while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % IP_BUCKETS;
}

/* The count of ip, created at 0 when absent (NULL when out of memory). */
static ip_count *ip_get(bs_conns *cs, const char *ip, int create)
{
    unsigned b = ip_hash(ip);
    for (ip_count *e = cs->ips[b]; e; e = e->next)
        if (!strcmp(e->ip, ip)) return e;
    if (!create) return NULL;
    ip_count *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    memcpy(e->ip, ip, sizeof e->ip);
    e->ip[sizeof e->ip - 1] = 0;
    e->next = cs->ips[b];
    cs->ips[b] = e;
    return e;
}

static void ip_add(bs_conns *cs, const char *ip, int64_t d)
{
    ip_count *e = ip_get(cs, ip, d > 0);
    if (!e) return;
    e->n += d;
    if (e->n > 0) return;
    ip_count **p = &cs->ips[ip_hash(ip)];
    while (*p != e) p = &(*p)->next;
    *p = e->next;
    free(e);
}

static int64_t ip_n(bs_conns *cs, const char *ip)
{
    ip_count *e = ip_get(cs, ip, 0);
    return e ? e->n : 0;
}

/* Shuts c down and stops counting it (lock held). */
static void shut(bs_conns *cs, bs_conn *c, int64_t *why)
{
    c->closing = 1;
    cs->total--;
    ip_add(cs, c->ip, -1);
    (*why)++;
    shutdown(c->fd, SHUT_RDWR);
}

/* The oldest connection waiting for a request (of ip, or of any IP when
 * ip is NULL), other than self; NULL when every one has a request in
 * progress. */
static bs_conn *oldest_idle(bs_conns *cs, const char *ip, const bs_conn *self)
{
    for (bs_conn *c = cs->head; c; c = c->next)
        if (c != self && !c->busy && !c->closing && (!ip || !strcmp(c->ip, ip))) return c;
    return NULL;
}

/* Over a cap, closes idle connections (oldest first) until c fits or none
 * is left (lock held). */
static void make_room(bs_conns *cs, bs_conn *c, const bs_conns_limits *lim)
{
    bs_conn *v;
    while (!c->trusted && ip_n(cs, c->ip) > lim->max_per_ip && (v = oldest_idle(cs, c->ip, c)))
        shut(cs, v, &cs->stats.evicted_idle);
    while (cs->total > lim->max_total && (v = oldest_idle(cs, NULL, c)))
        shut(cs, v, &cs->stats.evicted_idle);
}

bs_conns *bs_conns_new(void (*limits_fn)(void *ud, bs_conns_limits *out), void *ud)
{
    bs_conns *cs = calloc(1, sizeof *cs);
    if (!cs) return NULL;
    pthread_mutex_init(&cs->mu, NULL);
    pthread_cond_init(&cs->wake, NULL);
    cs->limits_fn = limits_fn;
    cs->ud = ud;
    return cs;
}

void bs_conns_add(bs_conns *cs, bs_conn *c, int64_t now_ms)
{
    bs_conns_limits lim;
    cs->limits_fn(cs->ud, &lim);
    pthread_mutex_lock(&cs->mu);
    c->prev = cs->tail;
    c->next = NULL;
    if (cs->tail)
        cs->tail->next = c;
    else
        cs->head = c;
    cs->tail = c;
    c->busy = c->admitted = c->closing = c->body_open = 0;
    c->idle_ms = now_ms;
    atomic_store(&c->body_bytes, 0);
    cs->total++;
    ip_add(cs, c->ip, 1);
    make_room(cs, c, &lim);
    pthread_mutex_unlock(&cs->mu);
}

void bs_conns_remove(bs_conns *cs, bs_conn *c)
{
    pthread_mutex_lock(&cs->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        cs->tail = c->prev;
    c->prev = c->next = NULL;
    if (!c->closing) {
        cs->total--;
        ip_add(cs, c->ip, -1);
    }
    c->closing = 1;
    pthread_mutex_unlock(&cs->mu);
}

int bs_conns_begin(bs_conns *cs, bs_conn *c, int64_t now_ms)
{
    bs_conns_limits lim;
    cs->limits_fn(cs->ud, &lim);
    int rc = BS_CONNS_OK;
    pthread_mutex_lock(&cs->mu);
    c->busy = 1;
    c->body_open = 0;
    atomic_store(&c->body_bytes, 0);
    (void)now_ms;
    if (!c->admitted && !c->closing) {
        make_room(cs, c, &lim);
        if (cs->total > lim.max_total)
            rc = BS_CONNS_OVER_TOTAL;
        else if (!c->trusted && ip_n(cs, c->ip) > lim.max_per_ip)
            rc = BS_CONNS_OVER_IP;
        else
            c->admitted = 1;
    }
    pthread_mutex_unlock(&cs->mu);
    return rc;
}

void bs_conns_admit(bs_conns *cs, bs_conn *c)
{
    pthread_mutex_lock(&cs->mu);
    c->admitted = 1;
    pthread_mutex_unlock(&cs->mu);
}

void bs_conns_body(bs_conns *cs, bs_conn *c, int open, int64_t now_ms)
{
    pthread_mutex_lock(&cs->mu);
    c->body_open = open;
    c->mark_ms = now_ms;
    c->mark_bytes = atomic_load(&c->body_bytes);
    pthread_mutex_unlock(&cs->mu);
}

void bs_conns_end(bs_conns *cs, bs_conn *c, int64_t now_ms)
{
    pthread_mutex_lock(&cs->mu);
    c->busy = 0;
    c->body_open = 0;
    c->idle_ms = now_ms;
    pthread_mutex_unlock(&cs->mu);
}

int bs_conns_sweep(bs_conns *cs, const bs_conns_limits *lim, int64_t now_ms)
{
    int n = 0;
    pthread_mutex_lock(&cs->mu);
    for (bs_conn *c = cs->head; c; c = c->next) {
        if (c->closing) continue;
        if (!c->busy) {
            if (now_ms - c->idle_ms >= lim->header_ms) {
                shut(cs, c, &cs->stats.header_timeouts);
                n++;
            }
            continue;
        }
        if (!c->body_open || lim->min_body_rate <= 0) continue;
        int64_t span = now_ms - c->mark_ms;
        if (span < lim->body_window_ms) continue;
        size_t bytes = atomic_load(&c->body_bytes);
        /* Each window on its own: a fast start buys no time to stall. */
        if ((double)(bytes - c->mark_bytes) * 1000.0 < (double)lim->min_body_rate * (double)span) {
            shut(cs, c, &cs->stats.slow_bodies);
            n++;
        } else {
            c->mark_ms = now_ms;
            c->mark_bytes = bytes;
        }
    }
    pthread_mutex_unlock(&cs->mu);
    return n;
}

void bs_conns_stats_get(bs_conns *cs, bs_conns_stats *out)
{
    pthread_mutex_lock(&cs->mu);
    *out = cs->stats;
    out->open = cs->total;
    out->busy = 0;
    for (bs_conn *c = cs->head; c; c = c->next) out->busy += c->busy && !c->closing;
    pthread_mutex_unlock(&cs->mu);
}

/* Ticks at a quarter of the shortest deadline (50 ms to 1 s), so that a
 * connection is closed at most a quarter late. */
static void *sweeper(void *arg)
{
    bs_conns *cs = arg;
    pthread_mutex_lock(&cs->mu);
    while (!cs->stopping) {
        pthread_mutex_unlock(&cs->mu);
        bs_conns_limits lim;
        cs->limits_fn(cs->ud, &lim);
        bs_conns_sweep(cs, &lim, bs_time_mono_ns() / 1000000);
        int64_t tick = lim.header_ms < lim.body_window_ms ? lim.header_ms : lim.body_window_ms;
        tick /= 4;
        if (tick < 50) tick = 50;
        if (tick > 1000) tick = 1000;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(tick % 1000) * 1000000L;
        until.tv_sec += tick / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&cs->mu);
        if (!cs->stopping) pthread_cond_timedwait(&cs->wake, &cs->mu, &until);
    }
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

int bs_conns_start(bs_conns *cs)
{
    if (pthread_create(&cs->thread, NULL, sweeper, cs)) return -1;
    cs->running = 1;
    return 0;
}

void bs_conns_free(bs_conns *cs)
{
    if (!cs) return;
    if (cs->running) {
        pthread_mutex_lock(&cs->mu);
        cs->stopping = 1;
        pthread_cond_broadcast(&cs->wake);
        pthread_mutex_unlock(&cs->mu);
        pthread_join(cs->thread, NULL);
    }
    for (size_t b = 0; b < IP_BUCKETS; b++)
        while (cs->ips[b]) {
            ip_count *e = cs->ips[b];
            cs->ips[b] = e->next;
            free(e);
        }
    pthread_cond_destroy(&cs->wake);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
}
