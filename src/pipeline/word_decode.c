/* The tokenizer's decoder applied to strings that are not vocabulary tokens:
 * transformers' NER pipeline decodes each word's tokens, then decodes the
 * words of a group once more (convert_tokens_to_string twice). The second
 * pass is reproduced here for the decoders of the BERT family. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/internal.h"
#include "util/buf.h"
#include "util/utf8.h"

void bs_word_decoder_parse(const json_t *dec, bs_word_decoder *out)
{
    memset(out, 0, sizeof *out);
    const char *type = json_string_value(json_object_get(dec, "type"));
    if (!type) return;
    if (!strcmp(type, "WordPiece")) {
        const char *prefix = json_string_value(json_object_get(dec, "prefix"));
        if (!prefix) prefix = "##";
        if (strlen(prefix) >= sizeof out->prefix) return;
        strcpy(out->prefix, prefix);
        const json_t *c = json_object_get(dec, "cleanup");
        out->cleanup = c ? json_is_true(c) : 1;
        out->kind = BS_WDEC_WORDPIECE;
    } else if (!strcmp(type, "ByteLevel")) {
        out->kind = BS_WDEC_BYTELEVEL;
    } else if (!strcmp(type, "Metaspace")) {
        const char *rep = json_string_value(json_object_get(dec, "replacement"));
        if (!rep) rep = "\u2581";
        if (strlen(rep) >= sizeof out->replacement) return;
        strcpy(out->replacement, rep);
        const char *scheme = json_string_value(json_object_get(dec, "prepend_scheme"));
        const json_t *aps = json_object_get(dec, "add_prefix_space");
        out->strip_first = scheme ? strcmp(scheme, "never") != 0 : (aps ? json_is_true(aps) : 1);
        out->kind = BS_WDEC_METASPACE;
    }
}

/* GPT-2's bytes_to_unicode, reversed: the byte a code point stands for, or -1. */
static int bytelevel_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp < 256 || cp >= 256 + 68) return -1;
    uint32_t k = cp - 256; /* the k-th byte outside the printable ranges */
    for (int b = 0; b < 256; b++) {
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) continue;
        if (k-- == 0) return b;
    }
    return -1;
}

/* Rust's String::from_utf8_lossy: each maximal invalid subpart -> U+FFFD. */
static void append_lossy(bs_buf *out, const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned b0 = s[i];
        if (b0 < 0x80) {
            bs_buf_putc(out, (char)b0);
            i++;
            continue;
        }
        size_t need = b0 >= 0xc2 && b0 <= 0xdf   ? 1
                      : b0 >= 0xe0 && b0 <= 0xef ? 2
                      : b0 >= 0xf0 && b0 <= 0xf4 ? 3
                                                 : 0;
        size_t j = 1;
        if (need) {
            unsigned lo = b0 == 0xe0 ? 0xa0 : b0 == 0xf0 ? 0x90 : 0x80;
            unsigned hi = b0 == 0xed ? 0x9f : b0 == 0xf4 ? 0x8f : 0xbf;
            if (i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
                j = 2;
                while (j <= need && i + j < n && s[i + j] >= 0x80 && s[i + j] <= 0xbf) j++;
            }
        }
        if (need && j == need + 1) {
            bs_buf_append(out, s + i, j);
        } else {
            bs_buf_puts(out, "\xef\xbf\xbd");
        }
        i += j;
    }
}

static void join_bytelevel(bs_buf *out, char *const *words, size_t n)
{
    bs_buf bytes;
    bs_buf_init(&bytes);
    for (size_t w = 0; w < n; w++) {
        const char *s = words[w];
        size_t len = strlen(s), i = 0, mark = bytes.len;
        int all = 1;
        while (i < len) {
            uint32_t cp;
            size_t k = bs_utf8_decode((const unsigned char *)s + i, len - i, &cp);
            int b = k ? bytelevel_byte(cp) : -1;
            if (b < 0) {
                all = 0;
                break;
            }
            bs_buf_putc(&bytes, (char)b);
            i += k;
        }
        if (!all) { /* not made of the alphabet: the string's own bytes */
            bytes.len = mark;
            bs_buf_append(&bytes, s, len);
        }
    }
    append_lossy(out, (const unsigned char *)bytes.data, bytes.len);
    if (bytes.oom) out->oom = 1;
    bs_buf_free(&bytes);
}

char *bs_word_decoder_join(const bs_word_decoder *d, char *const *words, size_t n)
{
    bs_buf out;
    bs_buf_init(&out);
    bs_buf_puts(&out, "");
    switch (d->kind) {
    case BS_WDEC_WORDPIECE: {
        size_t pl = strlen(d->prefix);
        for (size_t i = 0; i < n; i++) {
            const char *w = words[i];
            if (i > 0 && pl && !strncmp(w, d->prefix, pl))
                w += pl;
            else if (i > 0)
                bs_buf_putc(&out, ' ');
            bs_buf_puts(&out, w);
        }
        if (d->cleanup && !out.oom) {
            static const char *const pairs[][2] = {
                {" .", "."},   {" ?", "?"},     {" !", "!"},     {" ,", ","},
                {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},   {" do not", " don't"},
                {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
            };
            for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++)
                bs_pl_replace_in_place(out.data, pairs[k][0], pairs[k][1]);
            out.len = strlen(out.data);
        }
        break;
    }
    case BS_WDEC_BYTELEVEL:
        join_bytelevel(&out, words, n);
        break;
    case BS_WDEC_METASPACE:
    case BS_WDEC_UNKNOWN:
        for (size_t i = 0; i < n; i++) {
            const char *w = words[i], *rep = d->replacement;
            size_t rl = strlen(rep);
            if (d->kind != BS_WDEC_METASPACE || rl == 0) {
                bs_buf_puts(&out, w);
                continue;
            }
            /* tokenizers: the replacement becomes a space, or disappears in
             * the first token when a prefix space was prepended */
            for (const char *hit; (hit = strstr(w, rep)); w = hit + rl) {
                bs_buf_append(&out, w, (size_t)(hit - w));
                if (!(i == 0 && d->strip_first)) bs_buf_putc(&out, ' ');
            }
            bs_buf_puts(&out, w);
        }
        break;
    }
    if (out.oom) {
        bs_buf_free(&out);
        return NULL;
    }
    return bs_buf_steal(&out, NULL);
}
