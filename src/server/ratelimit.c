/* Sliding-window counters in a hash table with striped locks: requests for
 * different keys rarely contend, and one request takes at most three
 * counters. */
#include "server/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NSTRIPES 32
#define NBUCKETS 4096

typedef struct rl_entry {
    struct rl_entry *next;
    int64_t window_ms;
    int64_t window_idx; /* now / window_ms of the current window */
    int64_t prev, cur;
    char key[96];
} rl_entry;

struct bs_ratelimiter {
    pthread_mutex_t stripes[NSTRIPES];
    rl_entry *buckets[NBUCKETS];
    atomic_size_t size;
    size_t max_entries;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

bs_ratelimiter *bs_ratelimit_new(size_t max_entries)
{
    bs_ratelimiter *rl = calloc(1, sizeof *rl);
    if (!rl) return NULL;
    for (int i = 0; i < NSTRIPES; i++) pthread_mutex_init(&rl->stripes[i], NULL);
    rl->max_entries = max_entries;
    return rl;
}

void bs_ratelimit_free(bs_ratelimiter *rl)
{
    if (!rl) return;
    for (size_t b = 0; b < NBUCKETS; b++) {
        rl_entry *e = rl->buckets[b];
        while (e) {
            rl_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    for (int i = 0; i < NSTRIPES; i++) pthread_mutex_destroy(&rl->stripes[i]);
    free(rl);
}

int bs_ratelimit_decide(int64_t prev, int64_t cur, int64_t elapsed_ms, int64_t limit,
                        int64_t window_ms, bs_rl_result *out)
{
    double w = (double)window_ms, e = (double)elapsed_ms;
    int64_t weighted = (int64_t)floor((double)prev * (w - e) / w) + cur;
    bs_rl_result r = {.limit = limit,
                      .reset_s = (int64_t)ceil((w - e) / 1000.0),
                      .remaining = 0,
                      .retry_after_s = 0};
    if (r.reset_s < 1) r.reset_s = 1;
    if (weighted < limit) {
        r.remaining = limit - weighted - 1;
        if (out) *out = r;
        return 1;
    }
    /* Refused: when will floor(weighted) drop below limit with no new
     * events? First while the previous window slides out of this one... */
    double wait_ms;
    if (cur < limit && prev > 0 && (double)(limit - cur) * w / (double)prev > 0) {
        /* prev * (w - e - d) / w < limit - cur  <=>  d > w - e - (limit - cur) * w / prev */
        wait_ms = w - e - (double)(limit - cur) * w / (double)prev;
        if (wait_ms < 0) wait_ms = 0;
    } else {
        /* ...else in the next window, where cur becomes the previous one:
         * cur * (w - e') / w < limit  <=>  e' > w - limit * w / cur. */
        double e2 = cur > 0 ? w - (double)limit * w / (double)cur : 0;
        if (e2 < 0) e2 = 0;
        wait_ms = (w - e) + e2;
    }
    r.retry_after_s = (int64_t)floor(wait_ms / 1000.0) + 1;
    if (out) *out = r;
    return 0;
}

int bs_ratelimit_hit(bs_ratelimiter *rl, const char *key, int64_t limit, int64_t window_ms,
                     int64_t now_ms, bs_rl_result *out)
{
    uint64_t h = hash(key);
    size_t b = h % NBUCKETS;
    pthread_mutex_t *mu = &rl->stripes[b % NSTRIPES];
    int64_t idx = now_ms / window_ms, elapsed = now_ms - idx * window_ms;
    pthread_mutex_lock(mu);
    rl_entry *e = rl->buckets[b];
    while (e && (e->window_ms != window_ms || strcmp(e->key, key))) e = e->next;
    if (!e) {
        if (atomic_load(&rl->size) >= rl->max_entries || !(e = calloc(1, sizeof *e))) {
            /* Out of room: decide as for a fresh counter, without tracking. */
            pthread_mutex_unlock(mu);
            return bs_ratelimit_decide(0, 0, elapsed, limit, window_ms, out);
        }
        strncpy(e->key, key, sizeof e->key - 1);
        e->window_ms = window_ms;
        e->window_idx = idx;
        e->next = rl->buckets[b];
        rl->buckets[b] = e;
        atomic_fetch_add(&rl->size, 1);
    }
    if (e->window_idx != idx) {
        e->prev = e->window_idx == idx - 1 ? e->cur : 0;
        e->cur = 0;
        e->window_idx = idx;
    }
    int ok = bs_ratelimit_decide(e->prev, e->cur, elapsed, limit, window_ms, out);
    if (ok) e->cur++;
    pthread_mutex_unlock(mu);
    return ok;
}

void bs_ratelimit_gc(bs_ratelimiter *rl, int64_t now_ms)
{
    for (size_t b = 0; b < NBUCKETS; b++) {
        pthread_mutex_t *mu = &rl->stripes[b % NSTRIPES];
        pthread_mutex_lock(mu);
        rl_entry **pp = &rl->buckets[b];
        while (*pp) {
            rl_entry *e = *pp;
            if (now_ms / e->window_ms - e->window_idx >= 2) {
                *pp = e->next;
                free(e);
                atomic_fetch_sub(&rl->size, 1);
            } else {
                pp = &e->next;
            }
        }
        pthread_mutex_unlock(mu);
    }
}

size_t bs_ratelimit_size(bs_ratelimiter *rl)
{
    return atomic_load(&rl->size);
}
