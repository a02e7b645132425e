/* Sentence embeddings (sentence-transformers' Transformer -> Pooling ->
 * Normalize) and feature extraction (the encoder's last hidden state per
 * token). Both run the encoder once over the unpadded texts. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/ctx.h"
#include "pipeline/internal.h"

void bs_embeddings_req_init(bs_embeddings_req *req)
{
    memset(req, 0, sizeof *req);
    req->pooling = BS_POOL_DEFAULT;
    req->normalize = -1;
}

/* Encodes the texts (stripped when `strip`, as sentence-transformers does)
 * truncated to max_len and runs the encoder for its last hidden state;
 * max_values > 0 refuses batches whose hidden states would be larger. */
static int encode_all(const bs_pipeline_ctx *ctx, const bs_texts *in, int strip, size_t max_len,
                      size_t max_values, bs_encoding ***encs_out, bs_model_outputs *out,
                      int *truncated, bs_err *err)
{
    bs_encoding **encs = calloc(in->n, sizeof *encs);
    if (!encs) return bs_err_set(err, BS_ENOMEM, "out of memory");
    *encs_out = encs;
    int rc = 0;
    for (size_t i = 0; i < in->n && !rc; i++) {
        const char *t = in->texts[i];
        size_t b = 0, e = strlen(t);
        if (strip) bs_pl_strip(t, e, &b, &e);
        rc = bs_pl_encode(ctx, t + b, e - b, NULL, max_len, &encs[i], truncated, err);
    }
    size_t tokens = 0, H = (size_t)bs_model_hidden_size(ctx->model);
    for (size_t i = 0; !rc && i < in->n; i++) tokens += encs[i]->len;
    if (!rc && max_values && tokens * H > max_values)
        rc = bs_err_set(err, BS_EINVAL,
                        "features: %zu tokens x %zu values = %zu numbers; the limit is %zu per "
                        "request (send fewer "
                        "or shorter texts)",
                        tokens, H, tokens * H, max_values);
    if (!rc) rc = bs_pl_forward(ctx, encs, in->n, BS_OUT_HIDDEN, out, err);
    return rc;
}

void bs_embeddings_result_free(bs_embeddings_result *res)
{
    free(res->vectors);
    memset(res, 0, sizeof *res);
}

int bs_pipeline_embed(const bs_pipeline_ctx *ctx, const bs_embeddings_req *req,
                      bs_embeddings_result *res, bs_err *err)
{
    memset(res, 0, sizeof *res);
    int rc = bs_pl_check_texts(&req->input, "text", err);
    if (rc) return rc;
    unsigned modes = 0;
    switch (req->pooling) {
    case BS_POOL_MEAN:
        modes = BS_POOLBIT_MEAN;
        break;
    case BS_POOL_CLS:
        modes = BS_POOLBIT_CLS;
        break;
    case BS_POOL_MAX:
        modes = BS_POOLBIT_MAX;
        break;
    case BS_POOL_MEAN_SQRT_LEN:
        modes = BS_POOLBIT_MEAN_SQRT;
        break;
    case BS_POOL_DEFAULT:
        modes = ctx->st_pooling ? ctx->st_pooling : BS_POOLBIT_MEAN;
        break;
    }
    int normalize = req->normalize >= 0 ? req->normalize : ctx->st_normalize;
    size_t max_len = bs_pl_max_len(ctx);
    if (ctx->st_max_seq_len && ctx->st_max_seq_len < max_len) max_len = ctx->st_max_seq_len;
    bs_encoding **encs = NULL;
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    if ((rc = encode_all(ctx, &req->input, 1, max_len, 0, &encs, &out, &res->truncated, err)))
        goto done;
    size_t H = (size_t)out.hidden_size, dim = 0;
    /* sentence-transformers concatenates the modes in this order */
    static const struct {
        unsigned bit;
        bs_pooling mode;
    } order[] = {
        {BS_POOLBIT_CLS, BS_POOL_CLS},
        {BS_POOLBIT_MAX, BS_POOL_MAX},
        {BS_POOLBIT_MEAN, BS_POOL_MEAN},
        {BS_POOLBIT_MEAN_SQRT, BS_POOL_MEAN_SQRT_LEN},
    };
    for (size_t m = 0; m < 4; m++) dim += modes & order[m].bit ? H : 0;
    size_t values = req->input.n * dim;
    res->vectors = malloc((values ? values : 1) * sizeof *res->vectors);
    if (!res->vectors) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    res->n = req->input.n;
    res->dim = dim;
    double *vec = malloc((dim ? dim : 1) * sizeof *vec);
    if (!vec) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    size_t row0 = 0;
    for (size_t i = 0; i < req->input.n; i++) {
        const float *h = out.last_hidden_state + row0 * H;
        size_t d = 0;
        for (size_t m = 0; m < 4; m++) {
            if (!(modes & order[m].bit)) continue;
            bs_pool(h, encs[i]->len, H, order[m].mode, vec + d);
            d += H;
        }
        /* pooled and normalised in double, handed over as the model's f32 */
        if (normalize) bs_normalize(vec, dim);
        for (size_t k = 0; k < dim; k++) res->vectors[i * dim + k] = (float)vec[k];
        row0 += encs[i]->len;
    }
    free(vec);
    res->tokens = row0;
done:
    bs_pl_outputs_release(ctx, &out);
    bs_encoding_batch_free(encs, req->input.n);
    if (rc) bs_embeddings_result_free(res);
    return rc;
}

void bs_features_result_free(bs_features_result *res)
{
    free(res->tokens);
    free(res->offsets);
    free(res->values);
    memset(res, 0, sizeof *res);
}

int bs_pipeline_features(const bs_pipeline_ctx *ctx, const bs_features_req *req,
                         bs_features_result *res, bs_err *err)
{
    memset(res, 0, sizeof *res);
    int rc = bs_pl_check_texts(&req->input, "text", err);
    if (rc) return rc;
    size_t n = req->input.n;
    bs_encoding **encs = NULL;
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    if ((rc = encode_all(ctx, &req->input, 0, bs_pl_max_len(ctx), BS_PIPELINE_MAX_FEATURE_VALUES,
                         &encs, &out, &res->truncated, err)))
        goto done;
    size_t H = (size_t)out.hidden_size, rows = 0;
    for (size_t i = 0; i < n; i++) rows += encs[i]->len;
    res->tokens = calloc(n, sizeof *res->tokens);
    res->offsets = calloc(n, sizeof *res->offsets);
    size_t nv = rows * H;
    res->values = malloc((nv ? nv : 1) * sizeof *res->values);
    if (!res->tokens || !res->offsets || !res->values) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    res->n = n;
    res->dim = H;
    for (size_t i = 0, row = 0; i < n; row += encs[i]->len, i++) {
        res->tokens[i] = encs[i]->len;
        res->offsets[i] = row;
    }
    if (nv) memcpy(res->values, out.last_hidden_state, nv * sizeof *res->values);
done:
    bs_pl_outputs_release(ctx, &out);
    bs_encoding_batch_free(encs, n);
    if (rc) bs_features_result_free(res);
    return rc;
}
