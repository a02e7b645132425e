/* Normalizers of tokenizer.json (BertNormalizer, NF*, Lowercase, StripAccents,
 * Strip, Replace, Prepend, Precompiled, Sequence), each rewriting the
 * normalized string while keeping HuggingFace's alignment rules. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

/* Keeps the chars for which keep() is true; kept chars keep their alignment. */
static void filter(nstr *s, int (*keep)(uint32_t))
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!keep(s->c[i])) continue;
        s->c[k] = s->c[i];
        s->a0[k] = s->a0[i];
        s->a1[k] = s->a1[i];
        k++;
    }
    s->n = k;
}

static int bert_keep(uint32_t c)
{
    if (c == 0 || c == 0xFFFD) return 0;
    if (c == '\t' || c == '\n' || c == '\r') return 1;
    /* Rust's is_other() as the library uses it: Cc, Cf, Cs, Co; unassigned
     * code points (Cn) are kept (they become [UNK]). */
    int k = bs_tok_uc_category(c);
    return !(k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CS ||
             k == UTF8PROC_CATEGORY_CO);
}

static int keep_not_mn(uint32_t c)
{
    return bs_tok_uc_category(c) != UTF8PROC_CATEGORY_MN;
}
static int keep_not_mark(uint32_t c)
{
    return !bs_tok_uc_is_mark(c);
}

static int ccc(uint32_t c)
{
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)c);
    return p->combining_class;
}

/* Decomposition (canonical or compatibility) with changes, then canonical
 * ordering of combining marks, moving each change with its char. */
static int decompose(nstr *s, int compat, nstr_changes *t)
{
    utf8proc_int32_t buf[32];
    for (size_t i = 0; i < s->n; i++) {
        if (s->c[i] < 0xC0) { /* nothing below U+00C0 decomposes canonically */
            if (!compat || s->c[i] < 0xA0) {
                if (bs_tok_nstr_changes_push(t, s->c[i], 0)) return BS_ENOMEM;
                continue;
            }
        }
        int last = 0;
        utf8proc_ssize_t k =
            utf8proc_decompose_char((utf8proc_int32_t)s->c[i], buf, 32,
                                    UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0), &last);
        if (k < 1 || k > 32) {
            buf[0] = (utf8proc_int32_t)s->c[i];
            k = 1;
        }
        for (utf8proc_ssize_t j = 0; j < k; j++)
            if (bs_tok_nstr_changes_push(t, (uint32_t)buf[j], j ? 1 : 0)) return BS_ENOMEM;
    }
    /* stable insertion sort of each run of non-starters by combining class */
    for (size_t i = 1; i < t->n; i++) {
        if (t->c[i] < 0x300) continue; /* combining classes start at U+0300 */
        int ci = ccc(t->c[i]);
        if (!ci) continue;
        size_t j = i;
        while (j > 0) {
            int cj = t->c[j - 1] < 0x300 ? 0 : ccc(t->c[j - 1]);
            if (!cj || cj <= ci) break;
            uint32_t tc = t->c[j];
            t->c[j] = t->c[j - 1];
            t->c[j - 1] = tc;
            int32_t td = t->d[j];
            t->d[j] = t->d[j - 1];
            t->d[j - 1] = td;
            j--;
        }
    }
    return 0;
}

static int compose_pair(uint32_t a, uint32_t b, uint32_t *out)
{
    utf8proc_int32_t buf[2] = {(utf8proc_int32_t)a, (utf8proc_int32_t)b};
    utf8proc_ssize_t k = utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE);
    if (k == 1) {
        *out = (uint32_t)buf[0];
        return 1;
    }
    return 0;
}

/* Canonical composition; a char absorbed into its starter adds its
 * consumption to the starter's (change = c1 + c2 - 1). */
static void compose(nstr_changes *t)
{
    size_t k = 0;
    long starter = -1;
    int last_ccc = -1;
    for (size_t i = 0; i < t->n; i++) {
        uint32_t c = t->c[i];
        int cc = ccc(c);
        uint32_t comp;
        if (starter >= 0 && (last_ccc < cc || (last_ccc == 0 && (size_t)starter == k - 1)) &&
            !(last_ccc != 0 && last_ccc >= cc) && compose_pair(t->c[starter], c, &comp)) {
            t->c[starter] = comp;
            t->d[starter] = t->d[starter] + t->d[i] - 1;
            continue;
        }
        if (cc == 0) starter = (long)k;
        last_ccc = cc;
        t->c[k] = c;
        t->d[k] = t->d[i];
        k++;
    }
    t->n = k;
}

static int unicode_norm(nstr *s, int compat, int comp)
{
    nstr_changes t = {0};
    if (decompose(s, compat, &t)) {
        bs_tok_nstr_changes_free(&t);
        return BS_ENOMEM;
    }
    if (comp) compose(&t);
    return bs_tok_nstr_changes_apply(&t, s, 0);
}

static int lowercase(nstr *s)
{
    int multi = 0;
    for (size_t i = 0; i < s->n && !multi; i++) multi = s->c[i] == 0x130;
    if (!multi) { /* one char each: alignment unchanged */
        for (size_t i = 0; i < s->n; i++) {
            uint32_t o[3];
            bs_tok_uc_lower(s->c[i], o);
            s->c[i] = o[0];
        }
        return 0;
    }
    nstr_changes t = {0};
    for (size_t i = 0; i < s->n; i++) {
        uint32_t o[3];
        int k = bs_tok_uc_lower(s->c[i], o);
        for (int j = 0; j < k; j++)
            if (bs_tok_nstr_changes_push(&t, o[j], j ? 1 : 0)) {
                bs_tok_nstr_changes_free(&t);
                return BS_ENOMEM;
            }
    }
    return bs_tok_nstr_changes_apply(&t, s, 0);
}

static int bert(const normalizer *n, nstr *s)
{
    if (n->clean_text) {
        filter(s, bert_keep);
        for (size_t i = 0; i < s->n; i++)
            if (bs_tok_uc_is_whitespace(s->c[i])) s->c[i] = ' ';
    }
    if (n->handle_chinese) {
        int any = 0;
        for (size_t i = 0; i < s->n && !any; i++) any = bs_tok_uc_is_chinese(s->c[i]);
        if (any) {
            nstr_changes t = {0};
            for (size_t i = 0; i < s->n; i++) {
                int rc = 0;
                if (bs_tok_uc_is_chinese(s->c[i]))
                    rc = bs_tok_nstr_changes_push(&t, ' ', 0) ||
                         bs_tok_nstr_changes_push(&t, s->c[i], 1) ||
                         bs_tok_nstr_changes_push(&t, ' ', 1);
                else
                    rc = bs_tok_nstr_changes_push(&t, s->c[i], 0);
                if (rc) {
                    bs_tok_nstr_changes_free(&t);
                    return BS_ENOMEM;
                }
            }
            if (bs_tok_nstr_changes_apply(&t, s, 0)) return BS_ENOMEM;
        }
    }
    if (n->strip_accents) {
        if (unicode_norm(s, 0, 0)) return BS_ENOMEM;
        filter(s, keep_not_mn);
    }
    if (n->lowercase && lowercase(s)) return BS_ENOMEM;
    return 0;
}

static void strip(const normalizer *n, nstr *s)
{
    size_t a = 0, b = s->n;
    if (n->left)
        while (a < b && bs_tok_uc_is_whitespace(s->c[a])) a++;
    if (n->right)
        while (b > a && bs_tok_uc_is_whitespace(s->c[b - 1])) b--;
    if (a) {
        memmove(s->c, s->c + a, (b - a) * sizeof *s->c);
        memmove(s->a0, s->a0 + a, (b - a) * sizeof *s->a0);
        memmove(s->a1, s->a1 + a, (b - a) * sizeof *s->a1);
    }
    s->n = b - a;
}

/* Replace: new chars take the alignment of the last char of the match.
 * Stops with BS_ERANGE once the text would exceed cap code points. */
static int replace(const normalizer *n, nstr *s, size_t cap)
{
    size_t *m = NULL, nm = 0;
    int rc = bs_tok_pattern_find(&n->pat, s, &m, &nm);
    if (rc) return rc;
    if (!nm) {
        free(m);
        return 0;
    }
    nstr o;
    if (bs_tok_nstr_init(&o, s->n + 8)) {
        free(m);
        return BS_ENOMEM;
    }
    o.shift = s->shift;
    size_t pos = 0;
    const char *p = n->content;
    for (size_t k = 0; k < nm && !rc; k++) {
        size_t ms = m[2 * k], me = m[2 * k + 1];
        for (; pos < ms && !rc; pos++) rc = bs_tok_nstr_push(&o, s->c[pos], s->a0[pos], s->a1[pos]);
        uint32_t a0 = me ? s->a0[me - 1] : s->shift, a1 = me ? s->a1[me - 1] : s->shift;
        size_t i = 0, len = strlen(p);
        if (o.n + len > cap) rc = BS_ERANGE;
        while (i < len && !rc) {
            uint32_t cp;
            size_t w = bs_utf8_decode_cp(p + i, len - i, &cp);
            rc = bs_tok_nstr_push(&o, cp, a0, a1);
            i += w;
        }
        pos = me;
    }
    for (; pos < s->n && !rc; pos++) rc = bs_tok_nstr_push(&o, s->c[pos], s->a0[pos], s->a1[pos]);
    free(m);
    if (rc) {
        bs_tok_nstr_free(&o);
        return rc;
    }
    bs_tok_nstr_free(s);
    *s = o;
    return 0;
}

/* Prepend: the new chars take the first char's alignment. */
static int prepend(const normalizer *n, nstr *s)
{
    if (!s->n) return 0;
    nstr o;
    if (bs_tok_nstr_init(&o, s->n + 8)) return BS_ENOMEM;
    o.shift = s->shift;
    int rc = 0;
    const char *p = n->content;
    size_t i = 0, len = strlen(p);
    while (i < len && !rc) {
        uint32_t cp;
        size_t w = bs_utf8_decode_cp(p + i, len - i, &cp);
        rc = bs_tok_nstr_push(&o, cp, s->a0[0], s->a1[0]);
        i += w;
    }
    for (size_t k = 0; k < s->n && !rc; k++) rc = bs_tok_nstr_push(&o, s->c[k], s->a0[k], s->a1[k]);
    if (rc) {
        bs_tok_nstr_free(&o);
        return rc;
    }
    bs_tok_nstr_free(s);
    *s = o;
    return 0;
}

static int run(const normalizer *n, nstr *s, size_t cap)
{
    int rc = 0;
    switch (n->type) {
    case NORM_BERT:
        rc = bert(n, s);
        break;
    case NORM_NFD:
        rc = unicode_norm(s, 0, 0);
        break;
    case NORM_NFKD:
        rc = unicode_norm(s, 1, 0);
        break;
    case NORM_NFC:
        rc = unicode_norm(s, 0, 1);
        break;
    case NORM_NFKC:
        rc = unicode_norm(s, 1, 1);
        break;
    case NORM_LOWER:
        rc = lowercase(s);
        break;
    case NORM_STRIP_ACCENTS:
        filter(s, keep_not_mark);
        break;
    case NORM_STRIP:
        strip(n, s);
        break;
    case NORM_REPLACE:
        rc = replace(n, s, cap);
        break;
    case NORM_PREPEND:
        rc = prepend(n, s);
        break;
    case NORM_PRECOMPILED:
        rc = bs_tok_precompiled_run(n, s);
        break;
    case NORM_SEQ:
        for (size_t i = 0; i < n->n_subs && !rc; i++) rc = run(&n->subs[i], s, cap);
        break;
    }
    /* After every step: a chain of growing steps stops at the first one
     * past the budget, so its work stays within a few times the cap. */
    if (!rc && s->n > cap) rc = BS_ERANGE;
    return rc;
}

int bs_tok_normalize_run(const normalizer *n, nstr *s)
{
    if (!n) return 0;
    return run(n, s, BS_TOK_NORM_GROWTH * s->n + BS_TOK_NORM_SLACK);
}

void bs_tok_normalizer_free(normalizer *n)
{
    if (!n) return;
    bs_tok_pattern_free(&n->pat);
    free(n->content);
    free(n->pc_blob);
    free(n->pc_trie);
    for (size_t i = 0; i < n->n_subs; i++) bs_tok_normalizer_free(&n->subs[i]);
    free(n->subs);
}
