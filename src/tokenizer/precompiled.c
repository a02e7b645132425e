/* SentencePiece's precompiled normalization charsmap: a darts-clone double
 * array trie over UTF-8 plus a blob of NUL-terminated replacements, applied
 * per grapheme cluster (then per char) as HuggingFace's Precompiled does.
 * The blob is hostile input: every trie step is bounds-checked. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

int bs_tok_precompiled_init(normalizer *n, const uint8_t *blob, size_t len)
{
    if (len < 4) return BS_EFORMAT;
    uint32_t tsize = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 |
                     (uint32_t)blob[3] << 24;
    if (tsize % 4 || tsize > len - 4 || tsize < 4) return BS_EFORMAT;
    n->pc_blob = malloc(len);
    if (!n->pc_blob) return BS_ENOMEM;
    memcpy(n->pc_blob, blob, len);
    n->pc_len = len;
    uint32_t *trie = malloc(tsize);
    if (!trie) return BS_ENOMEM;
    for (size_t i = 0; i < tsize / 4; i++) {
        const uint8_t *p = blob + 4 + 4 * i;
        trie[i] =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    }
    n->pc_trie = trie;
    n->pc_trie_n = tsize / 4;
    n->pc_norm = n->pc_blob + 4 + tsize;
    n->pc_norm_len = len - 4 - tsize;
    return 0;
}

/* First (shortest) prefix of key found in the trie: its replacement, or NULL. */
static const char *lookup(const normalizer *n, const char *key, size_t klen, size_t *rlen)
{
    const uint32_t *a = n->pc_trie;
    size_t N = n->pc_trie_n;
    size_t pos = 0;
    uint32_t unit = a[0];
#define OFFSET(u)   (((u) >> 10) << (((u) & (1u << 9)) >> 6))
#define LABEL(u)    ((u) & ((1u << 31) | 0xFF))
#define HAS_LEAF(u) (((u) >> 8) & 1)
#define VALUE(u)    ((u) & ((1u << 31) - 1))
    pos ^= OFFSET(unit);
    for (size_t i = 0; i < klen; i++) {
        unsigned char c = (unsigned char)key[i];
        if (!c) break;
        pos ^= c;
        if (pos >= N) return NULL;
        unit = a[pos];
        if (LABEL(unit) != c) return NULL;
        pos ^= OFFSET(unit);
        if (pos >= N) return NULL;
        if (HAS_LEAF(unit)) {
            size_t v = VALUE(a[pos]);
            if (v >= n->pc_norm_len) return NULL;
            const char *r = (const char *)n->pc_norm + v;
            size_t k = 0;
            while (v + k < n->pc_norm_len && r[k]) k++;
            size_t bad;
            if (bs_utf8_validate(r, k, &bad)) return NULL;
            *rlen = k;
            return r;
        }
    }
    return NULL;
}

/* HF's replace(): new chars at change 0; extra ones marked inserted; fewer
 * ones make the last absorb the removed count. */
static int replace(nstr_changes *t, size_t old_count, const char *r, size_t rlen)
{
    size_t start = t->n, i = 0;
    while (i < rlen) {
        uint32_t cp;
        i += bs_utf8_decode_cp(r + i, rlen - i, &cp);
        if (bs_tok_nstr_changes_push(t, cp, 0)) return BS_ENOMEM;
    }
    size_t new_count = t->n - start;
    if (new_count > old_count) {
        for (size_t k = 0; k < new_count - old_count; k++) t->d[t->n - 1 - k] = 1;
    } else if (new_count < old_count && t->n > 0) {
        t->d[t->n - 1] -= (int32_t)(old_count - new_count);
    }
    return 0;
}

int bs_tok_precompiled_run(const normalizer *n, nstr *s)
{
    if (!s->n) return 0;
    char *u;
    size_t len;
    if (bs_tok_nstr_to_utf8(s, &u, &len, NULL)) return BS_ENOMEM;
    nstr_changes t = {0};
    int modified = 0, rc = 0;
    size_t i = 0, ci = 0;
    utf8proc_int32_t state = 0;
    while (i < len && !rc) {
        /* one extended grapheme cluster: chars [ci, cj), bytes [i, j) */
        size_t j = i, cj = ci;
        uint32_t prev = 0;
        state = 0;
        while (j < len) {
            uint32_t cp;
            size_t w = bs_utf8_decode_cp(u + j, len - j, &cp);
            if (j > i && utf8proc_grapheme_break_stateful((utf8proc_int32_t)prev,
                                                          (utf8proc_int32_t)cp, &state))
                break;
            prev = cp;
            j += w;
            cj++;
        }
        size_t rlen;
        const char *r;
        if (j - i < 6 && (r = lookup(n, u + i, j - i, &rlen))) {
            modified = 1;
            rc = replace(&t, cj - ci, r, rlen);
        } else {
            size_t k = i;
            while (k < j && !rc) {
                uint32_t cp;
                size_t w = bs_utf8_decode_cp(u + k, j - k, &cp);
                if ((r = lookup(n, u + k, w, &rlen))) {
                    modified = 1;
                    rc = replace(&t, 1, r, rlen);
                } else {
                    rc = bs_tok_nstr_changes_push(&t, cp, 0);
                }
                k += w;
            }
        }
        i = j;
        ci = cj;
    }
    free(u);
    if (!rc && modified) return bs_tok_nstr_changes_apply(&t, s, 0);
    bs_tok_nstr_changes_free(&t);
    return rc;
}
