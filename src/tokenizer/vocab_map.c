/* String → id map for vocabularies and merges: open addressing with linear
 * probing, so that a lookup in the encode hot path never allocates. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

uint64_t bs_tok_vmap_hash(const char *k, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

int bs_tok_vmap_init(vocab_map *m, size_t expected)
{
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    while (cap < expected * 2 + 16) cap *= 2;
    m->keys = calloc(cap, sizeof *m->keys);
    m->klen = calloc(cap, sizeof *m->klen);
    m->vals = calloc(cap, sizeof *m->vals);
    if (!m->keys || !m->klen || !m->vals) {
        bs_tok_vmap_free(m);
        return BS_ENOMEM;
    }
    m->cap = cap;
    return 0;
}

void bs_tok_vmap_free(vocab_map *m)
{
    if (m->keys)
        for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->klen);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static int vmap_rehash(vocab_map *m)
{
    vocab_map n;
    if (bs_tok_vmap_init(&n, m->cap)) return BS_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = bs_tok_vmap_hash(m->keys[i], m->klen[i]) & (n.cap - 1);
        while (n.keys[j]) j = (j + 1) & (n.cap - 1);
        n.keys[j] = m->keys[i];
        n.klen[j] = m->klen[i];
        n.vals[j] = m->vals[i];
        n.count++;
        m->keys[i] = NULL;
    }
    bs_tok_vmap_free(m);
    *m = n;
    return 0;
}

int bs_tok_vmap_put(vocab_map *m, const char *k, size_t klen, int32_t v)
{
    if (klen > UINT32_MAX) return BS_ERANGE;
    if ((m->count + 1) * 2 > m->cap && vmap_rehash(m)) return BS_ENOMEM;
    size_t j = bs_tok_vmap_hash(k, klen) & (m->cap - 1);
    while (m->keys[j]) {
        if (m->klen[j] == klen && !memcmp(m->keys[j], k, klen)) {
            m->vals[j] = v;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    char *c = malloc(klen + 1);
    if (!c) return BS_ENOMEM;
    memcpy(c, k, klen);
    c[klen] = 0;
    m->keys[j] = c;
    m->klen[j] = (uint32_t)klen;
    m->vals[j] = v;
    m->count++;
    return 0;
}

int32_t bs_tok_vmap_get(const vocab_map *m, const char *k, size_t klen)
{
    if (!m->cap) return -1;
    size_t j = bs_tok_vmap_hash(k, klen) & (m->cap - 1);
    while (m->keys[j]) {
        if (m->klen[j] == klen && !memcmp(m->keys[j], k, klen)) return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}
