/* The public tokenizer API: loading, encode (truncation with overflowing
 * windows, post-processing, padding, code point offsets), batch encode,
 * decode and vocabulary queries. A loaded tokenizer is never written to, so
 * all of it is safe to call from many threads at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer/encoding.h"
#include "tokenizer/load.h"
#include "tokenizer/pipeline.h"
#include "util/file.h"

void bs_encode_opts_default(bs_encode_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->add_special_tokens = 1;
}

/* Normalized forms of the normalized added tokens, and the special ids. */
static int finish_load(bs_tokenizer *tok, bs_err *err)
{
    int rc = bs_tok_vmap_init(&tok->added_map, tok->n_added);
    if (rc) return bs_err_set(err, rc, "out of memory");
    for (size_t i = 0; i < tok->n_added; i++) {
        added_token *t = &tok->added[i];
        if ((rc = bs_tok_vmap_put(&tok->added_map, t->content, t->len, (int32_t)i))) return rc;
        if (!t->normalized) continue;
        nstr s;
        if (bs_tok_nstr_from_utf8(&s, t->content, t->len, 0)) return BS_ENOMEM;
        rc = bs_tok_normalize_run(tok->norm, &s);
        if (!rc) rc = bs_tok_nstr_to_utf8(&s, &t->norm_content, &t->norm_len, NULL);
        bs_tok_nstr_free(&s);
        if (rc) return bs_err_set(err, rc, "added token %s: normalization failed", t->content);
    }
    return 0;
}

static void guess_specials(bs_tokenizer *tok)
{
    static const char *const names[BS_SPECIAL_COUNT][3] = {
        [BS_SPECIAL_CLS] = {"[CLS]", "<s>", NULL},   [BS_SPECIAL_SEP] = {"[SEP]", "</s>", NULL},
        [BS_SPECIAL_PAD] = {"[PAD]", "<pad>", NULL}, [BS_SPECIAL_MASK] = {"[MASK]", "<mask>", NULL},
        [BS_SPECIAL_UNK] = {"[UNK]", "<unk>", NULL}, [BS_SPECIAL_BOS] = {"<s>", "[CLS]", NULL},
        [BS_SPECIAL_EOS] = {"</s>", "[SEP]", NULL},
    };
    for (int k = 0; k < BS_SPECIAL_COUNT; k++) {
        if (tok->special_ids[k] >= 0) continue;
        for (int j = 0; j < 2 && tok->special_ids[k] < 0; j++)
            tok->special_ids[k] = bs_tokenizer_token_to_id(tok, names[k][j], strlen(names[k][j]));
    }
    if (tok->special_ids[BS_SPECIAL_UNK] < 0) tok->special_ids[BS_SPECIAL_UNK] = tok->model.unk_id;
    tok->pad_id = tok->special_ids[BS_SPECIAL_PAD] >= 0 ? tok->special_ids[BS_SPECIAL_PAD] : 0;
    const char *pt = bs_tokenizer_id_to_token(tok, tok->pad_id);
    tok->pad_token = strdup(pt ? pt : "[PAD]");
}

static bs_tokenizer *tok_new(void)
{
    bs_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return NULL;
    for (int k = 0; k < BS_SPECIAL_COUNT; k++) tok->special_ids[k] = -1;
    tok->clean_up_spaces = 1;
    tok->model.unk_id = -1;
    return tok;
}

int bs_tokenizer_load_json(const char *json, size_t len, bs_tokenizer **out, bs_err *err)
{
    *out = NULL;
    bs_tokenizer *tok = tok_new();
    if (!tok) return bs_err_set(err, BS_ENOMEM, "out of memory");
    int rc = bs_tok_load_tokenizer_json(json, len, tok, err);
    if (!rc) rc = finish_load(tok, err);
    if (rc) {
        bs_tokenizer_free(tok);
        return rc;
    }
    guess_specials(tok);
    if (!tok->pad_token) {
        bs_tokenizer_free(tok);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    *out = tok;
    return 0;
}

int bs_tokenizer_load(const char *path, bs_tokenizer **out, bs_err *err)
{
    *out = NULL;
    struct stat st;
    if (!path || stat(path, &st))
        return bs_err_set(err, BS_ENOTFOUND, "%s: no such file or folder", path ? path : "(null)");
    char dir[4096], file[4200];
    if (S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(file, sizeof file, "%s/tokenizer.json", path);
    } else {
        snprintf(file, sizeof file, "%s", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *sl = strrchr(dir, '/');
        if (sl)
            *sl = 0;
        else
            snprintf(dir, sizeof dir, ".");
    }
    size_t len;
    char *text = NULL;
    bs_err rerr = {0};
    int rc = bs_file_read(file, (size_t)1 << 31, &text, &len, &rerr);
    bs_tokenizer *tok = NULL;
    if (!rc) {
        rc = bs_tokenizer_load_json(text, len, &tok, err);
        free(text);
        if (rc) return bs_err_prefix(err, "%s", file);
    } else if (rc == BS_ENOTFOUND && S_ISDIR(st.st_mode)) {
        tok = tok_new();
        if (!tok) return bs_err_set(err, BS_ENOMEM, "out of memory");
        rc = bs_tok_load_legacy(dir, tok, err);
        if (!rc) rc = finish_load(tok, err);
        if (rc) {
            bs_tokenizer_free(tok);
            return rc;
        }
    } else {
        return bs_err_set(err, rc, "%s: cannot read (%s)", file, bs_strerror(rc));
    }
    rc = bs_tok_load_configs(dir, tok, err);
    if (rc) {
        bs_tokenizer_free(tok);
        return rc;
    }
    free(tok->pad_token);
    tok->pad_token = NULL;
    guess_specials(tok);
    if (!tok->pad_token) {
        bs_tokenizer_free(tok);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    *out = tok;
    return 0;
}

void bs_tokenizer_free(bs_tokenizer *tok)
{
    if (!tok) return;
    bs_tok_normalizer_free(tok->norm);
    free(tok->norm);
    bs_tok_pretok_free(tok->pre);
    free(tok->pre);
    bs_tok_model_free(&tok->model);
    bs_tok_postproc_free(tok->post);
    free(tok->post);
    bs_tok_decoder_free(tok->dec);
    free(tok->dec);
    for (size_t i = 0; i < tok->n_added; i++) {
        free(tok->added[i].content);
        free(tok->added[i].norm_content);
    }
    free(tok->added);
    bs_tok_vmap_free(&tok->added_map);
    free(tok->pad_token);
    free(tok);
}

/* ── encode ── */

static int truncate_pair(bs_encoding *a, bs_encoding *b, size_t max_length, const bs_encode_opts *o,
                         bs_err *err)
{
    size_t stride = o->truncation.stride;
    int left = o->truncation.direction == BS_DIR_LEFT;
    size_t la = a->len, lb = b ? b->len : 0, total = la + lb;
    int rc = 0;
    if (max_length == 0) {
        rc = bs_tok_enc_truncate(a, 0, stride, left);
        if (!rc && b) rc = bs_tok_enc_truncate(b, 0, stride, left);
        return rc ? bs_err_set(err, rc, "truncation failed") : 0;
    }
    if (total <= max_length) return 0;
    size_t to_remove = total - max_length;
    switch (o->truncation.strategy) {
    case BS_TRUNC_LONGEST_FIRST:
        if (b) {
            size_t n1 = la, n2 = lb;
            int swap = n1 > n2;
            if (swap) n1 = lb, n2 = la;
            if (n1 > max_length)
                n2 = n1;
            else
                n2 = n1 > max_length - n1 ? n1 : max_length - n1;
            if (n1 + n2 > max_length) {
                n1 = max_length / 2;
                n2 = n1 + max_length % 2;
            }
            if (swap) {
                size_t t = n1;
                n1 = n2;
                n2 = t;
            }
            if (stride >= n1 && n1 < la) goto bad_stride;
            if (stride >= n2 && n2 < lb) goto bad_stride;
            rc = bs_tok_enc_truncate(a, n1, stride, left);
            if (!rc) rc = bs_tok_enc_truncate(b, n2, stride, left);
        } else {
            if (stride >= total - to_remove) goto bad_stride;
            rc = bs_tok_enc_truncate(a, total - to_remove, stride, left);
        }
        break;
    case BS_TRUNC_ONLY_FIRST:
    case BS_TRUNC_ONLY_SECOND: {
        bs_encoding *t = o->truncation.strategy == BS_TRUNC_ONLY_FIRST ? a : b;
        if (!t)
            return bs_err_set(err, BS_EINVAL,
                              "truncation only_second: no second sequence was given");
        if (t->len <= to_remove)
            return bs_err_set(
                err, BS_EINVAL,
                "truncation: the sequence to truncate is too short to respect max_length %zu",
                max_length);
        if (stride >= t->len - to_remove) goto bad_stride;
        rc = bs_tok_enc_truncate(t, t->len - to_remove, stride, left);
        break;
    }
    default:
        break;
    }
    return rc ? bs_err_set(err, rc, "truncation failed") : 0;
bad_stride:
    return bs_err_set(
        err, BS_EINVAL,
        "truncation: stride %zu must be smaller than the room left for tokens in max_length",
        stride);
}

/* Byte offsets → code point offsets, as the library converts them right
 * after tokenizing (BytesToCharOffsetConverter: an offset it cannot map is
 * left as it is). Post-processors then work on code points. */
static void to_chars(bs_encoding *e, const uint32_t *m, size_t l)
{
    for (size_t i = 0; i < e->len; i++) {
        bs_span b = e->byte_offsets[i];
        if (b.start >= l) {
            e->offsets[i] = b;
            continue;
        }
        size_t en =
            b.end < l ? m[b.end] : (b.end > 0 ? (size_t)m[b.end - 1] + 1 : (size_t)m[b.start] + 1);
        e->offsets[i] = (bs_span){m[b.start], en};
    }
}

/* Code point offsets → byte offsets of the token's own input. */
static void to_bytes(bs_encoding *e, const uint32_t *ca, size_t na, const uint32_t *cb, size_t nb)
{
    for (size_t i = 0; i < e->len; i++) {
        bs_span c = e->offsets[i];
        int s = e->sequence_ids[i];
        const uint32_t *m = s == 1 ? cb : ca;
        size_t n = s == 1 ? nb : na;
        if (s < 0 || !m) {
            e->byte_offsets[i] = (bs_span){0, 0};
            continue;
        }
        e->byte_offsets[i] =
            (bs_span){c.start <= n ? m[c.start] : c.start, c.end <= n ? m[c.end] : c.end};
    }
    for (size_t i = 0; i < e->n_overflowing; i++) to_bytes(&e->overflowing[i], ca, na, cb, nb);
}

/* byte → index of the char holding it (len+1 entries). */
static uint32_t *char_map(const char *s, size_t len)
{
    uint32_t *m = malloc((len + 1) * sizeof *m);
    if (!m) return NULL;
    uint32_t ci = 0;
    for (size_t i = 0; i < len; i++) {
        if (i && ((unsigned char)s[i] & 0xC0) != 0x80) ci++;
        m[i] = ci;
    }
    m[len] = len ? ci + 1 : 0;
    return m;
}

/* char index → its first byte (nchars+1 entries); *n = nchars. */
static uint32_t *byte_map(const char *s, size_t len, size_t *n)
{
    uint32_t *m = malloc((len + 1) * sizeof *m);
    if (!m) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) m[k++] = (uint32_t)i;
    m[k] = (uint32_t)len;
    *n = k;
    return m;
}

static int check_text(const char *s, size_t len, const char *what, bs_err *err)
{
    size_t bad;
    if (len && !s) return bs_err_set(err, BS_EINVAL, "%s is NULL", what);
    if (len >= UINT32_MAX / 2)
        return bs_err_set(err, BS_ELIMIT, "%s is too long (%zu bytes)", what, len);
    if (len && bs_utf8_validate(s, len, &bad))
        return bs_err_set(err, BS_EUTF8, "%s is not valid UTF-8 (byte %zu)", what, bad);
    return 0;
}

/* Encode without padding; out is filled (caller clears). */
static int encode_one(const bs_tokenizer *tok, const char *text, size_t tlen, const char *pair,
                      size_t plen, const bs_encode_opts *o, bs_encoding *out, bs_err *err)
{
    int rc;
    if ((rc = check_text(text, tlen, "text", err))) return rc;
    if (pair && (rc = check_text(pair, plen, "text_pair", err))) return rc;
    int trunc = o->truncation.strategy != BS_TRUNC_NONE;
    size_t limit_a = 0, limit_b = 0;
    int left = o->truncation.direction == BS_DIR_LEFT;
    if (trunc && !o->truncation.full_coverage_windows) {
        limit_a =
            (o->truncation.strategy == BS_TRUNC_ONLY_SECOND && pair) ? 0 : o->truncation.max_length;
        limit_b = o->truncation.max_length;
        if (o->truncation.max_length == 0) limit_a = limit_b = 0;
    }
    bs_encoding a, b;
    memset(&b, 0, sizeof b);
    uint32_t *ma = char_map(text, tlen), *mb = pair ? char_map(pair, plen) : NULL;
    if (!ma || (pair && !mb)) {
        free(ma);
        free(mb);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    rc = bs_tok_pipeline_encode_seq(tok, text, tlen, 0, limit_a, left, &a, err);
    if (!rc) to_chars(&a, ma, tlen);
    if (!rc && pair) {
        rc = bs_tok_pipeline_encode_seq(tok, pair, plen, 1, limit_b, left, &b, err);
        if (!rc) to_chars(&b, mb, plen);
    }
    free(ma);
    free(mb);
    if (rc) {
        bs_tok_enc_clear(&a);
        return rc;
    }
    if (trunc) {
        size_t n_added = o->add_special_tokens ? bs_tok_postproc_added(tok->post, pair != NULL) : 0;
        size_t ml = o->truncation.max_length;
        if (ml < n_added)
            rc = bs_err_set(err, BS_EINVAL,
                            "truncation: max_length %zu is smaller than the %zu special tokens", ml,
                            n_added);
        else
            rc = truncate_pair(&a, pair ? &b : NULL, ml - n_added, o, err);
    }
    if (!rc) rc = bs_tok_postproc_run(tok->post, &a, pair ? &b : NULL, o->add_special_tokens, out);
    bs_tok_enc_clear(&a);
    bs_tok_enc_clear(&b);
    if (rc) {
        if (err && !err->code) bs_err_set(err, rc, "post-processing failed");
        return rc;
    }
    size_t na = 0, nb = 0;
    uint32_t *ba = byte_map(text, tlen, &na), *bb = pair ? byte_map(pair, plen, &nb) : NULL;
    if (!ba || (pair && !bb))
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    else
        to_bytes(out, ba, na, bb, nb);
    free(ba);
    free(bb);
    return rc;
}

static int pad_target(const bs_encode_opts *o, size_t longest, size_t *target)
{
    size_t t = o->padding.strategy == BS_PAD_MAX_LENGTH ? o->padding.max_length : longest;
    size_t m = o->padding.pad_to_multiple_of;
    if (m > 0 && t % m) t += m - t % m;
    *target = t;
    return 0;
}

int bs_tokenizer_encode(const bs_tokenizer *tok, const char *text, size_t text_len,
                        const char *pair, size_t pair_len, const bs_encode_opts *opts,
                        bs_encoding **out, bs_err *err)
{
    *out = NULL;
    if (err) err->code = 0, err->msg[0] = 0;
    bs_encode_opts def;
    if (!opts) {
        bs_encode_opts_default(&def);
        opts = &def;
    }
    bs_encoding *e = calloc(1, sizeof *e);
    if (!e) return bs_err_set(err, BS_ENOMEM, "out of memory");
    int rc = encode_one(tok, text, text_len, pair, pair_len, opts, e, err);
    if (!rc && opts->padding.strategy != BS_PAD_NONE) {
        size_t target;
        pad_target(opts, e->len, &target);
        rc = bs_tok_enc_pad(e, target, tok->pad_id, 0, tok->pad_token,
                            opts->padding.direction == BS_DIR_LEFT);
        if (rc) bs_err_set(err, rc, "out of memory");
    }
    if (rc) {
        bs_encoding_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

int bs_tokenizer_encode_batch(const bs_tokenizer *tok, size_t n, const char *const *texts,
                              const size_t *text_lens, const char *const *pairs,
                              const size_t *pair_lens, const bs_encode_opts *opts,
                              bs_encoding ***out, bs_err *err)
{
    *out = NULL;
    if (err) err->code = 0, err->msg[0] = 0;
    bs_encode_opts def;
    if (!opts) {
        bs_encode_opts_default(&def);
        opts = &def;
    }
    bs_encoding **v = calloc(n ? n : 1, sizeof *v);
    if (!v) return bs_err_set(err, BS_ENOMEM, "out of memory");
    int rc = 0;
    size_t longest = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        v[i] = calloc(1, sizeof **v);
        if (!v[i]) {
            rc = bs_err_set(err, BS_ENOMEM, "out of memory");
            break;
        }
        const char *p = pairs ? pairs[i] : NULL;
        rc = encode_one(tok, texts[i], text_lens[i], p, p ? pair_lens[i] : 0, opts, v[i], err);
        if (rc)
            bs_err_prefix(err, "input %zu", i);
        else if (v[i]->len > longest)
            longest = v[i]->len;
    }
    if (!rc && opts->padding.strategy != BS_PAD_NONE) {
        size_t target;
        pad_target(opts, longest, &target);
        for (size_t i = 0; i < n && !rc; i++)
            rc = bs_tok_enc_pad(v[i], target, tok->pad_id, 0, tok->pad_token,
                                opts->padding.direction == BS_DIR_LEFT);
        if (rc) bs_err_set(err, rc, "out of memory");
    }
    if (rc) {
        bs_encoding_batch_free(v, n);
        return rc;
    }
    *out = v;
    return 0;
}

/* ── decode and queries ── */

int bs_tokenizer_decode(const bs_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                        char **out, bs_err *err)
{
    return bs_tokenizer_decode_len(tok, ids, n, skip_special, out, NULL, err);
}

int bs_tokenizer_decode_len(const bs_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                            char **out, size_t *out_len, bs_err *err)
{
    *out = NULL;
    const char **toks = calloc(n ? n : 1, sizeof *toks);
    if (!toks) return bs_err_set(err, BS_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = bs_tokenizer_id_to_token(tok, ids[i]);
        if (!t) continue;
        if (skip_special && bs_tokenizer_is_special(tok, ids[i])) continue;
        toks[k++] = t;
    }
    int rc = bs_tok_decoder_run(tok->dec, toks, k, out, out_len);
    free(toks);
    if (rc) return bs_err_set(err, rc, "decode: %s", bs_strerror(rc));
    return 0;
}

int bs_tokenizer_decode_tokens(const bs_tokenizer *tok, const char *const *tokens, size_t n,
                               char **out, size_t *out_len, bs_err *err)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (!tokens[i]) return bs_err_set(err, BS_EINVAL, "decode_tokens: token %zu is NULL", i);
    int rc = bs_tok_decoder_run(tok->dec, tokens, n, out, out_len);
    if (rc) return bs_err_set(err, rc, "decode_tokens: %s", bs_strerror(rc));
    return 0;
}

static const added_token *added_by_id(const bs_tokenizer *tok, int32_t id)
{
    for (size_t i = tok->n_added; i-- > 0;)
        if (tok->added[i].id == id) return &tok->added[i];
    return NULL;
}

int32_t bs_tokenizer_token_to_id(const bs_tokenizer *tok, const char *token, size_t len)
{
    int32_t k = bs_tok_vmap_get(&tok->added_map, token, len);
    if (k >= 0) return tok->added[k].id;
    return bs_tok_vmap_get(&tok->model.vocab, token, len);
}

const char *bs_tokenizer_id_to_token(const bs_tokenizer *tok, int32_t id)
{
    const added_token *a = added_by_id(tok, id);
    if (a) return a->content;
    return bs_tok_model_id_to_token(&tok->model, id, NULL);
}

size_t bs_tokenizer_vocab_size(const bs_tokenizer *tok)
{
    size_t n = tok->model.n_ids;
    for (size_t i = 0; i < tok->n_added; i++)
        if ((size_t)tok->added[i].id + 1 > n) n = (size_t)tok->added[i].id + 1;
    return n;
}

int bs_tokenizer_is_special(const bs_tokenizer *tok, int32_t id)
{
    const added_token *a = added_by_id(tok, id);
    return a && a->special;
}

int32_t bs_tokenizer_special_id(const bs_tokenizer *tok, bs_special_kind kind)
{
    if ((int)kind < 0 || kind >= BS_SPECIAL_COUNT) return -1;
    return tok->special_ids[kind];
}

const char *bs_tokenizer_special_token(const bs_tokenizer *tok, bs_special_kind kind)
{
    int32_t id = bs_tokenizer_special_id(tok, kind);
    return id >= 0 ? bs_tokenizer_id_to_token(tok, id) : NULL;
}

size_t bs_tokenizer_model_max_length(const bs_tokenizer *tok)
{
    return tok->model_max_length;
}

int bs_tokenizer_clean_up_tokenization_spaces(const bs_tokenizer *tok)
{
    return tok->clean_up_spaces;
}

const char *bs_tokenizer_continuing_subword_prefix(const bs_tokenizer *tok)
{
    return tok->model.prefix && *tok->model.prefix ? tok->model.prefix : NULL;
}

bs_model_kind bs_tokenizer_model_kind(const bs_tokenizer *tok)
{
    return (bs_model_kind)tok->model.kind;
}

size_t bs_tokenizer_num_special_tokens(const bs_tokenizer *tok, int pair)
{
    return bs_tok_postproc_added(tok->post, pair);
}
