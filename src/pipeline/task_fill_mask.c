/* Fill-mask (transformers' FillMaskPipeline): softmax over the vocabulary at
 * every mask position, optional targets, top_k predictions with token_str
 * and the filled sequence; one list per mask when a text has several. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/ctx.h"
#include "pipeline/internal.h"

void bs_fill_mask_req_init(bs_fill_mask_req *req)
{
    memset(req, 0, sizeof *req);
    req->top_k = 5;
}

/* transformers' get_target_ids: vocabulary lookup, else the first token of
 * the target tokenized alone; targets giving no token are dropped. */
static int resolve_targets(const bs_pipeline_ctx *ctx, const bs_fill_mask_req *req,
                           int32_t **ids_out, size_t *n_out, bs_err *err)
{
    int32_t *ids = malloc((req->n_targets ? req->n_targets : 1) * sizeof *ids);
    size_t n = 0;
    if (!ids) return bs_err_set(err, BS_ENOMEM, "out of memory");
    for (size_t i = 0; i < req->n_targets; i++) {
        const char *t = req->targets[i];
        if (!t) continue;
        int32_t id = bs_tokenizer_token_to_id(ctx->tok, t, strlen(t));
        if (id < 0 && *t) {
            bs_encode_opts opts;
            bs_encode_opts_default(&opts);
            opts.add_special_tokens = 0;
            bs_encoding *enc = NULL;
            if (bs_tokenizer_encode(ctx->tok, t, strlen(t), NULL, 0, &opts, &enc, NULL) == 0 &&
                enc->len > 0)
                id = enc->ids[0];
            bs_encoding_free(enc);
        }
        if (id < 0) continue;
        int dup = 0;
        for (size_t j = 0; j < n; j++) dup |= ids[j] == id;
        if (!dup) ids[n++] = id;
    }
    if (n == 0) {
        free(ids);
        return bs_err_set(err, BS_EINVAL,
                          "targets: none of the %zu targets maps to a token of the vocabulary",
                          req->n_targets);
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}

/* The top_k predictions at mask position `pos` of enc, into row[0..top_k). */
static int predictions(const bs_pipeline_ctx *ctx, const bs_encoding *enc, size_t pos,
                       const float *logits, size_t vocab, const int32_t *targets, size_t n_targets,
                       size_t top_k, int single_mask, double *probs, bs_fill_mask_candidate *row,
                       bs_err *err)
{
    int cleanup = bs_tokenizer_clean_up_tokenization_spaces(ctx->tok);
    int32_t pad = bs_tokenizer_special_id(ctx->tok, BS_SPECIAL_PAD);
    bs_pl_softmax(logits, vocab, probs);
    size_t n_cand = targets ? n_targets : vocab;
    double *cand = targets ? malloc(n_targets * sizeof *cand) : probs;
    size_t *order = NULL;
    int32_t *ids = malloc(enc->len * sizeof *ids);
    int decoded = 1;
    if (!cand || !ids) goto fail;
    for (size_t t = 0; targets && t < n_targets; t++) cand[t] = probs[targets[t]];
    order = bs_pl_argsort_desc(cand, n_cand);
    if (!order) goto fail;
    for (size_t k = 0; k < top_k && k < n_cand; k++) {
        int32_t tok = targets ? targets[order[k]] : (int32_t)order[k];
        size_t n_ids = 0;
        for (size_t i = 0; i < enc->len; i++) {
            int32_t id = i == pos ? tok : enc->ids[i];
            if (id != pad) ids[n_ids++] = id;
        }
        char *seq = bs_pl_decode(ctx, ids, n_ids, single_mask, cleanup, err);
        char *str = seq ? bs_pl_decode(ctx, &tok, 1, 0, cleanup, err) : NULL;
        decoded = str != NULL;
        row[k] = (bs_fill_mask_candidate){cand[order[k]], tok, str, seq};
        if (!str) goto fail;
    }
    if (targets) free(cand);
    free(order);
    free(ids);
    return 0;
fail:
    if (targets) free(cand);
    free(order);
    free(ids);
    if (decoded) return bs_err_set(err, BS_ENOMEM, "out of memory");
    return err && err->code ? err->code : BS_ENOMEM; /* decode filled err */
}

void bs_fill_mask_result_free(bs_fill_mask_result *res)
{
    size_t total = 0;
    for (size_t i = 0; res->masks && i < res->n; i++) total += res->masks[i];
    for (size_t k = 0; res->candidates && k < total * res->per_mask; k++) {
        free(res->candidates[k].token_str);
        free(res->candidates[k].sequence);
    }
    free(res->candidates);
    free(res->masks);
    free(res->mask_offsets);
    memset(res, 0, sizeof *res);
}

int bs_pipeline_fill_mask(const bs_pipeline_ctx *ctx, const bs_fill_mask_req *req,
                          bs_fill_mask_result *res, bs_err *err)
{
    memset(res, 0, sizeof *res);
    int rc = bs_pl_check_texts(&req->input, "text", err);
    if (rc) return rc;
    if (req->top_k < 1) return bs_err_set(err, BS_EINVAL, "top_k %d must be >= 1", req->top_k);
    if ((rc = bs_pl_require_head(ctx, BS_HEAD_MLM, "fill-mask", err))) return rc;
    int32_t mask = bs_tokenizer_special_id(ctx->tok, BS_SPECIAL_MASK);
    if (mask < 0)
        return bs_err_set(err, BS_EUNPROCESSABLE,
                          "fill-mask: the model's tokenizer has no mask token");
    const char *mask_str = bs_tokenizer_special_token(ctx->tok, BS_SPECIAL_MASK);
    size_t n = req->input.n, vocab = 0;
    int32_t *targets = NULL, *positions = NULL;
    size_t n_targets = 0, n_pos = 0;
    bs_encoding **encs = calloc(n, sizeof *encs);
    double *probs = NULL;
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    int truncated = 0;
    if (!encs) goto oom;
    if (req->targets && (rc = resolve_targets(ctx, req, &targets, &n_targets, err))) goto done;
    size_t total = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = bs_pl_encode(ctx, req->input.texts[i], strlen(req->input.texts[i]), NULL,
                          bs_pl_max_len(ctx), &encs[i], &truncated, err);
        if (rc) break;
        size_t masks = 0;
        for (size_t p = 0; p < encs[i]->len; p++) masks += encs[i]->ids[p] == mask;
        if (!masks)
            rc = bs_err_set(err, BS_EUNPROCESSABLE, "text[%zu] has no mask token %s%s", i,
                            mask_str ? mask_str : "",
                            truncated ? " (after truncation to the model's maximum length)" : "");
        total += encs[i]->len;
    }
    if (rc) goto done;
    positions = malloc(total * sizeof *positions);
    if (!positions) goto oom;
    size_t row0 = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t p = 0; p < encs[i]->len; p++)
            if (encs[i]->ids[p] == mask) positions[n_pos++] = (int32_t)(row0 + p);
        row0 += encs[i]->len;
    }
    out.mlm_positions = positions;
    out.n_mlm_positions = (int32_t)n_pos;
    if ((rc = bs_pl_forward(ctx, encs, n, BS_OUT_LOGITS, &out, err))) goto done;
    vocab = (size_t)out.n_labels;
    for (size_t t = 0; t < n_targets; t++) {
        if ((size_t)targets[t] >= vocab) {
            rc = bs_err_set(err, BS_EINVAL,
                            "targets: token id %d is outside the model's vocabulary", targets[t]);
            goto done;
        }
    }
    size_t top_k = (size_t)req->top_k, n_cand = targets ? n_targets : vocab;
    if (top_k > n_cand) top_k = n_cand;
    if (top_k > BS_PIPELINE_MAX_RESULTS) top_k = BS_PIPELINE_MAX_RESULTS;
    if (n_pos * top_k > BS_PIPELINE_MAX_PREDICTIONS) {
        rc = bs_err_set(
            err, BS_EINVAL,
            "fill-mask: %zu masks x top_k %zu = %zu predictions; the limit is %d per request",
            n_pos, top_k, n_pos * top_k, BS_PIPELINE_MAX_PREDICTIONS);
        goto done;
    }
    probs = malloc(vocab * sizeof *probs);
    res->masks = calloc(n, sizeof *res->masks);
    res->mask_offsets = calloc(n, sizeof *res->mask_offsets);
    res->candidates = calloc(n_pos * top_k + 1, sizeof *res->candidates);
    if (!probs || !res->masks || !res->mask_offsets || !res->candidates) goto oom;
    res->n = n;
    res->per_mask = top_k;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t p = 0; p < encs[i]->len; p++) res->masks[i] += encs[i]->ids[p] == mask;
        res->mask_offsets[i] = k;
        for (size_t p = 0; p < encs[i]->len; p++) {
            if (encs[i]->ids[p] != mask) continue;
            rc = predictions(ctx, encs[i], p, out.logits + k * vocab, vocab, targets, n_targets,
                             top_k, res->masks[i] == 1, probs, res->candidates + k * top_k, err);
            k++;
            if (rc) goto done;
        }
    }
    res->truncated = truncated;
    goto done;
oom:
    rc = bs_err_set(err, BS_ENOMEM, "out of memory");
done:
    bs_pl_outputs_release(ctx, &out);
    bs_encoding_batch_free(encs, n);
    free(targets);
    free(positions);
    free(probs);
    if (rc) bs_fill_mask_result_free(res);
    return rc;
}
