/* The encoder forward pass of the public API: validation of a padding-free
 * batch, embeddings of each family, the encoder stack and the heads. All
 * scratch lives in the caller's bs_model_outputs, grown once and reused, so
 * concurrent calls share nothing and a warm call allocates nothing. */
#include "model/model_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct out_priv {
    bs_scratch s;
    int32_t *ints;
    size_t ints_cap;
} out_priv;

float *bs_scratch_reserve(bs_scratch *s, size_t floats)
{
    if (floats <= s->cap) return s->buf;
    void *p = NULL;
    if (posix_memalign(&p, 64, floats * sizeof(float)) != 0) return NULL;
    free(s->buf);
    s->buf = p;
    s->cap = floats;
    return s->buf;
}

void bs_scratch_free(bs_scratch *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

void bs_model_outputs_init(bs_model_outputs *out)
{
    memset(out, 0, sizeof *out);
}

void bs_model_outputs_release(bs_model_outputs *out)
{
    out_priv *p = out->priv_;
    if (p) {
        bs_scratch_free(&p->s);
        free(p->ints);
        free(p);
    }
    memset(out, 0, sizeof *out);
}

/* Checks ids and lengths; fills off (n+1) and len (n); returns max length. */
int bs_check_batch(const bs_model *m, const bs_batch *batch, int32_t *off, int32_t *len,
                   int *max_len, bs_err *err)
{
    const bs_config *c = &m->cfg;
    int64_t total = 0;
    *max_len = 0;
    off[0] = 0;
    for (int s = 0; s < batch->n_seqs; s++) {
        const bs_seq *q = &batch->seqs[s];
        if (!q->input_ids || q->len < 1)
            return bs_err_set(err, BS_EINVAL, "batch sequence %d is empty (length %d)", s,
                              (int)q->len);
        if (q->len > m->max_seq)
            return bs_err_set(err, BS_ERANGE,
                              "batch sequence %d has %d tokens but the model accepts at most %d "
                              "(max_position_embeddings %d); truncate it",
                              s, (int)q->len, m->max_seq, c->max_pos);
        for (int i = 0; i < q->len; i++) {
            if (q->input_ids[i] < 0 || q->input_ids[i] >= c->vocab)
                return bs_err_set(
                    err, BS_ERANGE,
                    "batch sequence %d, position %d: token id %d is outside the vocabulary [0, %d)",
                    s, i, (int)q->input_ids[i], c->vocab);
            if (q->token_type_ids && c->type_vocab > 0 &&
                (q->token_type_ids[i] < 0 || q->token_type_ids[i] >= c->type_vocab))
                return bs_err_set(err, BS_ERANGE,
                                  "batch sequence %d, position %d: token type id %d is outside [0, "
                                  "%d) (type_vocab_size)",
                                  s, i, (int)q->token_type_ids[i], c->type_vocab);
        }
        len[s] = q->len;
        total += q->len;
        if (total > INT32_MAX / 2) return bs_err_set(err, BS_ELIMIT, "batch has too many tokens");
        off[s + 1] = (int32_t)total;
        if (q->len > *max_len) *max_len = q->len;
    }
    return 0;
}

/* Token + position (+ type) embeddings of every token, then LayerNorm, into e [T][E]. */
static void embed(const bs_model *m, const bs_batch *batch, const int32_t *off, float *e)
{
    const bs_config *c = &m->cfg;
    int E = m->emb_dim;
    const bs_kernels *k = bs_kernels_best();
    for (int s = 0; s < batch->n_seqs; s++) {
        const bs_seq *q = &batch->seqs[s];
        int nonpad = 0;
        for (int i = 0; i < q->len; i++) {
            float *row = e + (size_t)(off[s] + i) * E;
            int id = q->input_ids[i];
            int pos = i;
            if (c->fam == BS_FAM_ROBERTA) {
                /* transformers counts positions over non-pad tokens, from padding_idx + 1. */
                if (id == c->pad_id)
                    pos = c->pad_id;
                else
                    pos = c->pad_id + ++nonpad;
            } else if (c->fam == BS_FAM_BART) {
                pos = i + 2;
            }
            const float *w = m->word + (size_t)id * E, *p = m->pos + (size_t)pos * E;
            if (c->fam == BS_FAM_BART) {
                float scale = c->scale_embedding ? sqrtf((float)E) : 1.0f;
                for (int j = 0; j < E; j++) row[j] = w[j] * scale + p[j];
            } else if (m->type) {
                int tt = q->token_type_ids ? q->token_type_ids[i] : 0;
                const float *t = m->type + (size_t)tt * E;
                for (int j = 0; j < E; j++) row[j] = (w[j] + t[j]) + p[j];
            } else {
                for (int j = 0; j < E; j++) row[j] = w[j] + p[j];
            }
            k->add_layernorm(row, NULL, m->ln_emb.g, m->ln_emb.b, E, c->eps);
        }
    }
}

void bs_embed_and_encode(const bs_model *m, const bs_batch *batch, bs_enc_bufs *b)
{
    int H = m->cfg.hidden;
    if (m->emb_proj.w) {
        embed(m, batch, b->off, b->ff);
        bs_linear(m->pool, b->ff, b->T, m->emb_dim, m->emb_proj.w, m->emb_proj.b, H, b->x,
                  BS_ACT_NONE);
    } else {
        embed(m, batch, b->off, b->x);
    }
    bs_run_encoder(m, b);
}

int bs_model_forward(const bs_model *m, const bs_batch *batch, bs_model_outputs *out, bs_err *err)
{
    const bs_config *c = &m->cfg;
    if (!m || !batch || !out || !batch->seqs || batch->n_seqs < 1)
        return bs_err_set(err, BS_EINVAL, "bs_model_forward: empty batch");
    if ((out->want & BS_OUT_POOLED) && !m->has_pooler)
        return bs_err_set(err, BS_EINVAL, "%s has no pooler: pooler_output cannot be requested",
                          c->architecture);
    if ((out->want & BS_OUT_LOGITS) && (c->head == BS_HEAD_BASE || c->head == BS_HEAD_SEQ2SEQ_LM))
        return bs_err_set(
            err, BS_EINVAL, "%s has no encoder logits head%s", c->architecture,
            c->head == BS_HEAD_SEQ2SEQ_LM ? " (use bs_model_encode and bs_model_decode)" : "");
    int N = batch->n_seqs, H = c->hidden;
    out_priv *p = out->priv_;
    if (!p) {
        p = calloc(1, sizeof *p);
        if (!p) return bs_err_set(err, BS_ENOMEM, "out of memory");
        out->priv_ = p;
    }
    size_t need_ints = 2 * (size_t)N + 1;
    if (p->ints_cap < need_ints) {
        int32_t *ni = realloc(p->ints, need_ints * sizeof *ni);
        if (!ni) return bs_err_set(err, BS_ENOMEM, "out of memory");
        p->ints = ni;
        p->ints_cap = need_ints;
    }
    int32_t *off = p->ints, *len = p->ints + N + 1;
    int max_len, rc;
    if ((rc = bs_check_batch(m, batch, off, len, &max_len, err)) < 0) return rc;
    int T = off[N];
    int want_logits = (out->want & BS_OUT_LOGITS) != 0;
    int bart_cls = want_logits && c->fam == BS_FAM_BART;
    if (bart_cls && (rc = bs_bart_cls_check(m, batch, err)) < 0) return rc;
    int P = c->head == BS_HEAD_MLM && want_logits ? out->n_mlm_positions : 0;
    if (P < 0 || (P > 0 && !out->mlm_positions))
        return bs_err_set(err, BS_EINVAL, "bs_model_forward: n_mlm_positions %d without positions",
                          (int)P);
    for (int i = 0; i < P; i++)
        if (out->mlm_positions[i] < 0 || out->mlm_positions[i] >= T)
            return bs_err_set(err, BS_EINVAL, "MLM position %d is outside the batch's %d tokens",
                              (int)out->mlm_positions[i], T);

    int L = c->n_labels, V = c->vocab;
    size_t rows = (size_t)(N > P ? N : P);
    size_t n_logits = 0;
    if (want_logits) {
        if (c->head == BS_HEAD_SEQ_CLS)
            n_logits = (size_t)N * L;
        else if (c->head == BS_HEAD_TOKEN_CLS)
            n_logits = (size_t)T * L;
        else if (c->head == BS_HEAD_QA)
            n_logits = (size_t)T * 2 * 2; /* [T][2] then split */
        else if (c->head == BS_HEAD_MLM)
            n_logits = (size_t)P * V;
    }
    size_t enc = bs_enc_scratch_floats(m, T, max_len);
    size_t dec = bart_cls ? bs_bart_cls_extra_floats(m, T) : 0;
    size_t total =
        (size_t)T * H + enc + (size_t)N * H /* pooled */ + 3 * rows * H + n_logits + dec + 64;
    float *mem = bs_scratch_reserve(&p->s, total);
    if (!mem) return bs_err_set(err, BS_ENOMEM, "out of memory for a batch of %d tokens", T);

    bs_enc_bufs b;
    b.x = mem;
    bs_enc_carve(m, T, max_len, b.x + (size_t)T * H, &b);
    b.off = off;
    b.len = len;
    b.n_seqs = N;
    float *pooled = b.x + (size_t)T * H + enc;
    float *g1 = pooled + (size_t)N * H, *g2 = g1 + rows * H, *g3 = g2 + rows * H;
    float *logits = g3 + rows * H;

    bs_embed_and_encode(m, batch, &b);
    /* NaN or Inf weights (or a config such as a negative layer_norm_eps)
     * poison every later number: the model is unusable, which is neither
     * the request's fault nor "out of memory" further up (issue 17 L4). */
    for (size_t i = 0, n = (size_t)T * H; i < n; i++)
        if (!isfinite(b.x[i]))
            return bs_err_set(err, BS_EUNPROCESSABLE,
                              "the model computed a non-finite value (NaN or Inf): its weights "
                              "or config.json are not usable");

    out->n_seqs = N;
    out->total_tokens = T;
    out->hidden_size = H;
    out->last_hidden_state = (out->want & BS_OUT_HIDDEN) ? b.x : NULL;
    out->pooler_output = NULL;
    out->logits = out->start_logits = out->end_logits = NULL;
    out->n_labels = 0;

    int need_cls_rows = m->has_pooler || (want_logits && c->head == BS_HEAD_SEQ_CLS && !bart_cls);
    if (need_cls_rows)
        for (int s = 0; s < N; s++)
            memcpy(g1 + (size_t)s * H, b.x + (size_t)off[s] * H, (size_t)H * sizeof(float));
    if (m->has_pooler && ((out->want & BS_OUT_POOLED) || want_logits)) {
        bs_linear(m->pool, g1, N, H, m->pooler.w, m->pooler.b, H, pooled, BS_ACT_TANH);
        if (out->want & BS_OUT_POOLED) out->pooler_output = pooled;
    }
    if (!want_logits) return 0;
    switch (c->head) {
    case BS_HEAD_SEQ_CLS:
        if (bart_cls) {
            bs_bart_cls_logits(m, batch, &b, logits + n_logits, g1, g2, logits);
        } else if (c->fam == BS_FAM_BERT || c->fam == BS_FAM_ALBERT) {
            bs_linear(m->pool, pooled, N, H, m->cls_out.w, m->cls_out.b, L, logits, BS_ACT_NONE);
        } else {
            bs_act act = c->fam == BS_FAM_ROBERTA   ? BS_ACT_TANH
                         : c->fam == BS_FAM_ELECTRA ? BS_ACT_GELU
                                                    : BS_ACT_RELU;
            bs_linear(m->pool, g1, N, H, m->cls_dense.w, m->cls_dense.b, H, g2, act);
            bs_linear(m->pool, g2, N, H, m->cls_out.w, m->cls_out.b, L, logits, BS_ACT_NONE);
        }
        out->n_labels = L;
        out->logits = logits;
        break;
    case BS_HEAD_TOKEN_CLS:
        bs_linear(m->pool, b.x, T, H, m->cls_out.w, m->cls_out.b, L, logits, BS_ACT_NONE);
        out->n_labels = L;
        out->logits = logits;
        break;
    case BS_HEAD_QA: {
        float *se = logits + (size_t)T * 2;
        bs_linear(m->pool, b.x, T, H, m->cls_out.w, m->cls_out.b, 2, se, BS_ACT_NONE);
        for (int t = 0; t < T; t++) {
            logits[t] = se[2 * t];
            logits[T + t] = se[2 * t + 1];
        }
        out->start_logits = logits;
        out->end_logits = logits + T;
        out->n_labels = 2;
        break;
    }
    case BS_HEAD_MLM: {
        int D = m->mlm_dim;
        for (int i = 0; i < P; i++)
            memcpy(g1 + (size_t)i * H, b.x + (size_t)out->mlm_positions[i] * H,
                   (size_t)H * sizeof(float));
        if (P > 0) {
            bs_linear(m->pool, g1, P, H, m->mlm_dense.w, m->mlm_dense.b, D, g2, m->mlm_act);
            bs_add_layernorm_rows(m->pool, g2, NULL, P, D, m->mlm_ln.g, m->mlm_ln.b, m->head_eps);
            bs_linear(m->pool, g2, P, D, m->mlm_decoder, m->mlm_bias, V, logits, BS_ACT_NONE);
        }
        out->n_labels = V;
        out->logits = logits;
        break;
    }
    default:
        break;
    }
    return 0;
}
