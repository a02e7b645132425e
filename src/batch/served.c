/* A served model (pipeline context + its batcher), created and freed by
 * the model registry through the load/free callbacks, and the group that
 * sums the counters of every model's batcher for /metrics and /stats. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "batch/batch.h"

typedef struct member {
    struct member *next;
    bs_served_model *model;
} member;

struct bs_batch_group {
    pthread_mutex_t mu;
    bs_batcher_opts opts;
    member *live;
    int hold;               /* bs_batch_group_hold, applied to models loaded later too */
    bs_batch_stats retired; /* counters of models already freed */
};

bs_batch_group *bs_batch_group_new(const bs_batcher_opts *opts)
{
    bs_batch_group *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    pthread_mutex_init(&g->mu, NULL);
    if (opts) g->opts = *opts;
    return g;
}

void bs_batch_group_free(bs_batch_group *g)
{
    if (!g) return;
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void bs_batch_group_set_max_tokens(bs_batch_group *g, size_t max_batch_tokens)
{
    if (!max_batch_tokens) return;
    pthread_mutex_lock(&g->mu);
    g->opts.max_batch_tokens = max_batch_tokens;
    for (member *m = g->live; m; m = m->next)
        bs_batcher_set_max_tokens(m->model->batcher, max_batch_tokens);
    pthread_mutex_unlock(&g->mu);
}

void bs_batch_group_set_max_queue(bs_batch_group *g, size_t max_queue)
{
    if (!max_queue) return;
    pthread_mutex_lock(&g->mu);
    g->opts.max_queue = max_queue;
    for (member *m = g->live; m; m = m->next)
        bs_batcher_set_max_queue(m->model->batcher, max_queue);
    pthread_mutex_unlock(&g->mu);
}

void bs_batch_group_hold(bs_batch_group *g, int hold)
{
    pthread_mutex_lock(&g->mu);
    g->hold = hold != 0;
    for (member *m = g->live; m; m = m->next) bs_batcher_hold(m->model->batcher, g->hold);
    pthread_mutex_unlock(&g->mu);
}

static void add_stats(bs_batch_stats *to, const bs_batch_stats *s)
{
    to->batches += s->batches;
    to->requests += s->requests;
    to->texts += s->texts;
    to->direct += s->direct;
    to->rejected += s->rejected;
    to->cancelled += s->cancelled;
    to->retried += s->retried;
    to->mixed += s->mixed;
    for (int i = 0; i < BS_ROUTE_COUNT; i++) to->route_texts[i] += s->route_texts[i];
    if (s->max_batch > to->max_batch) to->max_batch = s->max_batch;
    for (int i = 0; i < BS_BATCH_SIZE_BUCKETS; i++) to->sizes[i] += s->sizes[i];
    to->queued += s->queued;
    to->dec_steps += s->dec_steps;
    to->dec_requests += s->dec_requests;
    to->dec_rows += s->dec_rows;
    if (s->dec_max > to->dec_max) to->dec_max = s->dec_max;
    for (int i = 0; i < BS_BATCH_SIZE_BUCKETS; i++) to->dec_sizes[i] += s->dec_sizes[i];
}

void bs_batch_group_stats(bs_batch_group *g, bs_batch_stats *out)
{
    pthread_mutex_lock(&g->mu);
    *out = g->retired;
    out->queued = 0;
    for (member *m = g->live; m; m = m->next) {
        bs_batch_stats s;
        bs_batcher_stats(m->model->batcher, &s);
        add_stats(out, &s);
    }
    pthread_mutex_unlock(&g->mu);
}

static int run_pipeline(void *ud, bs_task task, const json_t *request, json_t **data_out,
                        bs_err *err)
{
    return bs_pipeline_run_json(ud, task, request, data_out, err);
}

static int model_forward(void *ud, const bs_batch *batch, bs_model_outputs *out, bs_err *err)
{
    return bs_model_forward(ud, batch, out, err);
}

static int model_decode(void *ud, bs_kv_cache *const *caches, int32_t n,
                        const int32_t *const *tokens, float *const *logits, bs_err *err)
{
    return bs_model_decode_batch(ud, caches, n, tokens, 1, logits, err);
}

static int queue_decode(void *ud, bs_kv_cache *cache, const int32_t *tokens, float *logits,
                        bs_err *err)
{
    return bs_batcher_decode(ud, cache, tokens, logits, err);
}

/* The pipeline's forward provider: the model's batcher. */
static int queue_forward(void *ud, const bs_batch *batch, bs_model_outputs *out, bs_err *err)
{
    return bs_batcher_forward(ud, batch, out, err);
}

static void queue_release(void *ud, bs_model_outputs *out)
{
    (void)ud;
    bs_batcher_outputs_release(out);
}

void bs_batch_group_set_precision(bs_batch_group *g, int precision)
{
    pthread_mutex_lock(&g->mu);
    g->opts.precision = precision;
    pthread_mutex_unlock(&g->mu);
}

int bs_batch_model_load(const char *name, const char *dir, int *precision, void *ud, void **handle,
                        bs_err *err)
{
    (void)name;
    bs_batch_group *g = ud;
    *handle = NULL;
    bs_served_model *sm = calloc(1, sizeof *sm);
    member *m = calloc(1, sizeof *m);
    if (!sm || !m) {
        free(sm);
        free(m);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    bs_model_opts mo;
    bs_model_opts_default(&mo);
    pthread_mutex_lock(&g->mu);
    /* Asked for this model, else the group's default at this load. */
    mo.precision = (bs_precision)(precision && *precision >= 0 ? *precision : g->opts.precision);
    mo.ctx = g->opts.engine; /* the server's one compute pool */
    pthread_mutex_unlock(&g->mu);
    if (precision) *precision = (int)mo.precision;
    int rc = bs_pipeline_ctx_load(dir, &mo, &sm->ctx, err);
    if (rc) {
        free(sm);
        free(m);
        return rc;
    }
    pthread_mutex_lock(&g->mu);
    bs_batcher_opts o = g->opts;
    pthread_mutex_unlock(&g->mu);
    const bs_model *model = bs_pipeline_ctx_model(sm->ctx);
    o.run = run_pipeline;
    o.run_ud = sm->ctx;
    o.forward = model_forward;
    o.forward_ud = (void *)model;
    o.decode = model_decode;
    o.decode_ud = (void *)model;
    o.head = bs_model_head(model);
    o.max_seq_len = (size_t)bs_model_max_seq_len(model);
    if ((rc = bs_batcher_new(&o, &sm->batcher, err))) {
        bs_pipeline_ctx_free(sm->ctx);
        free(sm);
        free(m);
        return rc;
    }
    bs_pipeline_exec ex = {queue_forward, queue_release, sm->batcher, queue_decode};
    bs_pipeline_ctx_set_exec(sm->ctx, &ex);
    m->model = sm;
    pthread_mutex_lock(&g->mu);
    if (g->hold) bs_batcher_hold(sm->batcher, 1);
    m->next = g->live;
    g->live = m;
    pthread_mutex_unlock(&g->mu);
    *handle = sm;
    return 0;
}

void bs_batch_model_free(void *handle, void *ud)
{
    bs_batch_group *g = ud;
    bs_served_model *sm = handle;
    if (!sm) return;
    pthread_mutex_lock(&g->mu);
    for (member **p = &g->live; *p; p = &(*p)->next) {
        if ((*p)->model == sm) {
            member *m = *p;
            *p = m->next;
            free(m);
            break;
        }
    }
    pthread_mutex_unlock(&g->mu);
    /* Counted after the batcher has drained, so no request is lost. */
    bs_batcher_stop(sm->batcher);
    bs_batch_stats s;
    bs_batcher_stats(sm->batcher, &s);
    s.queued = 0;
    pthread_mutex_lock(&g->mu);
    add_stats(&g->retired, &s);
    pthread_mutex_unlock(&g->mu);
    bs_batcher_free(sm->batcher);
    bs_pipeline_ctx_free(sm->ctx);
    free(sm);
}
