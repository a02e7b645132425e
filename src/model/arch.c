/* Binds checkpoint tensors to the model structure, family by family, with
 * the Hub's state_dict names: BERT/RoBERTa/ELECTRA share BERT's layer names,
 * DistilBERT, ALBERT (shared layer groups) and BART have their own. */
#include "model/model_impl.h"

#include <stdio.h>
#include <string.h>

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ < 0) return rc_;                                                                   \
    } while (0)

static const char *const no_prefix[] = {NULL};

static int bind_bert_layer(bs_model *m, const char *const *P, const char *base, bs_layer *L,
                           bs_err *err)
{
    int H = m->cfg.hidden, I = m->cfg.inter;
    char n[256];
#define N(fmt) (snprintf(n, sizeof n, "%s." fmt, base), n)
    TRY(bs_w_lin(m, P, N("attention.self.query"), H, H, &L->q, err));
    TRY(bs_w_lin(m, P, N("attention.self.key"), H, H, &L->k, err));
    TRY(bs_w_lin(m, P, N("attention.self.value"), H, H, &L->v, err));
    TRY(bs_w_lin(m, P, N("attention.output.dense"), H, H, &L->o, err));
    TRY(bs_w_ln(m, P, N("attention.output.LayerNorm"), H, NULL, NULL, &L->ln_attn, err));
    TRY(bs_w_lin(m, P, N("intermediate.dense"), I, H, &L->ff1, err));
    TRY(bs_w_lin(m, P, N("output.dense"), H, I, &L->ff2, err));
    TRY(bs_w_ln(m, P, N("output.LayerNorm"), H, NULL, NULL, &L->ln_ffn, err));
    return 0;
}

static int bind_albert_layer(bs_model *m, const char *const *P, const char *base, bs_layer *L,
                             bs_err *err)
{
    int H = m->cfg.hidden, I = m->cfg.inter;
    char n[256];
    TRY(bs_w_lin(m, P, N("attention.query"), H, H, &L->q, err));
    TRY(bs_w_lin(m, P, N("attention.key"), H, H, &L->k, err));
    TRY(bs_w_lin(m, P, N("attention.value"), H, H, &L->v, err));
    TRY(bs_w_lin(m, P, N("attention.dense"), H, H, &L->o, err));
    TRY(bs_w_ln(m, P, N("attention.LayerNorm"), H, NULL, NULL, &L->ln_attn, err));
    TRY(bs_w_lin(m, P, N("ffn"), I, H, &L->ff1, err));
    TRY(bs_w_lin(m, P, N("ffn_output"), H, I, &L->ff2, err));
    TRY(bs_w_ln(m, P, N("full_layer_layer_norm"), H, NULL, NULL, &L->ln_ffn, err));
    return 0;
}

static int bind_distil_layer(bs_model *m, const char *const *P, const char *base, bs_layer *L,
                             bs_err *err)
{
    int H = m->cfg.hidden, I = m->cfg.inter;
    char n[256];
    TRY(bs_w_lin(m, P, N("attention.q_lin"), H, H, &L->q, err));
    TRY(bs_w_lin(m, P, N("attention.k_lin"), H, H, &L->k, err));
    TRY(bs_w_lin(m, P, N("attention.v_lin"), H, H, &L->v, err));
    TRY(bs_w_lin(m, P, N("attention.out_lin"), H, H, &L->o, err));
    TRY(bs_w_ln(m, P, N("sa_layer_norm"), H, NULL, NULL, &L->ln_attn, err));
    TRY(bs_w_lin(m, P, N("ffn.lin1"), I, H, &L->ff1, err));
    TRY(bs_w_lin(m, P, N("ffn.lin2"), H, I, &L->ff2, err));
    TRY(bs_w_ln(m, P, N("output_layer_norm"), H, NULL, NULL, &L->ln_ffn, err));
    return 0;
}

static int bind_bart_layer(bs_model *m, const char *const *P, const char *base, int I, int cross,
                           bs_layer *L, bs_err *err)
{
    int H = m->cfg.hidden;
    char n[256];
    TRY(bs_w_lin(m, P, N("self_attn.q_proj"), H, H, &L->q, err));
    TRY(bs_w_lin(m, P, N("self_attn.k_proj"), H, H, &L->k, err));
    TRY(bs_w_lin(m, P, N("self_attn.v_proj"), H, H, &L->v, err));
    TRY(bs_w_lin(m, P, N("self_attn.out_proj"), H, H, &L->o, err));
    TRY(bs_w_ln(m, P, N("self_attn_layer_norm"), H, NULL, NULL, &L->ln_attn, err));
    if (cross) {
        TRY(bs_w_lin(m, P, N("encoder_attn.q_proj"), H, H, &L->cq, err));
        TRY(bs_w_lin(m, P, N("encoder_attn.k_proj"), H, H, &L->ck, err));
        TRY(bs_w_lin(m, P, N("encoder_attn.v_proj"), H, H, &L->cv, err));
        TRY(bs_w_lin(m, P, N("encoder_attn.out_proj"), H, H, &L->co, err));
        TRY(bs_w_ln(m, P, N("encoder_attn_layer_norm"), H, NULL, NULL, &L->ln_cross, err));
    }
    TRY(bs_w_lin(m, P, N("fc1"), I, H, &L->ff1, err));
    TRY(bs_w_lin(m, P, N("fc2"), H, I, &L->ff2, err));
    TRY(bs_w_ln(m, P, N("final_layer_norm"), H, NULL, NULL, &L->ln_ffn, err));
    return 0;
#undef N
}

static int bind_bart(bs_model *m, bs_err *err)
{
    static const char *const P[] = {"model.", NULL};
    bs_config *c = &m->cfg;
    int H = c->hidden, V = c->vocab;
    TRY(bs_w_opt(m, P, "shared.weight", V, H, &m->word, err));
    if (!m->word) TRY(bs_w_get(m, P, "encoder.embed_tokens.weight", V, H, &m->word, err));
    TRY(bs_w_get(m, P, "encoder.embed_positions.weight", c->max_pos + 2, H, &m->pos, err));
    TRY(bs_w_ln(m, P, "encoder.layernorm_embedding", H, NULL, NULL, &m->ln_emb, err));
    TRY(bs_w_get(m, P, "decoder.embed_positions.weight", c->max_pos + 2, H, &m->dec_pos, err));
    TRY(bs_w_ln(m, P, "decoder.layernorm_embedding", H, NULL, NULL, &m->dec_ln_emb, err));
    char base[64];
    for (int i = 0; i < c->n_layers; i++) {
        snprintf(base, sizeof base, "encoder.layers.%d", i);
        TRY(bind_bart_layer(m, P, base, c->inter, 0, &m->layers[i], err));
    }
    for (int i = 0; i < c->dec_layers; i++) {
        snprintf(base, sizeof base, "decoder.layers.%d", i);
        TRY(bind_bart_layer(m, P, base, c->dec_inter, 1, &m->dec_layers[i], err));
    }
    if (c->head == BS_HEAD_SEQ2SEQ_LM) {
        TRY(bs_w_opt(m, no_prefix, "final_logits_bias", 1, V, &m->final_logits_bias, err));
        TRY(bs_w_opt(m, no_prefix, "lm_head.weight", V, H, &m->mlm_decoder, err));
        if (!m->mlm_decoder && !c->tie_word_embeddings)
            return bs_w_get(m, no_prefix, "lm_head.weight", V, H, &m->mlm_decoder, err);
        if (!m->mlm_decoder) m->mlm_decoder = m->word;
    }
    if (c->head == BS_HEAD_SEQ_CLS) {
        /* BartClassificationHead: dense (d_model -> d_model), tanh, out_proj. */
        if (c->eos_id >= V || c->dec_start_id >= V)
            return bs_err_set(err, BS_ERANGE,
                              "config.json: eos_token_id %d / decoder_start_token_id %d must be "
                              "below vocab_size %d",
                              c->eos_id, c->dec_start_id, V);
        TRY(bs_w_lin(m, no_prefix, "classification_head.dense", H, H, &m->cls_dense, err));
        TRY(bs_w_lin(m, no_prefix, "classification_head.out_proj", c->n_labels, H, &m->cls_out,
                     err));
    }
    m->emb_dim = H;
    return 0;
}

static int bind_heads(bs_model *m, const char *const *P, bs_err *err)
{
    bs_config *c = &m->cfg;
    int H = c->hidden, L = c->n_labels, V = c->vocab, E = m->emb_dim;
    m->head_eps = c->eps;
    if (m->has_pooler) {
        /* ALBERT's pooler is a bare Linear named "pooler"; BERT's is pooler.dense. */
        const char *pn = c->fam == BS_FAM_ALBERT ? "pooler" : "pooler.dense";
        char wn[64];
        snprintf(wn, sizeof wn, "%s.weight", pn);
        if (c->head == BS_HEAD_BASE) {
            TRY(bs_w_opt(m, P, wn, H, H, &m->pooler.w, err));
            if (!m->pooler.w) m->has_pooler = 0;
        }
        if (m->has_pooler) TRY(bs_w_lin(m, P, pn, H, H, &m->pooler, err));
    }
    switch (c->head) {
    case BS_HEAD_BASE:
    case BS_HEAD_SEQ2SEQ_LM:
        return 0;
    case BS_HEAD_TOKEN_CLS:
        return bs_w_lin(m, no_prefix, "classifier", L, H, &m->cls_out, err);
    case BS_HEAD_QA:
        return bs_w_lin(m, no_prefix, "qa_outputs", 2, H, &m->cls_out, err);
    case BS_HEAD_SEQ_CLS:
        switch (c->fam) {
        case BS_FAM_ROBERTA:
        case BS_FAM_ELECTRA:
            TRY(bs_w_lin(m, no_prefix, "classifier.dense", H, H, &m->cls_dense, err));
            return bs_w_lin(m, no_prefix, "classifier.out_proj", L, H, &m->cls_out, err);
        case BS_FAM_DISTILBERT:
            TRY(bs_w_lin(m, no_prefix, "pre_classifier", H, H, &m->cls_dense, err));
            return bs_w_lin(m, no_prefix, "classifier", L, H, &m->cls_out, err);
        default:
            return bs_w_lin(m, no_prefix, "classifier", L, H, &m->cls_out, err);
        }
    case BS_HEAD_MLM:
        break;
    }
    /* MLM: transform (dense -> act -> LayerNorm) then the decoder, tied to the
     * word embeddings unless the checkpoint stores its own copy. */
    const char *dense, *ln, *dec, *bias, *alt_bias;
    int D = H;
    m->mlm_act = c->act;
    switch (c->fam) {
    case BS_FAM_BERT:
        dense = "cls.predictions.transform.dense", ln = "cls.predictions.transform.LayerNorm";
        dec = "cls.predictions.decoder.weight", bias = "cls.predictions.bias",
        alt_bias = "cls.predictions.decoder.bias";
        break;
    case BS_FAM_ROBERTA:
        dense = "lm_head.dense", ln = "lm_head.layer_norm", dec = "lm_head.decoder.weight",
        bias = "lm_head.bias", alt_bias = "lm_head.decoder.bias";
        m->mlm_act = BS_ACT_GELU;
        break;
    case BS_FAM_DISTILBERT:
        dense = "vocab_transform", ln = "vocab_layer_norm", dec = "vocab_projector.weight",
        bias = "vocab_projector.bias", alt_bias = NULL;
        m->head_eps = 1e-12f;
        break;
    case BS_FAM_ALBERT:
        dense = "predictions.dense", ln = "predictions.LayerNorm",
        dec = "predictions.decoder.weight", bias = "predictions.bias",
        alt_bias = "predictions.decoder.bias";
        D = E;
        break;
    case BS_FAM_ELECTRA:
        dense = "generator_predictions.dense", ln = "generator_predictions.LayerNorm",
        dec = "generator_lm_head.weight", bias = "generator_lm_head.bias", alt_bias = NULL;
        m->mlm_act = BS_ACT_GELU;
        D = E;
        break;
    default:
        return bs_err_set(err, BS_EUNSUPPORTED, "config.json: no masked-LM head for %s",
                          c->model_type);
    }
    m->mlm_dim = D;
    TRY(bs_w_lin(m, no_prefix, dense, D, H, &m->mlm_dense, err));
    TRY(bs_w_ln(m, no_prefix, ln, D, NULL, NULL, &m->mlm_ln, err));
    TRY(bs_w_opt(m, no_prefix, dec, V, D, &m->mlm_decoder, err));
    if (!m->mlm_decoder) {
        if (!c->tie_word_embeddings)
            return bs_w_get(m, no_prefix, dec, V, D, &m->mlm_decoder,
                            err); /* untied: it must be stored */
        if (E != D)
            return bs_err_set(
                err, BS_EFORMAT,
                "%s is absent and the word embeddings (width %d) cannot be tied to it (width %d)",
                dec, E, D);
        m->mlm_decoder = m->word;
    }
    TRY(bs_w_opt(m, no_prefix, bias, V, 0, &m->mlm_bias, err));
    if (!m->mlm_bias && alt_bias) TRY(bs_w_opt(m, no_prefix, alt_bias, V, 0, &m->mlm_bias, err));
    if (!m->mlm_bias)
        return bs_w_get(m, no_prefix, bias, V, 0, &m->mlm_bias, err); /* names the missing tensor */
    return 0;
}

int bs_arch_bind(bs_model *m, bs_err *err)
{
    bs_config *c = &m->cfg;
    if (c->fam == BS_FAM_BART) return bind_bart(m, err);
    static const char *const P_bert[] = {"bert.", NULL}, *const P_rob[] = {"roberta.", NULL},
                             *const P_el[] = {"electra.", NULL},
                             *const P_di[] = {"distilbert.", NULL},
                             *const P_al[] = {"albert.", NULL};
    const char *const *P = c->fam == BS_FAM_BERT         ? P_bert
                           : c->fam == BS_FAM_ROBERTA    ? P_rob
                           : c->fam == BS_FAM_ELECTRA    ? P_el
                           : c->fam == BS_FAM_DISTILBERT ? P_di
                                                         : P_al;
    int H = c->hidden, E = c->emb_size;
    m->emb_dim = E;
    TRY(bs_w_get(m, P, "embeddings.word_embeddings.weight", c->vocab, E, &m->word, err));
    TRY(bs_w_get(m, P, "embeddings.position_embeddings.weight", c->max_pos, E, &m->pos, err));
    if (c->type_vocab > 0)
        TRY(bs_w_get(m, P, "embeddings.token_type_embeddings.weight", c->type_vocab, E, &m->type,
                     err));
    TRY(bs_w_ln(m, P, "embeddings.LayerNorm", E, NULL, NULL, &m->ln_emb, err));
    if (c->fam == BS_FAM_ELECTRA) {
        const float *w;
        TRY(bs_w_opt(m, P, "embeddings_project.weight", H, E, &w, err));
        if (w || E != H) TRY(bs_w_lin(m, P, "embeddings_project", H, E, &m->emb_proj, err));
    } else if (c->fam == BS_FAM_ALBERT) {
        TRY(bs_w_lin(m, P, "encoder.embedding_hidden_mapping_in", H, E, &m->emb_proj, err));
    } else if (E != H) {
        return bs_err_set(err, BS_EFORMAT,
                          "config.json: embedding_size %d differs from hidden size %d", E, H);
    }
    char base[96];
    for (int i = 0; i < m->n_enc_layers; i++) {
        if (c->fam == BS_FAM_ALBERT) {
            snprintf(base, sizeof base, "encoder.albert_layer_groups.%d.albert_layers.%d",
                     i / c->inner_group_num, i % c->inner_group_num);
            TRY(bind_albert_layer(m, P, base, &m->layers[i], err));
        } else if (c->fam == BS_FAM_DISTILBERT) {
            snprintf(base, sizeof base, "transformer.layer.%d", i);
            TRY(bind_distil_layer(m, P, base, &m->layers[i], err));
        } else {
            snprintf(base, sizeof base, "encoder.layer.%d", i);
            TRY(bind_bert_layer(m, P, base, &m->layers[i], err));
        }
    }
    m->has_pooler = ((c->fam == BS_FAM_BERT || c->fam == BS_FAM_ALBERT) &&
                     (c->head == BS_HEAD_BASE || c->head == BS_HEAD_SEQ_CLS)) ||
                    (c->fam == BS_FAM_ROBERTA && c->head == BS_HEAD_BASE);
    return bind_heads(m, P, err);
}
