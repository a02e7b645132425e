/* One sequence through the pipeline: added tokens split out (first on the
 * raw text, then on the normalized pieces), normalization, pre-tokenization,
 * the model, and the resulting tokens with offsets into the original text.
 * With a token limit it stops after the word that reaches it (tokenizers
 * 0.23's early exit for truncation). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/encoding.h"
#include "tokenizer/pipeline.h"

typedef struct split {
    nstr s;
    int added; /* index into tok->added, or -1 */
} split;

typedef struct split_list {
    split *v;
    size_t n, cap;
} split_list;

static int sl_push(split_list *l, nstr *s, int added)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        split *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            bs_tok_nstr_free(s);
            return BS_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].s = *s;
    l->v[l->n].added = added;
    l->n++;
    memset(s, 0, sizeof *s);
    return 0;
}

static void sl_free(split_list *l)
{
    for (size_t i = 0; i < l->n; i++) bs_tok_nstr_free(&l->v[i].s);
    free(l->v);
}

static int is_word_char(uint32_t c)
{
    return c == '_' || bs_tok_uc_is_alnum(c) || bs_tok_uc_is_mark(c) ||
           bs_tok_uc_category(c) == UTF8PROC_CATEGORY_PC;
}

/* Finds added tokens (normalized or not) in s; appends the splits to out. */
static int split_added(const bs_tokenizer *tok, nstr *s, int normalized, split_list *out)
{
    if (!s->n) return 0;
    char *u;
    size_t len;
    uint32_t *map;
    if (bs_tok_nstr_to_utf8(s, &u, &len, &map)) return BS_ENOMEM;
    int rc = 0;
    uint8_t first[256] = {0};
    for (size_t k = 0; k < tok->n_added; k++) {
        const added_token *t = &tok->added[k];
        const char *c = normalized ? t->norm_content : t->content;
        if (t->normalized == normalized && c && c[0]) first[(unsigned char)c[0]] = 1;
    }
    size_t start_off = 0, i = 0;
    while (i < len && !rc) {
        if (!first[(unsigned char)u[i]]) {
            i++;
            continue;
        }
        int best = -1;
        size_t blen = 0;
        for (size_t k = 0; k < tok->n_added; k++) {
            const added_token *t = &tok->added[k];
            if (t->normalized != normalized) continue;
            const char *c = normalized ? t->norm_content : t->content;
            size_t cl = normalized ? t->norm_len : t->len;
            if (!cl || cl > len - i || (unsigned char)c[0] != (unsigned char)u[i]) continue;
            if (cl > blen && !memcmp(u + i, c, cl)) best = (int)k, blen = cl;
        }
        if (best < 0) {
            i++;
            continue;
        }
        const added_token *t = &tok->added[best];
        size_t ms = i, me = i + blen;
        i = me;
        if (t->single_word) {
            uint32_t before = ms ? s->c[map[ms] - 1] : 0, after = me < len ? s->c[map[me]] : 0;
            if ((ms && is_word_char(before)) || (me < len && is_word_char(after))) continue;
        }
        if (t->lstrip) {
            size_t cs = map[ms];
            while (cs > 0 && bs_tok_uc_is_whitespace(s->c[cs - 1])) cs--;
            size_t ns = 0;
            for (ns = ms; ns > 0 && map[ns - 1] >= cs; ns--) {
            }
            ms = ns > start_off ? ns : start_off;
        }
        if (t->rstrip) {
            size_t ce = map[me];
            while (ce < s->n && bs_tok_uc_is_whitespace(s->c[ce])) ce++;
            while (me < len && map[me] < ce) me++;
            i = me;
        }
        nstr p;
        if (start_off < ms) {
            if ((rc = bs_tok_nstr_slice(s, map[start_off], map[ms], &p)) ||
                (rc = sl_push(out, &p, -1)))
                break;
        }
        if ((rc = bs_tok_nstr_slice(s, map[ms], map[me], &p)) || (rc = sl_push(out, &p, best)))
            break;
        start_off = me;
    }
    if (!rc && start_off < len) {
        nstr p;
        if (!(rc = bs_tok_nstr_slice(s, map[start_off], s->n, &p))) rc = sl_push(out, &p, -1);
    }
    free(u);
    free(map);
    return rc;
}

static int any_added(const bs_tokenizer *tok, int normalized)
{
    for (size_t k = 0; k < tok->n_added; k++)
        if (tok->added[k].normalized == normalized) return 1;
    return 0;
}

/* Emits the tokens of one final piece into e. */
static int emit_piece(const bs_tokenizer *tok, const split *sp, int32_t word, int32_t seq,
                      tok_vec *tv, bs_encoding *e, size_t *count)
{
    const nstr *s = &sp->s;
    if (!s->n) return 0;
    char ubuf[1024 + 1];
    uint32_t mbuf[1024 + 1];
    char *u = ubuf;
    uint32_t *map = mbuf;
    size_t len;
    if (s->n <= 256) { /* words are short: no allocation */
        len = bs_tok_nstr_to_utf8_buf(s, ubuf, mbuf);
    } else if (bs_tok_nstr_to_utf8(s, &u, &len, &map)) {
        return BS_ENOMEM;
    }
    int rc = 0;
    if (sp->added >= 0) {
        rc = bs_tok_enc_push(e, tok->added[sp->added].id, 0, u, len, s->a0[0], s->a1[s->n - 1],
                             word, seq, 0, 1);
        (*count)++;
    } else {
        tv->n = 0;
        tv->sb_len = 0;
        rc = bs_tok_model_tokenize(&tok->model, u, len, tv);
        for (size_t k = 0; k < tv->n && !rc; k++) {
            const model_token *t = &tv->v[k];
            size_t cs = map[t->b0], ce = t->b1 > t->b0 ? map[t->b1 - 1] + 1 : cs;
            if (ce > s->n) ce = s->n;
            if (cs >= s->n) cs = s->n - 1;
            const char *str;
            size_t sl;
            if (t->str) {
                str = tv->strbuf + ((uintptr_t)t->str - 1);
                sl = t->str_len;
            } else {
                str = bs_tok_model_id_to_token(&tok->model, t->id, &sl);
                if (!str) str = "", sl = 0;
            }
            rc = bs_tok_enc_push(e, t->id, 0, str, sl, s->a0[cs], s->a1[ce ? ce - 1 : 0], word, seq,
                                 0, 1);
            (*count)++;
        }
    }
    if (u != ubuf) {
        free(u);
        free(map);
    }
    return rc;
}

int bs_tok_pipeline_encode_seq(const bs_tokenizer *tok, const char *text, size_t len, int32_t seq,
                               size_t limit, int from_left, bs_encoding *e, bs_err *err)
{
    memset(e, 0, sizeof *e);
    nstr whole;
    if (bs_tok_nstr_from_utf8(&whole, text, len, 0))
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    split_list a = {0}, b = {0};
    int rc = 0;
    if (any_added(tok, 0)) {
        rc = split_added(tok, &whole, 0, &a);
        bs_tok_nstr_free(&whole);
    } else {
        rc = sl_push(&a, &whole, -1);
    }
    for (size_t i = 0; i < a.n && !rc; i++) {
        if (a.v[i].added >= 0) {
            rc = sl_push(&b, &a.v[i].s, a.v[i].added);
            continue;
        }
        rc = bs_tok_normalize_run(tok->norm, &a.v[i].s);
        if (rc) break;
        if (any_added(tok, 1))
            rc = split_added(tok, &a.v[i].s, 1, &b);
        else
            rc = sl_push(&b, &a.v[i].s, -1);
    }
    sl_free(&a);
    /* pre-tokenize every non-added split into the final word list */
    split_list w = {0};
    for (size_t i = 0; i < b.n && !rc; i++) {
        if (!b.v[i].s.n) continue;
        if (b.v[i].added >= 0) {
            rc = sl_push(&w, &b.v[i].s, b.v[i].added);
            continue;
        }
        piece_list pl = {0};
        rc = bs_tok_pieces_push(&pl, &b.v[i].s);
        if (!rc) rc = bs_tok_pretok_run(tok->pre, &pl);
        for (size_t k = 0; k < pl.n && !rc; k++)
            if (pl.v[k].n) rc = sl_push(&w, &pl.v[k], -1);
        bs_tok_pieces_free(&pl);
    }
    sl_free(&b);
    tok_vec tv = {0};
    size_t count = 0;
    if (!rc) {
        if (!from_left || !limit) {
            for (size_t i = 0; i < w.n && !rc; i++) {
                rc = emit_piece(tok, &w.v[i], (int32_t)i, seq, &tv, e, &count);
                /* added tokens count, but only a word the model tokenized can stop */
                if (limit && count >= limit && w.v[i].added < 0) break;
            }
        } else {
            /* tokenize from the end; emit in order afterwards */
            size_t first = w.n;
            for (size_t i = w.n; i-- > 0 && !rc;) {
                bs_encoding tmp;
                memset(&tmp, 0, sizeof tmp);
                rc = emit_piece(tok, &w.v[i], (int32_t)i, seq, &tv, &tmp, &count);
                bs_tok_enc_clear(&tmp);
                first = i;
                if (count >= limit && w.v[i].added < 0) break;
            }
            count = 0;
            /* the kept words are numbered from 0, as the library does */
            for (size_t i = first; i < w.n && !rc; i++)
                rc = emit_piece(tok, &w.v[i], (int32_t)(i - first), seq, &tv, e, &count);
        }
    }
    bs_tok_tokvec_free(&tv);
    sl_free(&w);
    if (rc) {
        bs_tok_enc_clear(e);
        if (rc == BS_EUNPROCESSABLE)
            return bs_err_set(
                err, rc, "tokenizer: the model has no unknown token for a word it cannot encode");
        if (rc == BS_ERANGE)
            return bs_err_set(err, BS_EUNPROCESSABLE,
                              "tokenizer: the model's normalizer or pattern exceeded its work "
                              "budget on this input (a Replace that grows the text more than %ux, "
                              "or a regex that backtracks catastrophically)",
                              BS_TOK_NORM_GROWTH);
        return bs_err_set(err, rc, "tokenizer: %s", bs_strerror(rc));
    }
    return 0;
}
