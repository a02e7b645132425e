/* Byte-pair encoding: a word starts as one symbol per char (byte fallback or
 * unknown token for chars outside the vocabulary) and pairs are merged by
 * rank, lowest first, leftmost on ties, with a heap (n log n even on a 1 MB
 * word). Short words' results are kept in a sharded, mutex-guarded cache. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

typedef struct merge_map {
    uint64_t *keys; /* (a << 32 | b) + 1; 0 = empty */
    uint32_t *rank;
    int32_t *merged;
    size_t cap, count;
} merge_map;

#define CACHE_SHARDS   32
#define CACHE_SLOTS    1024 /* per shard */
#define CACHE_MAX_WORD 48

typedef struct cache_entry {
    uint64_t hash;
    char word[CACHE_MAX_WORD];
    uint8_t wlen, ntok;
    int32_t ids[CACHE_MAX_WORD];
    uint8_t ends[CACHE_MAX_WORD];
} cache_entry;

struct bpe_cache {
    pthread_mutex_t lock[CACHE_SHARDS];
    cache_entry *slots; /* CACHE_SHARDS * CACHE_SLOTS */
};

static int mm_init(merge_map *m, size_t cap)
{
    m->cap = cap;
    m->keys = calloc(cap, sizeof *m->keys);
    m->rank = calloc(cap, sizeof *m->rank);
    m->merged = calloc(cap, sizeof *m->merged);
    return m->keys && m->rank && m->merged ? 0 : BS_ENOMEM;
}

static void mm_free(merge_map *m)
{
    free(m->keys);
    free(m->rank);
    free(m->merged);
}

static size_t mm_slot(const merge_map *m, uint64_t key)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    size_t j = (size_t)(h >> 20) & (m->cap - 1);
    while (m->keys[j] && m->keys[j] != key) j = (j + 1) & (m->cap - 1);
    return j;
}

int bs_tok_bpe_add_merge(model *m, int32_t a, int32_t b, uint32_t rank, int32_t merged)
{
    merge_map *mm = m->merges;
    if (!mm) {
        mm = calloc(1, sizeof *mm);
        if (!mm || mm_init(mm, 1024)) {
            if (mm) mm_free(mm);
            free(mm);
            return BS_ENOMEM;
        }
        m->merges = mm;
    }
    if ((mm->count + 1) * 2 > mm->cap) {
        merge_map n;
        if (mm_init(&n, mm->cap * 2)) {
            mm_free(&n);
            return BS_ENOMEM;
        }
        for (size_t i = 0; i < mm->cap; i++) {
            if (!mm->keys[i]) continue;
            size_t j = mm_slot(&n, mm->keys[i]);
            n.keys[j] = mm->keys[i];
            n.rank[j] = mm->rank[i];
            n.merged[j] = mm->merged[i];
        }
        n.count = mm->count;
        mm_free(mm);
        *mm = n;
    }
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t j = mm_slot(mm, key);
    if (mm->keys[j]) return 0; /* first occurrence wins, as in the library */
    mm->keys[j] = key;
    mm->rank[j] = rank;
    mm->merged[j] = merged;
    mm->count++;
    return 0;
}

static int mm_get(const merge_map *mm, int32_t a, int32_t b, uint32_t *rank, int32_t *merged)
{
    if (!mm) return 0;
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t j = mm_slot(mm, key);
    if (!mm->keys[j]) return 0;
    *rank = mm->rank[j];
    *merged = mm->merged[j];
    return 1;
}

int bs_tok_bpe_finish(model *m)
{
    m->cache = calloc(1, sizeof *m->cache);
    if (!m->cache) return BS_ENOMEM;
    m->cache->slots = calloc((size_t)CACHE_SHARDS * CACHE_SLOTS, sizeof(cache_entry));
    if (!m->cache->slots) {
        free(m->cache);
        m->cache = NULL;
        return BS_ENOMEM;
    }
    for (int i = 0; i < CACHE_SHARDS; i++) pthread_mutex_init(&m->cache->lock[i], NULL);
    return 0;
}

void bs_tok_bpe_free(model *m)
{
    if (m->merges) mm_free(m->merges);
    free(m->merges);
    m->merges = NULL;
    if (m->cache) {
        for (int i = 0; i < CACHE_SHARDS; i++) pthread_mutex_destroy(&m->cache->lock[i]);
        free(m->cache->slots);
        free(m->cache);
        m->cache = NULL;
    }
}

typedef struct sym {
    int32_t id;
    int64_t prev, next;
    uint32_t b0, len;
} sym;

typedef struct hnode {
    uint32_t rank;
    uint32_t pos;
    int32_t merged;
} hnode;

static int h_less(const hnode *a, const hnode *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void h_push(hnode *h, size_t *n, hnode x)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!h_less(&x, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static hnode h_pop(hnode *h, size_t *n)
{
    hnode top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        const hnode *best = &x;
        if (l < *n && h_less(&h[l], best)) s = l, best = &h[l];
        if (r < *n && h_less(&h[r], best)) s = r;
        if (s == i) break;
        h[i] = h[s];
        i = s;
    }
    if (*n) h[i] = x;
    return top;
}

static int cache_get(const model *m, uint64_t hash, const char *s, size_t len, tok_vec *out)
{
    bpe_cache *c = m->cache;
    size_t shard = hash % CACHE_SHARDS, slot = (hash >> 8) % CACHE_SLOTS;
    cache_entry *e = &c->slots[shard * CACHE_SLOTS + slot];
    cache_entry copy;
    pthread_mutex_lock(&c->lock[shard]);
    copy = *e;
    pthread_mutex_unlock(&c->lock[shard]);
    if (copy.hash != hash || copy.wlen != len || memcmp(copy.word, s, len)) return 0;
    uint32_t b0 = 0;
    for (int i = 0; i < copy.ntok; i++) {
        if (bs_tok_tokvec_push(out, copy.ids[i], b0, copy.ends[i])) return -1;
        b0 = copy.ends[i];
    }
    return 1;
}

static void cache_put(const model *m, uint64_t hash, const char *s, size_t len,
                      const model_token *t, size_t n)
{
    if (n > CACHE_MAX_WORD) return;
    for (size_t i = 0; i < n; i++)
        if (t[i].str) return; /* strings outside the vocab are not cached */
    bpe_cache *c = m->cache;
    size_t shard = hash % CACHE_SHARDS, slot = (hash >> 8) % CACHE_SLOTS;
    cache_entry e;
    memset(&e, 0, sizeof e);
    e.hash = hash;
    memcpy(e.word, s, len);
    e.wlen = (uint8_t)len;
    e.ntok = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        e.ids[i] = t[i].id;
        e.ends[i] = (uint8_t)t[i].b1;
    }
    pthread_mutex_lock(&c->lock[shard]);
    c->slots[shard * CACHE_SLOTS + slot] = e;
    pthread_mutex_unlock(&c->lock[shard]);
}

static int add_sym(sym **v, size_t *n, size_t *cap, int32_t id, uint32_t b0, uint32_t len)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        sym *nv = realloc(*v, c * sizeof *nv);
        if (!nv) return BS_ENOMEM;
        *v = nv;
        *cap = c;
    }
    (*v)[*n] = (sym){id, (int64_t)*n - 1, (int64_t)*n + 1, b0, len};
    (*n)++;
    return 0;
}

int bs_tok_bpe_tokenize(const model *m, const char *s, size_t len, tok_vec *out)
{
    if (!len) return 0;
    if (m->ignore_merges) {
        int32_t id = bs_tok_vmap_get(&m->vocab, s, len);
        if (id >= 0) return bs_tok_tokvec_push(out, id, 0, (uint32_t)len);
    }
    uint64_t hash = 0;
    int cacheable = m->cache && len <= CACHE_MAX_WORD;
    if (cacheable) {
        hash = bs_tok_vmap_hash(s, len) | 1;
        int r = cache_get(m, hash, s, len, out);
        if (r < 0) return BS_ENOMEM;
        if (r) return 0;
    }
    size_t plen = m->prefix ? strlen(m->prefix) : 0, slen = m->suffix ? strlen(m->suffix) : 0;
    sym *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    /* As the library's merge_word: symbols take consecutive positions in the
     * order they are added; a pending unknown is flushed before a vocabulary
     * char but not before byte-fallback tokens. */
    int32_t unk_id = -1;
    uint32_t unk_len = 0, pos = 0;
#define ADD(id_, len_)                                                                             \
    do {                                                                                           \
        rc = add_sym(&v, &n, &cap, (id_), pos, (len_));                                            \
        pos += (len_);                                                                             \
    } while (0)
    char kbuf[64];
    for (size_t i = 0; i < len && !rc;) {
        uint32_t cp;
        size_t w = bs_utf8_decode_cp(s + i, len - i, &cp);
        int first = i == 0, last = i + w == len;
        size_t kl = 0;
        if (!first && plen) memcpy(kbuf, m->prefix, plen), kl = plen;
        memcpy(kbuf + kl, s + i, w);
        kl += w;
        if (last && slen) memcpy(kbuf + kl, m->suffix, slen), kl += slen;
        int32_t id = bs_tok_vmap_get(&m->vocab, kbuf, kl);
        if (id >= 0) {
            if (unk_id >= 0) {
                ADD(unk_id, unk_len);
                unk_id = -1;
            }
            if (!rc) ADD(id, (uint32_t)w);
            i += w;
            continue;
        }
        if (m->byte_fallback) {
            int32_t bid[4];
            int ok = 1;
            for (size_t k = 0; k < w && ok; k++) {
                char t[8];
                snprintf(t, sizeof t, "<0x%02X>", (unsigned char)s[i + k]);
                bid[k] = bs_tok_vmap_get(&m->vocab, t, 6);
                ok = bid[k] >= 0;
            }
            if (ok) {
                for (size_t k = 0; k < w && !rc; k++) ADD(bid[k], 1);
                i += w;
                continue;
            }
        }
        if (m->unk_id < 0) {
            rc = BS_EUNPROCESSABLE;
            break;
        }
        if (unk_id >= 0 && m->fuse_unk) {
            unk_len += (uint32_t)w;
        } else {
            if (unk_id >= 0) ADD(unk_id, unk_len);
            unk_id = m->unk_id;
            unk_len = (uint32_t)w;
        }
        i += w;
    }
    if (!rc && unk_id >= 0) ADD(unk_id, unk_len);
#undef ADD
    if (rc) {
        free(v);
        return rc;
    }
    if (n) v[n - 1].next = -1;
    hnode *h = malloc((n ? n : 1) * 2 * sizeof *h + sizeof *h);
    size_t hn = 0;
    if (!h) {
        free(v);
        return BS_ENOMEM;
    }
    size_t hcap = (n ? n : 1) * 2 + 1;
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r;
        int32_t mid;
        if (mm_get(m->merges, v[i].id, v[i + 1].id, &r, &mid))
            h_push(h, &hn, (hnode){r, (uint32_t)i, mid});
    }
    while (hn) {
        hnode top = h_pop(h, &hn);
        sym *cur = &v[top.pos];
        if (!cur->len || cur->next < 0) continue;
        sym *right = &v[cur->next];
        uint32_t r;
        int32_t mid;
        if (!mm_get(m->merges, cur->id, right->id, &r, &mid) || mid != top.merged) continue;
        cur->id = top.merged;
        cur->len += right->len;
        cur->next = right->next;
        right->len = 0;
        if (cur->next >= 0) v[cur->next].prev = top.pos;
        if (hn + 2 > hcap) {
            hcap *= 2;
            hnode *nh = realloc(h, hcap * sizeof *nh);
            if (!nh) {
                free(h);
                free(v);
                return BS_ENOMEM;
            }
            h = nh;
        }
        if (cur->prev >= 0 && mm_get(m->merges, v[cur->prev].id, cur->id, &r, &mid))
            h_push(h, &hn, (hnode){r, (uint32_t)cur->prev, mid});
        if (cur->next >= 0 && mm_get(m->merges, cur->id, v[cur->next].id, &r, &mid))
            h_push(h, &hn, (hnode){r, top.pos, mid});
    }
    free(h);
    size_t first = out->n;
    for (size_t i = 0; i < n && !rc; i++)
        if (v[i].len) rc = bs_tok_tokvec_push(out, v[i].id, v[i].b0, v[i].b0 + v[i].len);
    free(v);
    if (!rc && cacheable) cache_put(m, hash, s, len, out->v + first, out->n - first);
    return rc;
}
