/*
 * Per-model dynamic batcher between tokenization and the forward pass. A
 * task request runs in its caller's thread (bs_batcher_run: the pipeline
 * validates and encodes it, then turns its rows of outputs into its answer);
 * only its forward passes queue here, as token sequences. The batcher thread
 * takes every waiting forward of the model, whatever task or route it came
 * from, within the token budget, runs them as one padding-free
 * bs_model_forward and hands each caller a copy of exactly its rows.
 *
 * Isolation: bad input is refused while a request is prepared, before it
 * queues, so it never reaches a batch. Should a combined forward fail anyway
 * (an engine error on one sequence), each member runs alone, so the error
 * belongs to the request that caused it.
 *
 * Thread safety: bs_batcher_run and bs_batcher_forward may be called from
 * any number of threads.
 */
#ifndef BS_BATCH_BATCH_H
#define BS_BATCH_BATCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bertstudio/common.h"
#include "bertstudio/model.h"
#include "bertstudio/pipeline_json.h"

/* Runs one task request (same contract as bs_pipeline_run_json), in the
 * caller's thread. */
typedef int (*bs_batch_run_fn)(void *ud, bs_task task, const json_t *request, json_t **data_out,
                               bs_err *err);
/* One forward pass over a padding-free batch (bs_model_forward's contract). */
typedef int (*bs_batch_forward_fn)(void *ud, const bs_batch *batch, bs_model_outputs *out,
                                   bs_err *err);
/* One decoder step of n generating requests as one pass
 * (bs_model_decode_batch's contract with n_new 1). */
typedef int (*bs_batch_decode_fn)(void *ud, bs_kv_cache *const *caches, int32_t n,
                                  const int32_t *const *tokens, float *const *logits, bs_err *err);
/* Returns 0 when the caller of a queued request has gone away (its client
 * disconnected), so that its work is skipped. Called from the batcher thread. */
typedef int (*bs_batch_alive_fn)(void *ud);

/* Routes, for the mixed-batch counter: the bs_task values, then these. */
enum {
    BS_ROUTE_RERANK = BS_TASK_COUNT, /* /tasks/rerank */
    BS_ROUTE_OPENAI,                 /* /v1/embeddings */
    BS_ROUTE_ORIGINAL,               /* the original product's routes (/embed, /classify...) */
    BS_ROUTE_OTHER,                  /* custom tasks and anything else */
    BS_ROUTE_COUNT
};

typedef struct bs_batcher_opts {
    bs_batch_run_fn run; /* bs_batcher_run; may be NULL when only forwards are queued */
    void *run_ud;
    bs_batch_forward_fn forward; /* required */
    void *forward_ud;
    bs_batch_decode_fn decode; /* generation steps; NULL: bs_batcher_decode fails */
    void *decode_ud;
    /* How the model's logits are laid out (bs_model_head), so that each
     * caller gets its own rows: per sequence, per token, per MLM position,
     * or QA start/end per token. */
    bs_head_kind head;
    size_t max_batch_tokens; /* tokens per forward; 0 = 8192 */
    size_t max_queue;        /* most forwards waiting at once; 0 = 256 */
    size_t max_seq_len;      /* kept for the group's settings; unused */
    /* After a combined batch (a sign of concurrency) the thread waits up to
     * this long for more forwards before the next batch; a lone forward
     * (previous batch of 1) never waits. 0 = no wait. */
    int64_t window_us;
    /* Dense-layer precision (bs_precision) of the models a bs_batch_group
     * loads when their load asks for none; 0 = f32. */
    int precision;
    /* The engine context every model a bs_batch_group loads computes on
     * (borrowed; freed after the group). NULL: each model starts its own. */
    bs_ctx *engine;
} bs_batcher_opts;

typedef struct bs_batcher bs_batcher;

/* Starts the batcher thread. *out is owned by the caller (bs_batcher_free). */
int bs_batcher_new(const bs_batcher_opts *opts, bs_batcher **out, bs_err *err);
/* Stops the thread after the queued forwards have run, then frees. No
 * call may be in progress. NULL is fine. */
void bs_batcher_free(bs_batcher *b);
/* Runs what is queued, then stops the thread; later forwards get BS_EBUSY.
 * Idempotent. */
void bs_batcher_stop(bs_batcher *b);
/* Changes the token budget (setting max_batch_tokens) for later batches. */
void bs_batcher_set_max_tokens(bs_batcher *b, size_t max_batch_tokens);
/* Changes the queue bound (setting batch_max_queue) for later forwards;
 * 0 is ignored. Forwards already queued stay. */
void bs_batcher_set_max_queue(bs_batcher *b, size_t max_queue);
/* hold 1: the thread takes no new batch (forwards queue up, up to the
 * bound, and wait); hold 0: it takes everything queued again, so that what
 * piled up meanwhile runs as full batches. Stopping runs what is queued
 * even while held. For maintenance and for observing batching
 * deterministically (POST /admin/batcher). */
void bs_batcher_hold(bs_batcher *b, int hold);

/* Runs request (a /tasks/<task> body, borrowed) in the calling thread with
 * opts.run; its forward passes queue in this batcher (the pipeline context
 * of opts.run_ud must forward through bs_batcher_forward). *data_out gets
 * the response `data` object (caller json_decref's it). alive (may be
 * NULL) is polled before a queued forward runs. Errors: those of the run
 * function; BS_EBUSY when the queue is full (answer 503 with Retry-After);
 * BS_EIO when alive() said the caller has gone. */
int bs_batcher_run(bs_batcher *b, bs_task task, const json_t *request, bs_batch_alive_fn alive,
                   void *alive_ud, json_t **data_out, bs_err *err);
/* bs_batcher_run with the route its forwards are counted under (a bs_task
 * value or BS_ROUTE_*); bs_batcher_run counts them under the task. */
int bs_batcher_run_route(bs_batcher *b, int route, bs_task task, const json_t *request,
                         bs_batch_alive_fn alive, void *alive_ud, json_t **data_out, bs_err *err);

/* What the calling thread serves until bs_batcher_leave: its route and its
 * client's liveness, for the forwards it queues outside bs_batcher_run
 * (e.g. rerank calling the pipeline directly). */
void bs_batcher_enter(bs_batcher *b, int route, bs_batch_alive_fn alive, void *alive_ud);
void bs_batcher_leave(void);

/* Queues one forward pass (bs_model_forward's contract: out->want and the
 * MLM positions are read) and waits for its rows. Called outside
 * bs_batcher_run / bs_batcher_enter of this batcher (a library caller of
 * the pipeline context), it runs at once in the calling thread instead. The results in *out are
 * the caller's copy, valid until the next bs_batcher_forward on out or
 * bs_batcher_outputs_release. Errors: the forward's, BS_EBUSY (queue full
 * or stopping), BS_EIO (the caller has gone), BS_ENOMEM. */
int bs_batcher_forward(bs_batcher *b, const bs_batch *batch, bs_model_outputs *out, bs_err *err);
/* Frees what bs_batcher_forward stored in out. */
void bs_batcher_outputs_release(bs_model_outputs *out);

/* Queues one decoder step of a generating request (bs_model_decode_step's
 * contract: one token per row of cache, logits [rows][vocab] out) and waits
 * for it. The steps of every request generating on the model run as one
 * pass (opts.decode), led by a caller, not the batcher thread: the first to
 * find no step pass running waits up to 2 ms until each caller still
 * generating has queued its step, runs them all and wakes the others. So a
 * request joins at its first step and leaves after its last, and a lone one
 * steps in its own thread. Held batchers run no step. Outside bs_batcher_run
 * / bs_batcher_enter of this batcher it runs at once in the calling thread.
 * Errors: the step's, BS_EBUSY (stopping), BS_EIO (the client has gone),
 * BS_EUNSUPPORTED when the batcher has no decode function. */
int bs_batcher_decode(bs_batcher *b, bs_kv_cache *cache, const int32_t *tokens, float *logits,
                      bs_err *err);

/* Counters since creation. sizes[i]: forwards serving k requests with
 * k in [2^i, 2^(i+1)) (sizes[0] = lone forwards). */
#define BS_BATCH_SIZE_BUCKETS 8
typedef struct bs_batch_stats {
    uint64_t batches;   /* forward passes made by the batcher thread */
    uint64_t requests;  /* queued forwards served by those passes */
    uint64_t texts;     /* sequences in those passes */
    uint64_t mixed;     /* passes holding forwards of two routes or more */
    uint64_t direct;    /* forwards run without the queue (library callers) */
    uint64_t rejected;  /* BS_EBUSY: queue full */
    uint64_t cancelled; /* skipped: caller gone */
    uint64_t retried;   /* forwards re-run alone after a combined pass failed */
    uint64_t max_batch; /* most forwards in one pass */
    uint64_t sizes[BS_BATCH_SIZE_BUCKETS];
    uint64_t route_texts[BS_ROUTE_COUNT]; /* sequences per route */
    size_t queued;                        /* waiting now */
    /* Decoder steps of generation (not counted above): passes, the
     * requests' steps they served, their beam rows, the most requests in
     * one pass, and passes by requests served as in sizes. */
    uint64_t dec_steps, dec_requests, dec_rows, dec_max;
    uint64_t dec_sizes[BS_BATCH_SIZE_BUCKETS];
} bs_batch_stats;
void bs_batcher_stats(bs_batcher *b, bs_batch_stats *out);

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

/* opts->run and opts->forward are ignored (each model runs its own
 * pipeline context). */
bs_batch_group *bs_batch_group_new(const bs_batcher_opts *opts);
/* Frees the group; every model loaded through it must be freed first. */
void bs_batch_group_free(bs_batch_group *g);
/* New token budget for every loaded and later model. */
void bs_batch_group_set_max_tokens(bs_batch_group *g, size_t max_batch_tokens);
/* New queue bound for every loaded and later model (0 ignored). */
void bs_batch_group_set_max_queue(bs_batch_group *g, size_t max_queue);
/* Default precision (bs_precision) of the models loaded later without
 * one of their own; loaded models keep theirs. */
void bs_batch_group_set_precision(bs_batch_group *g, int precision);
/* bs_batcher_hold on every loaded and later model. */
void bs_batch_group_hold(bs_batch_group *g, int hold);
/* Sum of every batcher's counters (queued: waiting now in all). */
void bs_batch_group_stats(bs_batch_group *g, bs_batch_stats *out);

/* Model registry callbacks (bs_registry_load_fn / bs_registry_free_fn
 * signatures; ud is the bs_batch_group). load: bs_pipeline_ctx_load(dir)
 * and a batcher on it; *handle gets a bs_served_model. *precision (may be
 * NULL): in, the bs_precision asked for, -1 for the group's default; out,
 * the one loaded. Errors: those of bs_pipeline_ctx_load (BS_EUNSUPPORTED
 * for a precision this CPU cannot run), BS_ENOMEM. free: stops the batcher
 * (after its queue has run) and frees the context. */
int bs_batch_model_load(const char *name, const char *dir, int *precision, void *ud, void **handle,
                        bs_err *err);
void bs_batch_model_free(void *handle, void *ud);

#endif
