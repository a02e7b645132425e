/* Private types of the tokenizer module: the normalized string with its
 * alignments to the original text, the pipeline components as loaded from
 * tokenizer.json, and the model interfaces. Shared by src/tokenizer/ only.
 * Functions here are prefixed bs_tok_ although private: libbertstudio is
 * linked into other programs, where names like model_free would collide. */
#ifndef BS_TOKENIZER_INTERNAL_H
#define BS_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "bertstudio/tokenizer.h"
#include "util/utf8.h"

/* Decodes one code point of UTF-8 known to be valid; 1 byte on a bad one. */
static inline size_t bs_utf8_decode_cp(const char *s, size_t len, uint32_t *cp)
{
    size_t k = bs_utf8_decode((const unsigned char *)s, len, cp);
    if (!k) *cp = 0xFFFD, k = 1;
    return k;
}

/* ── normalized string ─────────────────────────────────────────────────────
 * Code points of the text as the pipeline has changed it; each one carries
 * the span [a0, a1) of ORIGINAL bytes it came from (HuggingFace keeps one
 * alignment per byte, but all bytes of a char always share it). `shift` is
 * the original byte where this piece starts (for chars inserted at 0). */
/* Work budgets per input (issue 17 L5): regex steps over one pattern
 * search, and how far normalizers may grow a text (code points: growth x
 * input + slack). Exceeding either fails the input with BS_ERANGE. */
#define BS_TOK_REGEX_BUDGET 100000000u
#define BS_TOK_NORM_GROWTH  8u
#define BS_TOK_NORM_SLACK   65536u

typedef struct nstr {
    uint32_t *c;
    uint32_t *a0, *a1;
    size_t n, cap;
    uint32_t shift;
} nstr;

int bs_tok_nstr_init(nstr *s, size_t cap);
void bs_tok_nstr_free(nstr *s);
int bs_tok_nstr_push(nstr *s, uint32_t c, uint32_t a0, uint32_t a1);
/* Decodes valid UTF-8 text into s; alignments are the byte spans + base. */
int bs_tok_nstr_from_utf8(nstr *s, const char *text, size_t len, uint32_t base);
/* Copy of chars [from, to) of s. */
int bs_tok_nstr_slice(const nstr *s, size_t from, size_t to, nstr *out);
/* HF's NormalizedString::transform over the whole string: each new char with
 * its change (1 inserted, 0 replaces, -N replaces and removes N following). */
int bs_tok_nstr_transform(nstr *s, const uint32_t *nc, const int32_t *changes, size_t m,
                          size_t initial_offset);
/* A (char, change) list being built for bs_tok_nstr_transform. Start from {0}. */
typedef struct nstr_changes {
    uint32_t *c;
    int32_t *d;
    size_t n, cap;
} nstr_changes;
int bs_tok_nstr_changes_push(nstr_changes *t, uint32_t c, int32_t change);
void bs_tok_nstr_changes_free(nstr_changes *t);
/* bs_tok_nstr_transform(s, t's chars and changes), then frees t. */
int bs_tok_nstr_changes_apply(nstr_changes *t, nstr *s, size_t initial_offset);
/* UTF-8 of the chars; *map (optional) gets, per byte offset 0..len, the
 * char index (size len+1). Caller frees both. */
int bs_tok_nstr_to_utf8(const nstr *s, char **out, size_t *len, uint32_t **map);
/* Same into caller buffers of at least 4 * n + 1 bytes and entries; returns
 * the byte length. */
size_t bs_tok_nstr_to_utf8_buf(const nstr *s, char *buf, uint32_t *map);

/* Unicode helpers (utf8proc) with Rust's semantics. */
int bs_tok_uc_is_whitespace(uint32_t c); /* Rust char::is_whitespace */
int bs_tok_uc_is_alnum(uint32_t c);      /* Rust char::is_alphanumeric */
int bs_tok_uc_is_punct(uint32_t c);      /* Unicode P* */
int bs_tok_uc_category(uint32_t c);      /* utf8proc category */
int bs_tok_uc_is_mark(uint32_t c);       /* M* */
int bs_tok_uc_is_chinese(uint32_t c);    /* BERT's CJK ranges */
/* Rust char::to_lowercase into out (up to 3); returns count. */
int bs_tok_uc_lower(uint32_t c, uint32_t *out);

/* ── string → id map (open addressing) ── */
typedef struct vocab_map {
    char **keys; /* owned strings */
    uint32_t *klen;
    int32_t *vals;
    size_t cap, count;
} vocab_map;

int bs_tok_vmap_init(vocab_map *m, size_t expected);
void bs_tok_vmap_free(vocab_map *m);
/* Inserts or overwrites; key copied. */
int bs_tok_vmap_put(vocab_map *m, const char *k, size_t klen, int32_t v);
int32_t bs_tok_vmap_get(const vocab_map *m, const char *k, size_t klen); /* -1 when absent */
uint64_t bs_tok_vmap_hash(const char *k, size_t len);

/* ── components ── */
enum {
    NORM_BERT = 1,
    NORM_NFC,
    NORM_NFD,
    NORM_NFKC,
    NORM_NFKD,
    NORM_LOWER,
    NORM_STRIP_ACCENTS,
    NORM_STRIP,
    NORM_REPLACE,
    NORM_PREPEND,
    NORM_PRECOMPILED,
    NORM_SEQ
};

typedef struct pattern {
    int is_regex;
    char *str; /* literal string (UTF-8) */
    size_t len;
    pcre2_code *re;
} pattern;

typedef struct normalizer {
    int type;
    /* bert */
    int clean_text, handle_chinese, strip_accents, lowercase;
    /* strip */
    int left, right;
    /* replace / prepend */
    pattern pat;
    char *content;
    /* precompiled */
    uint8_t *pc_blob;
    size_t pc_len;
    uint32_t *pc_trie;
    size_t pc_trie_n;
    const uint8_t *pc_norm;
    size_t pc_norm_len;
    /* sequence */
    struct normalizer *subs;
    size_t n_subs;
} normalizer;

enum {
    PRE_BERT = 1,
    PRE_BYTELEVEL,
    PRE_WHITESPACE,
    PRE_WHITESPACE_SPLIT,
    PRE_METASPACE,
    PRE_PUNCT,
    PRE_DIGITS,
    PRE_SPLIT,
    PRE_SEQ,
    PRE_CHAR_DELIM,
    PRE_UNICODE_SCRIPTS
};
enum { SPLIT_REMOVED = 0, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum { PREPEND_ALWAYS = 0, PREPEND_FIRST, PREPEND_NEVER };

typedef struct pretok {
    int type;
    int add_prefix_space, use_regex, trim_offsets;
    uint32_t replacement;
    int prepend_scheme, split;
    int behavior, invert, individual_digits;
    uint32_t delim;
    pattern pat;
    struct pretok *subs;
    size_t n_subs;
} pretok;

/* ── models ── */
typedef struct model_token {
    int32_t id;
    uint32_t b0, b1; /* byte offsets in the piece's UTF-8 */
    const char *str; /* when not NULL, the token string (else the vocab's) */
    size_t str_len;
} model_token;

typedef struct tok_vec {
    model_token *v;
    size_t n, cap;
    char *strbuf; /* storage for non-vocab token strings */
    size_t sb_len, sb_cap;
} tok_vec;

int bs_tok_tokvec_push(tok_vec *t, int32_t id, uint32_t b0, uint32_t b1);
int bs_tok_tokvec_push_str(tok_vec *t, int32_t id, uint32_t b0, uint32_t b1, const char *s,
                           size_t n);
void bs_tok_tokvec_free(tok_vec *t);

typedef struct bpe_cache bpe_cache;

typedef struct model {
    int kind; /* bs_model_kind */
    vocab_map vocab;
    char **id_to_tok; /* by id, NULL holes */
    uint32_t *id_len;
    size_t n_ids;
    int32_t unk_id;
    char *unk_token;
    /* wordpiece */
    char *prefix; /* continuing_subword_prefix (also BPE's) */
    size_t max_input_chars;
    /* bpe */
    char *suffix; /* end_of_word_suffix */
    int byte_fallback, fuse_unk, ignore_merges;
    struct merge_map *merges;
    bpe_cache *cache;
    /* unigram */
    double *scores;
    double min_score;
    size_t max_piece_len;
} model;

int bs_tok_model_tokenize(const model *m, const char *s, size_t len, tok_vec *out);
void bs_tok_model_free(model *m);
int bs_tok_wordpiece_tokenize(const model *m, const char *s, size_t len, tok_vec *out);
int bs_tok_bpe_tokenize(const model *m, const char *s, size_t len, tok_vec *out);
int bs_tok_unigram_tokenize(const model *m, const char *s, size_t len, tok_vec *out);
int bs_tok_bpe_add_merge(model *m, int32_t a, int32_t b, uint32_t rank, int32_t merged);
int bs_tok_bpe_finish(model *m);
/* Model id → string (NULL when absent). */
const char *bs_tok_model_id_to_token(const model *m, int32_t id, size_t *len);
int bs_tok_model_set_vocab(model *m, size_t n_ids);

/* ── post-processor ── */
enum { POST_TEMPLATE = 1, POST_BERT, POST_ROBERTA, POST_BYTELEVEL, POST_SEQ };

typedef struct tmpl_piece {
    int is_special; /* 1: special token name, 0: sequence A/B */
    int seq;        /* 0 = A, 1 = B */
    int32_t type_id;
    char *special; /* name, looked up in special_tokens */
} tmpl_piece;

typedef struct tmpl_special {
    char *name;
    int32_t *ids;
    char **tokens;
    size_t n;
} tmpl_special;

typedef struct postproc {
    int type;
    tmpl_piece *single, *pair;
    size_t n_single, n_pair;
    tmpl_special *specials;
    size_t n_specials;
    /* bert/roberta */
    char *cls, *sep;
    int32_t cls_id, sep_id;
    int trim_offsets, add_prefix_space;
    struct postproc *subs;
    size_t n_subs;
} postproc;

/* ── decoder ── */
enum {
    DEC_WORDPIECE = 1,
    DEC_BYTELEVEL,
    DEC_METASPACE,
    DEC_BPE,
    DEC_SEQ,
    DEC_REPLACE,
    DEC_BYTE_FALLBACK,
    DEC_FUSE,
    DEC_STRIP,
    DEC_CTC
};

typedef struct decoder {
    int type;
    char *prefix; /* wordpiece prefix / bpe suffix */
    int cleanup;
    uint32_t replacement;
    int prepend_scheme;
    pattern pat;
    char *content;
    size_t strip_start, strip_stop;
    struct decoder *subs;
    size_t n_subs;
} decoder;

/* ── added vocabulary ── */
typedef struct added_token {
    char *content;
    size_t len;
    int32_t id;
    int single_word, lstrip, rstrip, normalized, special;
    char *norm_content; /* content after the normalizer (normalized tokens) */
    size_t norm_len;
} added_token;

struct bs_tokenizer {
    normalizer *norm;
    pretok *pre;
    model model;
    postproc *post;
    decoder *dec;
    added_token *added;
    size_t n_added;
    vocab_map added_map; /* content → index into added */
    int32_t special_ids[BS_SPECIAL_COUNT];
    size_t model_max_length;
    int clean_up_spaces;
    int32_t pad_id, pad_type_id;
    char *pad_token;
};

/* Runs the normalizer on s in place. */
int bs_tok_normalize_run(const normalizer *n, nstr *s);
void bs_tok_normalizer_free(normalizer *n);
/* Pre-tokenizes: *pieces (array of nstr) replaced by the split result. */
typedef struct piece_list {
    nstr *v;
    size_t n, cap;
} piece_list;
int bs_tok_pieces_push(piece_list *l, nstr *s); /* takes ownership of *s */
void bs_tok_pieces_free(piece_list *l);
int bs_tok_pretok_run(const pretok *p, piece_list *l);
void bs_tok_pretok_free(pretok *p);
/* Byte-level alphabet: byte → code point. */
uint32_t bs_tok_bytelevel_char(uint8_t b);
int bs_tok_bytelevel_byte(uint32_t c); /* -1 when not in the alphabet */

int bs_tok_pattern_compile(pattern *p, const char *str, size_t len, int is_regex, char *err,
                           size_t errlen);
void bs_tok_pattern_free(pattern *p);
/* Match spans [s,e) in chars of the nstr; *out array (pairs) of *n matches. */
int bs_tok_pattern_find(const pattern *p, const nstr *s, size_t **out, size_t *n);

void bs_tok_postproc_free(postproc *p);
int bs_tok_postproc_run(const postproc *p, bs_encoding *a, bs_encoding *b, int add_special,
                        bs_encoding *out);
void bs_tok_decoder_free(decoder *d);
size_t bs_tok_postproc_added(const postproc *p, int pair);

int bs_tok_precompiled_init(normalizer *n, const uint8_t *blob, size_t len);
int bs_tok_precompiled_run(const normalizer *n, nstr *s);

/* Decodes a token list to a string with the decoder; *out_len (optional)
 * gets the byte length (the text may contain NUL). */
int bs_tok_decoder_run(const decoder *d, const char *const *toks, size_t n, char **out,
                       size_t *out_len);

#endif
