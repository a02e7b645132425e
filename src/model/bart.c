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
    /* Buffers of the decoder passes this cache leads (it is the first of a
     * batched step, or alone): */
    bs_scratch s;  /* activations */
    bs_scratch s2; /* a batched step's logits */
    int32_t *ints; /* per cache: q_off, self k_start, self k_len, cross k_start, cross k_len */
    size_t ints_cap;
    bs_dec_part *parts; /* per cache */
    size_t parts_cap;
    int enc_max_len;
};

/* A new encoder state for batch with room for its output and the
 * cross-attention keys/values; st->hidden still to be written. */
static int state_new(const bs_model *m, const bs_batch *batch, bs_encoder_state **out, int *max_len,
                     bs_err *err)
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
    if (!st->off || !st->len) {
        bs_encoder_state_free(st);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    if ((rc = bs_check_batch(m, batch, st->off, st->len, max_len, err)) < 0) {
        bs_encoder_state_free(st);
        return rc;
    }
    st->T = st->off[N];
    size_t TH = (size_t)st->T * H, L = (size_t)m->cfg.dec_layers;
    st->hidden = malloc(TH * sizeof(float) * (1 + 2 * L));
    if (!st->hidden) {
        bs_encoder_state_free(st);
        return bs_err_set(err, BS_ENOMEM, "out of memory for an encoder batch of %d tokens", st->T);
    }
    st->ck = st->hidden + TH;
    st->cv = st->ck + L * TH;
    *out = st;
    return 0;
}

/* Every decoder layer's cross-attention keys/values of st->hidden. */
static void cross_kv(const bs_model *m, bs_encoder_state *st)
{
    int T = st->T, H = m->cfg.hidden;
    size_t TH = (size_t)T * H;
    for (size_t l = 0; l < (size_t)m->cfg.dec_layers; l++) {
        const bs_layer *D = &m->dec_layers[l];
        bs_linear(m->pool, st->hidden, T, H, D->ck.w, D->ck.b, H, st->ck + l * TH, BS_ACT_NONE);
        bs_linear(m->pool, st->hidden, T, H, D->cv.w, D->cv.b, H, st->cv + l * TH, BS_ACT_NONE);
    }
}

int bs_model_encode(const bs_model *m, const bs_batch *batch, bs_encoder_state **out, bs_err *err)
{
    int max_len, rc = state_new(m, batch, out, &max_len, err);
    if (rc < 0) return rc;
    bs_encoder_state *st = *out;
    int T = st->T;
    bs_scratch s = {0};
    float *mem = bs_scratch_reserve(&s, bs_enc_scratch_floats(m, T, max_len));
    if (!mem) {
        bs_encoder_state_free(st);
        *out = NULL;
        return bs_err_set(err, BS_ENOMEM, "out of memory for an encoder batch of %d tokens", T);
    }
    bs_enc_bufs b;
    bs_enc_carve(m, T, max_len, mem, &b);
    b.x = st->hidden;
    b.off = st->off;
    b.len = st->len;
    b.n_seqs = st->n_seqs;
    bs_embed_and_encode(m, batch, &b);
    bs_scratch_free(&s);
    cross_kv(m, st);
    return 0;
}

int bs_model_encoder_state_from_hidden(const bs_model *m, const bs_batch *batch,
                                       const float *hidden, bs_encoder_state **out, bs_err *err)
{
    int max_len;
    if (!hidden) {
        *out = NULL;
        return bs_err_set(err, BS_EINVAL, "bs_model_encoder_state_from_hidden: no hidden states");
    }
    int rc = state_new(m, batch, out, &max_len, err);
    if (rc < 0) return rc;
    memcpy((*out)->hidden, hidden, (size_t)(*out)->T * m->cfg.hidden * sizeof(float));
    cross_kv(m, *out);
    return 0;
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
    bs_scratch_free(&c->s2);
    free(c->ints);
    free(c->parts);
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

/* Self- (cross 0) or cross-attention (cross 1) of every part's rows. */
static void dec_attend(const bs_model *m, const bs_dec_bufs *b, int cross)
{
    int H = m->cfg.hidden, nh = m->cfg.dec_heads, hd = H / nh;
    float att_scale = 1.0f / sqrtf((float)hd);
    for (int i = 0; i < b->n_parts; i++) {
        const bs_dec_part *p = &b->parts[i];
        size_t r0 = (size_t)p->row0 * H;
        bs_attn_args a = {b->q + r0,
                          cross ? p->cross_k : p->self_k,
                          cross ? p->cross_v : p->self_v,
                          H,
                          H,
                          H,
                          b->ctx + r0,
                          H,
                          p->q_off,
                          cross ? p->cross_start : p->self_start,
                          cross ? p->cross_len : p->self_len,
                          p->n_rows,
                          nh,
                          hd,
                          att_scale,
                          !cross};
        bs_attention(m->pool, &a, b->attn_scratch);
    }
}

void bs_bart_dec_layer(const bs_model *m, const bs_layer *L, const bs_dec_bufs *b)
{
    const bs_config *cf = &m->cfg;
    int M = b->M, H = cf->hidden;
    dec_attend(m, b, 0);
    bs_lin_run(m->pool, b->ctx, M, &L->o, b->tmp, BS_ACT_NONE);
    bs_add_layernorm_rows(m->pool, b->x, b->tmp, M, H, L->ln_attn.g, L->ln_attn.b, cf->eps);

    bs_lin_run(m->pool, b->x, M, &L->cq, b->q, BS_ACT_NONE);
    dec_attend(m, b, 1);
    bs_lin_run(m->pool, b->ctx, M, &L->co, b->tmp, BS_ACT_NONE);
    bs_add_layernorm_rows(m->pool, b->x, b->tmp, M, H, L->ln_cross.g, L->ln_cross.b, cf->eps);

    bs_lin_run(m->pool, b->x, M, &L->ff1, b->ff, cf->act);
    bs_lin_run(m->pool, b->ff, M, &L->ff2, b->tmp, BS_ACT_NONE);
    bs_add_layernorm_rows(m->pool, b->x, b->tmp, M, H, L->ln_ffn.g, L->ln_ffn.b, cf->eps);
}

/* Feeds n_new tokens per row of each of n caches through the decoder stack
 * as one pass (the rows of cache i after those of caches 0..i-1), appending
 * each cache its keys and values at its own length; *x_out points at the
 * final hidden states [total rows * n_new][H] in the first cache's scratch
 * (valid until its next use). Every argument is checked before any cache
 * changes. */
static int decode_run(const bs_model *m, bs_kv_cache *const *cs, int n,
                      const int32_t *const *tokens, int32_t n_new, const float **x_out, int *M_out,
                      bs_err *err)
{
    const bs_config *cf = &m->cfg;
    if (!cs || n < 1 || !tokens || n_new < 1)
        return bs_err_set(err, BS_EINVAL, "bs_model_decode: bad arguments");
    int R = 0, H = cf->hidden, V = cf->vocab, max_k = 0;
    for (int i = 0; i < n; i++) {
        const bs_kv_cache *c = cs[i];
        if (!c || c->m != m || !tokens[i])
            return bs_err_set(err, BS_EINVAL, "bs_model_decode: bad arguments");
        for (int j = 0; j < i; j++)
            if (cs[j] == c)
                return bs_err_set(err, BS_EINVAL, "bs_model_decode: cache %d given twice", i);
        if (c->len + n_new > c->max_len)
            return bs_err_set(err, BS_ERANGE,
                              "bs_model_decode: %d + %d tokens exceed the cache's max_len %d",
                              c->len, (int)n_new, c->max_len);
        for (int t = 0; t < c->rows * n_new; t++)
            if (tokens[i][t] < 0 || tokens[i][t] >= V)
                return bs_err_set(
                    err, BS_ERANGE,
                    "bs_model_decode: token id %d (row %d) is outside the vocabulary [0, %d)",
                    (int)tokens[i][t], t / n_new, V);
        R += c->rows;
        if (c->max_len > max_k) max_k = c->max_len;
        if (c->enc_max_len > max_k) max_k = c->enc_max_len;
    }
    bs_kv_cache *c0 = cs[0];
    int M = R * n_new;
    size_t need_ints = 5 * (size_t)R + (size_t)n;
    if (c0->ints_cap < need_ints) {
        int32_t *ni = realloc(c0->ints, need_ints * sizeof *ni);
        if (!ni) return bs_err_set(err, BS_ENOMEM, "out of memory");
        c0->ints = ni;
        c0->ints_cap = need_ints;
    }
    if (c0->parts_cap < (size_t)n) {
        bs_dec_part *np = realloc(c0->parts, (size_t)n * sizeof *np);
        if (!np) return bs_err_set(err, BS_ENOMEM, "out of memory");
        c0->parts = np;
        c0->parts_cap = (size_t)n;
    }
    size_t MH = (size_t)M * H, I = (size_t)cf->dec_inter;
    size_t att = (size_t)bs_pool_size(m->pool) * (size_t)n_new * max_k;
    float *x = bs_scratch_reserve(&c0->s, 6 * MH + (size_t)M * I + att + 64);
    if (!x) return bs_err_set(err, BS_ENOMEM, "out of memory");
    float *q = x + MH, *kn = q + MH, *vn = kn + MH;
    bs_dec_part *parts = c0->parts;
    int32_t *ints = c0->ints;
    for (int i = 0, row0 = 0; i < n; i++) {
        const bs_kv_cache *c = cs[i];
        int Ri = c->rows;
        int32_t *q_off = ints, *sk_start = q_off + Ri + 1, *sk_len = sk_start + Ri,
                *ck_start = sk_len + Ri, *ck_len = ck_start + Ri;
        ints = ck_len + Ri;
        for (int r = 0; r <= Ri; r++) q_off[r] = r * n_new;
        for (int r = 0; r < Ri; r++) {
            sk_start[r] = r * c->max_len;
            sk_len[r] = c->len + n_new;
            ck_start[r] = c->enc->off[c->row_seq[r]];
            ck_len[r] = c->enc->len[c->row_seq[r]];
        }
        parts[i] = (bs_dec_part){.row0 = row0,
                                 .n_rows = Ri,
                                 .q_off = q_off,
                                 .self_start = sk_start,
                                 .self_len = sk_len,
                                 .cross_start = ck_start,
                                 .cross_len = ck_len};
        for (int r = 0; r < Ri; r++)
            for (int j = 0; j < n_new; j++)
                bs_bart_dec_embed(m, tokens[i][r * n_new + j], c->len + j,
                                  x + (size_t)(row0 + r * n_new + j) * H);
        row0 += Ri * n_new;
    }
    bs_dec_bufs b = {.x = x,
                     .q = q,
                     .ctx = vn + MH,
                     .tmp = vn + 2 * MH,
                     .ff = vn + 3 * MH,
                     .attn_scratch = vn + 3 * MH + (size_t)M * I,
                     .M = M,
                     .parts = parts,
                     .n_parts = n};
    for (int l = 0; l < cf->dec_layers; l++) {
        const bs_layer *L = &m->dec_layers[l];
        bs_dense qkv[3] = {{.w = L->q.w, .b = L->q.b, .N = H, .y = q, .packed = L->q.packed},
                           {.w = L->k.w, .b = L->k.b, .N = H, .y = kn, .packed = L->k.packed},
                           {.w = L->v.w, .b = L->v.b, .N = H, .y = vn, .packed = L->v.packed}};
        bs_linear_multi(m->pool, x, M, H, qkv, 3);
        for (int i = 0; i < n; i++) {
            const bs_kv_cache *c = cs[i];
            size_t row_stride = (size_t)c->max_len * H, per = (size_t)c->cap_rows * row_stride;
            size_t TH = (size_t)c->enc->T * H, r0 = (size_t)parts[i].row0;
            float *K = c->k + (size_t)l * per, *Vc = c->v + (size_t)l * per;
            for (int r = 0; r < c->rows; r++) {
                size_t src = (r0 + (size_t)r * n_new) * H,
                       dst = r * row_stride + (size_t)c->len * H;
                memcpy(K + dst, kn + src, (size_t)n_new * H * sizeof(float));
                memcpy(Vc + dst, vn + src, (size_t)n_new * H * sizeof(float));
            }
            parts[i].self_k = K;
            parts[i].self_v = Vc;
            parts[i].cross_k = c->enc->ck + (size_t)l * TH;
            parts[i].cross_v = c->enc->cv + (size_t)l * TH;
        }
        bs_bart_dec_layer(m, L, &b);
    }
    for (int i = 0; i < n; i++) cs[i]->len += n_new;
    *x_out = x;
    *M_out = M;
    return 0;
}

int bs_model_decode(const bs_model *m, bs_kv_cache *c, const int32_t *tokens, int32_t n_new,
                    float *logits, bs_err *err)
{
    if (!logits) return bs_err_set(err, BS_EINVAL, "bs_model_decode: bad arguments");
    return bs_model_decode_batch(m, &c, 1, &tokens, n_new, &logits, err);
}

int bs_model_decode_batch(const bs_model *m, bs_kv_cache *const *caches, int32_t n_caches,
                          const int32_t *const *tokens, int32_t n_new, float *const *logits,
                          bs_err *err)
{
    if (!logits || !caches || n_caches < 1)
        return bs_err_set(err, BS_EINVAL, "bs_model_decode: bad arguments");
    for (int i = 0; i < n_caches; i++)
        if (!logits[i]) return bs_err_set(err, BS_EINVAL, "bs_model_decode: bad arguments");
    if (!m->mlm_decoder)
        return bs_err_set(err, BS_EUNSUPPORTED, "%s has no language-model head to decode with",
                          m->cfg.architecture);
    const float *x;
    int M, V = m->cfg.vocab, rc = decode_run(m, caches, n_caches, tokens, n_new, &x, &M, err);
    if (rc < 0) return rc;
    if (n_caches == 1) {
        bs_linear(m->pool, x, M, m->cfg.hidden, m->mlm_decoder, m->final_logits_bias, V, logits[0],
                  BS_ACT_NONE);
        return 0;
    }
    /* One pass over every row (the weights are read once), then each cache
     * its own rows. */
    float *all = bs_scratch_reserve(&caches[0]->s2, (size_t)M * V);
    if (!all) return bs_err_set(err, BS_ENOMEM, "out of memory for %d rows of logits", M);
    bs_linear(m->pool, x, M, m->cfg.hidden, m->mlm_decoder, m->final_logits_bias, V, all,
              BS_ACT_NONE);
    for (int i = 0, row0 = 0; i < n_caches; i++) {
        int rows = caches[i]->rows * n_new;
        memcpy(logits[i], all + (size_t)row0 * V, (size_t)rows * V * sizeof(float));
        row0 += rows;
    }
    return 0;
}

int bs_model_decode_hidden(const bs_model *m, bs_kv_cache *c, const int32_t *tokens, int32_t n_new,
                           float *hidden_out, bs_err *err)
{
    if (!hidden_out) return bs_err_set(err, BS_EINVAL, "bs_model_decode_hidden: bad arguments");
    const float *x;
    int M, rc = decode_run(m, &c, 1, &tokens, n_new, &x, &M, err);
    if (rc < 0) return rc;
    memcpy(hidden_out, x, (size_t)M * m->cfg.hidden * sizeof(float));
    return 0;
}

int bs_model_decode_step(const bs_model *m, bs_kv_cache *c, const int32_t *next_tokens,
                         float *logits_out, bs_err *err)
{
    return bs_model_decode(m, c, next_tokens, 1, logits_out, err);
}
