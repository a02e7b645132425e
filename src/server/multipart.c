/* multipart/form-data (RFC 7578) as browsers and curl -F send it: just
 * enough to find one uploaded file. The body is hostile: every search is
 * bounded by its length, part headers are capped, the part count too, and
 * nothing is copied. */
#include "server/multipart.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *find_bytes(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0 || hlen < nlen) return NULL;
    for (const char *p = hay, *end = hay + hlen - nlen + 1; p < end;) {
        const char *c = memchr(p, needle[0], (size_t)(end - p));
        if (!c) return NULL;
        if (!memcmp(c, needle, nlen)) return c;
        p = c + 1;
    }
    return NULL;
}

/* The value of param (boundary, name, filename) in a header value, into
 * out; -1 when absent or longer than out. */
static int header_param(const char *h, size_t hlen, const char *param, char *out, size_t outlen)
{
    size_t plen = strlen(param);
    for (size_t i = 0; i + plen + 1 <= hlen; i++) {
        if (strncasecmp(h + i, param, plen) || h[i + plen] != '=') continue;
        if (i > 0 && h[i - 1] != ' ' && h[i - 1] != ';' && h[i - 1] != '\t') continue;
        const char *v = h + i + plen + 1, *end = h + hlen;
        size_t n = 0;
        if (v < end && *v == '"') {
            v++;
            while (v + n < end && v[n] != '"') n++;
            if (v + n >= end) return -1;
        } else {
            while (v + n < end && v[n] != ';' && v[n] != ' ' && v[n] != '\r') n++;
        }
        if (n >= outlen) return -1;
        memcpy(out, v, n);
        out[n] = 0;
        return 0;
    }
    return -1;
}

int bs_multipart_file(const char *ctype, const char *body, size_t len, const char **data,
                      size_t *dlen, char *detail, size_t dl)
{
    char boundary[80], delim[84];
    if (header_param(ctype, strlen(ctype), "boundary", boundary, sizeof boundary) || !boundary[0]) {
        snprintf(detail, dl,
                 "Content-Type multipart/form-data needs a boundary of 1-70 characters");
        return -1;
    }
    int dn = snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    const char *end = body + len;
    /* The first delimiter may open the body without its CRLF. */
    const char *p;
    if (len >= (size_t)dn - 2 && !memcmp(body, delim + 2, (size_t)dn - 2)) {
        p = body + dn - 2;
    } else {
        p = find_bytes(body, len, delim, (size_t)dn);
        if (!p) goto none;
        p += dn;
    }
    const char *fallback = NULL;
    size_t fallback_len = 0;
    for (int parts = 0; parts < 64; parts++) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') break; /* closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') break;
        p += 2;
        const char *hend = find_bytes(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend || hend - p > 8192) {
            snprintf(detail, dl, "multipart part %d: headers missing or longer than 8192 bytes",
                     parts);
            return -1;
        }
        const char *content = hend + 4;
        const char *next = find_bytes(content, (size_t)(end - content), delim, (size_t)dn);
        if (!next) {
            snprintf(detail, dl, "multipart part %d: no closing boundary", parts);
            return -1;
        }
        char name[128] = "", filename[256] = "";
        for (const char *h = p; h < hend;) {
            const char *eol = find_bytes(h, (size_t)(hend - h), "\r\n", 2);
            size_t hl = eol ? (size_t)(eol - h) : (size_t)(hend - h);
            if (hl > 20 && !strncasecmp(h, "Content-Disposition:", 20)) {
                header_param(h, hl, "name", name, sizeof name);
                header_param(h, hl, "filename", filename, sizeof filename);
            }
            h += hl + 2;
        }
        if (!strcmp(name, "file")) {
            *data = content;
            *dlen = (size_t)(next - content);
            return 0;
        }
        if (filename[0] && !fallback) {
            fallback = content;
            fallback_len = (size_t)(next - content);
        }
        p = next + dn;
    }
    if (fallback) {
        *data = fallback;
        *dlen = fallback_len;
        return 0;
    }
none:
    snprintf(detail, dl, "the multipart body has no file part (send the file as field \"file\")");
    return -1;
}
