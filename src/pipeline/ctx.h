/* The loaded model folder a pipeline runs on, and the helpers every task
 * uses to encode, run the model and decode (private to src/pipeline/). */
#ifndef BS_PIPELINE_CTX_H
#define BS_PIPELINE_CTX_H

#include "bertstudio/model.h"
#include "bertstudio/pipeline.h"
#include "bertstudio/pipeline_json.h"
#include "bertstudio/tokenizer.h"
#include "pipeline/internal.h"

enum { BS_POOLBIT_CLS = 1, BS_POOLBIT_MEAN = 2, BS_POOLBIT_MAX = 4, BS_POOLBIT_MEAN_SQRT = 8 };

struct bs_pipeline_ctx {
    bs_model *model;
    bs_tokenizer *tok;
    unsigned st_pooling;             /* BS_POOLBIT_* from 1_Pooling/config.json; 0 = none */
    int st_normalize;                /* modules.json has a Normalize module */
    size_t st_max_seq_len;           /* sentence_bert_config.json max_seq_length; 0 = none */
    bs_cls_function config_function; /* config.json function_to_apply, or DEFAULT */
    bs_pipeline_exec exec;           /* forward provider; forward NULL = bs_model_forward */
};

/* Longest encoding the pipelines feed the model: the tokenizer's
 * model_max_length, capped by what the engine accepts. */
size_t bs_pl_max_len(const bs_pipeline_ctx *ctx);

/* Checks a list of inputs: 1..BS_PIPELINE_MAX_BATCH texts, each non-empty,
 * valid UTF-8 and at most BS_PIPELINE_MAX_TEXT_BYTES. `field` names them. */
int bs_pl_check_texts(const bs_texts *in, const char *field, bs_err *err);

/* Encodes text (+ pair) with special tokens; when the result is longer than
 * max_len (> 0), encodes again truncated (longest_first) and sets
 * *truncated. Encoding errors become BS_EINVAL naming the input. */
int bs_pl_encode(const bs_pipeline_ctx *ctx, const char *text, size_t text_len, const char *pair,
                 size_t max_len, bs_encoding **out, int *truncated, bs_err *err);

/* One padding-free forward pass over n encodings, through the context's
 * provider when it has one; free the results with bs_pl_outputs_release. */
int bs_pl_forward(const bs_pipeline_ctx *ctx, bs_encoding *const *encs, size_t n, unsigned want,
                  bs_model_outputs *out, bs_err *err);
void bs_pl_outputs_release(const bs_pipeline_ctx *ctx, bs_model_outputs *out);

/* The score function of classification when the request sets none:
 * problem_type, then one label (sigmoid), then config.json's
 * function_to_apply, else softmax (transformers' rule). */
bs_cls_function bs_pl_cls_default_function(const bs_pipeline_ctx *ctx);

/* BS_EUNPROCESSABLE unless the model has `head`, naming what the task needs. */
int bs_pl_require_head(const bs_pipeline_ctx *ctx, bs_head_kind head, const char *task,
                       bs_err *err);

/* tokenizer.decode(ids, skip_special_tokens) followed by transformers'
 * clean_up_tokenization when `cleanup`. NULL on failure. */
char *bs_pl_decode(const bs_pipeline_ctx *ctx, const int32_t *ids, size_t n, int skip_special,
                   int cleanup, bs_err *err);

/* Summarization in two steps (the fixture tests check the token ids):
 * the effective generation parameters of a request, then one text. */
int bs_pl_gen_params(const bs_pipeline_ctx *ctx, const bs_summarization_req *req, bs_gen_params *p,
                     bs_err *err);
int bs_pl_summarize_text(const bs_pipeline_ctx *ctx, const bs_gen_params *p, const char *text,
                         int32_t **ids, size_t *n_ids, double *score, int *truncated, bs_err *err);

#endif
