/* Decoders: turn token strings back into text (WordPiece with cleanup,
 * ByteLevel, Metaspace, BPEDecoder, Replace, ByteFallback, Fuse, Strip,
 * Sequence), each a step of the library's decode_chain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "util/buf.h"

/* Token strings with their lengths: decoded bytes may contain NUL. */
typedef struct strv {
    char **v;
    size_t *l;
    size_t n;
} strv;

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Replaces every occurrence of from by to in *s of *len bytes (reallocated). */
static int replace_all(char **s, size_t *len, const char *from, const char *to)
{
    size_t fl = strlen(from);
    if (!fl || !memmem(*s, *len, from, fl)) return 0;
    bs_buf b;
    bs_buf_init(&b);
    const char *p = *s, *end = *s + *len, *f;
    while ((f = memmem(p, (size_t)(end - p), from, fl))) {
        bs_buf_append(&b, p, (size_t)(f - p));
        bs_buf_puts(&b, to);
        p = f + fl;
    }
    bs_buf_append(&b, p, (size_t)(end - p));
    bs_buf_putc(&b, 0); /* make sure there is a buffer even when empty */
    if (b.oom) {
        bs_buf_free(&b);
        return BS_ENOMEM;
    }
    free(*s);
    *s = bs_buf_steal(&b, len);
    (*len)--;
    return 0;
}

static int wp_cleanup(char **s, size_t *len)
{
    static const char *const pairs[][2] = {{" .", "."},     {" ?", "?"},           {" !", "!"},
                                           {" ,", ","},     {" ' ", "'"},          {" n't", "n't"},
                                           {" 'm", "'m"},   {" do not", " don't"}, {" 's", "'s"},
                                           {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
        if (replace_all(s, len, pairs[i][0], pairs[i][1])) return BS_ENOMEM;
    return 0;
}

/* String::from_utf8_lossy: one U+FFFD per maximal invalid subpart. */
static int lossy(const unsigned char *p, size_t n, bs_buf *b)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = bs_utf8_decode(p + i, n - i, &cp);
        if (k) {
            bs_buf_append(b, p + i, k);
            i += k;
            continue;
        }
        unsigned c = p[i];
        size_t need = 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        }
        size_t j = 1;
        if (need && i + 1 < n && p[i + 1] >= lo && p[i + 1] <= hi) {
            j = 2;
            while (j <= need && i + j < n && (p[i + j] & 0xC0) == 0x80) j++;
        }
        bs_buf_puts(b, "\xEF\xBF\xBD");
        i += j;
    }
    return b->oom ? BS_ENOMEM : 0;
}

static int step(const decoder *d, strv *t)
{
    int rc = 0;
    switch (d->type) {
    case DEC_WORDPIECE: {
        size_t pl = d->prefix ? strlen(d->prefix) : 0;
        for (size_t i = 0; i < t->n && !rc; i++) {
            if (i) {
                if (pl && t->l[i] >= pl && !memcmp(t->v[i], d->prefix, pl)) {
                    memmove(t->v[i], t->v[i] + pl, t->l[i] - pl + 1);
                    t->l[i] -= pl;
                } else {
                    size_t l = t->l[i];
                    char *n = malloc(l + 2);
                    if (!n) return BS_ENOMEM;
                    n[0] = ' ';
                    memcpy(n + 1, t->v[i], l + 1);
                    free(t->v[i]);
                    t->v[i] = n;
                    t->l[i] = l + 1;
                }
            }
            if (d->cleanup) rc = wp_cleanup(&t->v[i], &t->l[i]);
        }
        return rc;
    }
    case DEC_BYTELEVEL: {
        bs_buf raw;
        bs_buf_init(&raw);
        for (size_t i = 0; i < t->n; i++) {
            const char *s = t->v[i];
            size_t l = t->l[i], pos = 0, start = raw.len;
            int ok = 1;
            while (pos < l) {
                uint32_t cp;
                pos += bs_utf8_decode_cp(s + pos, l - pos, &cp);
                int b = bs_tok_bytelevel_byte(cp);
                if (b < 0) {
                    ok = 0;
                    break;
                }
                bs_buf_putc(&raw, (char)b);
            }
            if (!ok) {
                raw.len = start;
                bs_buf_append(&raw, s, l);
            }
        }
        bs_buf out;
        bs_buf_init(&out);
        rc = raw.oom ? BS_ENOMEM : lossy((const unsigned char *)raw.data, raw.len, &out);
        bs_buf_free(&raw);
        if (rc || out.oom) {
            bs_buf_free(&out);
            return BS_ENOMEM;
        }
        for (size_t i = 0; i < t->n; i++) free(t->v[i]);
        bs_buf_putc(&out, 0);
        t->n = 0;
        if (out.oom) {
            bs_buf_free(&out);
            return BS_ENOMEM;
        }
        t->v[0] = bs_buf_steal(&out, &t->l[0]);
        t->l[0]--;
        t->n = 1;
        return 0;
    }
    case DEC_METASPACE: {
        char rep[5] = {0};
        bs_utf8_encode(d->replacement, rep);
        /* the library drops every replacement of the first token (not only
         * a leading one) when a prefix was prepended at encoding */
        for (size_t i = 0; i < t->n && !rc; i++)
            rc = replace_all(&t->v[i], &t->l[i], rep,
                             i == 0 && d->prepend_scheme != PREPEND_NEVER ? "" : " ");
        return rc;
    }
    case DEC_BPE:
        for (size_t i = 0; i < t->n && !rc; i++)
            rc = replace_all(&t->v[i], &t->l[i], d->prefix ? d->prefix : "</w>",
                             i + 1 == t->n ? "" : " ");
        return rc;
    case DEC_REPLACE:
        for (size_t i = 0; i < t->n && !rc; i++)
            rc = replace_all(&t->v[i], &t->l[i], d->pat.str, d->content);
        return rc;
    case DEC_FUSE: {
        bs_buf b;
        bs_buf_init(&b);
        for (size_t i = 0; i < t->n; i++) {
            bs_buf_append(&b, t->v[i], t->l[i]);
            free(t->v[i]);
        }
        bs_buf_putc(&b, 0);
        t->n = 0;
        if (b.oom) {
            bs_buf_free(&b);
            return BS_ENOMEM;
        }
        t->v[0] = bs_buf_steal(&b, &t->l[0]);
        t->l[0]--;
        t->n = 1;
        return 0;
    }
    case DEC_STRIP:
        for (size_t i = 0; i < t->n; i++) {
            char *s = t->v[i];
            size_t l = t->l[i];
            size_t a = 0, nchar = 0, pos = 0;
            while (pos < l && nchar < d->strip_start && s[pos] == d->content[0]) pos++, nchar++;
            a = pos;
            size_t e = l, k = 0;
            while (e > a && k < d->strip_stop && s[e - 1] == d->content[0]) e--, k++;
            memmove(s, s + a, e - a);
            s[e - a] = 0;
            t->l[i] = e - a;
        }
        return 0;
    case DEC_BYTE_FALLBACK: {
        /* runs of <0xXX> tokens become their bytes (lossy UTF-8) */
        strv o = {calloc(t->n ? t->n : 1, sizeof(char *)), calloc(t->n ? t->n : 1, sizeof(size_t)),
                  0};
        if (!o.v || !o.l) {
            free(o.v);
            free(o.l);
            return BS_ENOMEM;
        }
        bs_buf run;
        bs_buf_init(&run);
        for (size_t i = 0; i <= t->n; i++) {
            unsigned v;
            int isb = i < t->n && t->l[i] == 6 && sscanf(t->v[i], "<0x%2X>", &v) == 1;
            if (isb) {
                bs_buf_putc(&run, (char)v);
                continue;
            }
            if (run.len) {
                /* valid UTF-8 as is; otherwise one U+FFFD per byte (the library's rule) */
                bs_buf out;
                bs_buf_init(&out);
                size_t bad;
                if (!bs_utf8_validate(run.data, run.len, &bad))
                    bs_buf_append(&out, run.data, run.len);
                else
                    for (size_t k = 0; k < run.len; k++) bs_buf_puts(&out, "\xEF\xBF\xBD");
                bs_buf_putc(&out, 0);
                o.v[o.n] = bs_buf_steal(&out, &o.l[o.n]);
                o.l[o.n]--;
                o.n++;
                run.len = 0;
            }
            if (i < t->n) {
                o.l[o.n] = t->l[i];
                o.v[o.n++] = dupn(t->v[i], t->l[i]);
            }
        }
        bs_buf_free(&run);
        for (size_t i = 0; i < t->n; i++) free(t->v[i]);
        free(t->v);
        free(t->l);
        *t = o;
        for (size_t i = 0; i < t->n; i++)
            if (!t->v[i]) return BS_ENOMEM;
        return 0;
    }
    case DEC_SEQ:
        for (size_t i = 0; i < d->n_subs && !rc; i++) rc = step(&d->subs[i], t);
        return rc;
    }
    return 0;
}

int bs_tok_decoder_run(const decoder *d, const char *const *toks, size_t n, char **out,
                       size_t *out_len)
{
    strv t = {calloc(n ? n : 1, sizeof(char *)), calloc(n ? n : 1, sizeof(size_t)), n};
    if (!t.v || !t.l) {
        free(t.v);
        free(t.l);
        return BS_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        t.l[i] = strlen(toks[i]);
        if (!(t.v[i] = dupn(toks[i], t.l[i]))) rc = BS_ENOMEM;
    }
    if (!rc && d) rc = step(d, &t);
    bs_buf b;
    bs_buf_init(&b);
    for (size_t i = 0; i < t.n; i++) {
        if (!d && i) bs_buf_putc(&b, ' ');
        if (t.v[i]) bs_buf_append(&b, t.v[i], t.l[i]);
    }
    for (size_t i = 0; i < t.n; i++) free(t.v[i]);
    free(t.v);
    free(t.l);
    bs_buf_putc(&b, 0);
    if (rc || b.oom) {
        bs_buf_free(&b);
        return rc ? rc : BS_ENOMEM;
    }
    *out = bs_buf_steal(&b, out_len);
    if (out_len) (*out_len)--;
    return *out ? 0 : BS_ENOMEM;
}

void bs_tok_decoder_free(decoder *d)
{
    if (!d) return;
    free(d->prefix);
    bs_tok_pattern_free(&d->pat);
    free(d->content);
    for (size_t i = 0; i < d->n_subs; i++) bs_tok_decoder_free(&d->subs[i]);
    free(d->subs);
}
