/*
 * Task pipelines: turn text into the answers users see (labels, entities,
 * answer spans, mask fillings, embeddings, features, summaries), following
 * HuggingFace transformers' pipelines exactly (scores, spans, words).
 *
 * A bs_pipeline_ctx holds one loaded model folder (model + tokenizer +
 * sentence-transformers and generation side files). It is immutable once
 * loaded: any number of threads may run requests on one context at once.
 *
 * One C function per task taking a request struct and filling a typed
 * result (below); bertstudio/pipeline_json.h adds the JSON entry point
 * bs_pipeline_run_json() of the CLI, which validates a request body of the
 * API spec and returns the response's `data` object (docs/pipelines.md).
 * This header needs no JSON library. Errors: BS_EINVAL for bad input, including the
 * limits below (HTTP 400); BS_EUNPROCESSABLE for well-formed but unusable
 * input (HTTP 422: no mask token, a model without the head the task needs);
 * BS_ENOMEM; and the engine's own errors.
 */
#ifndef BERTSTUDIO_PIPELINE_H
#define BERTSTUDIO_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "bertstudio/common.h"
#include "bertstudio/model.h"
#include "bertstudio/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits enforced on every request (documented in docs/pipelines.md). */
#define BS_PIPELINE_MAX_BATCH       256        /* texts per request */
#define BS_PIPELINE_MAX_TEXT_BYTES  (1u << 20) /* one text, question or context */
#define BS_PIPELINE_MAX_QA_WINDOWS  256        /* doc_stride windows of one QA context */
#define BS_PIPELINE_MAX_RESULTS     10000 /* entries of one ranked list: a larger top_k is capped */
#define BS_PIPELINE_MAX_PREDICTIONS 100000 /* fill-mask: masks x top_k per request */
#define BS_PIPELINE_MAX_FEATURE_VALUES                                                             \
    (16u << 20) /* features: tokens x hidden size per request                                      \
                 */

typedef enum bs_task {
    BS_TASK_CLASSIFICATION = 0,
    BS_TASK_NER,
    BS_TASK_QA,
    BS_TASK_FILL_MASK,
    BS_TASK_EMBEDDINGS,
    BS_TASK_FEATURES,
    BS_TASK_SUMMARIZATION,
    BS_TASK_COUNT
} bs_task;

/* "classification", "ner", "qa", "fill-mask", "embeddings", "features",
 * "summarization" (the /tasks/... path names); NULL when out of range. */
BS_API const char *bs_task_name(bs_task task);
/* Parses a task name; returns 0, or BS_EINVAL naming the allowed names. */
BS_API int bs_task_from_name(const char *name, bs_task *out, bs_err *err);

typedef struct bs_pipeline_ctx bs_pipeline_ctx;

/* Loads the model folder `dir`: tokenizer, model (bs_model_load with opts,
 * which may be NULL) and the side files the tasks need (modules.json,
 * 1_Pooling/config.json, sentence_bert_config.json, generation defaults of
 * config.json / generation_config.json). *out is owned by the caller (free
 * with bs_pipeline_ctx_free). Errors: those of bs_tokenizer_load and
 * bs_model_load, BS_EFORMAT for a malformed side file (the message names it). */
BS_API int bs_pipeline_ctx_load(const char *dir, const bs_model_opts *opts, bs_pipeline_ctx **out,
                                bs_err *err);
/* Frees a context (NULL is fine). No run may be in flight on it. */
BS_API void bs_pipeline_ctx_free(bs_pipeline_ctx *ctx);
/* The context's model and tokenizer (owned by the context). */
BS_API const bs_model *bs_pipeline_ctx_model(const bs_pipeline_ctx *ctx);
BS_API const bs_tokenizer *bs_pipeline_ctx_tokenizer(const bs_pipeline_ctx *ctx);

/* Where a context's forward passes run. By default each task calls
 * bs_model_forward itself; a server sets a provider that queues the
 * sequences of every request on the model and runs them together (the
 * batcher). forward follows bs_model_forward's contract (out->want and the
 * MLM positions in, the results out); release frees what it stored in out.
 * Generation (summarization) runs its encoder pass through forward, and each
 * decoder step through decode when set (bs_model_decode_step's contract, so
 * that the steps of requests generating together can share one pass), else
 * bs_model_decode_step. */
typedef struct bs_pipeline_exec {
    int (*forward)(void *ud, const bs_batch *batch, bs_model_outputs *out, bs_err *err);
    void (*release)(void *ud, bs_model_outputs *out);
    void *ud;
    int (*decode)(void *ud, bs_kv_cache *cache, const int32_t *next_tokens, float *logits_out,
                  bs_err *err); /* optional */
} bs_pipeline_exec;

/* Sets (exec non-NULL, forward and release set) or clears (NULL) the
 * provider. Call before the context is shared between threads. */
BS_API void bs_pipeline_ctx_set_exec(bs_pipeline_ctx *ctx, const bs_pipeline_exec *exec);

/* Inputs shared by the per-task requests: n texts, NUL-terminated UTF-8. */
typedef struct bs_texts {
    size_t n;
    const char *const *texts;
} bs_texts;

typedef enum bs_cls_function {
    BS_CLS_FN_DEFAULT = 0, /* from problem_type / num_labels, as transformers */
    BS_CLS_FN_SOFTMAX,
    BS_CLS_FN_SIGMOID,
    BS_CLS_FN_NONE,
} bs_cls_function;

typedef struct bs_classification_req {
    bs_texts input;
    const char *const *pairs; /* NULL, or input.n entries (each may be NULL) */
    int top_k;                /* <= 0: all labels */
    bs_cls_function function;
} bs_classification_req;

typedef enum bs_ner_aggregation {
    BS_NER_AGG_NONE = 0,
    BS_NER_AGG_SIMPLE,
    BS_NER_AGG_FIRST,
    BS_NER_AGG_AVERAGE,
    BS_NER_AGG_MAX,
} bs_ner_aggregation;

typedef struct bs_ner_req {
    bs_texts input;
    bs_ner_aggregation aggregation;
    const char *const *ignore_labels; /* used when has_ignore_labels; default ["O"] */
    size_t n_ignore_labels;
    int has_ignore_labels;
} bs_ner_req;

typedef struct bs_qa_req {
    const char *question, *context;
    int top_k;                    /* >= 1 */
    int doc_stride;               /* < 0: min(max_seq_len / 2, 128) */
    int max_answer_len;           /* >= 1 */
    int max_seq_len;              /* < 0: min(model_max_length, 384) */
    int handle_impossible_answer; /* 0 / 1 */
} bs_qa_req;

typedef struct bs_fill_mask_req {
    bs_texts input;
    int top_k;                  /* >= 1 */
    const char *const *targets; /* NULL: whole vocabulary */
    size_t n_targets;
} bs_fill_mask_req;

typedef enum bs_pooling {
    BS_POOL_DEFAULT = 0, /* from the model's 1_Pooling/config.json (mean when absent) */
    BS_POOL_MEAN,
    BS_POOL_CLS,
    BS_POOL_MAX,
    BS_POOL_MEAN_SQRT_LEN,
} bs_pooling;

typedef struct bs_embeddings_req {
    bs_texts input;
    bs_pooling pooling;
    int normalize; /* < 0: whether modules.json has a Normalize module */
} bs_embeddings_req;

typedef struct bs_features_req {
    bs_texts input;
} bs_features_req;

typedef enum bs_early_stopping {
    BS_EARLY_STOP_UNSET = -1,
    BS_EARLY_STOP_FALSE = 0,
    BS_EARLY_STOP_TRUE = 1,
    BS_EARLY_STOP_NEVER = 2,
} bs_early_stopping;

/* Summarization: every numeric field < 0 (length_penalty: NaN) means "not
 * set" and takes the model's defaults (task_specific_params.summarization,
 * then config / generation_config, then generate()'s). */
typedef struct bs_summarization_req {
    bs_texts input;
    int max_length, min_length, num_beams, no_repeat_ngram_size, max_new_tokens;
    double length_penalty;
    bs_early_stopping early_stopping;
    int truncation; /* informative: over-long inputs are always truncated and flagged */
} bs_summarization_req;

/* Fills a request with the defaults of its task (top_k 1 / 5, stride
 * unset...). texts are left empty. */
BS_API void bs_classification_req_init(bs_classification_req *req);
BS_API void bs_ner_req_init(bs_ner_req *req);
BS_API void bs_qa_req_init(bs_qa_req *req);
BS_API void bs_fill_mask_req_init(bs_fill_mask_req *req);
BS_API void bs_embeddings_req_init(bs_embeddings_req *req);
BS_API void bs_summarization_req_init(bs_summarization_req *req);

/* ── typed results ──
 * Each task function fills a result struct that the caller frees with its
 * _free function (also after an error: a failed call leaves it empty).
 * Strings are owned by the result. Scores are doubles as the pipelines
 * compute them from the model's float32 logits (softmax in double, as the
 * fixtures); vectors the model computes are float32. `truncated` is set
 * when an input was cut to the model's maximum length. */

/* A label and its score (classification). */
typedef struct bs_label_score {
    char *label;
    double score;
} bs_label_score;

/* Classification: input i's ranked labels are labels[offsets[i] ..
 * offsets[i + 1]), best first. */
typedef struct bs_classification_result {
    size_t n;        /* inputs */
    size_t *offsets; /* [n + 1] */
    bs_label_score *labels;
    int truncated;
} bs_classification_result;

/* One NER entity: a token (aggregation none: label is its tag, index its
 * position in the encoded sequence) or a group of words (other
 * aggregations: label is the group's tag, index -1). start/end are
 * character (code point) offsets into the input text. */
typedef struct bs_ner_entity {
    char *label;
    double score;
    int32_t index;
    char *word;
    size_t start, end;
} bs_ner_entity;

/* NER: input i's entities are entities[offsets[i] .. offsets[i + 1]).
 * grouped: the entities are groups (any aggregation but none). */
typedef struct bs_ner_result {
    size_t n;
    size_t *offsets; /* [n + 1] */
    bs_ner_entity *entities;
    int grouped;
    int truncated;
} bs_ner_result;

/* One QA answer: the text and its character offsets in the context. */
typedef struct bs_qa_answer {
    char *answer;
    double score;
    size_t start, end;
} bs_qa_answer;

/* QA: the best answers first (at most top_k). */
typedef struct bs_qa_result {
    size_t n;
    bs_qa_answer *answers;
    int truncated; /* always 0: long contexts are windowed, not cut */
} bs_qa_result;

/* One fill-mask candidate for one mask position. */
typedef struct bs_fill_mask_candidate {
    double score;
    int32_t token;
    char *token_str;
    char *sequence; /* the text with this candidate in place of the mask */
} bs_fill_mask_candidate;

/* Fill-mask: input i has masks[i] mask positions, each with per_mask
 * candidates, best first; the candidates of input i's mask m are at
 * candidates[(mask_offsets[i] + m) * per_mask]. */
typedef struct bs_fill_mask_result {
    size_t n;
    size_t *masks;        /* [n] */
    size_t *mask_offsets; /* [n]: first mask of input i among all masks */
    size_t per_mask;
    bs_fill_mask_candidate *candidates;
    int truncated;
} bs_fill_mask_result;

/* Sentence embeddings: n vectors of dim float32 numbers, the tokens the
 * model read for them (after truncation) and whether any text was cut. */
typedef struct bs_embeddings_result {
    size_t n, dim;
    float *vectors; /* [n][dim] */
    size_t tokens;
    int truncated;
} bs_embeddings_result;

/* Features: the encoder's last hidden state per token; input i has
 * tokens[i] rows of dim float32 numbers starting at row offsets[i]. */
typedef struct bs_features_result {
    size_t n, dim;
    size_t *tokens;  /* [n] */
    size_t *offsets; /* [n] */
    float *values;   /* [sum tokens][dim] */
    int truncated;
} bs_features_result;

/* Summarization: one summary per input. */
typedef struct bs_summarization_result {
    size_t n;
    char **texts;
    int truncated;
} bs_summarization_result;

BS_API void bs_classification_result_free(bs_classification_result *res);
BS_API void bs_ner_result_free(bs_ner_result *res);
BS_API void bs_qa_result_free(bs_qa_result *res);
BS_API void bs_fill_mask_result_free(bs_fill_mask_result *res);
BS_API void bs_embeddings_result_free(bs_embeddings_result *res);
BS_API void bs_features_result_free(bs_features_result *res);
BS_API void bs_summarization_result_free(bs_summarization_result *res);

/* The task functions. Each validates its request, runs the model and fills
 * *res. Errors as described at the top of this file. */
BS_API int bs_pipeline_classify(const bs_pipeline_ctx *ctx, const bs_classification_req *req,
                                bs_classification_result *res, bs_err *err);
BS_API int bs_pipeline_ner(const bs_pipeline_ctx *ctx, const bs_ner_req *req, bs_ner_result *res,
                           bs_err *err);
BS_API int bs_pipeline_qa(const bs_pipeline_ctx *ctx, const bs_qa_req *req, bs_qa_result *res,
                          bs_err *err);
BS_API int bs_pipeline_fill_mask(const bs_pipeline_ctx *ctx, const bs_fill_mask_req *req,
                                 bs_fill_mask_result *res, bs_err *err);
BS_API int bs_pipeline_embed(const bs_pipeline_ctx *ctx, const bs_embeddings_req *req,
                             bs_embeddings_result *res, bs_err *err);
BS_API int bs_pipeline_features(const bs_pipeline_ctx *ctx, const bs_features_req *req,
                                bs_features_result *res, bs_err *err);
BS_API int bs_pipeline_summarize(const bs_pipeline_ctx *ctx, const bs_summarization_req *req,
                                 bs_summarization_result *res, bs_err *err);

/* Any task's result, for callers that handle tasks generically (the JSON
 * entry points of bertstudio/pipeline_json.h, the server's renderer). */
typedef struct bs_task_result {
    bs_task task;
    union {
        bs_classification_result classification;
        bs_ner_result ner;
        bs_qa_result qa;
        bs_fill_mask_result fill_mask;
        bs_embeddings_result embeddings;
        bs_features_result features;
        bs_summarization_result summarization;
    } u;
} bs_task_result;

/* Frees the member of the result's task; leaves it zeroed. */
BS_API void bs_task_result_free(bs_task_result *res);

/* Reranking with a cross-encoder (a sequence-classification model): each
 * (query, texts[i]) pair is scored as one text pair, the score being the
 * classification score of the model's last label under the default score
 * function (sigmoid of the logit for a one-label model, as
 * sentence-transformers' CrossEncoder; with several labels, the softmax
 * probability of the last label). */
typedef struct bs_rerank_req {
    const char *query;
    bs_texts texts; /* the documents, 1..BS_PIPELINE_MAX_BATCH */
} bs_rerank_req;

typedef struct bs_rerank_hit {
    size_t index; /* into req->texts */
    double score;
} bs_rerank_hit;

/* Scores every text against the query and stores the texts.n hits in
 * hits[] (caller-sized), best first, equal scores in input order.
 * *truncated (may be NULL) is set when a pair was cut to the model's
 * length. Errors: BS_EINVAL (an empty, oversized or invalid query or text,
 * named), BS_EUNPROCESSABLE (not a sequence-classification model),
 * BS_ENOMEM, the engine's. */
BS_API int bs_pipeline_rerank(const bs_pipeline_ctx *ctx, const bs_rerank_req *req,
                              bs_rerank_hit *hits, int *truncated, bs_err *err);

/* ── generation (decoder-only logic, usable with any step function) ── */

/* Produces logits for the next position of every row: feeds tokens[r] to
 * row r and writes logits[r * vocab + v]. Returns 0 or a negative BS_E*. */
typedef int (*bs_gen_step_fn)(void *user, const int32_t *tokens, int32_t n_rows, float *logits,
                              bs_err *err);
/* Keeps rows src_rows[0..n) as the new rows 0..n-1 (beam reorder). */
typedef int (*bs_gen_reorder_fn)(void *user, const int32_t *src_rows, int32_t n_rows, bs_err *err);

typedef struct bs_gen_params {
    int32_t vocab_size;
    int32_t max_length; /* decoder length cap, decoder start included */
    int32_t min_length;
    int32_t num_beams;
    int32_t no_repeat_ngram_size;
    double length_penalty;
    bs_early_stopping early_stopping;
    int32_t decoder_start_token_id, eos_token_id;
    int32_t forced_bos_token_id, forced_eos_token_id; /* -1 = none */
} bs_gen_params;

/* Greedy search (num_beams 1) or beam search (transformers' vectorised
 * _beam_search) for one input: calls step with num_beams rows (1 for
 * greedy), reorder between beam steps. *ids_out (free()) receives the
 * decoder output (decoder start first), *score_out the beam hypothesis'
 * normalised score (NaN for greedy). Errors: BS_EINVAL (bad params), those
 * of the callbacks, BS_ENOMEM. */
BS_API int bs_generate(const bs_gen_params *params, bs_gen_step_fn step, bs_gen_reorder_fn reorder,
                       void *user, int32_t **ids_out, size_t *n_out, double *score_out,
                       bs_err *err);

#ifdef __cplusplus
}
#endif
#endif
