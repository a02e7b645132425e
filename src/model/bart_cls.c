/* BartForSequenceClassification: the whole encoder-decoder runs on each
 * input (the decoder reads the input shifted right), and the decoder's hidden
 * state at the input's last eos token goes through dense -> tanh -> out_proj. */
#include "model/model_impl.h"

#include <string.h>

/* Position of the last eos_token_id in the sequence, or -1. */
static int last_eos(const bs_model *m, const bs_seq *q)
{
    for (int i = q->len - 1; i >= 0; i--)
        if (q->input_ids[i] == m->cfg.eos_id) return i;
    return -1;
}

int bs_bart_cls_check(const bs_model *m, const bs_batch *batch, bs_err *err)
{
    for (int s = 0; s < batch->n_seqs; s++)
        if (batch->seqs[s].input_ids && batch->seqs[s].len > 0 && last_eos(m, &batch->seqs[s]) < 0)
            return bs_err_set(err, BS_EINVAL,
                              "batch sequence %d has no eos token (id %d): %s classifies the "
                              "decoder state at the last eos, so inputs must keep it (encode with "
                              "special tokens)",
                              s, m->cfg.eos_id, m->cfg.architecture);
    return 0;
}

size_t bs_bart_cls_extra_floats(const bs_model *m, int T)
{
    return 3 * (size_t)T * (size_t)m->cfg.hidden + 64;
}

void bs_bart_cls_logits(const bs_model *m, const bs_batch *batch, const bs_enc_bufs *b, float *dec,
                        float *g1, float *g2, float *logits)
{
    const bs_config *cf = &m->cfg;
    int T = b->T, H = cf->hidden, N = b->n_seqs;
    size_t TH = (size_t)T * H;
    float *x = dec, *ck = dec + TH, *cv = ck + TH;
    /* shift_tokens_right: decoder position i reads input token i - 1. The
     * decoder runs over each whole sequence although only positions up to the
     * last eos matter: causal attention keeps later rows from changing it. */
    for (int s = 0; s < N; s++) {
        const bs_seq *q = &batch->seqs[s];
        for (int i = 0; i < q->len; i++)
            bs_bart_dec_embed(m, i ? q->input_ids[i - 1] : cf->dec_start_id, i,
                              x + (size_t)(b->off[s] + i) * H);
    }
    /* Encoder scratch is free again: every decoder buffer fits in it (the
     * encoder's ff is sized for max(encoder_ffn_dim, decoder_ffn_dim)). */
    bs_dec_part part = {.row0 = 0,
                        .n_rows = N,
                        .q_off = b->off,
                        .self_k = b->k,
                        .self_v = b->v,
                        .self_start = b->off,
                        .self_len = b->len,
                        .cross_k = ck,
                        .cross_v = cv,
                        .cross_start = b->off,
                        .cross_len = b->len};
    bs_dec_bufs d = {.x = x,
                     .q = b->q,
                     .ctx = b->ctx,
                     .tmp = b->tmp,
                     .ff = b->ff,
                     .attn_scratch = b->attn_scratch,
                     .M = T,
                     .parts = &part,
                     .n_parts = 1};
    for (int l = 0; l < cf->dec_layers; l++) {
        const bs_layer *L = &m->dec_layers[l];
        bs_dense qkv[3] = {{.w = L->q.w, .b = L->q.b, .N = H, .y = b->q, .packed = L->q.packed},
                           {.w = L->k.w, .b = L->k.b, .N = H, .y = b->k, .packed = L->k.packed},
                           {.w = L->v.w, .b = L->v.b, .N = H, .y = b->v, .packed = L->v.packed}};
        bs_linear_multi(m->pool, x, T, H, qkv, 3);
        bs_linear(m->pool, b->x, T, H, L->ck.w, L->ck.b, H, ck, BS_ACT_NONE);
        bs_linear(m->pool, b->x, T, H, L->cv.w, L->cv.b, H, cv, BS_ACT_NONE);
        bs_bart_dec_layer(m, L, &d);
    }
    for (int s = 0; s < N; s++)
        memcpy(g1 + (size_t)s * H, x + (size_t)(b->off[s] + last_eos(m, &batch->seqs[s])) * H,
               (size_t)H * sizeof(float));
    bs_linear(m->pool, g1, N, H, m->cls_dense.w, m->cls_dense.b, H, g2, BS_ACT_TANH);
    bs_linear(m->pool, g2, N, H, m->cls_out.w, m->cls_out.b, cf->n_labels, logits, BS_ACT_NONE);
}
