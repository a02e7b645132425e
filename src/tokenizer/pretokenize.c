/* Pre-tokenizers: cut the normalized string into words (BertPreTokenizer,
 * ByteLevel, Whitespace, WhitespaceSplit, Metaspace, Punctuation, Digits,
 * Split, CharDelimiterSplit, Sequence) with HuggingFace's split behaviours. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

int bs_tok_pieces_push(piece_list *l, nstr *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        nstr *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            bs_tok_nstr_free(s);
            return BS_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *s;
    memset(s, 0, sizeof *s);
    return 0;
}

void bs_tok_pieces_free(piece_list *l)
{
    for (size_t i = 0; i < l->n; i++) bs_tok_nstr_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

typedef struct span {
    size_t s, e;
    int m;
} span;

typedef struct span_vec {
    span *v;
    size_t n, cap;
} span_vec;

static int sv_push(span_vec *v, size_t s, size_t e, int m)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 32;
        span *nv = realloc(v->v, cap * sizeof *nv);
        if (!nv) return BS_ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = (span){s, e, m};
    return 0;
}

/* Char-predicate matches: each matching char alone, runs of others together. */
static int find_pred(const nstr *s, int (*pred)(uint32_t), span_vec *out)
{
    if (!s->n) return sv_push(out, 0, 0, 0);
    size_t prev = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!pred(s->c[i])) continue;
        if (prev < i && sv_push(out, prev, i, 0)) return BS_ENOMEM;
        if (sv_push(out, i, i + 1, 1)) return BS_ENOMEM;
        prev = i + 1;
    }
    if (prev < s->n && sv_push(out, prev, s->n, 0)) return BS_ENOMEM;
    return 0;
}

static int find_pattern(const pattern *p, const nstr *s, span_vec *out)
{
    if (!s->n) return sv_push(out, 0, 0, 0);
    size_t *m = NULL, nm = 0;
    int rc = bs_tok_pattern_find(p, s, &m, &nm);
    if (rc) return rc;
    size_t prev = 0;
    for (size_t k = 0; k < nm && !rc; k++) {
        if (prev != m[2 * k]) rc = sv_push(out, prev, m[2 * k], 0);
        if (!rc) rc = sv_push(out, m[2 * k], m[2 * k + 1], 1);
        prev = m[2 * k + 1];
    }
    if (!rc && prev != s->n) rc = sv_push(out, prev, s->n, 0);
    free(m);
    return rc;
}

/* Applies a split behaviour to the matches and appends the non-empty slices. */
static int split_apply(const nstr *s, span_vec *sv, int behavior, piece_list *out)
{
    span *v = sv->v;
    size_t n = sv->n, k = 0;
    switch (behavior) {
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < n; i++) v[i].m = 0;
        break;
    case SPLIT_REMOVED:
        break;
    case SPLIT_CONTIGUOUS:
    case SPLIT_MERGED_PREV: {
        /* contiguous: consecutive spans of one kind become one piece;
         * merged_with_previous: a match joins the piece before it */
        int contiguous = behavior == SPLIT_CONTIGUOUS, prevm = 0;
        for (size_t i = 0; i < n; i++) {
            int m = v[i].m;
            int join = contiguous ? m == prevm : m && !prevm;
            if (join && k > 0)
                v[k - 1].e = v[i].e;
            else
                v[k++] = (span){v[i].s, v[i].e, 0};
            prevm = m;
        }
        n = k;
        break;
    }
    case SPLIT_MERGED_NEXT: {
        /* walk backwards, then restore order */
        int prevm = 0;
        span *r = malloc((n ? n : 1) * sizeof *r);
        if (!r) return BS_ENOMEM;
        for (size_t i = n; i-- > 0;) {
            int m = v[i].m;
            if (m && !prevm && k > 0)
                r[k - 1].s = v[i].s;
            else
                r[k++] = (span){v[i].s, v[i].e, 0};
            prevm = m;
        }
        for (size_t i = 0; i < k; i++) v[i] = r[k - 1 - i];
        free(r);
        n = k;
        break;
    }
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i].m || v[i].e <= v[i].s) continue;
        nstr p;
        if (bs_tok_nstr_slice(s, v[i].s, v[i].e, &p)) return BS_ENOMEM;
        if (bs_tok_pieces_push(out, &p)) return BS_ENOMEM;
    }
    return 0;
}

static int is_bert_punct(uint32_t c)
{
    if (c < 128)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
               (c >= 123 && c <= 126);
    return bs_tok_uc_is_punct(c);
}

static int is_numeric(uint32_t c)
{
    int k = bs_tok_uc_category(c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

/* Splits every piece of l where pred (when not NULL) or pattern p matches;
 * invert swaps matches and the text between them. */
static int split_pieces(piece_list *l, int (*pred)(uint32_t), const pattern *p, int behavior,
                        int invert)
{
    piece_list out = {0};
    int rc = 0;
    for (size_t i = 0; i < l->n && !rc; i++) {
        span_vec sv = {0};
        rc = pred ? find_pred(&l->v[i], pred, &sv) : find_pattern(p, &l->v[i], &sv);
        if (invert)
            for (size_t k = 0; k < sv.n; k++) sv.v[k].m = !sv.v[k].m;
        if (!rc) rc = split_apply(&l->v[i], &sv, behavior, &out);
        free(sv.v);
    }
    if (rc) {
        bs_tok_pieces_free(&out);
        return rc;
    }
    bs_tok_pieces_free(l);
    *l = out;
    return 0;
}

static int split_pred(piece_list *l, int (*pred)(uint32_t), int behavior)
{
    return split_pieces(l, pred, NULL, behavior, 0);
}

static int split_pat(piece_list *l, const pattern *p, int behavior, int invert)
{
    return split_pieces(l, NULL, p, behavior, invert);
}

static int prepend_char(nstr *s, uint32_t c)
{
    if (!s->n) return 0;
    if (bs_tok_nstr_push(s, 0, 0, 0)) return BS_ENOMEM;
    memmove(s->c + 1, s->c, (s->n - 1) * sizeof *s->c);
    memmove(s->a0 + 1, s->a0, (s->n - 1) * sizeof *s->a0);
    memmove(s->a1 + 1, s->a1, (s->n - 1) * sizeof *s->a1);
    s->c[0] = c;
    s->a0[0] = s->a0[1];
    s->a1[0] = s->a1[1];
    return 0;
}

static uint32_t g_bytelevel[256];
static int16_t g_byte_of[512];
static pthread_once_t g_bytelevel_once = PTHREAD_ONCE_INIT;

/* GPT-2's byte → printable char table: printable Latin-1 bytes map to
 * themselves, the rest to 256, 257, ... in byte order. */
static void bytelevel_build(void)
{
    uint32_t t[256];
    int16_t r[512];
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        t[b] = keep ? (uint32_t)b : 256 + n++;
    }
    for (int i = 0; i < 512; i++) r[i] = -1;
    for (int b = 0; b < 256; b++) r[t[b]] = (int16_t)b;
    memcpy(g_bytelevel, t, sizeof t);
    memcpy(g_byte_of, r, sizeof r);
}

static void bytelevel_init(void)
{
    pthread_once(&g_bytelevel_once, bytelevel_build);
}

uint32_t bs_tok_bytelevel_char(uint8_t b)
{
    bytelevel_init();
    return g_bytelevel[b];
}

int bs_tok_bytelevel_byte(uint32_t c)
{
    bytelevel_init();
    return c < 512 ? g_byte_of[c] : -1;
}

static int bytelevel_map(nstr *s)
{
    size_t extra = 0;
    for (size_t i = 0; i < s->n; i++) extra += s->c[i] >= 0x80;
    if (!extra) {
        for (size_t i = 0; i < s->n; i++) s->c[i] = bs_tok_bytelevel_char((uint8_t)s->c[i]);
        return 0;
    }
    nstr o;
    if (bs_tok_nstr_init(&o, s->n * 4 + 1)) return BS_ENOMEM;
    o.shift = s->shift;
    for (size_t i = 0; i < s->n; i++) {
        char b[4];
        size_t w = bs_utf8_encode(s->c[i], b);
        for (size_t j = 0; j < w; j++)
            bs_tok_nstr_push(&o, bs_tok_bytelevel_char((uint8_t)b[j]), s->a0[i], s->a1[i]);
    }
    bs_tok_nstr_free(s);
    *s = o;
    return 0;
}

static pattern g_gpt2;
static pattern g_ws;
static int g_pat_ready;
static pthread_once_t g_pat_once = PTHREAD_ONCE_INIT;

static void patterns_init(void)
{
    static const char gpt2[] =
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    /* Whitespace's \\w+|[^\\w\\s]+ with the Rust regex crate's classes */
    static const char ws[] =
        "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]+|"
        "[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}\\p{White_Space}]+";
    char e[128];
    g_pat_ready = !bs_tok_pattern_compile(&g_gpt2, gpt2, sizeof gpt2 - 1, 1, e, sizeof e) &&
                  !bs_tok_pattern_compile(&g_ws, ws, sizeof ws - 1, 1, e, sizeof e);
}

static int metaspace(const pretok *p, piece_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        nstr *s = &l->v[i];
        for (size_t k = 0; k < s->n; k++)
            if (s->c[k] == ' ') s->c[k] = p->replacement;
        int first = (s->n ? s->a0[0] : s->shift) == 0;
        if (s->n && s->c[0] != p->replacement &&
            (p->prepend_scheme == PREPEND_ALWAYS || (p->prepend_scheme == PREPEND_FIRST && first)))
            if (prepend_char(s, p->replacement)) return BS_ENOMEM;
    }
    if (!p->split) return 0;
    pattern rp = {0};
    char b[4];
    size_t w = bs_utf8_encode(p->replacement, b);
    rp.str = b;
    rp.len = w;
    piece_list out = {0};
    int rc = 0;
    for (size_t i = 0; i < l->n && !rc; i++) {
        span_vec sv = {0};
        rc = find_pattern(&rp, &l->v[i], &sv);
        if (!rc) rc = split_apply(&l->v[i], &sv, SPLIT_MERGED_NEXT, &out);
        free(sv.v);
    }
    if (rc) {
        bs_tok_pieces_free(&out);
        return rc;
    }
    bs_tok_pieces_free(l);
    *l = out;
    return 0;
}

int bs_tok_pretok_run(const pretok *p, piece_list *l)
{
    if (!p) return 0;
    pthread_once(&g_pat_once, patterns_init);
    int rc = 0;
    switch (p->type) {
    case PRE_BERT:
        rc = split_pred(l, bs_tok_uc_is_whitespace, SPLIT_REMOVED);
        if (!rc) rc = split_pred(l, is_bert_punct, SPLIT_ISOLATED);
        return rc;
    case PRE_WHITESPACE:
        if (!g_pat_ready) return BS_EINTERNAL;
        return split_pat(l, &g_ws, SPLIT_REMOVED, 1);
    case PRE_WHITESPACE_SPLIT:
        return split_pred(l, bs_tok_uc_is_whitespace, SPLIT_REMOVED);
    case PRE_PUNCT:
        return split_pred(l, is_bert_punct, p->behavior);
    case PRE_DIGITS:
        return split_pred(l, is_numeric, p->individual_digits ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS);
    case PRE_SPLIT:
        return split_pat(l, &p->pat, p->behavior, p->invert);
    case PRE_CHAR_DELIM: {
        pattern dp = {0};
        char b[4];
        dp.len = bs_utf8_encode(p->delim, b);
        dp.str = b;
        return split_pat(l, &dp, SPLIT_REMOVED, 0);
    }
    case PRE_METASPACE:
        return metaspace(p, l);
    case PRE_BYTELEVEL:
        if (p->add_prefix_space)
            for (size_t i = 0; i < l->n; i++)
                if (l->v[i].n && l->v[i].c[0] != ' ' && prepend_char(&l->v[i], ' '))
                    return BS_ENOMEM;
        if (p->use_regex) {
            if (!g_pat_ready) return BS_EINTERNAL;
            rc = split_pat(l, &g_gpt2, SPLIT_ISOLATED, 0);
            if (rc) return rc;
        }
        for (size_t i = 0; i < l->n; i++)
            if (bytelevel_map(&l->v[i])) return BS_ENOMEM;
        return 0;
    case PRE_SEQ:
        for (size_t i = 0; i < p->n_subs && !rc; i++) rc = bs_tok_pretok_run(&p->subs[i], l);
        return rc;
    }
    return 0;
}

void bs_tok_pretok_free(pretok *p)
{
    if (!p) return;
    bs_tok_pattern_free(&p->pat);
    for (size_t i = 0; i < p->n_subs; i++) bs_tok_pretok_free(&p->subs[i]);
    free(p->subs);
}
