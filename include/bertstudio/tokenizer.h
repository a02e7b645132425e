/*
 * Tokenizer: loads HuggingFace tokenizers (tokenizer.json, or the older
 * vocab.txt / vocab.json + merges.txt files) and reproduces the Rust
 * `tokenizers` library (0.23) exactly: ids, offsets, truncation, padding,
 * overflowing windows and decoding. A loaded tokenizer is immutable; every
 * function below may be called concurrently on one tokenizer from many threads.
 *
 * Offsets: `offsets` are in Unicode code points (Python str indices) into the
 * token's own input string (text for sequence 0, pair for sequence 1);
 * `byte_offsets` are the same spans in UTF-8 bytes. Both are half-open.
 * Special and padding tokens have (0, 0).
 */
#ifndef BERTSTUDIO_TOKENIZER_H
#define BERTSTUDIO_TOKENIZER_H

#include "bertstudio/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bs_tokenizer bs_tokenizer;

typedef enum bs_trunc_strategy {
    BS_TRUNC_NONE = 0,
    BS_TRUNC_LONGEST_FIRST,
    BS_TRUNC_ONLY_FIRST,
    BS_TRUNC_ONLY_SECOND,
} bs_trunc_strategy;

typedef enum bs_pad_strategy {
    BS_PAD_NONE = 0,
    BS_PAD_LONGEST,    /* to the longest encoding of the call (batch) */
    BS_PAD_MAX_LENGTH, /* to padding.max_length */
} bs_pad_strategy;

typedef enum bs_direction { BS_DIR_RIGHT = 0, BS_DIR_LEFT = 1 } bs_direction;

typedef enum bs_model_kind {
    BS_MODEL_WORDPIECE = 1,
    BS_MODEL_BPE = 2,
    BS_MODEL_UNIGRAM = 3,
    BS_MODEL_WORDLEVEL = 4,
} bs_model_kind;

typedef enum bs_special_kind {
    BS_SPECIAL_CLS = 0, /* [CLS], or the BOS token when there is no CLS */
    BS_SPECIAL_SEP,     /* [SEP], or the EOS token when there is no SEP */
    BS_SPECIAL_PAD,
    BS_SPECIAL_MASK,
    BS_SPECIAL_UNK,
    BS_SPECIAL_BOS, /* <s>, or CLS when there is no BOS */
    BS_SPECIAL_EOS, /* </s>, or SEP when there is no EOS */
    BS_SPECIAL_COUNT
} bs_special_kind;

/* Encoding options. Start from bs_encode_opts_default(), then set fields. */
typedef struct bs_encode_opts {
    int add_special_tokens; /* post-processor's [CLS]/[SEP]...; default 1 */
    struct {
        bs_trunc_strategy strategy; /* BS_TRUNC_NONE = no truncation */
        size_t max_length;          /* counts the special tokens */
        size_t stride;              /* overlap between overflowing windows */
        bs_direction direction;
        /* 0: tokenizers 0.23 behaviour (tokenizing stops early once a sequence
         * reaches max_length, so the overflowing windows only cover what was
         * tokenized). 1: tokenize everything and return the complete set of
         * windows covering the whole text (what the QA pipeline needs). */
        int full_coverage_windows;
    } truncation;
    struct {
        bs_pad_strategy strategy;  /* BS_PAD_NONE = no padding */
        size_t max_length;         /* for BS_PAD_MAX_LENGTH */
        size_t pad_to_multiple_of; /* 0 = none */
        bs_direction direction;
    } padding;
} bs_encode_opts;

typedef struct bs_span {
    size_t start, end;
} bs_span;

/* One encoded input. All per-token arrays have `len` entries. Owned by the
 * encoding; free the whole thing with bs_encoding_free(). */
typedef struct bs_encoding {
    size_t len;
    int32_t *ids;
    int32_t *type_ids;
    uint8_t *attention_mask;      /* 1 real token, 0 padding */
    uint8_t *special_tokens_mask; /* 1 for post-processor tokens and padding */
    int32_t *word_ids;            /* -1 = none (special, padding) */
    int32_t *sequence_ids;        /* 0, 1, or -1 (special, padding) */
    char **tokens;                /* NUL-terminated token strings */
    bs_span *offsets;             /* code points into the token's own input */
    bs_span *byte_offsets;        /* UTF-8 bytes into the token's own input */
    /* Overflowing windows (truncation with return of the rest), in the
     * library's order; each has n_overflowing == 0 itself. */
    struct bs_encoding *overflowing;
    size_t n_overflowing;
    void *storage_; /* private: where the token strings live */
} bs_encoding;

/* Fills opts with: add_special_tokens 1, no truncation, no padding. */
BS_API void bs_encode_opts_default(bs_encode_opts *opts);

/* Loads a tokenizer from a model folder (tokenizer.json; or, without one,
 * vocab.txt for WordPiece or vocab.json + merges.txt for byte-level BPE,
 * configured by tokenizer_config.json / special_tokens_map.json) or from a
 * path to a tokenizer.json file. On success *out owns the tokenizer (free
 * with bs_tokenizer_free). Errors: BS_ENOTFOUND (no usable files), BS_EIO,
 * BS_EFORMAT (malformed file; the message names the component and field),
 * BS_EUNSUPPORTED (unknown component type), BS_ENOMEM. */
BS_API int bs_tokenizer_load(const char *model_dir_or_tokenizer_json, bs_tokenizer **out,
                             bs_err *err);

/* Same as bs_tokenizer_load from the bytes of a tokenizer.json (copied). */
BS_API int bs_tokenizer_load_json(const char *json, size_t len, bs_tokenizer **out, bs_err *err);

/* Frees a tokenizer (NULL is fine). No call may be in flight on it. */
BS_API void bs_tokenizer_free(bs_tokenizer *tok);

/* Encodes text (and pair when not NULL) into *out (free with
 * bs_encoding_free). opts NULL = defaults. Errors: BS_EUTF8 (text or pair
 * is not valid UTF-8), BS_EINVAL (truncation impossible, e.g. only_second
 * with a second sequence too short, or stride >= room for tokens). */
BS_API int bs_tokenizer_encode(const bs_tokenizer *tok, const char *text, size_t text_len,
                               const char *pair, size_t pair_len, const bs_encode_opts *opts,
                               bs_encoding **out, bs_err *err);

/* Encodes n inputs (pairs NULL, or an array of n entries, each possibly
 * NULL) with opts; padding BS_PAD_LONGEST pads to the longest of the batch
 * (overflowing windows included). *out receives an array of n encodings
 * (free with bs_encoding_batch_free). Thread-safe on a shared tokenizer. */
BS_API int bs_tokenizer_encode_batch(const bs_tokenizer *tok, size_t n, const char *const *texts,
                                     const size_t *text_lens, const char *const *pairs,
                                     const size_t *pair_lens, const bs_encode_opts *opts,
                                     bs_encoding ***out, bs_err *err);

/* Frees an encoding from bs_tokenizer_encode (NULL is fine). */
BS_API void bs_encoding_free(bs_encoding *enc);

/* Frees the n encodings (NULL entries are fine) and the malloc'ed array
 * holding them (NULL is fine), e.g. what bs_tokenizer_encode_batch made. */
BS_API void bs_encoding_batch_free(bs_encoding **encs, size_t n);

/* Decodes ids to text with the tokenizer's decoder (as the library's
 * decode(ids, skip_special_tokens)). *out is NUL-terminated, caller frees
 * with free(). Unknown ids are skipped. Errors: BS_ENOMEM. */
BS_API int bs_tokenizer_decode(const bs_tokenizer *tok, const int32_t *ids, size_t n,
                               int skip_special_tokens, char **out, bs_err *err);

/* Same as bs_tokenizer_decode, with the byte length in *out_len (optional):
 * decoded bytes may contain NUL (a byte-level token for the NUL byte). */
BS_API int bs_tokenizer_decode_len(const bs_tokenizer *tok, const int32_t *ids, size_t n,
                                   int skip_special_tokens, char **out, size_t *out_len,
                                   bs_err *err);

/* Runs the tokenizer's decoder chain on n token strings, which need not be
 * vocabulary tokens (the library's decoder.decode(tokens), what transformers'
 * convert_tokens_to_string does): e.g. words already decoded, decoded again
 * as a group. Without a decoder the tokens are joined with spaces. *out is
 * NUL-terminated, caller frees with free(); *out_len (optional) gets the
 * byte length (a ByteLevel token may decode to a NUL byte). Errors:
 * BS_EINVAL (a NULL token), BS_ENOMEM. */
BS_API int bs_tokenizer_decode_tokens(const bs_tokenizer *tok, const char *const *tokens, size_t n,
                                      char **out, size_t *out_len, bs_err *err);

/* Id of a token string (vocabulary or added tokens), or -1. */
BS_API int32_t bs_tokenizer_token_to_id(const bs_tokenizer *tok, const char *token, size_t len);

/* Token string of an id (vocabulary or added token), or NULL. Owned by tok. */
BS_API const char *bs_tokenizer_id_to_token(const bs_tokenizer *tok, int32_t id);

/* Vocabulary size including added tokens (max id + 1). */
BS_API size_t bs_tokenizer_vocab_size(const bs_tokenizer *tok);

/* 1 when id is a special added token (skipped by skip_special_tokens). */
BS_API int bs_tokenizer_is_special(const bs_tokenizer *tok, int32_t id);

/* Id of a special token kind, or -1 when the tokenizer has none. */
BS_API int32_t bs_tokenizer_special_id(const bs_tokenizer *tok, bs_special_kind kind);

/* String of a special token kind, or NULL. Owned by tok. */
BS_API const char *bs_tokenizer_special_token(const bs_tokenizer *tok, bs_special_kind kind);

/* model_max_length from tokenizer_config.json, or 0 when unknown or absurd
 * (transformers writes 1e30 for "no limit"). */
BS_API size_t bs_tokenizer_model_max_length(const bs_tokenizer *tok);

/* clean_up_tokenization_spaces from tokenizer_config.json (1 when absent,
 * transformers' historical default). */
BS_API int bs_tokenizer_clean_up_tokenization_spaces(const bs_tokenizer *tok);

/* The model's continuing_subword_prefix ("##" for WordPiece), or NULL. */
BS_API const char *bs_tokenizer_continuing_subword_prefix(const bs_tokenizer *tok);

/* The model kind (WordPiece, BPE, Unigram, WordLevel). */
BS_API bs_model_kind bs_tokenizer_model_kind(const bs_tokenizer *tok);

/* How many special tokens the post-processor adds to one text (pair = 0)
 * or to a pair (pair = 1). */
BS_API size_t bs_tokenizer_num_special_tokens(const bs_tokenizer *tok, int pair);

#ifdef __cplusplus
}
#endif
#endif
