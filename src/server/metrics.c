/* Lock-free counters: every request bumps a few atomics indexed by route,
 * status and latency bucket; rendering walks them and prints non-zero ones. */
#include "server/metrics.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define NSTATUS 500 /* 100..599 */
static const double bucket_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                   0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof bucket_le / sizeof *bucket_le)

typedef struct route_counters {
    atomic_ulong status[NSTATUS];
    atomic_ulong buckets[NBUCKETS + 1]; /* last: +Inf */
    atomic_ulong count;
    atomic_ullong sum_us;
} route_counters;

struct bs_metrics {
    size_t nroutes;
    route_counters *routes; /* nroutes + 1 */
    atomic_ulong rate_limited[BS_RL_NSCOPES];
    atomic_ulong store_errors;
};

bs_metrics *bs_metrics_new(size_t nroutes)
{
    bs_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->nroutes = nroutes;
    m->routes = calloc(nroutes + 1, sizeof *m->routes);
    if (!m->routes) {
        free(m);
        return NULL;
    }
    return m;
}

void bs_metrics_free(bs_metrics *m)
{
    if (!m) return;
    free(m->routes);
    free(m);
}

void bs_metrics_observe(bs_metrics *m, size_t route, int status, double seconds)
{
    if (route > m->nroutes) route = m->nroutes;
    route_counters *r = &m->routes[route];
    if (status >= 100 && status < 600) atomic_fetch_add(&r->status[status - 100], 1);
    size_t b = 0;
    while (b < NBUCKETS && seconds > bucket_le[b]) b++;
    atomic_fetch_add(&r->buckets[b], 1);
    atomic_fetch_add(&r->count, 1);
    atomic_fetch_add(&r->sum_us, (unsigned long long)(seconds * 1e6));
}

void bs_metrics_rate_limited(bs_metrics *m, bs_rl_scope scope)
{
    atomic_fetch_add(&m->rate_limited[scope], 1);
}

void bs_metrics_store_error(bs_metrics *m)
{
    atomic_fetch_add(&m->store_errors, 1);
}

void bs_metrics_render(bs_metrics *m, const char *const *methods, const char *const *patterns,
                       bs_buf *out)
{
    bs_buf_puts(out, "# HELP bertstudio_http_requests_total HTTP requests by route and status.\n"
                     "# TYPE bertstudio_http_requests_total counter\n");
    for (size_t i = 0; i <= m->nroutes; i++) {
        const char *meth = i < m->nroutes ? methods[i] : "",
                   *pat = i < m->nroutes ? patterns[i] : "unmatched";
        for (int s = 0; s < NSTATUS; s++) {
            unsigned long n = atomic_load(&m->routes[i].status[s]);
            if (n)
                bs_buf_printf(out,
                              "bertstudio_http_requests_total{method=\"%s\",route=\"%s\",status=\"%"
                              "d\"} %lu\n",
                              meth, pat, s + 100, n);
        }
    }
    bs_buf_puts(out, "# HELP bertstudio_http_request_duration_seconds Request latency by route.\n"
                     "# TYPE bertstudio_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->nroutes; i++) {
        route_counters *r = &m->routes[i];
        unsigned long count = atomic_load(&r->count);
        if (!count) continue;
        const char *meth = i < m->nroutes ? methods[i] : "",
                   *pat = i < m->nroutes ? patterns[i] : "unmatched";
        unsigned long cum = 0;
        for (size_t b = 0; b <= NBUCKETS; b++) {
            cum += atomic_load(&r->buckets[b]);
            if (b < NBUCKETS)
                bs_buf_printf(out,
                              "bertstudio_http_request_duration_seconds_bucket{method=\"%s\",route="
                              "\"%s\",le=\"%g\"} %lu\n",
                              meth, pat, bucket_le[b], cum);
            else
                bs_buf_printf(out,
                              "bertstudio_http_request_duration_seconds_bucket{method=\"%s\",route="
                              "\"%s\",le=\"+Inf\"} %lu\n",
                              meth, pat, cum);
        }
        bs_buf_printf(
            out, "bertstudio_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n",
            meth, pat, (double)atomic_load(&r->sum_us) / 1e6);
        bs_buf_printf(
            out, "bertstudio_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %lu\n",
            meth, pat, count);
    }
    static const char *scopes[] = {"ip", "key_minute", "key_hour", "custom_tasks"};
    bs_buf_puts(out, "# HELP bertstudio_rate_limited_total Requests refused with 429, by limit.\n"
                     "# TYPE bertstudio_rate_limited_total counter\n");
    for (int s = 0; s < BS_RL_NSCOPES; s++)
        bs_buf_printf(out, "bertstudio_rate_limited_total{scope=\"%s\"} %lu\n", scopes[s],
                      atomic_load(&m->rate_limited[s]));
    bs_buf_printf(out,
                  "# HELP bertstudio_store_errors_total Store failures seen by request handlers.\n"
                  "# TYPE bertstudio_store_errors_total counter\n"
                  "bertstudio_store_errors_total %lu\n",
                  atomic_load(&m->store_errors));
}

void bs_metrics_batch(const bs_batch_stats *st, bs_buf *out)
{
    bs_batch_stats s = *st;
    bs_buf_puts(out,
                "# HELP bertstudio_batch_size Requests whose sequences shared one forward pass.\n"
                "# TYPE bertstudio_batch_size histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < BS_BATCH_SIZE_BUCKETS; i++) {
        cum += s.sizes[i];
        if (i + 1 < BS_BATCH_SIZE_BUCKETS)
            bs_buf_printf(out, "bertstudio_batch_size_bucket{le=\"%llu\"} %llu\n",
                          (unsigned long long)((2ull << i) - 1), (unsigned long long)cum);
    }
    bs_buf_printf(out, "bertstudio_batch_size_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    bs_buf_printf(out, "bertstudio_batch_size_sum %llu\nbertstudio_batch_size_count %llu\n",
                  (unsigned long long)s.requests, (unsigned long long)s.batches);
    bs_buf_printf(
        out,
        "# HELP bertstudio_batch_max_size Most requests merged into one forward pass.\n"
        "# TYPE bertstudio_batch_max_size gauge\nbertstudio_batch_max_size %llu\n"
        "# HELP bertstudio_batch_queue_depth Requests waiting for a batch.\n"
        "# TYPE bertstudio_batch_queue_depth gauge\nbertstudio_batch_queue_depth %zu\n"
        "# HELP bertstudio_batch_rejected_total Requests refused because a model's queue was "
        "full.\n"
        "# TYPE bertstudio_batch_rejected_total counter\nbertstudio_batch_rejected_total %llu\n"
        "# HELP bertstudio_batch_cancelled_total Queued requests skipped because the client left.\n"
        "# TYPE bertstudio_batch_cancelled_total counter\nbertstudio_batch_cancelled_total %llu\n"
        "# HELP bertstudio_batch_unbatched_total Forwards run outside the queue "
        "(library callers).\n"
        "# TYPE bertstudio_batch_unbatched_total counter\nbertstudio_batch_unbatched_total %llu\n",
        (unsigned long long)s.max_batch, s.queued, (unsigned long long)s.rejected,
        (unsigned long long)s.cancelled, (unsigned long long)s.direct);
    bs_buf_puts(out, "# HELP bertstudio_decoder_step_size Generating requests whose decoder "
                     "steps shared one pass.\n"
                     "# TYPE bertstudio_decoder_step_size histogram\n");
    cum = 0;
    for (int i = 0; i < BS_BATCH_SIZE_BUCKETS; i++) {
        cum += s.dec_sizes[i];
        if (i + 1 < BS_BATCH_SIZE_BUCKETS)
            bs_buf_printf(out, "bertstudio_decoder_step_size_bucket{le=\"%llu\"} %llu\n",
                          (unsigned long long)((2ull << i) - 1), (unsigned long long)cum);
    }
    bs_buf_printf(out, "bertstudio_decoder_step_size_bucket{le=\"+Inf\"} %llu\n",
                  (unsigned long long)cum);
    bs_buf_printf(
        out, "bertstudio_decoder_step_size_sum %llu\nbertstudio_decoder_step_size_count %llu\n",
        (unsigned long long)s.dec_requests, (unsigned long long)s.dec_steps);
    bs_buf_printf(out,
                  "# HELP bertstudio_batch_mixed_routes_total Forward passes holding sequences "
                  "of two tasks or routes or more.\n"
                  "# TYPE bertstudio_batch_mixed_routes_total counter\n"
                  "bertstudio_batch_mixed_routes_total %llu\n",
                  (unsigned long long)s.mixed);
}
