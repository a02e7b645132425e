/* Summarization with BART (transformers' SummarizationPipeline): generation
 * settings = config <- generation_config <- task_specific_params.summarization
 * <- request; encoder once, then greedy or beam search (generate.c) on the
 * decoder KV cache, both through the context's provider (the batcher shares
 * passes between requests); decoded with skip_special_tokens and no clean-up. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/ctx.h"
#include "pipeline/internal.h"

void bs_summarization_req_init(bs_summarization_req *req)
{
    memset(req, 0, sizeof *req);
    req->max_length = req->min_length = req->num_beams = -1;
    req->no_repeat_ngram_size = req->max_new_tokens = -1;
    req->length_penalty = NAN;
    req->early_stopping = BS_EARLY_STOP_UNSET;
}

/* A model setting, or fallback when it is unset (negative). */
static int32_t or_default(int32_t v, int32_t fallback)
{
    return v >= 0 ? v : fallback;
}

int bs_pl_gen_params(const bs_pipeline_ctx *ctx, const bs_summarization_req *req, bs_gen_params *p,
                     bs_err *err)
{
    int rc = bs_pl_require_head(ctx, BS_HEAD_SEQ2SEQ_LM, "summarization", err);
    if (rc) return rc;
    const bs_model_gen_config *d = bs_model_generation(ctx->model);
    memset(p, 0, sizeof *p);
    p->vocab_size = bs_model_vocab_size(ctx->model);
    p->max_length = req->max_length >= 0 ? req->max_length : or_default(d->max_length, 20);
    p->min_length = req->min_length >= 0 ? req->min_length : or_default(d->min_length, 0);
    p->num_beams = req->num_beams >= 0 ? req->num_beams : or_default(d->num_beams, 1);
    p->no_repeat_ngram_size = req->no_repeat_ngram_size >= 0
                                  ? req->no_repeat_ngram_size
                                  : or_default(d->no_repeat_ngram_size, 0);
    p->length_penalty = !isnan(req->length_penalty) ? req->length_penalty
                        : !isnan(d->length_penalty) ? d->length_penalty
                                                    : 1.0;
    p->early_stopping = req->early_stopping != BS_EARLY_STOP_UNSET ? req->early_stopping
                        : d->early_stopping == 1                   ? BS_EARLY_STOP_TRUE
                        : d->early_stopping == 2                   ? BS_EARLY_STOP_NEVER
                                                                   : BS_EARLY_STOP_FALSE;
    p->decoder_start_token_id =
        or_default(d->decoder_start_token_id, or_default(d->bos_token_id, 0));
    p->eos_token_id = or_default(d->eos_token_id, -1);
    p->forced_bos_token_id = or_default(d->forced_bos_token_id, -1);
    p->forced_eos_token_id = or_default(d->forced_eos_token_id, -1);
    if (req->max_new_tokens >= 0) {
        if (req->max_new_tokens < 1)
            return bs_err_set(err, BS_EINVAL, "max_new_tokens must be >= 1");
        p->max_length = 1 + req->max_new_tokens;
    }
    int max_pos = bs_model_max_position_embeddings(ctx->model);
    if (p->max_length < 2 || p->max_length > max_pos)
        return bs_err_set(err, BS_EINVAL,
                          "max_length %d must be between 2 and the model's %d positions "
                          "(max_new_tokens: at most %d)",
                          p->max_length, max_pos, max_pos - 1);
    /* min_length above max_length is allowed, as in transformers: the forced EOS wins */
    if (p->min_length < 0 || p->min_length > max_pos)
        return bs_err_set(err, BS_EINVAL,
                          "min_length %d must be between 0 and the model's %d positions",
                          p->min_length, max_pos);
    if (p->num_beams < 1 || p->num_beams > 16)
        return bs_err_set(err, BS_EINVAL, "num_beams %d must be between 1 and 16", p->num_beams);
    if (p->no_repeat_ngram_size < 0 || p->no_repeat_ngram_size > max_pos)
        return bs_err_set(err, BS_EINVAL,
                          "no_repeat_ngram_size %d must be between 0 and the model's %d positions",
                          p->no_repeat_ngram_size, max_pos);
    if (!isfinite(p->length_penalty) || fabs(p->length_penalty) > 100)
        return bs_err_set(err, BS_EINVAL, "length_penalty must be a number between -100 and 100");
    return 0;
}

typedef struct decoder {
    const bs_pipeline_ctx *ctx;
    bs_kv_cache *cache;
} decoder;

/* Through the context's provider when it has one: there, the steps of
 * every request generating on the model at the same time share a pass. */
static int step(void *user, const int32_t *tokens, int32_t n_rows, float *logits, bs_err *err)
{
    decoder *d = user;
    const bs_pipeline_exec *ex = &d->ctx->exec;
    (void)n_rows;
    if (ex->decode) return ex->decode(ex->ud, d->cache, tokens, logits, err);
    return bs_model_decode_step(d->ctx->model, d->cache, tokens, logits, err);
}

/* The encoder pass, as one forward like the encoder tasks' (so a provider
 * can batch it with theirs), then the cross-attention keys/values. */
static int encode(const bs_pipeline_ctx *ctx, bs_encoding *enc, bs_encoder_state **st, bs_err *err)
{
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    int rc = bs_pl_forward(ctx, &enc, 1, BS_OUT_HIDDEN, &out, err);
    if (!rc) {
        bs_seq seq = {enc->ids, NULL, (int32_t)enc->len};
        bs_batch batch = {&seq, 1};
        rc = bs_model_encoder_state_from_hidden(ctx->model, &batch, out.last_hidden_state, st, err);
    }
    bs_pl_outputs_release(ctx, &out);
    return rc;
}

static int reorder(void *user, const int32_t *src_rows, int32_t n_rows, bs_err *err)
{
    decoder *d = user;
    return bs_kv_cache_reorder(d->cache, src_rows, n_rows, err);
}

int bs_pl_summarize_text(const bs_pipeline_ctx *ctx, const bs_gen_params *p, const char *text,
                         int32_t **ids, size_t *n_ids, double *score, int *truncated, bs_err *err)
{
    bs_encoding *enc = NULL;
    bs_encoder_state *st = NULL;
    decoder d = {ctx, NULL};
    int32_t *rows = calloc((size_t)p->num_beams, sizeof *rows);
    int rc = rows ? 0 : bs_err_set(err, BS_ENOMEM, "out of memory");
    if (!rc)
        rc = bs_pl_encode(ctx, text, strlen(text), NULL, bs_pl_max_len(ctx), &enc, truncated, err);
    if (!rc) rc = encode(ctx, enc, &st, err);
    if (!rc) rc = bs_kv_cache_new(ctx->model, st, rows, p->num_beams, p->max_length, &d.cache, err);
    if (!rc) rc = bs_generate(p, step, reorder, &d, ids, n_ids, score, err);
    bs_kv_cache_free(d.cache);
    bs_encoder_state_free(st);
    bs_encoding_free(enc);
    free(rows);
    return rc;
}

void bs_summarization_result_free(bs_summarization_result *res)
{
    for (size_t i = 0; res->texts && i < res->n; i++) free(res->texts[i]);
    free(res->texts);
    memset(res, 0, sizeof *res);
}

int bs_pipeline_summarize(const bs_pipeline_ctx *ctx, const bs_summarization_req *req,
                          bs_summarization_result *res, bs_err *err)
{
    memset(res, 0, sizeof *res);
    int rc = bs_pl_check_texts(&req->input, "text", err);
    if (rc) return rc;
    bs_gen_params p;
    if ((rc = bs_pl_gen_params(ctx, req, &p, err))) return rc;
    res->texts = calloc(req->input.n, sizeof *res->texts);
    if (!res->texts) return bs_err_set(err, BS_ENOMEM, "out of memory");
    res->n = req->input.n;
    for (size_t i = 0; i < req->input.n && !rc; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        double score;
        rc = bs_pl_summarize_text(ctx, &p, req->input.texts[i], &ids, &n, &score, &res->truncated,
                                  err);
        if (rc) break;
        res->texts[i] = bs_pl_decode(ctx, ids, n, 1, 0, err);
        free(ids);
        if (!res->texts[i]) rc = err && err->code ? err->code : BS_ENOMEM;
    }
    if (rc) bs_summarization_result_free(res);
    return rc;
}
