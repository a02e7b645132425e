/* Rate limiting with sliding-window counters kept in memory: per client IP,
 * per API key (per minute, per hour) and per key for custom task runs.
 * Each counter remembers the previous and current fixed window and weighs
 * the previous one by how much of it still overlaps the sliding window, so
 * memory is O(1) per counter and bursts at window edges stay bounded. */
#ifndef BS_SERVER_RATELIMIT_H
#define BS_SERVER_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "server/http.h"

typedef struct bs_ratelimiter bs_ratelimiter;

typedef struct bs_rl_result {
    int64_t limit;
    int64_t remaining;     /* after this hit (0 when refused) */
    int64_t reset_s;       /* seconds until the current window ends */
    int64_t retry_after_s; /* refused: seconds until one more request fits */
} bs_rl_result;

/* max_entries bounds memory (counters idle for two windows are reclaimed
 * by bs_ratelimit_gc; beyond the bound new counters are not tracked). */
bs_ratelimiter *bs_ratelimit_new(size_t max_entries);
void bs_ratelimit_free(bs_ratelimiter *rl);

/* Counts one event on counter `key` (any string up to 95 bytes) against
 * `limit` events per `window_ms` at time now_ms. Returns 1 when allowed
 * (and counted), 0 when refused (not counted). out may be NULL. */
int bs_ratelimit_hit(bs_ratelimiter *rl, const char *key, int64_t limit, int64_t window_ms,
                     int64_t now_ms, bs_rl_result *out);

/* The pure arithmetic of one counter, exposed for tests: with prev events
 * in the previous window and cur in the current one, elapsed_ms into the
 * current window, is one more event allowed? Fills out either way. */
int bs_ratelimit_decide(int64_t prev, int64_t cur, int64_t elapsed_ms, int64_t limit,
                        int64_t window_ms, bs_rl_result *out);

/* Drops counters idle for more than two of their windows. */
void bs_ratelimit_gc(bs_ratelimiter *rl, int64_t now_ms);
/* Number of live counters. */
size_t bs_ratelimit_size(bs_ratelimiter *rl);

/* For custom task handlers: counts one custom task run of the caller's key
 * against its rate_limits.custom_tasks_per_hour. Returns 0 when allowed;
 * otherwise fills res with 429 (Retry-After, X-RateLimit-*) and returns -1. */
int bs_server_limit_custom_task(bs_request *req, bs_response *res);

#endif
