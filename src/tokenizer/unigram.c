/* Unigram (SentencePiece): Viterbi over the lattice of vocabulary pieces,
 * unknown chars at min_score - 10 (fused into one token when fuse_unk), and
 * byte fallback (<0xXX>) for pieces outside the vocabulary. Linear in the
 * text (each position tries at most max_piece_len bytes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

typedef struct node {
    double score;
    int64_t start; /* -1: unreached */
    int32_t id;
} node;

static int emit(const model *m, const char *s, size_t b0, size_t b1, tok_vec *out)
{
    int32_t id = bs_tok_vmap_get(&m->vocab, s + b0, b1 - b0);
    if (id >= 0) return bs_tok_tokvec_push(out, id, (uint32_t)b0, (uint32_t)b1);
    if (m->byte_fallback) {
        int ok = 1;
        int32_t *ids = malloc((b1 - b0) * sizeof *ids);
        if (!ids) return BS_ENOMEM;
        for (size_t k = b0; k < b1 && ok; k++) {
            char t[8];
            snprintf(t, sizeof t, "<0x%02X>", (unsigned char)s[k]);
            ids[k - b0] = bs_tok_vmap_get(&m->vocab, t, 6);
            ok = ids[k - b0] >= 0;
        }
        int rc = 0;
        if (ok) {
            for (size_t k = b0; k < b1 && !rc; k++)
                rc = bs_tok_tokvec_push(out, ids[k - b0], (uint32_t)b0, (uint32_t)b1);
            free(ids);
            return rc;
        }
        free(ids);
    }
    if (m->unk_id < 0) return BS_EUNPROCESSABLE;
    return bs_tok_tokvec_push_str(out, m->unk_id, (uint32_t)b0, (uint32_t)b1, s + b0, b1 - b0);
}

int bs_tok_unigram_tokenize(const model *m, const char *s, size_t len, tok_vec *out)
{
    if (!len) return 0;
    node *best = malloc((len + 1) * sizeof *best);
    if (!best) return BS_ENOMEM;
    for (size_t i = 0; i <= len; i++) best[i] = (node){0, -1, -1};
    best[0].start = 0;
    double unk_score = m->min_score - 10.0;
    size_t pos = 0;
    while (pos < len) {
        double here = best[pos].score;
        uint32_t cp;
        size_t mblen = bs_utf8_decode_cp(s + pos, len - pos, &cp);
        int single = 0;
        size_t end = pos + mblen;
        while (end <= len && end - pos <= m->max_piece_len) {
            int32_t id = bs_tok_vmap_get(&m->vocab, s + pos, end - pos);
            if (id >= 0) {
                double cand = m->scores[id] + here;
                if (best[end].start < 0 || cand > best[end].score)
                    best[end] = (node){cand, (int64_t)pos, id};
                if (end - pos == mblen) single = 1;
            }
            if (end == len) break;
            size_t w = bs_utf8_decode_cp(s + end, len - end, &cp);
            end += w;
        }
        if (!single) {
            if (m->unk_id < 0) {
                free(best);
                return BS_EUNPROCESSABLE;
            }
            double cand = unk_score + here;
            size_t e = pos + mblen;
            if (best[e].start < 0 || cand > best[e].score)
                best[e] = (node){cand, (int64_t)pos, m->unk_id};
        }
        pos += mblen;
    }
    /* backtrack into (start, end) spans, fusing runs of unknowns */
    size_t cap = 64, n = 0;
    size_t *sp = malloc(cap * 2 * sizeof *sp);
    if (!sp) {
        free(best);
        return BS_ENOMEM;
    }
    size_t e = len;
    int in_unk = 0;
    while (e > 0) {
        size_t st = (size_t)best[e].start;
        int is_unk = m->fuse_unk && m->unk_id >= 0 && best[e].id == m->unk_id;
        if (is_unk && in_unk) {
            sp[2 * (n - 1)] = st; /* extend the fused unknown to the left */
        } else {
            if (n == cap) {
                cap *= 2;
                size_t *ns = realloc(sp, cap * 2 * sizeof *ns);
                if (!ns) {
                    free(sp);
                    free(best);
                    return BS_ENOMEM;
                }
                sp = ns;
            }
            sp[2 * n] = st;
            sp[2 * n + 1] = e;
            n++;
        }
        in_unk = is_unk;
        e = st;
    }
    free(best);
    int rc = 0;
    for (size_t i = n; i-- > 0 && !rc;) rc = emit(m, s, sp[2 * i], sp[2 * i + 1], out);
    free(sp);
    return rc;
}
