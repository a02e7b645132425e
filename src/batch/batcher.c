/* The batcher thread of one model: takes the oldest queued forward, adds
 * every later one within the token budget (any task, any route), runs them
 * as one padding-free forward pass and copies each caller its own rows. A
 * lone forward is taken as soon as it arrives, so it never waits for
 * company; under load, forwards pile up while a batch runs and the next
 * batch takes them all.
 *
 * Decoder steps of generation queue apart and need no thread of their own:
 * the first caller to find no step pass running leads one. It waits briefly
 * for the other generating callers' steps, runs them all as one pass in its
 * own thread and wakes them. A lone request thus steps without any handoff. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch/batch.h"

/* Most a step pass' leader waits for the other generating requests to
 * queue their steps (each is busy with its previous step's logits). */
#define STEP_WAIT_US 2000

typedef struct job {
    struct job *next;
    int decode; /* a decoder step (cache, tokens, logits), else a forward */
    const bs_batch *batch;
    bs_model_outputs *out; /* the caller's: request fields in, its rows out */
    bs_kv_cache *cache;
    const int32_t *step_tokens;
    float *logits;
    size_t tokens; /* forward: tokens; decoder step: rows */
    int route;
    bs_batch_alive_fn alive;
    void *alive_ud;
    /* result, written by the batcher thread */
    int done, rc;
    bs_err err;
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
    int hold;        /* bs_batcher_hold */
    size_t inflight; /* callers between bs_batcher_enter and bs_batcher_leave */
    /* Decoder steps: their own queue, led by callers (bs_batcher_decode). */
    job *steps_head, *steps_tail;
    size_t queued_steps;
    size_t decoding;        /* callers generating: their last queued job was a decoder step */
    int stepping;           /* a caller leads a step pass now */
    pthread_cond_t step_cv; /* a step queued or a generating caller left */
    bs_batch_stats stats;
    bs_model_outputs big; /* the combined pass' outputs, reused (batcher thread only) */
};

/* What the calling thread serves (bs_batcher_run / bs_batcher_enter). */
static _Thread_local struct {
    bs_batcher *b;
    int route;
    bs_batch_alive_fn alive;
    void *alive_ud;
    int decoding; /* counted in b->decoding */
} serving;

static size_t bucket_of(size_t k)
{
    size_t b = 0;
    while (k > 1 && b + 1 < BS_BATCH_SIZE_BUCKETS) {
        k >>= 1;
        b++;
    }
    return b;
}

void bs_batcher_outputs_release(bs_model_outputs *out)
{
    unsigned want = out->want;
    const int32_t *pos = out->mlm_positions;
    int32_t n_pos = out->n_mlm_positions;
    free(out->priv_);
    memset(out, 0, sizeof *out);
    out->want = want;
    out->mlm_positions = pos;
    out->n_mlm_positions = n_pos;
}

/* Copies n rows of width w starting at row r0 of src into the block. */
static float *take_rows(float **cursor, const float *src, size_t r0, size_t n, size_t w)
{
    if (!src || !n || !w) return NULL;
    float *dst = *cursor;
    memcpy(dst, src + r0 * w, n * w * sizeof *dst);
    *cursor += n * w;
    return dst;
}

/* Gives job j its rows of the pass' outputs g: sequences [s0, s0 + n),
 * tokens [t0, t0 + T), MLM positions [p0, p0 + P). */
static int hand_rows(const bs_batcher *b, const bs_model_outputs *g, job *j, size_t s0, size_t t0,
                     size_t p0, bs_err *err)
{
    bs_model_outputs *o = j->out;
    size_t n = (size_t)j->batch->n_seqs, T = j->tokens, H = (size_t)g->hidden_size;
    size_t L = (size_t)g->n_labels, P = o->n_mlm_positions > 0 ? (size_t)o->n_mlm_positions : 0;
    size_t logit_rows = 0, logit_r0 = 0;
    if ((o->want & BS_OUT_LOGITS) && g->logits) {
        switch (b->opts.head) {
        case BS_HEAD_TOKEN_CLS:
            logit_rows = T, logit_r0 = t0;
            break;
        case BS_HEAD_MLM:
            logit_rows = P, logit_r0 = p0;
            break;
        default:
            logit_rows = n, logit_r0 = s0;
            break;
        }
    }
    int hidden = (o->want & BS_OUT_HIDDEN) && g->last_hidden_state;
    int pooled = (o->want & BS_OUT_POOLED) && g->pooler_output;
    int qa = (o->want & BS_OUT_LOGITS) && g->start_logits && g->end_logits;
    size_t floats = (hidden ? T * H : 0) + (pooled ? n * H : 0) + logit_rows * L + (qa ? 2 * T : 0);
    bs_batcher_outputs_release(o);
    float *block = malloc((floats ? floats : 1) * sizeof *block);
    if (!block) return bs_err_set(err, BS_ENOMEM, "out of memory");
    float *cur = block;
    o->priv_ = block;
    o->n_seqs = (int32_t)n;
    o->total_tokens = (int32_t)T;
    o->hidden_size = g->hidden_size;
    o->n_labels = g->n_labels;
    if (hidden) o->last_hidden_state = take_rows(&cur, g->last_hidden_state, t0, T, H);
    if (pooled) o->pooler_output = take_rows(&cur, g->pooler_output, s0, n, H);
    if (logit_rows) o->logits = take_rows(&cur, g->logits, logit_r0, logit_rows, L);
    if (qa) {
        o->start_logits = take_rows(&cur, g->start_logits, t0, T, 1);
        o->end_logits = take_rows(&cur, g->end_logits, t0, T, 1);
    }
    return 0;
}

/* One forward over jobs[0..k): their sequences back to back, their MLM
 * positions shifted to the combined rows; then each gets its rows. */
static int run_pass(bs_batcher *b, job **jobs, size_t k, bs_err *err)
{
    size_t n = 0, P = 0;
    unsigned want = 0;
    for (size_t i = 0; i < k; i++) {
        n += (size_t)jobs[i]->batch->n_seqs;
        if (jobs[i]->out->n_mlm_positions > 0) P += (size_t)jobs[i]->out->n_mlm_positions;
        want |= jobs[i]->out->want;
    }
    bs_seq *seqs = malloc(n * sizeof *seqs);
    int32_t *pos = P ? malloc(P * sizeof *pos) : NULL;
    if (!seqs || (P && !pos)) {
        free(seqs);
        free(pos);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    size_t s = 0, p = 0, t = 0;
    for (size_t i = 0; i < k; i++) {
        const bs_batch *bt = jobs[i]->batch;
        memcpy(seqs + s, bt->seqs, (size_t)bt->n_seqs * sizeof *seqs);
        s += (size_t)bt->n_seqs;
        for (int32_t q = 0; q < jobs[i]->out->n_mlm_positions; q++)
            pos[p++] = jobs[i]->out->mlm_positions[q] + (int32_t)t;
        t += jobs[i]->tokens;
    }
    bs_batch all = {seqs, (int32_t)n};
    b->big.want = want;
    b->big.mlm_positions = pos;
    b->big.n_mlm_positions = (int32_t)P;
    int rc = b->opts.forward(b->opts.forward_ud, &all, &b->big, err);
    s = p = t = 0;
    for (size_t i = 0; !rc && i < k; i++) {
        rc = hand_rows(b, &b->big, jobs[i], s, t, p, err);
        s += (size_t)jobs[i]->batch->n_seqs;
        t += jobs[i]->tokens;
        if (jobs[i]->out->n_mlm_positions > 0) p += (size_t)jobs[i]->out->n_mlm_positions;
    }
    b->big.mlm_positions = NULL;
    b->big.n_mlm_positions = 0;
    free(pos);
    free(seqs);
    return rc;
}

/* One decoder pass over the steps jobs[0..k). */
static int run_steps(bs_batcher *b, job **jobs, size_t k, bs_err *err)
{
    bs_kv_cache **caches = malloc(k * sizeof *caches);
    const int32_t **tokens = malloc(k * sizeof *tokens);
    float **logits = malloc(k * sizeof *logits);
    int rc = 0;
    if (!caches || !tokens || !logits) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < k; i++) {
            caches[i] = jobs[i]->cache;
            tokens[i] = jobs[i]->step_tokens;
            logits[i] = jobs[i]->logits;
        }
        rc = b->opts.decode(b->opts.decode_ud, caches, (int32_t)k, tokens, logits, err);
    }
    free(caches);
    free(tokens);
    free(logits);
    return rc;
}

static int run_jobs(bs_batcher *b, job **jobs, size_t k, bs_err *err)
{
    return jobs[0]->decode ? run_steps(b, jobs, k, err) : run_pass(b, jobs, k, err);
}

/* Runs jobs[0..k) (all forwards or all decoder steps) as one pass; when it
 * fails with several members, each runs alone so that an error belongs to
 * the job that caused it (a failed step changed no cache). */
static void run_group(bs_batcher *b, job **jobs, size_t k, uint64_t *retried)
{
    bs_err err = {0};
    int rc = run_jobs(b, jobs, k, &err);
    if (!rc) return;
    if (k == 1) {
        jobs[0]->rc = rc;
        jobs[0]->err = err;
        return;
    }
    *retried += k;
    for (size_t i = 0; i < k; i++) jobs[i]->rc = run_jobs(b, jobs + i, 1, &jobs[i]->err);
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

/* Waits (mu held) up to window_us for the queue to fill the budget, and
 * only while some caller of this model is still preparing its sequences
 * (in flight, neither queued nor generating): otherwise nobody is coming. */
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
        /* callers generating step apart: no forward is coming from them */
        if (tokens >= b->max_tokens || b->stop || b->inflight <= b->queued + b->decoding) return;
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
        /* The oldest forward leads; later ones join in queue order while
         * the budget lasts (a lead larger than the budget runs alone). */
        job *lead = b->head;
        unlink_job(b, NULL, lead);
        size_t k = 0, tokens = lead->tokens;
        if (group) group[k++] = lead;
        job *prev = NULL, *j = b->head;
        while (group && j) {
            job *next = j->next;
            if (tokens + j->tokens <= b->max_tokens) {
                if (k == cap) {
                    job **g = realloc(group, 2 * cap * sizeof *group);
                    if (!g) break;
                    group = g;
                    cap *= 2;
                }
                unlink_job(b, prev, j);
                group[k++] = j;
                tokens += j->tokens;
            } else {
                prev = j;
            }
            j = next;
        }
        pthread_mutex_unlock(&b->mu);

        job *alone[1] = {lead};
        job **members = group ? group : alone; /* out of memory: the leader alone */
        if (!group) k = 1;
        uint64_t cancelled = 0, retried = 0, live_texts = 0, route_texts[BS_ROUTE_COUNT] = {0};
        size_t live = 0;
        unsigned routes = 0;
        for (size_t i = 0; i < k; i++) {
            job *m = members[i];
            if (m->alive && !m->alive(m->alive_ud)) {
                m->rc =
                    bs_err_set(&m->err, BS_EIO, "the client disconnected before its request ran");
                cancelled++;
            } else {
                members[live++] = m;
                live_texts += (uint64_t)m->batch->n_seqs;
                route_texts[m->route] += (uint64_t)m->batch->n_seqs;
                routes |= 1u << m->route;
            }
        }
        if (live) run_group(b, members, live, &retried);

        pthread_mutex_lock(&b->mu);
        if (live) {
            b->stats.batches++;
            b->stats.requests += live;
            b->stats.texts += live_texts;
            b->stats.sizes[bucket_of(live)]++;
            if (routes & (routes - 1)) b->stats.mixed++;
            for (int r = 0; r < BS_ROUTE_COUNT; r++) b->stats.route_texts[r] += route_texts[r];
            if (live > b->stats.max_batch) b->stats.max_batch = live;
        }
        b->stats.cancelled += cancelled;
        b->stats.retried += retried;
        last_size = live;
        for (size_t i = 0; i < k; i++) members[i]->done = 1;
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
    if (!opts || !opts->forward) return bs_err_set(err, BS_EINVAL, "batcher: no forward function");
    bs_batcher *b = calloc(1, sizeof *b);
    if (!b) return bs_err_set(err, BS_ENOMEM, "out of memory");
    b->opts = *opts;
    if (!b->opts.max_batch_tokens) b->opts.max_batch_tokens = 8192;
    if (!b->opts.max_queue) b->opts.max_queue = 256;
    b->max_tokens = b->opts.max_batch_tokens;
    bs_model_outputs_init(&b->big);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->work_cv, NULL);
    pthread_cond_init(&b->done_cv, NULL);
    pthread_cond_init(&b->step_cv, NULL);
    if (pthread_create(&b->thread, NULL, batcher_main, b)) {
        pthread_cond_destroy(&b->step_cv);
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
    pthread_cond_broadcast(&b->done_cv); /* callers waiting to lead a step pass */
    pthread_cond_broadcast(&b->step_cv);
    pthread_mutex_unlock(&b->mu);
    if (!joined) pthread_join(b->thread, NULL);
}

void bs_batcher_free(bs_batcher *b)
{
    if (!b) return;
    bs_batcher_stop(b);
    bs_model_outputs_release(&b->big);
    pthread_cond_destroy(&b->step_cv);
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
    pthread_cond_broadcast(&b->done_cv); /* callers waiting to lead a step pass */
    pthread_mutex_unlock(&b->mu);
}

void bs_batcher_enter(bs_batcher *b, int route, bs_batch_alive_fn alive, void *alive_ud)
{
    if (serving.b) bs_batcher_leave();
    pthread_mutex_lock(&b->mu);
    b->inflight++;
    pthread_mutex_unlock(&b->mu);
    serving.b = b;
    serving.route = route >= 0 && route < BS_ROUTE_COUNT ? route : BS_ROUTE_OTHER;
    serving.alive = alive;
    serving.alive_ud = alive_ud;
}

void bs_batcher_leave(void)
{
    bs_batcher *b = serving.b;
    if (b) {
        pthread_mutex_lock(&b->mu);
        b->inflight--;
        if (serving.decoding) {
            b->decoding--;
            pthread_cond_signal(&b->step_cv); /* a leader may be waiting for this caller */
        }
        pthread_cond_signal(&b->work_cv); /* a window may be waiting for this caller */
        pthread_mutex_unlock(&b->mu);
    }
    memset(&serving, 0, sizeof serving);
}

int bs_batcher_run(bs_batcher *b, bs_task task, const json_t *request, bs_batch_alive_fn alive,
                   void *alive_ud, json_t **data_out, bs_err *err)
{
    return bs_batcher_run_route(b, (int)task, task, request, alive, alive_ud, data_out, err);
}

int bs_batcher_run_route(bs_batcher *b, int route, bs_task task, const json_t *request,
                         bs_batch_alive_fn alive, void *alive_ud, json_t **data_out, bs_err *err)
{
    *data_out = NULL;
    if (!b->opts.run) return bs_err_set(err, BS_EINVAL, "batcher: no run function");
    bs_batcher_enter(b, route, alive, alive_ud);
    int rc = b->opts.run(b->opts.run_ud, task, request, data_out, err);
    bs_batcher_leave();
    return rc;
}

/* Queues forward j from the thread serving a request of b and waits until
 * it has run. It ends the caller's generation loop, if any (it is encoding
 * its next input). */
static int enqueue_wait(bs_batcher *b, job *j, bs_err *err)
{
    j->route = serving.route;
    j->alive = serving.alive;
    j->alive_ud = serving.alive_ud;
    pthread_mutex_lock(&b->mu);
    if (b->queued >= b->opts.max_queue || b->stop) {
        b->stats.rejected++;
        pthread_mutex_unlock(&b->mu);
        return bs_err_set(err, BS_EBUSY,
                          "the model's request queue is full (%zu waiting); retry shortly",
                          b->opts.max_queue);
    }
    if (serving.decoding) {
        serving.decoding = 0;
        b->decoding--;
        pthread_cond_signal(&b->step_cv);
    }
    if (b->tail)
        b->tail->next = j;
    else
        b->head = j;
    b->tail = j;
    b->queued++;
    pthread_cond_signal(&b->work_cv);
    while (!j->done) pthread_cond_wait(&b->done_cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    if (j->rc) {
        if (err) *err = j->err;
        return j->rc;
    }
    return 0;
}

int bs_batcher_forward(bs_batcher *b, const bs_batch *batch, bs_model_outputs *out, bs_err *err)
{
    if (!batch || batch->n_seqs < 1 || !batch->seqs)
        return bs_err_set(err, BS_EINVAL, "forward: empty batch");
    job j;
    memset(&j, 0, sizeof j);
    j.batch = batch;
    j.out = out;
    for (int32_t i = 0; i < batch->n_seqs; i++)
        j.tokens += batch->seqs[i].len > 0 ? (size_t)batch->seqs[i].len : 0;
    if (serving.b != b) {
        /* Not serving a request of this batcher (a library caller of the
         * pipeline context): run at once in the caller's thread. */
        pthread_mutex_lock(&b->mu);
        b->stats.direct++;
        pthread_mutex_unlock(&b->mu);
        bs_model_outputs tmp;
        bs_model_outputs_init(&tmp);
        tmp.want = out->want;
        tmp.mlm_positions = out->mlm_positions;
        tmp.n_mlm_positions = out->n_mlm_positions;
        int rc = b->opts.forward(b->opts.forward_ud, batch, &tmp, err);
        if (!rc) rc = hand_rows(b, &tmp, &j, 0, 0, 0, err);
        bs_model_outputs_release(&tmp);
        return rc;
    }
    return enqueue_wait(b, &j, err);
}

/* Leads one step pass (mu held; b->stepping set by the caller): waits up
 * to STEP_WAIT_US for every generating caller's step, takes own first and
 * then the queued steps in order within the row budget, runs them as one
 * pass without the lock and marks them done. */
static void lead_steps(bs_batcher *b, job *own)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    int64_t ns = deadline.tv_nsec + (int64_t)STEP_WAIT_US * 1000;
    deadline.tv_sec += ns / 1000000000;
    deadline.tv_nsec = ns % 1000000000;
    while (!b->stop && b->queued_steps < b->decoding)
        if (pthread_cond_timedwait(&b->step_cv, &b->mu, &deadline)) break;
    size_t k = 0, cap = b->queued_steps, rows = 0;
    job **group = malloc((cap ? cap : 1) * sizeof *group);
    job *prev = NULL;
    for (job *j = b->steps_head, *next; j; j = next) {
        next = j->next;
        int mine = j == own;
        if (group && (mine || rows + j->tokens <= b->max_tokens)) {
            /* unlink */
            if (prev)
                prev->next = next;
            else
                b->steps_head = next;
            if (b->steps_tail == j) b->steps_tail = prev;
            j->next = NULL;
            b->queued_steps--;
            if (mine && k) { /* own first: it always fits */
                group[k++] = group[0];
                group[0] = j;
            } else {
                group[k++] = j;
            }
            rows += j->tokens;
        } else {
            prev = j;
        }
    }
    if (!group) { /* out of memory: own step alone */
        for (job **pp = &b->steps_head, *p = NULL; *pp; p = *pp, pp = &(*pp)->next)
            if (*pp == own) {
                *pp = own->next;
                if (b->steps_tail == own) b->steps_tail = p;
                b->queued_steps--;
                break;
            }
        own->next = NULL;
        k = 1;
    }
    pthread_mutex_unlock(&b->mu);

    job *alone[1] = {own};
    job **members = group ? group : alone;
    size_t live = 0;
    uint64_t cancelled = 0, retried = 0, live_rows = 0;
    for (size_t i = 0; i < k; i++) {
        job *m = members[i];
        if (m->alive && !m->alive(m->alive_ud)) {
            m->rc = bs_err_set(&m->err, BS_EIO, "the client disconnected during generation");
            cancelled++;
        } else {
            members[live++] = m;
            live_rows += m->tokens;
        }
    }
    if (live) run_group(b, members, live, &retried);

    pthread_mutex_lock(&b->mu);
    if (live) {
        b->stats.dec_steps++;
        b->stats.dec_requests += live;
        b->stats.dec_rows += live_rows;
        b->stats.dec_sizes[bucket_of(live)]++;
        if (live > b->stats.dec_max) b->stats.dec_max = live;
    }
    b->stats.cancelled += cancelled;
    b->stats.retried += retried;
    for (size_t i = 0; i < k; i++) members[i]->done = 1;
    free(group);
}

int bs_batcher_decode(bs_batcher *b, bs_kv_cache *cache, const int32_t *tokens, float *logits,
                      bs_err *err)
{
    if (!b->opts.decode) return bs_err_set(err, BS_EUNSUPPORTED, "batcher: no decode function");
    if (!cache || !tokens || !logits) return bs_err_set(err, BS_EINVAL, "decode: bad arguments");
    if (serving.b != b) /* a library caller: at once, alone */
        return b->opts.decode(b->opts.decode_ud, &cache, 1, &tokens, &logits, err);
    job j;
    memset(&j, 0, sizeof j);
    j.decode = 1;
    j.cache = cache;
    j.step_tokens = tokens;
    j.logits = logits;
    j.tokens = (size_t)bs_kv_cache_rows(cache);
    j.route = serving.route;
    j.alive = serving.alive;
    j.alive_ud = serving.alive_ud;
    pthread_mutex_lock(&b->mu);
    if (b->stop) {
        b->stats.rejected++;
        pthread_mutex_unlock(&b->mu);
        return bs_err_set(err, BS_EBUSY, "the model is being unloaded; retry shortly");
    }
    if (!serving.decoding) {
        serving.decoding = 1;
        b->decoding++;
    }
    if (b->steps_tail)
        b->steps_tail->next = &j;
    else
        b->steps_head = &j;
    b->steps_tail = &j;
    b->queued_steps++;
    pthread_cond_signal(&b->step_cv);
    while (!j.done) {
        if (!b->stepping && (!b->hold || b->stop)) {
            b->stepping = 1;
            lead_steps(b, &j);
            b->stepping = 0;
            pthread_cond_broadcast(&b->done_cv);
        } else {
            pthread_cond_wait(&b->done_cv, &b->mu);
        }
    }
    pthread_mutex_unlock(&b->mu);
    if (j.rc) {
        if (err) *err = j.err;
        return j.rc;
    }
    return 0;
}

void bs_batcher_stats(bs_batcher *b, bs_batch_stats *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->stats;
    out->queued = b->queued;
    pthread_mutex_unlock(&b->mu);
}
