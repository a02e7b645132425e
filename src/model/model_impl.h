/* Private structure of a loaded model: the parsed config, the weights (views
 * into mmap'ed safetensors or upcast copies) arranged per layer, and the
 * compute pool. Shared by the loader, the forward passes and the heads. */
#ifndef BS_MODEL_MODEL_IMPL_H
#define BS_MODEL_MODEL_IMPL_H

#include "bertstudio/model.h"
#include "model/safetensors.h"
#include "tensor/tensor.h"

typedef enum bs_family {
    BS_FAM_BERT,    /* bert */
    BS_FAM_ROBERTA, /* roberta, xlm-roberta, camembert: positions offset by padding_idx */
    BS_FAM_ELECTRA,
    BS_FAM_DISTILBERT,
    BS_FAM_ALBERT,
    BS_FAM_BART,
} bs_family;

typedef struct bs_lin {
    const float *w, *b; /* w [out][in] */
    int out, in;
    const bs_packed *packed; /* w re-laid for the packed GEMM, or NULL */
    /* An F16/BF16 weight as the file holds it, until bs_w_pack_layers packs it
     * straight from there or (not packed) widens it into w. */
    const uint16_t *w16;
    int w16_bf; /* w16 is bfloat16 (else IEEE half) */
} bs_lin;

typedef struct bs_ln {
    const float *g, *b;
} bs_ln;

/* A post-LN transformer layer: x = LN(x + attn(x)), [cross], x = LN(x + ffn(x)). */
typedef struct bs_layer {
    bs_lin q, k, v, o;
    bs_ln ln_attn;
    bs_lin cq, ck, cv, co; /* BART decoder cross-attention */
    bs_ln ln_cross;
    bs_lin ff1, ff2;
    bs_ln ln_ffn;
} bs_layer;

typedef struct bs_config {
    char *model_type, *architecture, *problem_type;
    bs_family fam;
    bs_head_kind head;
    int hidden, n_layers, n_heads, inter, vocab, max_pos, type_vocab, pad_id, emb_size;
    int n_groups, inner_group_num;        /* ALBERT */
    int dec_layers, dec_heads, dec_inter; /* BART */
    int scale_embedding;                  /* BART */
    int eos_id, dec_start_id;             /* BART: eos_token_id, decoder_start_token_id */
    int tie_word_embeddings;              /* default true: decoders may share the embeddings */
    float eps;
    bs_act act;
    int n_labels;
    char **labels;
} bs_config;

struct bs_model {
    bs_config cfg;
    char *config_text, *genconfig_text;
    int has_pooler;
    int max_seq;
    int n_threads;
    bs_precision precision;
    const char *function_to_apply; /* static string or NULL (settings.c) */
    bs_model_gen_config gen;       /* settings.c */
    bs_ctx *ctx;                   /* the engine context the model computes on */
    int owns_ctx;                  /* made by bs_model_load for this model alone (opts.ctx NULL) */
    int shapes_only;               /* bs_model_check: weights point at unconverted file bytes */
    bs_pool *pool; /* ctx's pool, borrowed while the model lives (NULL until then) */

    bs_st_file *files;
    size_t n_files;
    void **owned; /* heap blocks freed with the model: packed weights, upcast F16/BF16 copies */
    size_t n_owned, cap_owned;
    bs_lin **lazy; /* linears whose F16/BF16 weight is not widened yet (w16) */
    size_t n_lazy, cap_lazy;

    /* embeddings */
    const float *word, *pos, *type; /* [vocab][E], [max_pos][E], [type_vocab][E] */
    bs_ln ln_emb;
    int emb_dim;     /* E: embedding width (ELECTRA/ALBERT may differ from hidden) */
    bs_lin emb_proj; /* ELECTRA embeddings_project / ALBERT embedding_hidden_mapping_in */

    bs_layer *layers; /* encoder: n_layers (ALBERT: n_groups * inner_group_num) */
    int n_enc_layers;

    /* BART decoder */
    const float *dec_pos;
    bs_ln dec_ln_emb;
    bs_layer *dec_layers;
    const float *final_logits_bias;

    /* heads */
    bs_lin pooler;
    bs_lin cls_dense, cls_out; /* classifier (dense optional) / qa_outputs */
    bs_lin mlm_dense;
    bs_ln mlm_ln;
    bs_act mlm_act;
    int mlm_dim;              /* width of the MLM transform output (E or hidden) */
    const float *mlm_decoder; /* [vocab][mlm_dim] */
    const float *mlm_bias;    /* [vocab] */
    float head_eps;
};

/* ctx.c: a model takes the context's pool when loaded and gives it back when
 * freed, so that the context knows whether models still use it. */
bs_pool *bs_ctx_attach(bs_ctx *ctx);
void bs_ctx_detach(bs_ctx *ctx);

/* ── loading helpers (weights.c) ── */
/* Looks up `name` (tried with each prefix of the NULL-terminated list, then
 * bare) and checks its shape (d1 = 0 for 1-D). Fills *out with f32 data. */
int bs_w_get(bs_model *m, const char *const *prefixes, const char *name, int64_t d0, int64_t d1,
             const float **out, bs_err *err);
/* Same but a missing tensor is not an error (*out = NULL). */
int bs_w_opt(bs_model *m, const char *const *prefixes, const char *name, int64_t d0, int64_t d1,
             const float **out, bs_err *err);
int bs_w_lin(bs_model *m, const char *const *prefixes, const char *name, int out, int in, bs_lin *l,
             bs_err *err);
int bs_w_ln(bs_model *m, const char *const *prefixes, const char *name, int n, const char *wname,
            const char *bname, bs_ln *l, bs_err *err);
int bs_w_open_all(bs_model *m, const char *dir, bs_err *err);

/* Packs the weights of every encoder/decoder layer for the packed GEMM when
 * the CPU supports it (env BS_GEMM=blas keeps the BLAS path). */
int bs_w_pack_layers(bs_model *m, bs_err *err);

/* settings.c: function_to_apply and gen from config_text / genconfig_text. */
void bs_model_settings_read(bs_model *m);

/* config.c */
int bs_config_parse(const char *text, bs_config *cfg, bs_err *err);
void bs_config_free(bs_config *cfg);

/* arch.c: binds weights for the family */
int bs_arch_bind(bs_model *m, bs_err *err);

/* forward.c scratch */
typedef struct bs_scratch {
    float *buf;
    size_t cap; /* floats */
} bs_scratch;
float *bs_scratch_reserve(bs_scratch *s, size_t floats);
void bs_scratch_free(bs_scratch *s);

/* encoder.c */
/* Buffers of one encoder pass over T packed tokens of n_seqs sequences
 * (off: n_seqs + 1 prefix offsets, len: lengths). */
typedef struct bs_enc_bufs {
    float *x, *q, *k, *v, *ctx, *tmp, *ff, *attn_scratch;
    const int32_t *off, *len;
    int T, n_seqs;
} bs_enc_bufs;
/* y[M][l->out] = act(x l^T + b), through the packed GEMM when l has one. */
void bs_lin_run(bs_pool *pool, const float *x, int M, const bs_lin *l, float *y, bs_act act);
/* Runs one post-LN encoder layer on b->x in place. */
void bs_run_layer(const bs_model *m, const bs_layer *L, int n_heads, int inter,
                  const bs_enc_bufs *b);
/* Runs the whole encoder stack (ALBERT's shared groups included). */
void bs_run_encoder(const bs_model *m, const bs_enc_bufs *b);
/* Floats of scratch one encoder pass over T tokens needs (excluding x). */
size_t bs_enc_scratch_floats(const bs_model *m, int T, int max_len);
/* Carves the buffers out of `mem` (bs_enc_scratch_floats floats). */
void bs_enc_carve(const bs_model *m, int T, int max_len, float *mem, bs_enc_bufs *b);

/* forward.c: batch validation (fills off[n+1], len[n], max length) and the
 * embeddings + encoder stack into b->x. */
int bs_check_batch(const bs_model *m, const bs_batch *batch, int32_t *off, int32_t *len,
                   int *max_len, bs_err *err);
void bs_embed_and_encode(const bs_model *m, const bs_batch *batch, bs_enc_bufs *b);

/* bart.c: one post-LN BART decoder layer, shared by generation (keys and
 * values in the KV cache) and classification (one packed causal pass). On
 * entry q holds q_proj(x) and self_k/self_v already hold this layer's keys
 * and values of every visible position; x [M][H] is updated in place. q, ctx,
 * tmp and ff are clobbered. */
/* The attention side of a group of decoder rows: its query rows start at
 * row0 of the pass, and its keys/values live in buffers of its own (one
 * request's KV cache and encoder state in a batched generation step). */
typedef struct bs_dec_part {
    int row0, n_rows;
    const int32_t *q_off; /* n_rows + 1 prefix offsets of the query rows, from row0 */
    const float *self_k, *self_v;
    const int32_t *self_start, *self_len;
    const float *cross_k, *cross_v; /* this layer's cross-attention keys/values */
    const int32_t *cross_start, *cross_len;
} bs_dec_part;

typedef struct bs_dec_bufs {
    float *x, *q, *ctx, *tmp, *ff, *attn_scratch; /* [M][H]; ff [M][dec_inter] */
    int M;
    /* Dense layers run once over all M rows; attention runs per part. */
    const bs_dec_part *parts;
    int n_parts;
} bs_dec_bufs;
void bs_bart_dec_layer(const bs_model *m, const bs_layer *L, const bs_dec_bufs *b);
/* Decoder input embedding of `token` at decoder position `pos` into row [H]. */
void bs_bart_dec_embed(const bs_model *m, int32_t token, int pos, float *row);

/* bart_cls.c: BartForSequenceClassification on top of bs_model_forward.
 * check: every sequence holds eos_token_id (else BS_EINVAL naming it).
 * logits: runs the decoder on shift_tokens_right(ids) next to the encoder
 * output in b->x (b's scratch is reused; dec needs bs_bart_cls_extra_floats),
 * pools each sequence's last eos row and applies the head into logits
 * [n_seqs][n_labels]; g1, g2 hold n_seqs rows of H. */
int bs_bart_cls_check(const bs_model *m, const bs_batch *batch, bs_err *err);
size_t bs_bart_cls_extra_floats(const bs_model *m, int T);
void bs_bart_cls_logits(const bs_model *m, const bs_batch *batch, const bs_enc_bufs *b, float *dec,
                        float *g1, float *g2, float *logits);

#endif
