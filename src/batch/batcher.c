/* The batcher thread of one model: takes the oldest queued request, adds
 * every later queued request that may share its call (same merge key) within
 * the token budget, runs them as one pipeline call and wakes their callers.
 * A lone request is taken as soon as it arrives, so it never waits for
 * company; under load, requests pile up while a batch runs and the next
 * batch takes them all. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch/batch.h"

typedef struct job {
    struct job *next;
    bs_task task;
    const json_t *request;
    char *key;
    size_t n_texts, tokens;
    bs_batch_alive_fn alive;
    void *alive_ud;
    /* result, written by the batcher thread */
    int done, rc;
    bs_err err;
    json_t *data;
} job;

struct bs_batcher {
    bs_batcher_opts opts;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    job *head, *tail;
    size_t queued;
    size_t max_tokens;
    int stop, joined;
    int hold; /* bs_batcher_hold */
    bs_batch_stats stats;
};

static size_t bucket_of(size_t k)
{
    size_t b = 0;
    while (k > 1 && b + 1 < BS_BATCH_SIZE_BUCKETS) {
        k >>= 1;
        b++;
    }
    return b;
}

static void run_alone(bs_batcher *b, job *j)
{
    j->rc = b->opts.run(b->opts.run_ud, j->task, j->request, &j->data, &j->err);
}

static int merged_truncated(const json_t *data)
{
    return json_is_true(json_object_get(data, "truncated"));
}

/* Runs jobs[0..k) as one call; falls back to one call each when the merged
 * call failed or truncated something (so that errors and flags belong to
 * the request that caused them). */
static void run_group(bs_batcher *b, job **jobs, size_t k, uint64_t *retried)
{
    if (k == 1) {
        run_alone(b, jobs[0]);
        return;
    }
    const json_t **reqs = calloc(k, sizeof *reqs);
    json_t *merged = NULL, *data = NULL;
    size_t total = 0;
    int ok = 0;
    if (reqs) {
        for (size_t i = 0; i < k; i++) {
            reqs[i] = jobs[i]->request;
            total += jobs[i]->n_texts;
        }
        merged = bs_batch_merge(reqs, k);
    }
    bs_err err = {0};
    if (merged && b->opts.run(b->opts.run_ud, jobs[0]->task, merged, &data, &err) == 0 &&
        !merged_truncated(data)) {
        ok = 1;
        size_t off = 0;
        for (size_t i = 0; i < k && ok; i++) {
            jobs[i]->data = bs_batch_split(data, total, off, jobs[i]->n_texts);
            off += jobs[i]->n_texts;
            if (!jobs[i]->data) ok = 0;
        }
    }
    if (!ok) {
        *retried += k;
        for (size_t i = 0; i < k; i++) {
            json_decref(jobs[i]->data);
            jobs[i]->data = NULL;
            run_alone(b, jobs[i]);
        }
    }
    json_decref(data);
    json_decref(merged);
    free(reqs);
}

static void unlink_job(bs_batcher *b, job *prev, job *j)
{
    if (prev)
        prev->next = j->next;
    else
        b->head = j->next;
    if (b->tail == j) b->tail = prev;
    j->next = NULL;
    b->queued--;
}

/* Waits (mu held) up to window_us for the queue to fill the budget. */
static void collect_window(bs_batcher *b)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    int64_t ns = deadline.tv_nsec + b->opts.window_us * 1000;
    deadline.tv_sec += ns / 1000000000;
    deadline.tv_nsec = ns % 1000000000;
    for (;;) {
        size_t tokens = 0;
        for (job *j = b->head; j; j = j->next) tokens += j->tokens;
        if (tokens >= b->max_tokens || b->stop) return;
        if (pthread_cond_timedwait(&b->work_cv, &b->mu, &deadline)) return;
    }
}

static void *batcher_main(void *arg)
{
    bs_batcher *b = arg;
    size_t cap = 64;
    job **group = malloc(cap * sizeof *group);
    size_t last_size = 1;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while ((!b->head || b->hold) && !b->stop) pthread_cond_wait(&b->work_cv, &b->mu);
        if (!b->head) break;
        if (b->opts.window_us > 0 && last_size > 1) collect_window(b);
        /* The oldest request leads; later compatible ones join in queue order. */
        job *lead = b->head;
        unlink_job(b, NULL, lead);
        size_t k = 0, tokens = lead->tokens, texts = lead->n_texts;
        if (group) group[k++] = lead;
        job *prev = NULL, *j = b->head;
        while (group && j) {
            job *next = j->next;
            if (!strcmp(j->key, lead->key) && tokens + j->tokens <= b->max_tokens &&
                texts + j->n_texts <= BS_PIPELINE_MAX_BATCH) {
                if (k == cap) {
                    job **g = realloc(group, 2 * cap * sizeof *group);
                    if (!g) break;
                    group = g;
                    cap *= 2;
                }
                unlink_job(b, prev, j);
                group[k++] = j;
                tokens += j->tokens;
                texts += j->n_texts;
            } else {
                prev = j;
            }
            j = next;
        }
        pthread_mutex_unlock(&b->mu);

        uint64_t cancelled = 0, retried = 0, live_texts = 0;
        size_t live = 0;
        if (!group) {
            /* Out of memory for the group array: serve the leader alone. */
            run_alone(b, lead);
            live = 1;
            live_texts = lead->n_texts;
        } else {
            /* Skip the work of callers that have gone away. */
            for (size_t i = 0; i < k; i++) {
                job *m = group[i];
                if (m->alive && !m->alive(m->alive_ud)) {
                    m->rc = bs_err_set(&m->err, BS_EIO,
                                       "the client disconnected before its request ran");
                    cancelled++;
                } else {
                    group[live++] = m;
                    live_texts += m->n_texts;
                }
            }
            if (live) run_group(b, group, live, &retried);
        }

        pthread_mutex_lock(&b->mu);
        if (live) {
            b->stats.batches++;
            b->stats.requests += live;
            b->stats.texts += live_texts;
            b->stats.sizes[bucket_of(live)]++;
            if (live > b->stats.max_batch) b->stats.max_batch = live;
        }
        b->stats.cancelled += cancelled;
        b->stats.retried += retried;
        last_size = live;
        if (group)
            for (size_t i = 0; i < k; i++) group[i]->done = 1;
        lead->done = 1;
        pthread_cond_broadcast(&b->done_cv);
    }
    pthread_mutex_unlock(&b->mu);
    free(group);
    return NULL;
}

int bs_batcher_new(const bs_batcher_opts *opts, bs_batcher **out, bs_err *err)
{
    *out = NULL;
    if (!opts || !opts->run) return bs_err_set(err, BS_EINVAL, "batcher: no run function");
    bs_batcher *b = calloc(1, sizeof *b);
    if (!b) return bs_err_set(err, BS_ENOMEM, "out of memory");
    b->opts = *opts;
    if (!b->opts.max_batch_tokens) b->opts.max_batch_tokens = 8192;
    if (!b->opts.max_queue) b->opts.max_queue = 256;
    if (!b->opts.max_seq_len) b->opts.max_seq_len = 512;
    b->max_tokens = b->opts.max_batch_tokens;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->work_cv, NULL);
    pthread_cond_init(&b->done_cv, NULL);
    if (pthread_create(&b->thread, NULL, batcher_main, b)) {
        pthread_cond_destroy(&b->done_cv);
        pthread_cond_destroy(&b->work_cv);
        pthread_mutex_destroy(&b->mu);
        free(b);
        return bs_err_set(err, BS_ENOMEM, "batcher: cannot start its thread");
    }
    *out = b;
    return 0;
}

void bs_batcher_stop(bs_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    int joined = b->joined;
    b->stop = 1;
    b->joined = 1;
    pthread_cond_signal(&b->work_cv);
    pthread_mutex_unlock(&b->mu);
    if (!joined) pthread_join(b->thread, NULL);
}

void bs_batcher_free(bs_batcher *b)
{
    if (!b) return;
    bs_batcher_stop(b);
    pthread_cond_destroy(&b->done_cv);
    pthread_cond_destroy(&b->work_cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void bs_batcher_set_max_tokens(bs_batcher *b, size_t max_batch_tokens)
{
    pthread_mutex_lock(&b->mu);
    if (max_batch_tokens) b->max_tokens = max_batch_tokens;
    pthread_mutex_unlock(&b->mu);
}

void bs_batcher_set_max_queue(bs_batcher *b, size_t max_queue)
{
    pthread_mutex_lock(&b->mu);
    if (max_queue) b->opts.max_queue = max_queue;
    pthread_mutex_unlock(&b->mu);
}

void bs_batcher_hold(bs_batcher *b, int hold)
{
    pthread_mutex_lock(&b->mu);
    b->hold = hold != 0;
    pthread_cond_signal(&b->work_cv);
    pthread_mutex_unlock(&b->mu);
}

int bs_batcher_run(bs_batcher *b, bs_task task, const json_t *request, bs_batch_alive_fn alive,
                   void *alive_ud, json_t **data_out, bs_err *err)
{
    *data_out = NULL;
    job j;
    memset(&j, 0, sizeof j);
    if (!bs_batch_mergeable(task, request, &j.key, &j.n_texts)) {
        pthread_mutex_lock(&b->mu);
        b->stats.direct++;
        pthread_mutex_unlock(&b->mu);
        return b->opts.run(b->opts.run_ud, task, request, data_out, err);
    }
    j.task = task;
    j.request = request;
    j.tokens = bs_batch_estimate_tokens(request, b->opts.max_seq_len);
    j.alive = alive;
    j.alive_ud = alive_ud;
    pthread_mutex_lock(&b->mu);
    if (b->queued >= b->opts.max_queue || b->stop) {
        b->stats.rejected++;
        pthread_mutex_unlock(&b->mu);
        free(j.key);
        return bs_err_set(err, BS_EBUSY,
                          "the model's request queue is full (%zu waiting); retry shortly",
                          b->opts.max_queue);
    }
    if (b->tail)
        b->tail->next = &j;
    else
        b->head = &j;
    b->tail = &j;
    b->queued++;
    pthread_cond_signal(&b->work_cv);
    while (!j.done) pthread_cond_wait(&b->done_cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    free(j.key);
    if (j.rc) {
        json_decref(j.data);
        if (err) *err = j.err;
        return j.rc;
    }
    *data_out = j.data;
    return 0;
}

void bs_batcher_stats(bs_batcher *b, bs_batch_stats *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->stats;
    out->queued = b->queued;
    pthread_mutex_unlock(&b->mu);
}
