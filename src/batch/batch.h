/*
 * Per-model dynamic batcher. Requests of the same model that arrive while
 * the model is busy wait in a bounded queue; the batcher thread merges the
 * compatible ones (same task, same options, texts only differing) into one
 * pipeline call, so their forward passes run as one padding-free batch, and
 * hands every caller exactly its own slice of the answer.
 *
 * What is merged: classification, NER, fill-mask, embeddings and features
 * requests whose bodies hold only the task's known fields and agree on every
 * field but `text` (and `model_name`). Everything else (QA, summarization,
 * requests with other fields) runs directly in the caller's thread.
 *
 * Exactness: a merged call is only accepted when it succeeded and reported
 * no truncation; otherwise every member runs again on its own, so one
 * request's failure never fails its batch-mates and per-request flags stay
 * those of an unbatched run.
 *
 * Thread safety: bs_batcher_run may be called from any number of threads.
 */
#ifndef BS_BATCH_BATCH_H
#define BS_BATCH_BATCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bertstudio/common.h"
#include "bertstudio/pipeline.h"

/* Runs one (possibly merged) task request; same contract as
 * bs_pipeline_run_json. */
typedef int (*bs_batch_run_fn)(void *ud, bs_task task, const json_t *request, json_t **data_out,
                               bs_err *err);
/* Returns 0 when the caller of a queued request has gone away (its client
 * disconnected), so that its work is skipped. Called from the batcher thread. */
typedef int (*bs_batch_alive_fn)(void *ud);

typedef struct bs_batcher_opts {
    bs_batch_run_fn run; /* required */
    void *run_ud;
    size_t max_batch_tokens; /* estimated tokens per merged call; 0 = 8192 */
    size_t max_queue;        /* most requests waiting at once; 0 = 256 */
    size_t max_seq_len;      /* caps one text's token estimate; 0 = 512 */
    /* After a merged batch (a sign of concurrency) the thread waits up to
     * this long for more requests before the next batch; a lone request
     * (previous batch of 1) never waits. 0 = no wait. */
    int64_t window_us;
    /* Dense-layer precision (bs_precision) of the models a bs_batch_group
     * loads; 0 = f32. */
    int precision;
    /* The engine context every model a bs_batch_group loads computes on
     * (borrowed; freed after the group). NULL: each model starts its own. */
    bs_ctx *engine;
} bs_batcher_opts;

typedef struct bs_batcher bs_batcher;

/* Starts the batcher thread. *out is owned by the caller (bs_batcher_free). */
int bs_batcher_new(const bs_batcher_opts *opts, bs_batcher **out, bs_err *err);
/* Stops the thread after the queued requests have run, then frees. No
 * bs_batcher_run may be in progress. NULL is fine. */
void bs_batcher_free(bs_batcher *b);
/* Runs what is queued, then stops the thread; later bs_batcher_run calls
 * of mergeable requests get BS_EBUSY. Idempotent. */
void bs_batcher_stop(bs_batcher *b);
/* Changes the token budget (setting max_batch_tokens) for later batches. */
void bs_batcher_set_max_tokens(bs_batcher *b, size_t max_batch_tokens);
/* Changes the queue bound (setting batch_max_queue) for later requests;
 * 0 is ignored. Requests already queued stay. */
void bs_batcher_set_max_queue(bs_batcher *b, size_t max_queue);
/* hold 1: the thread takes no new batch (requests queue up, up to the
 * bound, and wait); hold 0: it takes everything queued again, so that what
 * piled up meanwhile runs as full batches. Stopping runs what is queued
 * even while held. For maintenance and for observing batching
 * deterministically (POST /admin/batcher). */
void bs_batcher_hold(bs_batcher *b, int hold);

/* Runs request (a /tasks/<task> body, borrowed) possibly merged with
 * others, and stores the response `data` object in *data_out (caller
 * json_decref's it). alive (may be NULL) is polled before queued work runs.
 * Errors: those of the run function; BS_EBUSY when the queue is full (answer
 * 503 with Retry-After); BS_EIO when alive() said the caller has gone. */
int bs_batcher_run(bs_batcher *b, bs_task task, const json_t *request, bs_batch_alive_fn alive,
                   void *alive_ud, json_t **data_out, bs_err *err);

/* Counters since creation. sizes[i]: merged calls of k requests with
 * k in [2^i, 2^(i+1)) (sizes[0] = single runs from the queue). */
#define BS_BATCH_SIZE_BUCKETS 8
typedef struct bs_batch_stats {
    uint64_t batches;   /* calls made by the batcher thread */
    uint64_t requests;  /* requests served by those calls */
    uint64_t texts;     /* texts in those calls */
    uint64_t direct;    /* requests run in the caller's thread (not mergeable) */
    uint64_t rejected;  /* BS_EBUSY: queue full */
    uint64_t cancelled; /* skipped: caller gone */
    uint64_t retried;   /* members re-run alone after a merged call failed */
    uint64_t max_batch; /* most requests in one call */
    uint64_t sizes[BS_BATCH_SIZE_BUCKETS];
    size_t queued; /* waiting now */
} bs_batch_stats;
void bs_batcher_stats(bs_batcher *b, bs_batch_stats *out);

/* ── merging (merge.c; exposed for tests) ── */

/* 1 when request for task can be merged with others; then *key gets a
 * malloc'ed string equal for exactly the requests that may share a call
 * and *n_texts the number of texts. */
int bs_batch_mergeable(bs_task task, const json_t *request, char **key, size_t *n_texts);
/* Estimated tokens of the request's texts (bytes / 3 + 2 each, capped). */
size_t bs_batch_estimate_tokens(const json_t *request, size_t max_seq_len);
/* A copy of requests[0] whose `text` is the list of all requests' texts. */
json_t *bs_batch_merge(const json_t *const *requests, size_t n);
/* Slice [off, off + n) of a merged `data` object: arrays of length total
 * are cut, other members copied. NULL on ENOMEM. */
json_t *bs_batch_split(const json_t *data, size_t total, size_t off, size_t n);

/* ── served models (served.c): a loaded model folder and its batcher ── */

/* What the model registry hands to a task handler: the pipeline context
 * and the batcher that runs requests on it. */
typedef struct bs_served_model {
    bs_pipeline_ctx *ctx;
    bs_batcher *batcher;
} bs_served_model;

/* The batchers of one server: their common options and counters summed
 * over every model, including models already unloaded. */
typedef struct bs_batch_group bs_batch_group;

/* opts->run is ignored (each model runs its own pipeline context). */
bs_batch_group *bs_batch_group_new(const bs_batcher_opts *opts);
/* Frees the group; every model loaded through it must be freed first. */
void bs_batch_group_free(bs_batch_group *g);
/* New token budget for every loaded and later model. */
void bs_batch_group_set_max_tokens(bs_batch_group *g, size_t max_batch_tokens);
/* New queue bound for every loaded and later model (0 ignored). */
void bs_batch_group_set_max_queue(bs_batch_group *g, size_t max_queue);
/* bs_batcher_hold on every loaded and later model. */
void bs_batch_group_hold(bs_batch_group *g, int hold);
/* Sum of every batcher's counters (queued: waiting now in all). */
void bs_batch_group_stats(bs_batch_group *g, bs_batch_stats *out);

/* Model registry callbacks (bs_registry_load_fn / bs_registry_free_fn
 * signatures; ud is the bs_batch_group). load: bs_pipeline_ctx_load(dir)
 * and a batcher on it; *handle gets a bs_served_model. Errors: those of
 * bs_pipeline_ctx_load, BS_ENOMEM. free: stops the batcher (after its queue
 * has run) and frees the context. */
int bs_batch_model_load(const char *name, const char *dir, void *ud, void **handle, bs_err *err);
void bs_batch_model_free(void *handle, void *ud);

#endif
