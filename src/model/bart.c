/* BART encoder-decoder: the encoder state (output + every decoder layer's
 * cross-attention keys/values, computed once per input) and the decoder with
 * a per-row KV cache, so that each generated token costs one position. */
#include "model/model_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct bs_encoder_state {
    const bs_model *m;
    int n_seqs, T;
    int32_t *off, *len;
    float *hidden;  /* [T][H] */
    float *ck, *cv; /* [dec_layers][T][H] */
};

struct bs_kv_cache {
    const bs_model *m;
    const bs_encoder_state *enc;
    int rows, cap_rows, max_len, len;
    int32_t *row_seq; /* [cap_rows], then cap_rows more for reorder */
    float *k, *v;     /* [dec_layers][cap_rows][max_len][H] */
    float *spare;     /* [cap_rows][max_len][H], for reorder */
    bs_scratch s;
    int32_t *ints; /* q_off, self k_start, self k_len, cross k_start, cross k_len */
    size_t ints_cap;
    int enc_max_len;
};

int bs_model_encode(const bs_model *m, const bs_batch *batch, bs_encoder_state **out, bs_err *err)
{
    *out = NULL;
    if (m->cfg.fam != BS_FAM_BART)
        return bs_err_set(err, BS_EUNSUPPORTED, "%s is not an encoder-decoder model",
                          m->cfg.architecture);
    if (!batch || !batch->seqs || batch->n_seqs < 1)
        return bs_err_set(err, BS_EINVAL, "bs_model_encode: empty batch");
    int N = batch->n_seqs, H = m->cfg.hidden, rc;
    bs_encoder_state *st = calloc(1, sizeof *st);
    if (!st) return bs_err_set(err, BS_ENOMEM, "out of memory");
    st->m = m;
    st->n_seqs = N;
    st->off = malloc(((size_t)N + 1) * sizeof *st->off);
    st->len = malloc((size_t)N * sizeof *st->len);
    bs_scratch s = {0};
    if (!st->off || !st->len) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto fail;
    }
    int max_len;
    if ((rc = bs_check_batch(m, batch, st->off, st->len, &max_len, err)) < 0) goto fail;
    int T = st->T = st->off[N];
    size_t TH = (size_t)T * H, L = (size_t)m->cfg.dec_layers;
    st->hidden = malloc(TH * sizeof(float) * (1 + 2 * L));
    float *mem = bs_scratch_reserve(&s, bs_enc_scratch_floats(m, T, max_len));
    if (!st->hidden || !mem) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory for an encoder batch of %d tokens", T);
        goto fail;
    }
    st->ck = st->hidden + TH;
    st->cv = st->ck + L * TH;
    bs_enc_bufs b;
    bs_enc_carve(m, T, max_len, mem, &b);
    b.x = st->hidden;
    b.off = st->off;
    b.len = st->len;
    b.n_seqs = N;
    bs_embed_and_encode(m, batch, &b);
    for (size_t l = 0; l < L; l++) {
        const bs_layer *D = &m->dec_layers[l];
        bs_linear(m->pool, st->hidden, T, H, D->ck.w, D->ck.b, H, st->ck + l * TH, BS_ACT_NONE);
        bs_linear(m->pool, st->hidden, T, H, D->cv.w, D->cv.b, H, st->cv + l * TH, BS_ACT_NONE);
    }
    bs_scratch_free(&s);
    *out = st;
    return 0;
fail:
    bs_scratch_free(&s);
    bs_encoder_state_free(st);
    return rc;
}

int32_t bs_encoder_state_n_seqs(const bs_encoder_state *st)
{
    return st->n_seqs;
}

const float *bs_encoder_state_hidden(const bs_encoder_state *st, int32_t *total_tokens)
{
    if (total_tokens) *total_tokens = st->T;
    return st->hidden;
}

void bs_encoder_state_free(bs_encoder_state *st)
{
    if (!st) return;
    free(st->off);
    free(st->len);
    free(st->hidden);
    free(st);
}

int bs_kv_cache_new(const bs_model *m, const bs_encoder_state *enc, const int32_t *row_seq,
                    int32_t n_rows, int32_t max_len, bs_kv_cache **out, bs_err *err)
{
    *out = NULL;
    if (!enc || enc->m != m)
        return bs_err_set(err, BS_EINVAL, "bs_kv_cache_new: encoder state of another model");
    if (n_rows < 1 || !row_seq)
        return bs_err_set(err, BS_EINVAL, "bs_kv_cache_new: need at least one row");
    if (max_len < 1 || max_len > m->cfg.max_pos)
        return bs_err_set(err, BS_ERANGE,
                          "bs_kv_cache_new: max_len %d is outside 1..%d (max_position_embeddings)",
                          (int)max_len, m->cfg.max_pos);
    for (int r = 0; r < n_rows; r++)
        if (row_seq[r] < 0 || row_seq[r] >= enc->n_seqs)
            return bs_err_set(err, BS_EINVAL,
                              "bs_kv_cache_new: row %d refers to encoder sequence %d of %d", r,
                              (int)row_seq[r], enc->n_seqs);
    bs_kv_cache *c = calloc(1, sizeof *c);
    if (!c) return bs_err_set(err, BS_ENOMEM, "out of memory");
    c->m = m;
    c->enc = enc;
    c->rows = c->cap_rows = n_rows;
    c->max_len = max_len;
    size_t per = (size_t)n_rows * max_len * m->cfg.hidden;
    c->row_seq = malloc(2 * (size_t)n_rows * sizeof *c->row_seq);
    c->k = malloc(per * (size_t)m->cfg.dec_layers * 2 * sizeof(float) + per * sizeof(float));
    if (!c->row_seq || !c->k) {
        bs_kv_cache_free(c);
        return bs_err_set(err, BS_ENOMEM, "out of memory for a KV cache of %d rows x %d tokens",
                          (int)n_rows, (int)max_len);
    }
    c->v = c->k + per * (size_t)m->cfg.dec_layers;
    c->spare = c->v + per * (size_t)m->cfg.dec_layers;
    memcpy(c->row_seq, row_seq, (size_t)n_rows * sizeof *row_seq);
    for (int s = 0; s < enc->n_seqs; s++)
        if (enc->len[s] > c->enc_max_len) c->enc_max_len = enc->len[s];
    *out = c;
    return 0;
}

int32_t bs_kv_cache_len(const bs_kv_cache *c)
{
    return c->len;
}
int32_t bs_kv_cache_rows(const bs_kv_cache *c)
{
    return c->rows;
}

void bs_kv_cache_free(bs_kv_cache *c)
{
    if (!c) return;
    free(c->row_seq);
    free(c->k);
    bs_scratch_free(&c->s);
    free(c->ints);
    free(c);
}

int bs_kv_cache_reorder(bs_kv_cache *c, const int32_t *src, int32_t n_rows, bs_err *err)
{
    if (n_rows < 1 || n_rows > c->cap_rows || !src)
        return bs_err_set(err, BS_EINVAL, "bs_kv_cache_reorder: %d rows requested, capacity %d",
                          (int)n_rows, c->cap_rows);
    for (int r = 0; r < n_rows; r++)
        if (src[r] < 0 || src[r] >= c->rows)
            return bs_err_set(err, BS_EINVAL, "bs_kv_cache_reorder: source row %d is outside 0..%d",
                              (int)src[r], c->rows - 1);
    size_t H = (size_t)c->m->cfg.hidden, row = (size_t)c->max_len * H, used = (size_t)c->len * H;
    size_t per = (size_t)c->cap_rows * row;
    /* Gather through the spare buffer: a source row may feed several new rows. */
    for (int l = 0; l < c->m->cfg.dec_layers * 2; l++) {
        float *base = (l & 1 ? c->v : c->k) + (size_t)(l / 2) * per;
        for (int r = 0; r < n_rows; r++)
            memcpy(c->spare + r * row, base + (size_t)src[r] * row, used * sizeof(float));
        for (int r = 0; r < n_rows; r++)
            memcpy(base + r * row, c->spare + r * row, used * sizeof(float));
    }
    int32_t *seq = c->row_seq + c->cap_rows;
    for (int r = 0; r < n_rows; r++) seq[r] = c->row_seq[src[r]];
    memcpy(c->row_seq, seq, (size_t)n_rows * sizeof *seq);
    c->rows = n_rows;
    return 0;
}

void bs_bart_dec_embed(const bs_model *m, int32_t token, int pos, float *row)
{
    const bs_config *cf = &m->cfg;
    int H = cf->hidden;
    float scale = cf->scale_embedding ? sqrtf((float)H) : 1.0f;
    const float *w = m->word + (size_t)token * H, *p = m->dec_pos + (size_t)(pos + 2) * H;
    for (int h = 0; h < H; h++) row[h] = w[h] * scale + p[h];
    bs_kernels_best()->add_layernorm(row, NULL, m->dec_ln_emb.g, m->dec_ln_emb.b, H, cf->eps);
}

void bs_bart_dec_layer(const bs_model *m, const bs_layer *L, const bs_dec_bufs *b)
{
    const bs_config *cf = &m->cfg;
    int M = b->M, H = cf->hidden, nh = cf->dec_heads, hd = H / nh;
    float att_scale = 1.0f / sqrtf((float)hd);
    bs_attn_args sa = {b->q,     b->self_k,     b->self_v,   H,         H,  H,  b->ctx,    H,
                       b->q_off, b->self_start, b->self_len, b->n_rows, nh, hd, att_scale, 1};
    bs_attention(m->pool, &sa, b->attn_scratch);
    bs_lin_run(m->pool, b->ctx, M, &L->o, b->tmp, BS_ACT_NONE);
    bs_add_layernorm_rows(m->pool, b->x, b->tmp, M, H, L->ln_attn.g, L->ln_attn.b, cf->eps);

    bs_lin_run(m->pool, b->x, M, &L->cq, b->q, BS_ACT_NONE);
    bs_attn_args ca = {b->q,     b->cross_k,     b->cross_v,   H,         H,  H,  b->ctx,    H,
                       b->q_off, b->cross_start, b->cross_len, b->n_rows, nh, hd, att_scale, 0};
    bs_attention(m->pool, &ca, b->attn_scratch);
    bs_lin_run(m->pool, b->ctx, M, &L->co, b->tmp, BS_ACT_NONE);
    bs_add_layernorm_rows(m->pool, b->x, b->tmp, M, H, L->ln_cross.g, L->ln_cross.b, cf->eps);

    bs_lin_run(m->pool, b->x, M, &L->ff1, b->ff, cf->act);
    bs_lin_run(m->pool, b->ff, M, &L->ff2, b->tmp, BS_ACT_NONE);
    bs_add_layernorm_rows(m->pool, b->x, b->tmp, M, H, L->ln_ffn.g, L->ln_ffn.b, cf->eps);
}

/* Feeds n_new tokens per row through the decoder stack, appending their keys
 * and values to the cache; *x_out points at the final hidden states
 * [rows * n_new][H] in the cache's scratch (valid until its next use). */
static int decode_run(const bs_model *m, bs_kv_cache *c, const int32_t *tokens, int32_t n_new,
                      const float **x_out, bs_err *err)
{
    const bs_config *cf = &m->cfg;
    if (!c || c->m != m || !tokens || n_new < 1)
        return bs_err_set(err, BS_EINVAL, "bs_model_decode: bad arguments");
    if (c->len + n_new > c->max_len)
        return bs_err_set(err, BS_ERANGE,
                          "bs_model_decode: %d + %d tokens exceed the cache's max_len %d", c->len,
                          (int)n_new, c->max_len);
    int R = c->rows, M = R * n_new, H = cf->hidden, V = cf->vocab;
    for (int i = 0; i < M; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return bs_err_set(
                err, BS_ERANGE,
                "bs_model_decode: token id %d (row %d) is outside the vocabulary [0, %d)",
                (int)tokens[i], i / n_new, V);
    size_t need_ints = 5 * (size_t)R + 1;
    if (c->ints_cap < need_ints) {
        int32_t *ni = realloc(c->ints, need_ints * sizeof *ni);
        if (!ni) return bs_err_set(err, BS_ENOMEM, "out of memory");
        c->ints = ni;
        c->ints_cap = need_ints;
    }
    int32_t *q_off = c->ints, *sk_start = q_off + R + 1, *sk_len = sk_start + R,
            *ck_start = sk_len + R, *ck_len = ck_start + R;
    for (int r = 0; r <= R; r++) q_off[r] = r * n_new;
    for (int r = 0; r < R; r++) {
        sk_start[r] = r * c->max_len;
        sk_len[r] = c->len + n_new;
        ck_start[r] = c->enc->off[c->row_seq[r]];
        ck_len[r] = c->enc->len[c->row_seq[r]];
    }
    size_t MH = (size_t)M * H, I = (size_t)cf->dec_inter;
    int max_k = c->max_len > c->enc_max_len ? c->max_len : c->enc_max_len;
    size_t att = (size_t)bs_pool_size(m->pool) * (size_t)n_new * max_k;
    float *x = bs_scratch_reserve(&c->s, 6 * MH + (size_t)M * I + att + 64);
    if (!x) return bs_err_set(err, BS_ENOMEM, "out of memory");
    float *q = x + MH, *kn = q + MH, *vn = kn + MH;
    bs_dec_bufs b = {.x = x,
                     .q = q,
                     .ctx = vn + MH,
                     .tmp = vn + 2 * MH,
                     .ff = vn + 3 * MH,
                     .attn_scratch = vn + 3 * MH + (size_t)M * I,
                     .M = M,
                     .n_rows = R,
                     .q_off = q_off,
                     .self_start = sk_start,
                     .self_len = sk_len,
                     .cross_start = ck_start,
                     .cross_len = ck_len};

    for (int r = 0; r < R; r++)
        for (int j = 0; j < n_new; j++)
            bs_bart_dec_embed(m, tokens[r * n_new + j], c->len + j,
                              x + (size_t)(r * n_new + j) * H);
    size_t row_stride = (size_t)c->max_len * H, per = (size_t)c->cap_rows * row_stride;
    size_t TH = (size_t)c->enc->T * H;
    for (int l = 0; l < cf->dec_layers; l++) {
        const bs_layer *L = &m->dec_layers[l];
        float *K = c->k + (size_t)l * per, *Vc = c->v + (size_t)l * per;
        bs_dense qkv[3] = {{.w = L->q.w, .b = L->q.b, .N = H, .y = q, .packed = L->q.packed},
                           {.w = L->k.w, .b = L->k.b, .N = H, .y = kn, .packed = L->k.packed},
                           {.w = L->v.w, .b = L->v.b, .N = H, .y = vn, .packed = L->v.packed}};
        bs_linear_multi(m->pool, x, M, H, qkv, 3);
        for (int r = 0; r < R; r++) {
            memcpy(K + r * row_stride + (size_t)c->len * H, kn + (size_t)r * n_new * H,
                   (size_t)n_new * H * sizeof(float));
            memcpy(Vc + r * row_stride + (size_t)c->len * H, vn + (size_t)r * n_new * H,
                   (size_t)n_new * H * sizeof(float));
        }
        b.self_k = K;
        b.self_v = Vc;
        b.cross_k = c->enc->ck + (size_t)l * TH;
        b.cross_v = c->enc->cv + (size_t)l * TH;
        bs_bart_dec_layer(m, L, &b);
    }
    c->len += n_new;
    *x_out = x;
    return 0;
}

int bs_model_decode(const bs_model *m, bs_kv_cache *c, const int32_t *tokens, int32_t n_new,
                    float *logits, bs_err *err)
{
    if (!logits) return bs_err_set(err, BS_EINVAL, "bs_model_decode: bad arguments");
    if (!m->mlm_decoder)
        return bs_err_set(err, BS_EUNSUPPORTED, "%s has no language-model head to decode with",
                          m->cfg.architecture);
    const float *x;
    int rc = decode_run(m, c, tokens, n_new, &x, err);
    if (rc < 0) return rc;
    bs_linear(m->pool, x, c->rows * n_new, m->cfg.hidden, m->mlm_decoder, m->final_logits_bias,
              m->cfg.vocab, logits, BS_ACT_NONE);
    return 0;
}

int bs_model_decode_hidden(const bs_model *m, bs_kv_cache *c, const int32_t *tokens, int32_t n_new,
                           float *hidden_out, bs_err *err)
{
    if (!hidden_out) return bs_err_set(err, BS_EINVAL, "bs_model_decode_hidden: bad arguments");
    const float *x;
    int rc = decode_run(m, c, tokens, n_new, &x, err);
    if (rc < 0) return rc;
    memcpy(hidden_out, x, (size_t)c->rows * n_new * m->cfg.hidden * sizeof(float));
    return 0;
}

int bs_model_decode_step(const bs_model *m, bs_kv_cache *c, const int32_t *next_tokens,
                         float *logits_out, bs_err *err)
{
    return bs_model_decode(m, c, next_tokens, 1, logits_out, err);
}
