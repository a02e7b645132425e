/* WordPiece: greedy longest-match-first over the vocabulary, continuation
 * pieces prefixed with "##"; a word longer than max_input_chars_per_word or
 * with an unmatchable rest becomes the unknown token. Lookups reuse one
 * buffer: nothing is allocated per token. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

int bs_tok_wordpiece_tokenize(const model *m, const char *s, size_t len, tok_vec *out)
{
    size_t nchars = 0;
    for (size_t i = 0; i < len && nchars <= m->max_input_chars; i++)
        nchars += ((unsigned char)s[i] & 0xC0) != 0x80;
    if (nchars > m->max_input_chars) {
        if (m->unk_id < 0) return BS_EUNPROCESSABLE;
        return bs_tok_tokvec_push(out, m->unk_id, 0, (uint32_t)len);
    }
    size_t plen = m->prefix ? strlen(m->prefix) : 0;
    char stackbuf[1024];
    char *buf = stackbuf;
    if (plen + len > sizeof stackbuf) {
        buf = malloc(plen + len);
        if (!buf) return BS_ENOMEM;
    }
    if (plen) memcpy(buf, m->prefix, plen);
    size_t first = out->n, start = 0;
    int bad = 0, rc = 0;
    while (start < len) {
        size_t end = len;
        int32_t cur = -1;
        while (start < end) {
            int32_t id;
            if (start > 0) {
                memcpy(buf + plen, s + start, end - start);
                id = bs_tok_vmap_get(&m->vocab, buf, plen + end - start);
            } else {
                id = bs_tok_vmap_get(&m->vocab, s, end);
            }
            if (id >= 0) {
                cur = id;
                break;
            }
            do end--;
            while (end > start && ((unsigned char)s[end] & 0xC0) == 0x80);
        }
        if (cur < 0) {
            bad = 1;
            break;
        }
        if ((rc = bs_tok_tokvec_push(out, cur, (uint32_t)start, (uint32_t)end))) break;
        start = end;
    }
    if (buf != stackbuf) free(buf);
    if (rc) return rc;
    if (bad) {
        out->n = first;
        if (m->unk_id < 0) return BS_EUNPROCESSABLE;
        return bs_tok_tokvec_push(out, m->unk_id, 0, (uint32_t)len);
    }
    return 0;
}
