/* tokenizer.json → pipeline components. The file is hostile input: every
 * field is type-checked, ids are bounded, unknown component types and
 * missing merges are refused with a message naming the component and field. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/load.h"

#define MAX_ID_SLACK 1000000

static int ferr(bs_err *err, int code, const char *path, const char *fmt, const char *detail)
{
    char m[300];
    snprintf(m, sizeof m, fmt, detail ? detail : "");
    return bs_err_set(err, code, "tokenizer.json: %s: %s", path, m);
}

static int get_bool(json_t *o, const char *k, int def, int *out, const char *path, bs_err *err)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) return ferr(err, BS_EFORMAT, path, "field %s must be a boolean", k);
    *out = json_is_true(v);
    return 0;
}

static int get_str(json_t *o, const char *k, const char *def, char **out, const char *path,
                   bs_err *err)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (def && !(*out = strdup(def))) return BS_ENOMEM;
        return 0;
    }
    if (!json_is_string(v)) return ferr(err, BS_EFORMAT, path, "field %s must be a string", k);
    *out = strndup(json_string_value(v), json_string_length(v));
    return *out ? 0 : BS_ENOMEM;
}

static int get_uint(json_t *o, const char *k, uint64_t def, uint64_t max, uint64_t *out,
                    const char *path, bs_err *err)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return ferr(err, BS_EFORMAT, path, "field %s must be a non-negative integer in range", k);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int one_char(const char *s, uint32_t *cp)
{
    size_t l = strlen(s);
    if (!l) return -1;
    size_t k = bs_utf8_decode((const unsigned char *)s, l, cp);
    return k == l ? 0 : -1;
}

static int parse_pattern(json_t *o, pattern *p, const char *path, bs_err *err)
{
    if (!json_is_object(o)) return ferr(err, BS_EFORMAT, path, "pattern must be an object%s", "");
    json_t *s = json_object_get(o, "String"), *r = json_object_get(o, "Regex");
    json_t *v = s ? s : r;
    if (!v || !json_is_string(v))
        return ferr(err, BS_EFORMAT, path, "pattern needs a String or Regex string%s", "");
    char e[200] = "";
    int rc = bs_tok_pattern_compile(p, json_string_value(v), json_string_length(v), r && !s, e,
                                    sizeof e);
    if (rc == BS_EFORMAT) return ferr(err, rc, path, "pattern: %s", e);
    return rc;
}

static int parse_behavior(json_t *o, int def, int *out, const char *path, bs_err *err)
{
    json_t *v = json_object_get(o, "behavior");
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                        "MergedWithNext", "Contiguous"};
    if (json_is_string(v))
        for (int i = 0; i < 5; i++)
            if (!strcmp(json_string_value(v), names[i])) {
                *out = i;
                return 0;
            }
    return ferr(err, BS_EFORMAT, path, "unknown behavior%s", "");
}

static const char *type_of(json_t *o)
{
    json_t *t = json_object_get(o, "type");
    return json_is_string(t) ? json_string_value(t) : NULL;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static int b64_decode(const char *s, size_t n, uint8_t **out, size_t *olen)
{
    uint8_t *o = malloc(n / 4 * 3 + 4);
    if (!o) return BS_ENOMEM;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=') break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(o);
            return BS_EFORMAT;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out = o;
    *olen = k;
    return 0;
}

static int parse_normalizer(json_t *o, normalizer *n, int depth, bs_err *err)
{
    const char *path = "normalizer";
    memset(n, 0, sizeof *n);
    if (depth > 8) return ferr(err, BS_EFORMAT, path, "nested too deeply%s", "");
    if (!json_is_object(o)) return ferr(err, BS_EFORMAT, path, "must be an object%s", "");
    const char *t = type_of(o);
    if (!t) return ferr(err, BS_EFORMAT, path, "missing field type%s", "");
    int rc = 0;
    if (!strcmp(t, "BertNormalizer")) {
        n->type = NORM_BERT;
        json_t *sa = json_object_get(o, "strip_accents");
        if ((rc = get_bool(o, "clean_text", 1, &n->clean_text, "normalizer BertNormalizer", err)) ||
            (rc = get_bool(o, "handle_chinese_chars", 1, &n->handle_chinese,
                           "normalizer BertNormalizer", err)) ||
            (rc = get_bool(o, "lowercase", 1, &n->lowercase, "normalizer BertNormalizer", err)))
            return rc;
        if (sa && !json_is_null(sa)) {
            if ((rc = get_bool(o, "strip_accents", 0, &n->strip_accents,
                               "normalizer BertNormalizer", err)))
                return rc;
        } else {
            n->strip_accents = n->lowercase;
        }
    } else if (!strcmp(t, "NFC"))
        n->type = NORM_NFC;
    else if (!strcmp(t, "NFD"))
        n->type = NORM_NFD;
    else if (!strcmp(t, "NFKC"))
        n->type = NORM_NFKC;
    else if (!strcmp(t, "NFKD"))
        n->type = NORM_NFKD;
    else if (!strcmp(t, "Lowercase"))
        n->type = NORM_LOWER;
    else if (!strcmp(t, "StripAccents"))
        n->type = NORM_STRIP_ACCENTS;
    else if (!strcmp(t, "Strip")) {
        n->type = NORM_STRIP;
        if ((rc = get_bool(o, "strip_left", 1, &n->left, "normalizer Strip", err)) ||
            (rc = get_bool(o, "strip_right", 1, &n->right, "normalizer Strip", err)))
            return rc;
    } else if (!strcmp(t, "Replace")) {
        n->type = NORM_REPLACE;
        if ((rc = parse_pattern(json_object_get(o, "pattern"), &n->pat, "normalizer Replace", err)))
            return rc;
        if ((rc = get_str(o, "content", NULL, &n->content, "normalizer Replace", err))) return rc;
        if (!n->content)
            return ferr(err, BS_EFORMAT, "normalizer Replace", "missing field content%s", "");
    } else if (!strcmp(t, "Prepend")) {
        n->type = NORM_PREPEND;
        if ((rc = get_str(o, "prepend", NULL, &n->content, "normalizer Prepend", err))) return rc;
        if (!n->content)
            return ferr(err, BS_EFORMAT, "normalizer Prepend", "missing field prepend%s", "");
    } else if (!strcmp(t, "Precompiled")) {
        n->type = NORM_PRECOMPILED;
        json_t *v = json_object_get(o, "precompiled_charsmap");
        if (!json_is_string(v))
            return ferr(err, BS_EFORMAT, "normalizer Precompiled",
                        "precompiled_charsmap must be a base64 string%s", "");
        uint8_t *blob;
        size_t bl;
        if ((rc = b64_decode(json_string_value(v), json_string_length(v), &blob, &bl)))
            return ferr(err, rc, "normalizer Precompiled", "precompiled_charsmap is not base64%s",
                        "");
        if (bl == 0) {
            free(blob);
            n->type = NORM_SEQ; /* empty charsmap: nothing to do */
            return 0;
        }
        rc = bs_tok_precompiled_init(n, blob, bl);
        free(blob);
        if (rc)
            return ferr(err, rc, "normalizer Precompiled", "precompiled_charsmap is malformed%s",
                        "");
    } else if (!strcmp(t, "Sequence")) {
        n->type = NORM_SEQ;
        json_t *a = json_object_get(o, "normalizers");
        if (!json_is_array(a))
            return ferr(err, BS_EFORMAT, "normalizer Sequence", "normalizers must be an array%s",
                        "");
        size_t k = json_array_size(a);
        n->subs = calloc(k ? k : 1, sizeof *n->subs);
        if (!n->subs) return BS_ENOMEM;
        for (size_t i = 0; i < k; i++) {
            n->n_subs = i + 1;
            if ((rc = parse_normalizer(json_array_get(a, i), &n->subs[i], depth + 1, err)))
                return rc;
        }
    } else {
        return ferr(err, BS_EUNSUPPORTED, path, "unknown type %s", t);
    }
    return 0;
}

static int parse_prepend_scheme(json_t *o, int *out, const char *path, bs_err *err)
{
    json_t *ps = json_object_get(o, "prepend_scheme");
    if (json_is_string(ps)) {
        const char *s = json_string_value(ps);
        if (!strcmp(s, "always"))
            *out = PREPEND_ALWAYS;
        else if (!strcmp(s, "first"))
            *out = PREPEND_FIRST;
        else if (!strcmp(s, "never"))
            *out = PREPEND_NEVER;
        else
            return ferr(err, BS_EFORMAT, path, "unknown prepend_scheme %s", s);
        return 0;
    }
    int aps = 1;
    int rc = get_bool(o, "add_prefix_space", 1, &aps, path, err);
    *out = aps ? PREPEND_ALWAYS : PREPEND_NEVER;
    return rc;
}

static int parse_replacement(json_t *o, uint32_t *out, const char *path, bs_err *err)
{
    char *r = NULL;
    int rc = get_str(o, "replacement", "\xE2\x96\x81", &r, path, err);
    if (rc) return rc;
    rc = one_char(r, out);
    free(r);
    if (rc) return ferr(err, BS_EFORMAT, path, "replacement must be one character%s", "");
    return 0;
}

static int parse_pretok(json_t *o, pretok *p, int depth, bs_err *err)
{
    const char *path = "pre_tokenizer";
    memset(p, 0, sizeof *p);
    if (depth > 8) return ferr(err, BS_EFORMAT, path, "nested too deeply%s", "");
    if (!json_is_object(o)) return ferr(err, BS_EFORMAT, path, "must be an object%s", "");
    const char *t = type_of(o);
    if (!t) return ferr(err, BS_EFORMAT, path, "missing field type%s", "");
    int rc = 0;
    if (!strcmp(t, "BertPreTokenizer"))
        p->type = PRE_BERT;
    else if (!strcmp(t, "Whitespace"))
        p->type = PRE_WHITESPACE;
    else if (!strcmp(t, "WhitespaceSplit"))
        p->type = PRE_WHITESPACE_SPLIT;
    else if (!strcmp(t, "ByteLevel")) {
        p->type = PRE_BYTELEVEL;
        if ((rc = get_bool(o, "add_prefix_space", 1, &p->add_prefix_space,
                           "pre_tokenizer ByteLevel", err)) ||
            (rc = get_bool(o, "use_regex", 1, &p->use_regex, "pre_tokenizer ByteLevel", err)) ||
            (rc = get_bool(o, "trim_offsets", 1, &p->trim_offsets, "pre_tokenizer ByteLevel", err)))
            return rc;
    } else if (!strcmp(t, "Metaspace")) {
        p->type = PRE_METASPACE;
        if ((rc = parse_replacement(o, &p->replacement, "pre_tokenizer Metaspace", err)) ||
            (rc = parse_prepend_scheme(o, &p->prepend_scheme, "pre_tokenizer Metaspace", err)) ||
            (rc = get_bool(o, "split", 1, &p->split, "pre_tokenizer Metaspace", err)))
            return rc;
    } else if (!strcmp(t, "Punctuation")) {
        p->type = PRE_PUNCT;
        if ((rc =
                 parse_behavior(o, SPLIT_ISOLATED, &p->behavior, "pre_tokenizer Punctuation", err)))
            return rc;
    } else if (!strcmp(t, "Digits")) {
        p->type = PRE_DIGITS;
        if ((rc = get_bool(o, "individual_digits", 0, &p->individual_digits, "pre_tokenizer Digits",
                           err)))
            return rc;
    } else if (!strcmp(t, "Split")) {
        p->type = PRE_SPLIT;
        if ((rc = parse_pattern(json_object_get(o, "pattern"), &p->pat, "pre_tokenizer Split",
                                err)) ||
            (rc = parse_behavior(o, SPLIT_REMOVED, &p->behavior, "pre_tokenizer Split", err)) ||
            (rc = get_bool(o, "invert", 0, &p->invert, "pre_tokenizer Split", err)))
            return rc;
    } else if (!strcmp(t, "CharDelimiterSplit")) {
        p->type = PRE_CHAR_DELIM;
        char *d = NULL;
        if ((rc = get_str(o, "delimiter", NULL, &d, "pre_tokenizer CharDelimiterSplit", err)))
            return rc;
        rc = d ? one_char(d, &p->delim) : -1;
        free(d);
        if (rc)
            return ferr(err, BS_EFORMAT, "pre_tokenizer CharDelimiterSplit",
                        "delimiter must be one character%s", "");
    } else if (!strcmp(t, "Sequence")) {
        p->type = PRE_SEQ;
        json_t *a = json_object_get(o, "pretokenizers");
        if (!json_is_array(a))
            return ferr(err, BS_EFORMAT, "pre_tokenizer Sequence",
                        "pretokenizers must be an array%s", "");
        size_t k = json_array_size(a);
        p->subs = calloc(k ? k : 1, sizeof *p->subs);
        if (!p->subs) return BS_ENOMEM;
        for (size_t i = 0; i < k; i++) {
            p->n_subs = i + 1;
            if ((rc = parse_pretok(json_array_get(a, i), &p->subs[i], depth + 1, err))) return rc;
        }
    } else {
        return ferr(err, BS_EUNSUPPORTED, path, "unknown type %s", t);
    }
    return 0;
}

static int set_id(model *m, const char *k, size_t kl, json_int_t id, const char *path, bs_err *err)
{
    if (id < 0 || (uint64_t)id >= m->n_ids)
        return bs_err_set(err, BS_EFORMAT,
                          "tokenizer.json: %s: id %lld of token \"%.40s\" is out of range", path,
                          (long long)id, k);
    int rc = bs_tok_vmap_put(&m->vocab, k, kl, (int32_t)id);
    if (rc) return rc;
    if (!m->id_to_tok[id]) {
        m->id_to_tok[id] = strndup(k, kl);
        if (!m->id_to_tok[id]) return BS_ENOMEM;
        m->id_len[id] = (uint32_t)kl;
    }
    return 0;
}

static int vocab_from_object(json_t *v, model *m, const char *path, bs_err *err)
{
    if (!json_is_object(v))
        return ferr(err, BS_EFORMAT, path, "field vocab must be an object%s", "");
    size_t n = json_object_size(v);
    int rc = bs_tok_vmap_init(&m->vocab, n);
    if (rc) return rc;
    size_t max_ids = n * 2 + MAX_ID_SLACK;
    json_int_t maxid = -1;
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val)
    {
        if (!json_is_integer(val))
            return bs_err_set(err, BS_EFORMAT,
                              "tokenizer.json: %s: id of token \"%.40s\" must be an integer", path,
                              k);
        json_int_t id = json_integer_value(val);
        if (id < 0 || (uint64_t)id >= max_ids)
            return bs_err_set(err, BS_EFORMAT,
                              "tokenizer.json: %s: id %lld of token \"%.40s\" is out of range",
                              path, (long long)id, k);
        if (id > maxid) maxid = id;
    }
    if ((rc = bs_tok_model_set_vocab(m, (size_t)(maxid + 1)))) return rc;
    json_object_foreach(v, k, val)
    {
        if ((rc = set_id(m, k, strlen(k), json_integer_value(val), path, err))) return rc;
    }
    return 0;
}

static int split_merge(json_t *e, const char **a, size_t *al, const char **b, size_t *bl)
{
    if (json_is_string(e)) {
        const char *s = json_string_value(e);
        const char *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' ')) return -1;
        *a = s;
        *al = (size_t)(sp - s);
        *b = sp + 1;
        *bl = strlen(sp + 1);
        return 0;
    }
    if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
        json_is_string(json_array_get(e, 1))) {
        *a = json_string_value(json_array_get(e, 0));
        *al = json_string_length(json_array_get(e, 0));
        *b = json_string_value(json_array_get(e, 1));
        *bl = json_string_length(json_array_get(e, 1));
        return 0;
    }
    return -1;
}

int bs_tok_load_add_merge(model *m, const char *a, size_t al, const char *b, size_t bl,
                          uint32_t rank, const char *where, bs_err *err)
{
    int32_t ia = bs_tok_vmap_get(&m->vocab, a, al), ib = bs_tok_vmap_get(&m->vocab, b, bl);
    if (ia < 0 || ib < 0)
        return bs_err_set(err, BS_EFORMAT, "%s: merge %u: token \"%.*s\" is not in the vocabulary",
                          where, rank, (int)(ia < 0 ? (al > 60 ? 60 : al) : (bl > 60 ? 60 : bl)),
                          ia < 0 ? a : b);
    char stack[256];
    char *buf = al + bl <= sizeof stack ? stack : malloc(al + bl);
    if (!buf) return BS_ENOMEM;
    memcpy(buf, a, al);
    memcpy(buf + al, b, bl);
    size_t pl = m->prefix ? strlen(m->prefix) : 0;
    int32_t im;
    /* with a continuing-subword prefix, the merged token drops b's prefix */
    if (pl && bl >= pl && !memcmp(b, m->prefix, pl)) {
        memmove(buf + al, b + pl, bl - pl);
        im = bs_tok_vmap_get(&m->vocab, buf, al + bl - pl);
    } else {
        im = bs_tok_vmap_get(&m->vocab, buf, al + bl);
    }
    if (buf != stack) free(buf);
    if (im < 0)
        return bs_err_set(err, BS_EFORMAT,
                          "%s: merge %u: merged token \"%.*s%.*s\" is not in the vocabulary", where,
                          rank, (int)(al > 40 ? 40 : al), a, (int)(bl > 40 ? 40 : bl), b);
    return bs_tok_bpe_add_merge(m, ia, ib, rank, im);
}

static int parse_model(json_t *o, model *m, bs_err *err)
{
    memset(m, 0, sizeof *m);
    m->unk_id = -1;
    if (!json_is_object(o)) return ferr(err, BS_EFORMAT, "model", "must be an object%s", "");
    const char *t = type_of(o);
    json_t *vocab = json_object_get(o, "vocab");
    if (!t) { /* old serialization: infer */
        if (json_object_get(o, "merges"))
            t = "BPE";
        else if (json_object_get(o, "continuing_subword_prefix") ||
                 json_object_get(o, "max_input_chars_per_word"))
            t = "WordPiece";
        else if (json_is_array(vocab))
            t = "Unigram";
        else if (vocab)
            t = "WordLevel";
        else
            return ferr(err, BS_EFORMAT, "model", "missing field type%s", "");
    }
    int rc;
    uint64_t u;
    if (!strcmp(t, "WordPiece") || !strcmp(t, "WordLevel")) {
        m->kind = !strcmp(t, "WordPiece") ? BS_MODEL_WORDPIECE : BS_MODEL_WORDLEVEL;
        const char *path = m->kind == BS_MODEL_WORDPIECE ? "model WordPiece" : "model WordLevel";
        if ((rc = vocab_from_object(vocab, m, path, err))) return rc;
        if ((rc = get_str(o, "unk_token", "[UNK]", &m->unk_token, path, err))) return rc;
        if (m->kind == BS_MODEL_WORDPIECE) {
            if ((rc = get_str(o, "continuing_subword_prefix", "##", &m->prefix, path, err)))
                return rc;
            if ((rc = get_uint(o, "max_input_chars_per_word", 100, 1u << 20, &u, path, err)))
                return rc;
            m->max_input_chars = (size_t)u;
        }
        m->unk_id = bs_tok_vmap_get(&m->vocab, m->unk_token, strlen(m->unk_token));
        return 0;
    }
    if (!strcmp(t, "BPE")) {
        const char *path = "model BPE";
        m->kind = BS_MODEL_BPE;
        if ((rc = vocab_from_object(vocab, m, path, err))) return rc;
        if ((rc = get_str(o, "unk_token", NULL, &m->unk_token, path, err)) ||
            (rc = get_str(o, "continuing_subword_prefix", NULL, &m->prefix, path, err)) ||
            (rc = get_str(o, "end_of_word_suffix", NULL, &m->suffix, path, err)) ||
            (rc = get_bool(o, "fuse_unk", 0, &m->fuse_unk, path, err)) ||
            (rc = get_bool(o, "byte_fallback", 0, &m->byte_fallback, path, err)) ||
            (rc = get_bool(o, "ignore_merges", 0, &m->ignore_merges, path, err)))
            return rc;
        if (m->prefix && (!*m->prefix || strlen(m->prefix) >= 32)) {
            if (*m->prefix)
                return ferr(err, BS_EUNSUPPORTED, path, "continuing_subword_prefix is too long%s",
                            "");
            free(m->prefix);
            m->prefix = NULL;
        }
        if (m->suffix && (!*m->suffix || strlen(m->suffix) >= 24)) {
            if (*m->suffix)
                return ferr(err, BS_EUNSUPPORTED, path, "end_of_word_suffix is too long%s", "");
            free(m->suffix);
            m->suffix = NULL;
        }
        if (m->unk_token)
            m->unk_id = bs_tok_vmap_get(&m->vocab, m->unk_token, strlen(m->unk_token));
        json_t *merges = json_object_get(o, "merges");
        if (!json_is_array(merges))
            return ferr(err, BS_EFORMAT, path, "field merges must be an array%s", "");
        size_t i;
        json_t *e;
        json_array_foreach(merges, i, e)
        {
            const char *a, *b;
            size_t al, bl;
            if (split_merge(e, &a, &al, &b, &bl))
                return bs_err_set(
                    err, BS_EFORMAT,
                    "tokenizer.json: model BPE: merges[%zu] must be \"a b\" or [a, b]", i);
            if ((rc = bs_tok_load_add_merge(m, a, al, b, bl, (uint32_t)i,
                                            "tokenizer.json: model BPE", err)))
                return rc;
        }
        return bs_tok_bpe_finish(m);
    }
    if (!strcmp(t, "Unigram")) {
        const char *path = "model Unigram";
        m->kind = BS_MODEL_UNIGRAM;
        if (!json_is_array(vocab))
            return ferr(err, BS_EFORMAT, path, "field vocab must be an array%s", "");
        size_t n = json_array_size(vocab);
        if ((rc = bs_tok_vmap_init(&m->vocab, n)) || (rc = bs_tok_model_set_vocab(m, n))) return rc;
        m->scores = calloc(n ? n : 1, sizeof *m->scores);
        if (!m->scores) return BS_ENOMEM;
        m->min_score = n ? 1e300 : 0;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(vocab, i);
            if (!json_is_array(e) || json_array_size(e) != 2 ||
                !json_is_string(json_array_get(e, 0)) || !json_is_number(json_array_get(e, 1)))
                return bs_err_set(
                    err, BS_EFORMAT,
                    "tokenizer.json: model Unigram: vocab[%zu] must be [piece, score]", i);
            const char *k = json_string_value(json_array_get(e, 0));
            size_t kl = json_string_length(json_array_get(e, 0));
            if ((rc = set_id(m, k, kl, (json_int_t)i, path, err))) return rc;
            m->scores[i] = json_number_value(json_array_get(e, 1));
            if (m->scores[i] < m->min_score) m->min_score = m->scores[i];
            if (kl > m->max_piece_len) m->max_piece_len = kl;
        }
        if ((rc = get_uint(o, "unk_id", (uint64_t)-1, n ? n - 1 : 0, &u, path, err))) return rc;
        m->unk_id = u == (uint64_t)-1 ? -1 : (int32_t)u;
        if (json_object_get(o, "unk_id") && !json_is_null(json_object_get(o, "unk_id")) && !n)
            return ferr(err, BS_EFORMAT, path, "unk_id is out of range%s", "");
        if ((rc = get_bool(o, "byte_fallback", 0, &m->byte_fallback, path, err))) return rc;
        m->fuse_unk = 1;
        if (m->unk_id >= 0) m->unk_token = strdup(m->id_to_tok[m->unk_id]);
        return 0;
    }
    return ferr(err, BS_EUNSUPPORTED, "model", "unknown type %s", t);
}

static int parse_pair_tok(json_t *o, const char *k, char **tok, int32_t *id, const char *path,
                          bs_err *err)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_string(json_array_get(v, 0)) ||
        !json_is_integer(json_array_get(v, 1)) || json_integer_value(json_array_get(v, 1)) < 0 ||
        json_integer_value(json_array_get(v, 1)) > INT32_MAX)
        return ferr(err, BS_EFORMAT, path, "field %s must be [token, id]", k);
    *tok = strdup(json_string_value(json_array_get(v, 0)));
    *id = (int32_t)json_integer_value(json_array_get(v, 1));
    return *tok ? 0 : BS_ENOMEM;
}

static int parse_template(json_t *a, tmpl_piece **out, size_t *n, const char *path, bs_err *err)
{
    if (!json_is_array(a)) return ferr(err, BS_EFORMAT, path, "must be an array%s", "");
    size_t k = json_array_size(a);
    *out = calloc(k ? k : 1, sizeof **out);
    if (!*out) return BS_ENOMEM;
    for (size_t i = 0; i < k; i++) {
        *n = i + 1;
        json_t *e = json_array_get(a, i), *s = json_object_get(e, "SpecialToken"),
               *q = json_object_get(e, "Sequence");
        json_t *x = s ? s : q;
        json_t *tid = json_object_get(x, "type_id");
        if (!json_is_object(x) || !json_is_string(json_object_get(x, "id")) ||
            (tid && (!json_is_integer(tid) || json_integer_value(tid) < 0 ||
                     json_integer_value(tid) > 1000)))
            return ferr(err, BS_EFORMAT, path,
                        "pieces must be SpecialToken or Sequence with id and type_id%s", "");
        (*out)[i].type_id = tid ? (int32_t)json_integer_value(tid) : 0;
        const char *id = json_string_value(json_object_get(x, "id"));
        if (s) {
            (*out)[i].is_special = 1;
            if (!((*out)[i].special = strdup(id))) return BS_ENOMEM;
        } else {
            if (strcmp(id, "A") && strcmp(id, "B"))
                return ferr(err, BS_EFORMAT, path, "Sequence id must be A or B%s", "");
            (*out)[i].seq = id[0] == 'B';
        }
    }
    return 0;
}

static int parse_post(json_t *o, postproc *p, int depth, bs_err *err)
{
    memset(p, 0, sizeof *p);
    if (depth > 8) return ferr(err, BS_EFORMAT, "post_processor", "nested too deeply%s", "");
    if (!json_is_object(o))
        return ferr(err, BS_EFORMAT, "post_processor", "must be an object%s", "");
    const char *t = type_of(o);
    if (!t) return ferr(err, BS_EFORMAT, "post_processor", "missing field type%s", "");
    int rc;
    if (!strcmp(t, "TemplateProcessing")) {
        const char *path = "post_processor TemplateProcessing";
        p->type = POST_TEMPLATE;
        if ((rc = parse_template(json_object_get(o, "single"), &p->single, &p->n_single,
                                 "post_processor TemplateProcessing.single", err)) ||
            (rc = parse_template(json_object_get(o, "pair"), &p->pair, &p->n_pair,
                                 "post_processor TemplateProcessing.pair", err)))
            return rc;
        json_t *st = json_object_get(o, "special_tokens");
        if (!json_is_object(st))
            return ferr(err, BS_EFORMAT, path, "special_tokens must be an object%s", "");
        size_t k = json_object_size(st), i = 0;
        p->specials = calloc(k ? k : 1, sizeof *p->specials);
        if (!p->specials) return BS_ENOMEM;
        const char *name;
        json_t *v;
        json_object_foreach(st, name, v)
        {
            tmpl_special *s = &p->specials[i++];
            p->n_specials = i;
            if (!(s->name = strdup(name))) return BS_ENOMEM;
            json_t *ids = json_object_get(v, "ids"), *toks = json_object_get(v, "tokens");
            if (!json_is_array(ids) || !json_is_array(toks) ||
                json_array_size(ids) != json_array_size(toks))
                return ferr(err, BS_EFORMAT, path,
                            "special_tokens.%s needs ids and tokens of the same length", name);
            size_t m = json_array_size(ids);
            s->ids = calloc(m ? m : 1, sizeof *s->ids);
            s->tokens = calloc(m ? m : 1, sizeof *s->tokens);
            if (!s->ids || !s->tokens) return BS_ENOMEM;
            for (size_t j = 0; j < m; j++) {
                json_t *a = json_array_get(ids, j), *b = json_array_get(toks, j);
                if (!json_is_integer(a) || json_integer_value(a) < 0 ||
                    json_integer_value(a) > INT32_MAX || !json_is_string(b))
                    return ferr(err, BS_EFORMAT, path, "special_tokens.%s: bad id or token", name);
                s->ids[j] = (int32_t)json_integer_value(a);
                if (!(s->tokens[j] = strdup(json_string_value(b)))) return BS_ENOMEM;
                s->n = j + 1;
            }
        }
        for (size_t j = 0; j < p->n_single + p->n_pair; j++) {
            const tmpl_piece *q = j < p->n_single ? &p->single[j] : &p->pair[j - p->n_single];
            int found = 0;
            for (size_t s = 0; q->is_special && s < p->n_specials && !found; s++)
                found = !strcmp(p->specials[s].name, q->special);
            if (q->is_special && !found)
                return ferr(err, BS_EFORMAT, path, "special token %s is not in special_tokens",
                            q->special);
        }
        return 0;
    }
    if (!strcmp(t, "BertProcessing") || !strcmp(t, "RobertaProcessing")) {
        int rob = t[0] == 'R';
        const char *path =
            rob ? "post_processor RobertaProcessing" : "post_processor BertProcessing";
        p->type = rob ? POST_ROBERTA : POST_BERT;
        if ((rc = parse_pair_tok(o, "sep", &p->sep, &p->sep_id, path, err)) ||
            (rc = parse_pair_tok(o, "cls", &p->cls, &p->cls_id, path, err)))
            return rc;
        if (rob && ((rc = get_bool(o, "trim_offsets", 1, &p->trim_offsets, path, err)) ||
                    (rc = get_bool(o, "add_prefix_space", 1, &p->add_prefix_space, path, err))))
            return rc;
        return 0;
    }
    if (!strcmp(t, "ByteLevel")) {
        p->type = POST_BYTELEVEL;
        if ((rc = get_bool(o, "trim_offsets", 1, &p->trim_offsets, "post_processor ByteLevel",
                           err)) ||
            (rc = get_bool(o, "add_prefix_space", 1, &p->add_prefix_space,
                           "post_processor ByteLevel", err)))
            return rc;
        return 0;
    }
    if (!strcmp(t, "Sequence")) {
        p->type = POST_SEQ;
        json_t *a = json_object_get(o, "processors");
        if (!json_is_array(a))
            return ferr(err, BS_EFORMAT, "post_processor Sequence", "processors must be an array%s",
                        "");
        size_t k = json_array_size(a);
        p->subs = calloc(k ? k : 1, sizeof *p->subs);
        if (!p->subs) return BS_ENOMEM;
        for (size_t i = 0; i < k; i++) {
            p->n_subs = i + 1;
            if ((rc = parse_post(json_array_get(a, i), &p->subs[i], depth + 1, err))) return rc;
        }
        return 0;
    }
    return ferr(err, BS_EUNSUPPORTED, "post_processor", "unknown type %s", t);
}

static int parse_decoder(json_t *o, decoder *d, int depth, bs_err *err)
{
    memset(d, 0, sizeof *d);
    if (depth > 8) return ferr(err, BS_EFORMAT, "decoder", "nested too deeply%s", "");
    if (!json_is_object(o)) return ferr(err, BS_EFORMAT, "decoder", "must be an object%s", "");
    const char *t = type_of(o);
    if (!t) return ferr(err, BS_EFORMAT, "decoder", "missing field type%s", "");
    int rc;
    uint64_t u;
    if (!strcmp(t, "WordPiece")) {
        d->type = DEC_WORDPIECE;
        if ((rc = get_str(o, "prefix", "##", &d->prefix, "decoder WordPiece", err)) ||
            (rc = get_bool(o, "cleanup", 1, &d->cleanup, "decoder WordPiece", err)))
            return rc;
    } else if (!strcmp(t, "ByteLevel"))
        d->type = DEC_BYTELEVEL;
    else if (!strcmp(t, "Metaspace")) {
        d->type = DEC_METASPACE;
        if ((rc = parse_replacement(o, &d->replacement, "decoder Metaspace", err)) ||
            (rc = parse_prepend_scheme(o, &d->prepend_scheme, "decoder Metaspace", err)))
            return rc;
    } else if (!strcmp(t, "BPEDecoder")) {
        d->type = DEC_BPE;
        if ((rc = get_str(o, "suffix", "</w>", &d->prefix, "decoder BPEDecoder", err))) return rc;
    } else if (!strcmp(t, "Replace")) {
        d->type = DEC_REPLACE;
        json_t *pt = json_object_get(o, "pattern");
        if (json_object_get(pt, "Regex"))
            return ferr(err, BS_EUNSUPPORTED, "decoder Replace",
                        "regex patterns are not supported%s", "");
        if ((rc = parse_pattern(pt, &d->pat, "decoder Replace", err)) ||
            (rc = get_str(o, "content", "", &d->content, "decoder Replace", err)))
            return rc;
    } else if (!strcmp(t, "ByteFallback"))
        d->type = DEC_BYTE_FALLBACK;
    else if (!strcmp(t, "Fuse"))
        d->type = DEC_FUSE;
    else if (!strcmp(t, "Strip")) {
        d->type = DEC_STRIP;
        if ((rc = get_str(o, "content", " ", &d->content, "decoder Strip", err))) return rc;
        if (!d->content[0] || d->content[1])
            return ferr(err, BS_EUNSUPPORTED, "decoder Strip", "content must be one ASCII char%s",
                        "");
        if ((rc = get_uint(o, "start", 0, 1u << 20, &u, "decoder Strip", err))) return rc;
        d->strip_start = (size_t)u;
        if ((rc = get_uint(o, "stop", 0, 1u << 20, &u, "decoder Strip", err))) return rc;
        d->strip_stop = (size_t)u;
    } else if (!strcmp(t, "Sequence")) {
        d->type = DEC_SEQ;
        json_t *a = json_object_get(o, "decoders");
        if (!json_is_array(a))
            return ferr(err, BS_EFORMAT, "decoder Sequence", "decoders must be an array%s", "");
        size_t k = json_array_size(a);
        d->subs = calloc(k ? k : 1, sizeof *d->subs);
        if (!d->subs) return BS_ENOMEM;
        for (size_t i = 0; i < k; i++) {
            d->n_subs = i + 1;
            if ((rc = parse_decoder(json_array_get(a, i), &d->subs[i], depth + 1, err))) return rc;
        }
    } else {
        return ferr(err, BS_EUNSUPPORTED, "decoder", "unknown type %s", t);
    }
    return 0;
}

static int parse_added(json_t *a, bs_tokenizer *tok, bs_err *err)
{
    if (!a || json_is_null(a)) return 0;
    if (!json_is_array(a)) return ferr(err, BS_EFORMAT, "added_tokens", "must be an array%s", "");
    size_t k = json_array_size(a);
    tok->added = calloc(k ? k : 1, sizeof *tok->added);
    if (!tok->added) return BS_ENOMEM;
    size_t max_id = tok->model.n_ids + k + MAX_ID_SLACK;
    for (size_t i = 0; i < k; i++) {
        json_t *e = json_array_get(a, i);
        added_token *t = &tok->added[i];
        tok->n_added = i + 1;
        json_t *id = json_object_get(e, "id"), *c = json_object_get(e, "content");
        if (!json_is_object(e) || !json_is_integer(id) || !json_is_string(c) ||
            !json_string_length(c))
            return bs_err_set(
                err, BS_EFORMAT,
                "tokenizer.json: added_tokens[%zu] needs an integer id and a non-empty content", i);
        if (json_integer_value(id) < 0 || (uint64_t)json_integer_value(id) >= max_id)
            return bs_err_set(err, BS_EFORMAT,
                              "tokenizer.json: added_tokens[%zu]: id %lld is out of range", i,
                              (long long)json_integer_value(id));
        t->id = (int32_t)json_integer_value(id);
        t->len = json_string_length(c);
        if (!(t->content = strndup(json_string_value(c), t->len))) return BS_ENOMEM;
        int rc;
        const char *path = "added_tokens";
        if ((rc = get_bool(e, "single_word", 0, &t->single_word, path, err)) ||
            (rc = get_bool(e, "lstrip", 0, &t->lstrip, path, err)) ||
            (rc = get_bool(e, "rstrip", 0, &t->rstrip, path, err)) ||
            (rc = get_bool(e, "normalized", 1, &t->normalized, path, err)) ||
            (rc = get_bool(e, "special", 0, &t->special, path, err)))
            return rc;
    }
    return 0;
}

int bs_tok_load_tokenizer_json(const char *text, size_t len, bs_tokenizer *tok, bs_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return bs_err_set(err, BS_EFORMAT, "tokenizer.json: line %d: %s", je.line, je.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = bs_err_set(err, BS_EFORMAT, "tokenizer.json: the top level must be an object");
        goto out;
    }
    json_t *v;
    if ((rc = parse_model(json_object_get(root, "model"), &tok->model, err))) goto out;
    v = json_object_get(root, "normalizer");
    if (v && !json_is_null(v)) {
        if (!(tok->norm = calloc(1, sizeof *tok->norm))) {
            rc = BS_ENOMEM;
            goto out;
        }
        if ((rc = parse_normalizer(v, tok->norm, 0, err))) goto out;
    }
    v = json_object_get(root, "pre_tokenizer");
    if (v && !json_is_null(v)) {
        if (!(tok->pre = calloc(1, sizeof *tok->pre))) {
            rc = BS_ENOMEM;
            goto out;
        }
        if ((rc = parse_pretok(v, tok->pre, 0, err))) goto out;
    }
    v = json_object_get(root, "post_processor");
    if (v && !json_is_null(v)) {
        if (!(tok->post = calloc(1, sizeof *tok->post))) {
            rc = BS_ENOMEM;
            goto out;
        }
        if ((rc = parse_post(v, tok->post, 0, err))) goto out;
    }
    v = json_object_get(root, "decoder");
    if (v && !json_is_null(v)) {
        if (!(tok->dec = calloc(1, sizeof *tok->dec))) {
            rc = BS_ENOMEM;
            goto out;
        }
        if ((rc = parse_decoder(v, tok->dec, 0, err))) goto out;
    }
    if ((rc = parse_added(json_object_get(root, "added_tokens"), tok, err))) goto out;
out:
    if (rc == BS_ENOMEM && err && !err->msg[0])
        bs_err_set(err, rc, "tokenizer.json: out of memory");
    json_decref(root);
    return rc;
}
