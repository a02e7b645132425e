/* What every task does around the model: input checks, encoding with
 * transformers-style truncation, one padding-free forward pass, decoding. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/ctx.h"
#include "pipeline/internal.h"
#include "util/utf8.h"

size_t bs_pl_max_len(const bs_pipeline_ctx *ctx)
{
    size_t m = bs_tokenizer_model_max_length(ctx->tok);
    size_t engine = (size_t)bs_model_max_seq_len(ctx->model);
    if (m == 0 || m > engine) m = engine;
    return m;
}

int bs_pl_check_texts(const bs_texts *in, const char *field, bs_err *err)
{
    if (in->n == 0 || !in->texts)
        return bs_err_set(err, BS_EINVAL, "%s: at least one text is required", field);
    if (in->n > BS_PIPELINE_MAX_BATCH)
        return bs_err_set(err, BS_EINVAL, "%s: %zu texts, at most %d per request", field, in->n,
                          BS_PIPELINE_MAX_BATCH);
    for (size_t i = 0; i < in->n; i++) {
        const char *t = in->texts[i];
        if (!t) return bs_err_set(err, BS_EINVAL, "%s[%zu] is missing", field, i);
        size_t len = strlen(t), bad;
        if (len == 0) return bs_err_set(err, BS_EINVAL, "%s[%zu] is empty", field, i);
        if (len > BS_PIPELINE_MAX_TEXT_BYTES)
            return bs_err_set(err, BS_EINVAL, "%s[%zu] is %zu bytes, the limit is %u", field, i,
                              len, BS_PIPELINE_MAX_TEXT_BYTES);
        if (bs_utf8_validate(t, len, &bad))
            return bs_err_set(err, BS_EINVAL, "%s[%zu] is not valid UTF-8 (byte %zu)", field, i,
                              bad);
    }
    return 0;
}

int bs_pl_encode(const bs_pipeline_ctx *ctx, const char *text, size_t text_len, const char *pair,
                 size_t max_len, bs_encoding **out, int *truncated, bs_err *err)
{
    *out = NULL;
    size_t pair_len = pair ? strlen(pair) : 0;
    int rc = bs_tokenizer_encode(ctx->tok, text, text_len, pair, pair_len, NULL, out, err);
    if (rc) goto fail;
    if (max_len == 0 || (*out)->len <= max_len) return 0;
    bs_encoding_free(*out);
    *out = NULL;
    bs_encode_opts opts;
    bs_encode_opts_default(&opts);
    opts.truncation.strategy = BS_TRUNC_LONGEST_FIRST;
    opts.truncation.max_length = max_len;
    rc = bs_tokenizer_encode(ctx->tok, text, text_len, pair, pair_len, &opts, out, err);
    if (rc) goto fail;
    *truncated = 1;
    return 0;
fail:
    if (rc == BS_EUTF8 || rc == BS_EINVAL) {
        bs_err_prefix(err, "text cannot be tokenized");
        err->code = BS_EINVAL;
        return BS_EINVAL;
    }
    return rc;
}

int bs_pl_forward(const bs_pipeline_ctx *ctx, bs_encoding *const *encs, size_t n, unsigned want,
                  bs_model_outputs *out, bs_err *err)
{
    bs_seq *seqs = calloc(n ? n : 1, sizeof *seqs);
    if (!seqs) return bs_err_set(err, BS_ENOMEM, "out of memory");
    int types = bs_model_uses_token_type_ids(ctx->model);
    int vocab = bs_model_vocab_size(ctx->model);
    for (size_t i = 0; i < n; i++) {
        /* Ids from the model's own tokenizer: one beyond its embeddings is
         * the model folder's fault (422), not the request's. */
        for (size_t k = 0; k < encs[i]->len; k++)
            if (encs[i]->ids[k] < 0 || encs[i]->ids[k] >= vocab) {
                free(seqs);
                return bs_err_set(err, BS_EUNPROCESSABLE,
                                  "the model's tokenizer produced token id %d, beyond its "
                                  "vocabulary of %d (vocab_size in config.json): the model "
                                  "folder's tokenizer and weights disagree",
                                  (int)encs[i]->ids[k], vocab);
            }
        seqs[i].input_ids = encs[i]->ids;
        seqs[i].token_type_ids = types ? encs[i]->type_ids : NULL;
        seqs[i].len = (int32_t)encs[i]->len;
    }
    bs_batch batch = {seqs, (int32_t)n};
    out->want = want;
    int rc = ctx->exec.forward ? ctx->exec.forward(ctx->exec.ud, &batch, out, err)
                               : bs_model_forward(ctx->model, &batch, out, err);
    free(seqs);
    return rc;
}

void bs_pl_outputs_release(const bs_pipeline_ctx *ctx, bs_model_outputs *out)
{
    if (ctx->exec.forward)
        ctx->exec.release(ctx->exec.ud, out);
    else
        bs_model_outputs_release(out);
}

void bs_pipeline_ctx_set_exec(bs_pipeline_ctx *ctx, const bs_pipeline_exec *exec)
{
    if (exec && exec->forward && exec->release)
        ctx->exec = *exec;
    else
        memset(&ctx->exec, 0, sizeof ctx->exec);
}

int bs_pl_require_head(const bs_pipeline_ctx *ctx, bs_head_kind head, const char *task, bs_err *err)
{
    static const char *const needs[] = {
        [BS_HEAD_BASE] = "an encoder",
        [BS_HEAD_SEQ_CLS] = "a sequence-classification head (*ForSequenceClassification)",
        [BS_HEAD_TOKEN_CLS] = "a token-classification head (*ForTokenClassification)",
        [BS_HEAD_QA] = "a question-answering head (*ForQuestionAnswering)",
        [BS_HEAD_MLM] = "a masked-language-modeling head (*ForMaskedLM)",
        [BS_HEAD_SEQ2SEQ_LM] = "an encoder-decoder LM head (BartForConditionalGeneration)",
    };
    if (bs_model_head(ctx->model) == head) return 0;
    return bs_err_set(err, BS_EUNPROCESSABLE, "%s needs a model with %s; %s is a %s", task,
                      needs[head], "this model", bs_model_architecture(ctx->model));
}

char *bs_pl_decode(const bs_pipeline_ctx *ctx, const int32_t *ids, size_t n, int skip_special,
                   int cleanup, bs_err *err)
{
    char *s = NULL;
    if (bs_tokenizer_decode(ctx->tok, ids, n, skip_special, &s, err)) return NULL;
    if (cleanup) bs_pl_clean_up_tokenization(s);
    return s;
}

void bs_task_result_free(bs_task_result *res)
{
    switch (res->task) {
    case BS_TASK_CLASSIFICATION:
        bs_classification_result_free(&res->u.classification);
        break;
    case BS_TASK_NER:
        bs_ner_result_free(&res->u.ner);
        break;
    case BS_TASK_QA:
        bs_qa_result_free(&res->u.qa);
        break;
    case BS_TASK_FILL_MASK:
        bs_fill_mask_result_free(&res->u.fill_mask);
        break;
    case BS_TASK_EMBEDDINGS:
        bs_embeddings_result_free(&res->u.embeddings);
        break;
    case BS_TASK_FEATURES:
        bs_features_result_free(&res->u.features);
        break;
    case BS_TASK_SUMMARIZATION:
        bs_summarization_result_free(&res->u.summarization);
        break;
    default:
        break;
    }
}
