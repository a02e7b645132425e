/* Patterns of Split, Replace and the built-in pre-tokenizer regexes: a
 * literal string or a PCRE2 regex (UTF + UCP, JIT when available), matched
 * over a normalized string and reported as code point spans. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* Oniguruma (the library's regex engine) reads \\w as letters, marks,
 * decimal digits and connector punctuation; PCRE2's UCP \\w lacks the marks.
 * Rewrites \\w and \\W to spell that class out. Caller frees. */
static char *onig_compat(const char *str, size_t len, size_t *olen)
{
    static const char cls[] = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
    size_t cap = len * 24 + 1, k = 0;
    char *o = malloc(cap);
    if (!o) return NULL;
    int in_class = 0;
    for (size_t i = 0; i < len; i++) {
        char c = str[i];
        if (c == '\\' && i + 1 < len) {
            char n = str[i + 1];
            if (n == 'w' || (n == 'W' && !in_class)) {
                k += (size_t)sprintf(o + k, "%s%s%s%s", in_class ? "" : "[", n == 'W' ? "^" : "",
                                     cls, in_class ? "" : "]");
            } else {
                o[k++] = c;
                o[k++] = n;
            }
            i++;
            continue;
        }
        if (c == '[' && !in_class)
            in_class = 1;
        else if (c == ']' && in_class)
            in_class = 0;
        o[k++] = c;
    }
    o[k] = 0;
    *olen = k;
    return o;
}

int bs_tok_pattern_compile(pattern *p, const char *str, size_t len, int is_regex, char *err,
                           size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->is_regex = is_regex;
    p->str = malloc(len + 1);
    if (!p->str) return BS_ENOMEM;
    memcpy(p->str, str, len);
    p->str[len] = 0;
    p->len = len;
    if (!is_regex) return 0;
    int ec;
    PCRE2_SIZE eo;
    size_t rl;
    char *rx = onig_compat(str, len, &rl);
    if (!rx) return BS_ENOMEM;
    p->re = pcre2_compile((PCRE2_SPTR)rx, rl, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    free(rx);
    if (!p->re) {
        PCRE2_UCHAR m[120];
        pcre2_get_error_message(ec, m, sizeof m);
        snprintf(err, errlen, "bad regex at %zu: %s", (size_t)eo, (char *)m);
        free(p->str);
        p->str = NULL;
        return BS_EFORMAT;
    }
    pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    return 0;
}

void bs_tok_pattern_free(pattern *p)
{
    if (p->re) pcre2_code_free(p->re);
    free(p->str);
    memset(p, 0, sizeof *p);
}

static int push_m(size_t **m, size_t *n, size_t *cap, size_t s, size_t e)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        size_t *nm = realloc(*m, 2 * c * sizeof *nm);
        if (!nm) return BS_ENOMEM;
        *m = nm;
        *cap = c;
    }
    (*m)[2 * *n] = s;
    (*m)[2 * *n + 1] = e;
    (*n)++;
    return 0;
}

int bs_tok_pattern_find(const pattern *p, const nstr *s, size_t **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!s->n) return 0;
    char *u;
    size_t len;
    uint32_t *map;
    if (bs_tok_nstr_to_utf8(s, &u, &len, &map)) return BS_ENOMEM;
    size_t cap = 0;
    int rc = 0;
    if (!p->is_regex) {
        if (p->len) {
            size_t i = 0;
            while (i + p->len <= len && !rc) {
                const char *f = memmem(u + i, len - i, p->str, p->len);
                if (!f) break;
                size_t at = (size_t)(f - u);
                rc = push_m(out, nout, &cap, map[at], map[at + p->len]);
                i = at + p->len;
            }
        }
    } else {
        /* A work budget per input, not per call: at most len + 1 calls,
         * each allowed BS_TOK_REGEX_BUDGET / (len + 1) steps (within
         * bounds), so a catastrophic pattern costs milliseconds and fails
         * with BS_ERANGE instead of burning a core for a minute. */
        size_t per_call = BS_TOK_REGEX_BUDGET / (len + 1);
        if (per_call < 10000) per_call = 10000;
        if (per_call > 1000000) per_call = 1000000;
        pcre2_match_context *mc = pcre2_match_context_create(NULL);
        if (mc) pcre2_set_match_limit(mc, (uint32_t)per_call);
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
        if (!md || !mc) rc = BS_ENOMEM;
        size_t i = 0;
        while (!rc && i <= len) {
            int r = pcre2_match(p->re, (PCRE2_SPTR)u, len, i, PCRE2_NO_UTF_CHECK, md, mc);
            if (r < 0) {
                if (r != PCRE2_ERROR_NOMATCH) rc = BS_ERANGE;
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            rc = push_m(out, nout, &cap, map[ms], map[me]);
            if (me == ms) { /* empty match: step one char */
                if (me >= len) break;
                i = me + 1;
                while (i < len && ((unsigned char)u[i] & 0xC0) == 0x80) i++;
            } else {
                i = me;
            }
        }
        if (md) pcre2_match_data_free(md);
        if (mc) pcre2_match_context_free(mc);
    }
    free(u);
    free(map);
    if (rc) {
        free(*out);
        *out = NULL;
        *nout = 0;
    }
    return rc;
}
