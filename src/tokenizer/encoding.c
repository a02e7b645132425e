/* The encoding: per-token arrays grown as tokens arrive, and the library's
 * operations on it: truncation into overflowing windows, merging a pair
 * (with the cross product of their windows), padding, freeing. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/encoding.h"

/* Arrays grow when len reaches a power of two, so no capacity field. */
static int grow(bs_encoding *e)
{
    size_t n = e->len;
    if (n && (n & (n - 1))) return 0;
    size_t cap = n ? n * 2 : 8;
    if (n && n < 8) return 0;
#define G(f)                                                                                       \
    do {                                                                                           \
        void *p = realloc(e->f, cap * sizeof *e->f);                                               \
        if (!p) return BS_ENOMEM;                                                                  \
        e->f = p;                                                                                  \
    } while (0)
    G(ids);
    G(type_ids);
    G(attention_mask);
    G(special_tokens_mask);
    G(word_ids);
    G(sequence_ids);
    G(tokens);
    G(offsets);
    G(byte_offsets);
#undef G
    return 0;
}

/* Token strings are packed into a chain of blocks owned by the encoding
 * (storage_), so that a token costs no allocation of its own. */
typedef struct block {
    struct block *next;
    size_t used, cap;
    char data[];
} block;

static char *store(bs_encoding *e, size_t n)
{
    block *b = e->storage_;
    if (!b || b->cap - b->used < n) {
        size_t cap = b ? b->cap * 2 : 1024;
        if (cap > (1u << 20)) cap = 1u << 20;
        if (cap < n) cap = n;
        block *nb = malloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        e->storage_ = b = nb;
    }
    char *p = b->data + b->used;
    b->used += n;
    return p;
}

int bs_tok_enc_push(bs_encoding *e, int32_t id, int32_t type_id, const char *tok, size_t tok_len,
                    size_t b0, size_t b1, int32_t word, int32_t seq, int special, int attn)
{
    if (grow(e)) return BS_ENOMEM;
    char *t = store(e, tok_len + 1);
    if (!t) return BS_ENOMEM;
    memcpy(t, tok, tok_len);
    t[tok_len] = 0;
    size_t i = e->len++;
    e->ids[i] = id;
    e->type_ids[i] = type_id;
    e->attention_mask[i] = (uint8_t)attn;
    e->special_tokens_mask[i] = (uint8_t)special;
    e->word_ids[i] = word;
    e->sequence_ids[i] = seq;
    e->tokens[i] = t;
    e->byte_offsets[i] = (bs_span){b0, b1};
    e->offsets[i] = (bs_span){0, 0};
    return 0;
}

static int enc_push_from(bs_encoding *e, const bs_encoding *s, size_t i)
{
    if (bs_tok_enc_push(e, s->ids[i], s->type_ids[i], s->tokens[i], strlen(s->tokens[i]),
                        s->byte_offsets[i].start, s->byte_offsets[i].end, s->word_ids[i],
                        s->sequence_ids[i], s->special_tokens_mask[i], s->attention_mask[i]))
        return BS_ENOMEM;
    e->offsets[e->len - 1] = s->offsets[i];
    return 0;
}

void bs_tok_enc_clear(bs_encoding *e)
{
    if (!e) return;
    for (block *b = e->storage_, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(e->ids);
    free(e->type_ids);
    free(e->attention_mask);
    free(e->special_tokens_mask);
    free(e->word_ids);
    free(e->sequence_ids);
    free(e->tokens);
    free(e->offsets);
    free(e->byte_offsets);
    for (size_t i = 0; i < e->n_overflowing; i++) bs_tok_enc_clear(&e->overflowing[i]);
    free(e->overflowing);
    memset(e, 0, sizeof *e);
}

int bs_tok_enc_slice(const bs_encoding *s, size_t from, size_t to, bs_encoding *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = from; i < to; i++)
        if (enc_push_from(out, s, i)) {
            bs_tok_enc_clear(out);
            return BS_ENOMEM;
        }
    return 0;
}

int bs_tok_enc_clone(const bs_encoding *s, bs_encoding *out)
{
    if (bs_tok_enc_slice(s, 0, s->len, out)) return BS_ENOMEM;
    if (s->n_overflowing) {
        out->overflowing = calloc(s->n_overflowing, sizeof *out->overflowing);
        if (!out->overflowing) {
            bs_tok_enc_clear(out);
            return BS_ENOMEM;
        }
        out->n_overflowing = s->n_overflowing;
        for (size_t i = 0; i < s->n_overflowing; i++)
            if (bs_tok_enc_clone(&s->overflowing[i], &out->overflowing[i])) {
                bs_tok_enc_clear(out);
                return BS_ENOMEM;
            }
    }
    return 0;
}

static int add_overflow(bs_encoding *e, bs_encoding *o)
{
    bs_encoding *v = realloc(e->overflowing, (e->n_overflowing + 1) * sizeof *v);
    if (!v) {
        bs_tok_enc_clear(o);
        return BS_ENOMEM;
    }
    e->overflowing = v;
    e->overflowing[e->n_overflowing++] = *o;
    memset(o, 0, sizeof *o);
    return 0;
}

/* Appends window [start, stop) to *parts (pairs, *cap of them allocated);
 * frees *parts when it cannot grow. */
static int window_push(size_t **parts, size_t *nparts, size_t *cap, size_t start, size_t stop)
{
    if (*nparts == *cap) {
        size_t *np = realloc(*parts, *cap * 4 * sizeof *np);
        if (!np) {
            free(*parts);
            *parts = NULL;
            return BS_ENOMEM;
        }
        *parts = np;
        *cap *= 2;
    }
    (*parts)[2 * *nparts] = start;
    (*parts)[2 * *nparts + 1] = stop;
    (*nparts)++;
    return 0;
}

int bs_tok_enc_truncate(bs_encoding *e, size_t max_len, size_t stride, int left)
{
    size_t n = e->len;
    if (max_len >= n) return 0;
    if (max_len == 0) {
        bs_encoding whole = *e;
        memset(e, 0, sizeof *e);
        return add_overflow(e, &whole);
    }
    if (stride >= max_len) return BS_EINVAL;
    size_t step = max_len - stride;
    size_t nparts = 0, cap = 16;
    size_t *parts = calloc(cap * 2, sizeof *parts);
    if (!parts) return BS_ENOMEM;
    if (!left) {
        for (size_t start = 0; start < n; start += step) {
            size_t stop = start + max_len < n ? start + max_len : n;
            if (window_push(&parts, &nparts, &cap, start, stop)) return BS_ENOMEM;
            if (stop == n) break;
        }
    } else {
        /* (0..n).rev().step_by(step): stops at n-1, n-1-step, ... */
        for (size_t k = 0;; k++) {
            if (k * step > n - 1) break;
            size_t stop = n - k * step; /* stop = index + 1 */
            size_t start = stop < max_len ? 0 : stop - max_len;
            if (window_push(&parts, &nparts, &cap, start, stop)) return BS_ENOMEM;
            if (start == 0) break;
        }
    }
    bs_encoding main;
    if (bs_tok_enc_slice(e, parts[0], parts[1], &main)) {
        free(parts);
        return BS_ENOMEM;
    }
    for (size_t i = 1; i < nparts; i++) {
        bs_encoding o;
        if (bs_tok_enc_slice(e, parts[2 * i], parts[2 * i + 1], &o) || add_overflow(&main, &o)) {
            free(parts);
            bs_tok_enc_clear(&main);
            return BS_ENOMEM;
        }
    }
    free(parts);
    bs_tok_enc_clear(e);
    *e = main;
    return 0;
}

static int append_all(bs_encoding *a, const bs_encoding *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (enc_push_from(a, b, i)) return BS_ENOMEM;
    return 0;
}

int bs_tok_enc_merge_with(bs_encoding *a, const bs_encoding *b)
{
    bs_encoding *ovs = NULL;
    size_t n = 0, cap = a->n_overflowing * (b->n_overflowing + 1) + b->n_overflowing;
    if (cap) {
        ovs = calloc(cap, sizeof *ovs);
        if (!ovs) return BS_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < a->n_overflowing && !rc; i++) {
        rc = bs_tok_enc_clone(&a->overflowing[i], &ovs[n]);
        if (!rc) rc = bs_tok_enc_merge_with(&ovs[n], b);
        n++;
        for (size_t j = 0; j < b->n_overflowing && !rc; j++) {
            rc = bs_tok_enc_clone(&a->overflowing[i], &ovs[n]);
            if (!rc) rc = bs_tok_enc_merge_with(&ovs[n], &b->overflowing[j]);
            n++;
        }
    }
    for (size_t j = 0; j < b->n_overflowing && !rc; j++) {
        bs_encoding self = *a;
        self.overflowing = NULL;
        self.n_overflowing = 0;
        rc = bs_tok_enc_clone(&self, &ovs[n]);
        if (!rc) rc = bs_tok_enc_merge_with(&ovs[n], &b->overflowing[j]);
        n++;
    }
    if (!rc) rc = append_all(a, b);
    if (rc) {
        for (size_t i = 0; i < n; i++) bs_tok_enc_clear(&ovs[i]);
        free(ovs);
        return rc;
    }
    for (size_t i = 0; i < a->n_overflowing; i++) bs_tok_enc_clear(&a->overflowing[i]);
    free(a->overflowing);
    a->overflowing = ovs;
    a->n_overflowing = n;
    return 0;
}

int bs_tok_enc_pad(bs_encoding *e, size_t target, int32_t pad_id, int32_t pad_type,
                   const char *pad_tok, int left)
{
    for (size_t i = 0; i < e->n_overflowing; i++)
        if (bs_tok_enc_pad(&e->overflowing[i], target, pad_id, pad_type, pad_tok, left))
            return BS_ENOMEM;
    if (e->len >= target) return 0;
    size_t k = target - e->len, old = e->len;
    size_t tl = strlen(pad_tok);
    for (size_t i = 0; i < k; i++)
        if (bs_tok_enc_push(e, pad_id, pad_type, pad_tok, tl, 0, 0, -1, -1, 1, 0)) return BS_ENOMEM;
    if (left) { /* rotate the pads to the front */
#define ROT(f)                                                                                     \
    do {                                                                                           \
        __typeof__(*e->f) *tmp = malloc(k * sizeof *tmp);                                          \
        if (!tmp) return BS_ENOMEM;                                                                \
        memcpy(tmp, e->f + old, k * sizeof *tmp);                                                  \
        memmove(e->f + k, e->f, old * sizeof *tmp);                                                \
        memcpy(e->f, tmp, k * sizeof *tmp);                                                        \
        free(tmp);                                                                                 \
    } while (0)
        ROT(ids);
        ROT(type_ids);
        ROT(attention_mask);
        ROT(special_tokens_mask);
        ROT(word_ids);
        ROT(sequence_ids);
        ROT(tokens);
        ROT(offsets);
        ROT(byte_offsets);
#undef ROT
    }
    return 0;
}

void bs_encoding_free(bs_encoding *enc)
{
    if (!enc) return;
    bs_tok_enc_clear(enc);
    free(enc);
}

void bs_encoding_batch_free(bs_encoding **encs, size_t n)
{
    if (!encs) return;
    for (size_t i = 0; i < n; i++) bs_encoding_free(encs[i]);
    free(encs);
}
