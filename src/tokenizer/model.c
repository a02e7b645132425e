/* What the three models share: the vocabulary (string ↔ id), the token list
 * they fill, and dispatch by kind. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

int bs_tok_tokvec_push(tok_vec *t, int32_t id, uint32_t b0, uint32_t b1)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        model_token *v = realloc(t->v, cap * sizeof *v);
        if (!v) return BS_ENOMEM;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = (model_token){id, b0, b1, NULL, 0};
    return 0;
}

/* The string is kept in strbuf; its pointer is fixed up by offset later,
 * so str holds the offset (as a pointer-sized integer) until then. */
int bs_tok_tokvec_push_str(tok_vec *t, int32_t id, uint32_t b0, uint32_t b1, const char *s,
                           size_t n)
{
    if (t->sb_len + n + 1 > t->sb_cap) {
        size_t cap = t->sb_cap ? t->sb_cap : 256;
        while (cap < t->sb_len + n + 1) cap *= 2;
        char *b = realloc(t->strbuf, cap);
        if (!b) return BS_ENOMEM;
        t->strbuf = b;
        t->sb_cap = cap;
    }
    size_t at = t->sb_len;
    memcpy(t->strbuf + at, s, n);
    t->strbuf[at + n] = 0;
    t->sb_len += n + 1;
    if (bs_tok_tokvec_push(t, id, b0, b1)) return BS_ENOMEM;
    t->v[t->n - 1].str = (const char *)(uintptr_t)(at + 1); /* 1-based: 0 means none */
    t->v[t->n - 1].str_len = n;
    return 0;
}

void bs_tok_tokvec_free(tok_vec *t)
{
    free(t->v);
    free(t->strbuf);
    memset(t, 0, sizeof *t);
}

int bs_tok_model_set_vocab(model *m, size_t n_ids)
{
    m->id_to_tok = calloc(n_ids ? n_ids : 1, sizeof *m->id_to_tok);
    m->id_len = calloc(n_ids ? n_ids : 1, sizeof *m->id_len);
    if (!m->id_to_tok || !m->id_len) return BS_ENOMEM;
    m->n_ids = n_ids;
    return 0;
}

const char *bs_tok_model_id_to_token(const model *m, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= m->n_ids || !m->id_to_tok[id]) return NULL;
    if (len) *len = m->id_len[id];
    return m->id_to_tok[id];
}

int bs_tok_model_tokenize(const model *m, const char *s, size_t len, tok_vec *out)
{
    switch (m->kind) {
    case BS_MODEL_WORDPIECE:
        return bs_tok_wordpiece_tokenize(m, s, len, out);
    case BS_MODEL_BPE:
        return bs_tok_bpe_tokenize(m, s, len, out);
    case BS_MODEL_UNIGRAM:
        return bs_tok_unigram_tokenize(m, s, len, out);
    case BS_MODEL_WORDLEVEL: {
        int32_t id = bs_tok_vmap_get(&m->vocab, s, len);
        if (id < 0) id = m->unk_id;
        if (id < 0) return BS_EUNPROCESSABLE;
        return bs_tok_tokvec_push(out, id, 0, (uint32_t)len);
    }
    }
    return BS_EINTERNAL;
}

void bs_tok_bpe_free(model *m);

void bs_tok_model_free(model *m)
{
    bs_tok_vmap_free(&m->vocab);
    if (m->id_to_tok)
        for (size_t i = 0; i < m->n_ids; i++) free(m->id_to_tok[i]);
    free(m->id_to_tok);
    free(m->id_len);
    free(m->unk_token);
    free(m->prefix);
    free(m->suffix);
    free(m->scores);
    bs_tok_bpe_free(m);
    memset(m, 0, sizeof *m);
}
