/* Small text utilities of the pipelines: transformers' decode clean-up,
 * Python's strip() and lower() equality, code point <-> byte offsets. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "pipeline/internal.h"
#include "util/utf8.h"

void bs_pl_replace_in_place(char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    char *r = s, *w = s;
    while (*r) {
        if (!strncmp(r, from, fl)) {
            memmove(w, to, tl);
            w += tl;
            r += fl;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
}

void bs_pl_clean_up_tokenization(char *s)
{
    static const char *const pairs[][2] = {
        {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
        bs_pl_replace_in_place(s, pairs[i][0], pairs[i][1]);
}

/* Python's str.isspace() for one code point. */
static int py_isspace(uint32_t c)
{
    if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
        c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
        c == 0x205f || c == 0x3000)
        return 1;
    return 0;
}

void bs_pl_strip(const char *s, size_t len, size_t *b, size_t *e)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = bs_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (!n || !py_isspace(cp)) break;
        i += n;
    }
    size_t j = len;
    while (j > i) {
        size_t k = j - 1;
        while (k > i && ((unsigned char)s[k] & 0xc0) == 0x80) k--;
        uint32_t cp;
        size_t n = bs_utf8_decode((const unsigned char *)s + k, j - k, &cp);
        if (!n || !py_isspace(cp)) break;
        j = k;
    }
    *b = i;
    *e = j;
}

size_t bs_pl_cp_to_byte(const char *s, size_t len, size_t cp)
{
    size_t i = 0;
    while (cp > 0 && i < len) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80) i++;
        cp--;
    }
    return i;
}

char *bs_pl_lower(const char *s, size_t len)
{
    char *out =
        malloc(len * 2 + 1); /* a simple lower-case mapping at most doubles a UTF-8 length */
    size_t i = 0, o = 0;
    if (!out) return NULL;
    while (i < len) {
        uint32_t cp;
        size_t n = bs_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (!n) { /* not UTF-8: keep the byte */
            out[o++] = s[i++];
            continue;
        }
        o += bs_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), out + o);
        i += n;
    }
    out[o] = 0;
    return out;
}
