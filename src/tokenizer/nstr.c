/* The normalized string: code points that normalizers and pre-tokenizers
 * rewrite, each remembering which original bytes it came from, so that every
 * token can report offsets into the text the user gave. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include <utf8proc.h>

#include "tokenizer/tok_internal.h"
#include "util/utf8.h"

/* One allocation holds the three arrays: c, then a0, then a1. */
int bs_tok_nstr_init(nstr *s, size_t cap)
{
    memset(s, 0, sizeof *s);
    if (cap == 0) cap = 8;
    s->c = malloc(cap * 3 * sizeof *s->c);
    if (!s->c) return BS_ENOMEM;
    s->a0 = s->c + cap;
    s->a1 = s->a0 + cap;
    s->cap = cap;
    return 0;
}

void bs_tok_nstr_free(nstr *s)
{
    free(s->c);
    memset(s, 0, sizeof *s);
}

static int nstr_grow(nstr *s, size_t need)
{
    if (need <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 8;
    while (cap < need) cap *= 2;
    uint32_t *c = malloc(cap * 3 * sizeof *c);
    if (!c) return BS_ENOMEM;
    memcpy(c, s->c, s->n * sizeof *c);
    memcpy(c + cap, s->a0, s->n * sizeof *c);
    memcpy(c + 2 * cap, s->a1, s->n * sizeof *c);
    free(s->c);
    s->c = c;
    s->a0 = c + cap;
    s->a1 = c + 2 * cap;
    s->cap = cap;
    return 0;
}

int bs_tok_nstr_push(nstr *s, uint32_t c, uint32_t a0, uint32_t a1)
{
    if (s->n == s->cap && nstr_grow(s, s->n + 1)) return BS_ENOMEM;
    s->c[s->n] = c;
    s->a0[s->n] = a0;
    s->a1[s->n] = a1;
    s->n++;
    return 0;
}

int bs_tok_nstr_from_utf8(nstr *s, const char *text, size_t len, uint32_t base)
{
    if (bs_tok_nstr_init(s, len + 1)) return BS_ENOMEM;
    s->shift = base;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t k = bs_utf8_decode((const unsigned char *)text + i, len - i, &cp);
        if (!k) { /* callers validate first; never loop forever */
            k = 1;
            cp = 0xFFFD;
        }
        s->c[s->n] = cp;
        s->a0[s->n] = base + (uint32_t)i;
        s->a1[s->n] = base + (uint32_t)(i + k);
        s->n++;
        i += k;
    }
    return 0;
}

int bs_tok_nstr_slice(const nstr *s, size_t from, size_t to, nstr *out)
{
    if (bs_tok_nstr_init(out, to - from + 1)) return BS_ENOMEM;
    memcpy(out->c, s->c + from, (to - from) * sizeof *s->c);
    memcpy(out->a0, s->a0 + from, (to - from) * sizeof *s->a0);
    memcpy(out->a1, s->a1 + from, (to - from) * sizeof *s->a1);
    out->n = to - from;
    out->shift = to > from ? s->a0[from] : s->shift;
    return 0;
}

int bs_tok_nstr_transform(nstr *s, const uint32_t *nc, const int32_t *changes, size_t m,
                          size_t initial_offset)
{
    nstr o;
    if (bs_tok_nstr_init(&o, m + 1)) return BS_ENOMEM;
    o.shift = s->shift;
    size_t off = initial_offset;
    for (size_t i = 0; i < m; i++) {
        uint32_t a0, a1;
        if (changes[i] > 0) {
            if (off < 1 || off > s->n)
                a0 = a1 = s->shift;
            else
                a0 = s->a0[off - 1], a1 = s->a1[off - 1];
        } else {
            if (off < s->n)
                a0 = s->a0[off], a1 = s->a1[off];
            else if (s->n)
                a0 = s->a0[s->n - 1], a1 = s->a1[s->n - 1];
            else
                a0 = a1 = s->shift;
            off += 1 + (size_t)(changes[i] < 0 ? -(int64_t)changes[i] : 0);
        }
        o.c[i] = nc[i];
        o.a0[i] = a0;
        o.a1[i] = a1;
    }
    o.n = m;
    bs_tok_nstr_free(s);
    *s = o;
    return 0;
}

int bs_tok_nstr_changes_push(nstr_changes *t, uint32_t c, int32_t change)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        uint32_t *nc = realloc(t->c, cap * sizeof *nc);
        if (!nc) return BS_ENOMEM;
        t->c = nc;
        int32_t *nd = realloc(t->d, cap * sizeof *nd);
        if (!nd) return BS_ENOMEM;
        t->d = nd;
        t->cap = cap;
    }
    t->c[t->n] = c;
    t->d[t->n] = change;
    t->n++;
    return 0;
}

void bs_tok_nstr_changes_free(nstr_changes *t)
{
    free(t->c);
    free(t->d);
}

int bs_tok_nstr_changes_apply(nstr_changes *t, nstr *s, size_t initial_offset)
{
    int rc = bs_tok_nstr_transform(s, t->c, t->d, t->n, initial_offset);
    bs_tok_nstr_changes_free(t);
    return rc;
}

size_t bs_tok_nstr_to_utf8_buf(const nstr *s, char *b, uint32_t *mp)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->c[i];
        if (c < 0x80) {
            mp[k] = (uint32_t)i;
            b[k++] = (char)c;
            continue;
        }
        size_t w = bs_utf8_encode(c, b + k);
        for (size_t j = 0; j < w; j++) mp[k + j] = (uint32_t)i;
        k += w;
    }
    mp[k] = (uint32_t)s->n;
    b[k] = 0;
    return k;
}

int bs_tok_nstr_to_utf8(const nstr *s, char **out, size_t *len, uint32_t **map)
{
    size_t cap = s->n * 4 + 1;
    char *b = malloc(cap);
    uint32_t *mp = map ? malloc((cap + 1) * sizeof *mp) : NULL;
    if (!b || (map && !mp)) {
        free(b);
        free(mp);
        return BS_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        size_t w = bs_utf8_encode(s->c[i], b + k);
        if (mp)
            for (size_t j = 0; j < w; j++) mp[k + j] = (uint32_t)i;
        k += w;
    }
    if (mp) mp[k] = (uint32_t)s->n;
    b[k] = 0;
    *out = b;
    *len = k;
    if (map) *map = mp;
    return 0;
}

int bs_tok_uc_is_whitespace(uint32_t c)
{
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

int bs_tok_uc_category(uint32_t c)
{
    if (c > 0x10FFFF) return UTF8PROC_CATEGORY_CN;
    return utf8proc_category((utf8proc_int32_t)c);
}

int bs_tok_uc_is_alnum(uint32_t c)
{
    int k = bs_tok_uc_category(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO) || k == UTF8PROC_CATEGORY_MC;
}

int bs_tok_uc_is_punct(uint32_t c)
{
    int k = bs_tok_uc_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

int bs_tok_uc_is_mark(uint32_t c)
{
    int k = bs_tok_uc_category(c);
    return k >= UTF8PROC_CATEGORY_MN && k <= UTF8PROC_CATEGORY_ME;
}

int bs_tok_uc_is_chinese(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

int bs_tok_uc_lower(uint32_t c, uint32_t *out)
{
    if (c == 0x130) { /* the one unconditional multi-char lowercase */
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    if (c < 0x80) {
        out[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        return 1;
    }
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    return 1;
}
