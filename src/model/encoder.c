/* The transformer encoder stack shared by every family: post-LN layers of
 * self-attention and feed-forward over a packed batch, with attention per
 * sequence so that no token ever attends across sequences or to padding. */
#include "model/model_impl.h"

#include <math.h>

void bs_lin_run(bs_pool *pool, const float *x, int M, const bs_lin *l, float *y, bs_act act)
{
    bs_dense d = {.w = l->w, .b = l->b, .N = l->out, .y = y, .act = act, .packed = l->packed};
    bs_linear_multi(pool, x, M, l->in, &d, 1);
}

void bs_run_layer(const bs_model *m, const bs_layer *L, int n_heads, int inter,
                  const bs_enc_bufs *b)
{
    bs_pool *pool = m->pool;
    int H = m->cfg.hidden, T = b->T, hd = H / n_heads;
    bs_dense qkv[3] = {{.w = L->q.w, .b = L->q.b, .N = H, .y = b->q, .packed = L->q.packed},
                       {.w = L->k.w, .b = L->k.b, .N = H, .y = b->k, .packed = L->k.packed},
                       {.w = L->v.w, .b = L->v.b, .N = H, .y = b->v, .packed = L->v.packed}};
    bs_linear_multi(pool, b->x, T, H, qkv, 3);
    bs_attn_args a = {b->q,   b->k,      b->v,    H,      H,
                      H,      b->ctx,    H,       b->off, b->off,
                      b->len, b->n_seqs, n_heads, hd,     1.0f / sqrtf((float)hd),
                      0};
    bs_attention(pool, &a, b->attn_scratch);
    /* each output projection with its residual + LayerNorm in one job */
    bs_dense o = {.w = L->o.w,
                  .b = L->o.b,
                  .N = H,
                  .y = b->tmp,
                  .packed = L->o.packed,
                  .ln_x = b->x,
                  .ln_g = L->ln_attn.g,
                  .ln_b = L->ln_attn.b,
                  .ln_eps = m->cfg.eps};
    bs_linear_multi(pool, b->ctx, T, H, &o, 1);
    bs_lin_run(pool, b->x, T, &L->ff1, b->ff, m->cfg.act);
    bs_dense f2 = {.w = L->ff2.w,
                   .b = L->ff2.b,
                   .N = H,
                   .y = b->tmp,
                   .packed = L->ff2.packed,
                   .ln_x = b->x,
                   .ln_g = L->ln_ffn.g,
                   .ln_b = L->ln_ffn.b,
                   .ln_eps = m->cfg.eps};
    bs_linear_multi(pool, b->ff, T, L->ff2.in, &f2, 1);
}

void bs_run_encoder(const bs_model *m, const bs_enc_bufs *b)
{
    const bs_config *c = &m->cfg;
    if (c->fam == BS_FAM_ALBERT) {
        /* Layer l runs every inner layer of group l / (layers per group). */
        int per_group = c->n_layers / c->n_groups;
        for (int l = 0; l < c->n_layers; l++) {
            int g = l / per_group;
            for (int j = 0; j < c->inner_group_num; j++)
                bs_run_layer(m, &m->layers[g * c->inner_group_num + j], c->n_heads, c->inter, b);
        }
        return;
    }
    for (int l = 0; l < c->n_layers; l++) bs_run_layer(m, &m->layers[l], c->n_heads, c->inter, b);
}

size_t bs_enc_scratch_floats(const bs_model *m, int T, int max_len)
{
    size_t H = (size_t)m->cfg.hidden, t = (size_t)T;
    size_t inter = (size_t)m->cfg.inter;
    if ((size_t)m->cfg.dec_inter > inter) inter = (size_t)m->cfg.dec_inter;
    size_t ff = t * inter;
    if (t * (size_t)m->emb_dim > ff) ff = t * (size_t)m->emb_dim; /* embeddings before projection */
    return 5 * t * H + ff +
           (size_t)bs_pool_size(m->pool) * bs_attention_scratch_floats(max_len, max_len) + 64;
}

void bs_enc_carve(const bs_model *m, int T, int max_len, float *mem, bs_enc_bufs *b)
{
    size_t H = (size_t)m->cfg.hidden, t = (size_t)T;
    size_t inter = (size_t)m->cfg.inter;
    if ((size_t)m->cfg.dec_inter > inter) inter = (size_t)m->cfg.dec_inter;
    size_t ff = t * inter;
    if (t * (size_t)m->emb_dim > ff) ff = t * (size_t)m->emb_dim;
    b->q = mem;
    b->k = b->q + t * H;
    b->v = b->k + t * H;
    b->ctx = b->v + t * H;
    b->tmp = b->ctx + t * H;
    b->ff = b->tmp + t * H;
    b->attn_scratch = b->ff + ff;
    b->T = T;
}
