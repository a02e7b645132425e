/*
 * The inference engine: loads a HuggingFace model folder (config.json +
 * model.safetensors, possibly sharded) and runs its forward pass on CPU.
 * Encoders (BERT, RoBERTa, XLM-RoBERTa, CamemBERT, ELECTRA, DistilBERT,
 * ALBERT) with their heads, and BART (encoder-decoder with a KV cache).
 *
 * Batches are padding-free: a batch is N sequences of their own lengths, and
 * per-token outputs are packed row after row: token p of sequence i is row
 * offset(i) + p, where offset(i) is the sum of the lengths of sequences 0..i-1.
 *
 * Thread safety: a loaded bs_model is immutable; any number of threads may
 * call bs_model_forward / bs_model_encode / bs_model_decode on it at the same
 * time, each with its own bs_model_outputs / bs_kv_cache.
 */
#ifndef BERTSTUDIO_MODEL_H
#define BERTSTUDIO_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "bertstudio/common.h"
#include "bertstudio/ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bs_model bs_model;

/* Arithmetic of the dense layers (every other step, attention and
 * layernorm included, is F32 either way). */
typedef enum bs_precision {
    BS_PRECISION_F32 = 0,  /* the default: matches PyTorch to float precision */
    BS_PRECISION_BF16 = 1, /* weights held as bf16 and activations rounded to bf16
                              on entry, F32 sums: about twice the speed and half
                              the weight memory, at ~1e-2 relative error on
                              hidden states. Needs a CPU with AVX512_BF16. */
    BS_PRECISION_FP16 = 2, /* weights held as IEEE half (half the weight memory),
                              widened to F32 inside the kernel; activations
                              and sums F32, so the error is only the weights'
                              rounding (8x finer than bf16's). Every CPU. */
    BS_PRECISION_INT8 = 3, /* dynamic quantization (ONNX Runtime's quantize_dynamic):
                              weights int8 per output channel (a quarter of the
                              memory), activations u8 per row at run time, int32
                              sums; ~1e-2 relative error. Every CPU (AVX2 and
                              AVX512-VNNI kernels where present). */
} bs_precision;

/* Load options. Zero-initialise, or use bs_model_opts_default(). */
typedef struct bs_model_opts {
    /* The engine context whose compute threads the model runs on (borrowed:
     * it must outlive the model). Models loaded on one context share its
     * threads. NULL: the model starts a context of its own, of n_threads. */
    bs_ctx *ctx;
    int n_threads;          /* without ctx: compute threads; <= 0 = number of cores */
    bs_precision precision; /* BS_PRECISION_F32 unless asked otherwise */
} bs_model_opts;

/* What the architecture named in config.json "architectures" puts on top of
 * the encoder. */
typedef enum bs_head_kind {
    BS_HEAD_BASE = 0,       /* *Model: last_hidden_state (+ pooler_output if has_pooler) */
    BS_HEAD_SEQ_CLS = 1,    /* *ForSequenceClassification: logits [N][num_labels]
                               (BART: encoder-decoder pass, pooled at the last eos) */
    BS_HEAD_TOKEN_CLS = 2,  /* *ForTokenClassification: logits [total_tokens][num_labels] */
    BS_HEAD_QA = 3,         /* *ForQuestionAnswering: start/end logits [total_tokens] */
    BS_HEAD_MLM = 4,        /* *ForMaskedLM: logits [n_positions][vocab] at chosen tokens */
    BS_HEAD_SEQ2SEQ_LM = 5, /* BartForConditionalGeneration: bs_model_encode + bs_model_decode */
} bs_head_kind;

/* Fills opts with the defaults (threads = number of cores). */
BS_API void bs_model_opts_default(bs_model_opts *opts);

/* Loads the model folder `dir`: config.json, then model.safetensors or the
 * shards listed in model.safetensors.index.json (weights are mmap'ed; F16 and
 * BF16 are converted once to F32). opts may be NULL (defaults). On success
 * *out owns the model (free with bs_model_free). Errors: BS_ENOTFOUND (no
 * config.json / no safetensors; a folder with only pytorch_model.bin gets a
 * message on how to convert), BS_EFORMAT (malformed JSON or safetensors, a
 * missing tensor, a shape that disagrees with config.json), BS_EUNSUPPORTED
 * (unknown model_type or architecture, unsupported dtype or activation),
 * BS_EIO, BS_ENOMEM. The message names the file, the tensor and the expected
 * vs actual value. */
BS_API int bs_model_load(const char *dir, const bs_model_opts *opts, bs_model **out, bs_err *err);

/* Checks the model folder `dir` as bs_model_load would, without loading it:
 * config.json, the safetensors headers (every file of a sharded
 * checkpoint) and every tensor the architecture needs, with its dtype and
 * the shape config.json implies. No weight byte is read, converted or
 * packed and no thread is started, so checking a large model costs about
 * what reading its headers does. Returns 0, or the error (code and
 * sentence) bs_model_load would give for a bad folder. */
BS_API int bs_model_check(const char *dir, bs_err *err);

/* Frees a model loaded by bs_model_load (NULL is fine). No forward call,
 * encoder state or cache of this model may be in use. */
BS_API void bs_model_free(bs_model *model);

/* ── information (strings are owned by the model) ── */

/* config.json "model_type": "bert", "roberta", "xlm-roberta", "camembert",
 * "electra", "distilbert", "albert", "bart". */
BS_API const char *bs_model_type(const bs_model *model);
/* First entry of config.json "architectures", e.g. "BertForSequenceClassification"
 * (when absent, the base model's name, e.g. "BertModel"). */
BS_API const char *bs_model_architecture(const bs_model *model);
BS_API bs_head_kind bs_model_head(const bs_model *model);
BS_API int bs_model_hidden_size(const bs_model *model);
BS_API int bs_model_vocab_size(const bs_model *model);
/* config.json max_position_embeddings, as written. */
BS_API int bs_model_max_position_embeddings(const bs_model *model);
/* Longest sequence the engine accepts: max_position_embeddings, minus
 * padding_idx + 1 for RoBERTa-style models (514 -> 512). For BART it is
 * max_position_embeddings (its tables hold 2 extra rows for the offset). */
BS_API int bs_model_max_seq_len(const bs_model *model);
BS_API int bs_model_pad_token_id(const bs_model *model);
/* Number of labels of a classification head (from id2label; 2 for QA's
 * start/end; 0 otherwise). */
BS_API int bs_model_num_labels(const bs_model *model);
/* Label name of class `i` from id2label ("LABEL_i" when the config has
 * none); NULL when i is out of range. */
BS_API const char *bs_model_label(const bs_model *model, int i);
/* config.json problem_type ("single_label_classification",
 * "multi_label_classification", "regression") or NULL when absent. */
BS_API const char *bs_model_problem_type(const bs_model *model);
/* config.json function_to_apply when it is "softmax", "sigmoid" or "none"
 * (what transformers' text classification applies when neither the request
 * nor problem_type decides); NULL otherwise. */
BS_API const char *bs_model_function_to_apply(const bs_model *model);

/* Generation settings, layered as transformers' summarization pipeline
 * reads them: config.json, then generation_config.json, then config.json's
 * task_specific_params.summarization (a later non-null value wins). A value
 * absent or not an integer is -1 (a list of ids gives its first);
 * length_penalty is NaN when unset; early_stopping is -1 unset, 0 false,
 * 1 true, 2 "never". */
typedef struct bs_model_gen_config {
    int32_t max_length, min_length, num_beams, no_repeat_ngram_size;
    double length_penalty;
    int early_stopping;
    int32_t decoder_start_token_id, bos_token_id, eos_token_id, pad_token_id;
    int32_t forced_bos_token_id, forced_eos_token_id;
} bs_model_gen_config;
/* The model's generation settings (owned by the model; any model type). */
BS_API const bs_model_gen_config *bs_model_generation(const bs_model *model);

/* 1 when the model computes pooler_output (BertModel, BertForSequenceClassification,
 * RobertaModel, AlbertModel, AlbertForSequenceClassification). */
BS_API int bs_model_has_pooler(const bs_model *model);
/* 1 when token_type_ids change the output (type_vocab_size > 1). RoBERTa
 * (type_vocab_size 1) and DistilBERT ignore them: pass NULL. */
BS_API int bs_model_uses_token_type_ids(const bs_model *model);
/* The raw text of config.json (NUL-terminated), for task_specific_params,
 * bos/eos/decoder_start/forced_* ids and the like. */
BS_API const char *bs_model_config_json(const bs_model *model);
/* The raw text of generation_config.json, or NULL when the folder has none. */
BS_API const char *bs_model_generation_config_json(const bs_model *model);
/* Encoder layers as run (ALBERT: num_hidden_layers, shared or not) and the
 * feed-forward width. */
BS_API int bs_model_num_layers(const bs_model *model);
BS_API int bs_model_intermediate_size(const bs_model *model);
/* Compute threads used per call (those of the model's context). */
BS_API int bs_model_n_threads(const bs_model *model);
/* The precision the dense layers run in (as asked at load). */
BS_API bs_precision bs_model_precision(const bs_model *model);
/* 1 when this CPU can run `precision` (BS_PRECISION_BF16 needs AVX512_BF16
 * and the avx512 kernel path). */
BS_API int bs_precision_supported(bs_precision precision);
/* "f32" / "fp16" / "bf16" / "int8"; bs_precision_parse returns -1 for any other name. */
BS_API const char *bs_precision_name(bs_precision precision);
BS_API int bs_precision_parse(const char *name);

/* ── encoder forward pass ── */

/* One sequence of a batch. token_type_ids may be NULL (all zeros). */
typedef struct bs_seq {
    const int32_t *input_ids;
    const int32_t *token_type_ids;
    int32_t len; /* >= 1 and <= bs_model_max_seq_len() */
} bs_seq;

typedef struct bs_batch {
    const bs_seq *seqs;
    int32_t n_seqs; /* >= 1 */
} bs_batch;

/* Output flags for bs_model_outputs.want. */
enum {
    BS_OUT_HIDDEN = 1u << 0, /* last_hidden_state [total_tokens][hidden] */
    BS_OUT_POOLED = 1u << 1, /* pooler_output [n_seqs][hidden] (models with a pooler) */
    BS_OUT_LOGITS = 1u << 2, /* the head's logits (see bs_head_kind) */
};

/* Requests and results of one forward call. Initialise with
 * bs_model_outputs_init, set `want` (and for MLM the positions), call
 * bs_model_forward, read the result pointers, and reuse the object for the
 * next call (its buffers grow once and are then reused); release with
 * bs_model_outputs_release. One object per concurrent call. */
typedef struct bs_model_outputs {
    /* request */
    unsigned want;                /* BS_OUT_* flags */
    const int32_t *mlm_positions; /* MLM: packed token rows whose logits are wanted */
    int32_t n_mlm_positions;      /* MLM: number of rows (0 = none) */

    /* results, owned by this object, valid until the next call or release */
    int32_t n_seqs, total_tokens, hidden_size;
    float *last_hidden_state; /* [total_tokens][hidden_size] or NULL */
    float *pooler_output;     /* [n_seqs][hidden_size] or NULL */
    float *logits;            /* seq_cls [n_seqs][n_labels]; token_cls [total_tokens][n_labels];
                                 mlm [n_mlm_positions][vocab]; or NULL */
    int32_t n_labels;         /* columns of logits (vocab size for MLM) */
    float *start_logits;      /* QA: [total_tokens] */
    float *end_logits;        /* QA: [total_tokens] */

    void *priv_; /* private storage; do not touch */
} bs_model_outputs;

BS_API void bs_model_outputs_init(bs_model_outputs *out);
BS_API void bs_model_outputs_release(bs_model_outputs *out);

/* Runs the model on a padding-free batch and writes the requested outputs
 * into `out`. Thread-safe on one model (use one `out` per thread). Errors:
 * BS_EINVAL (empty batch or sequence, NULL ids, a flag the model cannot
 * honour such as BS_OUT_POOLED without a pooler, an MLM position outside the
 * batch), BS_ERANGE (a sequence longer than bs_model_max_seq_len, a token id
 * >= vocab_size or < 0, a token type >= type_vocab_size; the message names
 * the sequence, position and value), BS_ENOMEM. For BART, BS_OUT_HIDDEN gives
 * the encoder's last hidden state. BartForSequenceClassification's logits run
 * the decoder on shift_tokens_right(input_ids) (decoder_start_token_id first,
 * last token dropped) and classify its hidden state at the LAST eos_token_id
 * of each sequence; a sequence without eos_token_id is BS_EINVAL (the message
 * names it). Unlike transformers, sequences of one batch need not hold the
 * same number of eos tokens: each is classified on its own. */
BS_API int bs_model_forward(const bs_model *model, const bs_batch *batch, bs_model_outputs *out,
                            bs_err *err);

/* ── encoder-decoder (BART) ── */

typedef struct bs_encoder_state bs_encoder_state;
typedef struct bs_kv_cache bs_kv_cache;

/* Runs the encoder on `batch` and keeps its output (and the cross-attention
 * keys/values of every decoder layer) in *out, owned by the caller (free with
 * bs_encoder_state_free, after every cache made from it). The ids are copied;
 * the batch need not outlive the call. Errors as bs_model_forward, plus
 * BS_EUNSUPPORTED when the model is not an encoder-decoder. */
BS_API int bs_model_encode(const bs_model *model, const bs_batch *batch, bs_encoder_state **out,
                           bs_err *err);
/* The encoder state of `batch` from its encoder output computed elsewhere:
 * hidden is bs_model_forward's last_hidden_state for the same batch
 * [total_tokens][hidden] (e.g. rows a batcher handed back from a pass shared
 * with other requests). It is copied and the cross-attention keys/values
 * are computed, so the state equals bs_model_encode's. Errors as
 * bs_model_encode. */
BS_API int bs_model_encoder_state_from_hidden(const bs_model *model, const bs_batch *batch,
                                              const float *hidden, bs_encoder_state **out,
                                              bs_err *err);
/* Number of sequences and the packed encoder output [total_tokens][hidden]. */
BS_API int32_t bs_encoder_state_n_seqs(const bs_encoder_state *st);
BS_API const float *bs_encoder_state_hidden(const bs_encoder_state *st, int32_t *total_tokens);
BS_API void bs_encoder_state_free(bs_encoder_state *st);

/* Creates an empty decoder cache of n_rows rows (e.g. beams); row r attends
 * to encoder sequence row_seq[r]. max_len bounds the decoded length (<= the
 * model's max_position_embeddings). The cache refers to `enc`, which must
 * outlive it. Errors: BS_EINVAL (row_seq out of range), BS_ERANGE (max_len),
 * BS_ENOMEM. */
BS_API int bs_kv_cache_new(const bs_model *model, const bs_encoder_state *enc,
                           const int32_t *row_seq, int32_t n_rows, int32_t max_len,
                           bs_kv_cache **out, bs_err *err);
/* Tokens already decoded per row (all rows advance together). */
BS_API int32_t bs_kv_cache_len(const bs_kv_cache *cache);
BS_API int32_t bs_kv_cache_rows(const bs_kv_cache *cache);
/* Keeps rows src_rows[0..n_rows) as the new rows 0..n_rows-1 (a row may be
 * repeated: beam search's reorder; fewer rows: dropping finished rows). Each
 * new row keeps its source row's encoder sequence. Errors: BS_EINVAL (a source
 * row out of range, n_rows < 1 or more than the cache's capacity). */
BS_API int bs_kv_cache_reorder(bs_kv_cache *cache, const int32_t *src_rows, int32_t n_rows,
                               bs_err *err);
BS_API void bs_kv_cache_free(bs_kv_cache *cache);

/* Feeds n_new tokens per row (tokens[r * n_new + j]) to the decoder, appending
 * them to the cache, and writes the logits of each fed position to
 * logits_out[(r * n_new + j) * vocab + v] (final_logits_bias included, before
 * any logits processor). n_new 1 is one generation step; n_new > 1 is
 * teacher forcing. Not safe to call concurrently on the same cache. Errors:
 * BS_ERANGE (cache full: length would exceed max_len; token id out of
 * range), BS_EINVAL, BS_EUNSUPPORTED (the model has no language-model head:
 * use bs_model_decode_hidden). */
BS_API int bs_model_decode(const bs_model *model, bs_kv_cache *cache, const int32_t *tokens,
                           int32_t n_new, float *logits_out, bs_err *err);

/* Same as bs_model_decode, but writes the decoder's last hidden state of each
 * fed position to hidden_out[(r * n_new + j) * hidden + h] instead of logits
 * (BartModel's decoder output; works on models without a language-model
 * head). Errors as bs_model_decode. */
BS_API int bs_model_decode_hidden(const bs_model *model, bs_kv_cache *cache, const int32_t *tokens,
                                  int32_t n_new, float *hidden_out, bs_err *err);

/* bs_model_decode on n_caches different caches as one decoder pass: the
 * rows of every cache go through each dense layer together (the weights are
 * read once per pass), while attention stays per cache, over its own length,
 * keys/values and encoder state. Cache i is fed tokens[i] (rows_i * n_new)
 * and gets its logits in logits_out[i] [rows_i * n_new][vocab], equal to
 * what bs_model_decode on it alone writes. The pass' buffers belong to
 * caches[0]. No cache may appear twice or be used by another call at the
 * same time. Errors as bs_model_decode, for any cache (then none changed). */
BS_API int bs_model_decode_batch(const bs_model *model, bs_kv_cache *const *caches,
                                 int32_t n_caches, const int32_t *const *tokens, int32_t n_new,
                                 float *const *logits_out, bs_err *err);

/* One generation step: bs_model_decode with n_new = 1 (one token per row,
 * logits_out [rows][vocab]). */
BS_API int bs_model_decode_step(const bs_model *model, bs_kv_cache *cache,
                                const int32_t *next_tokens, float *logits_out, bs_err *err);

#ifdef __cplusplus
}
#endif
#endif
