/* Growable buffer: doubling growth, overflow-checked, sticky out-of-memory so
 * a long chain of appends needs one check at the end. */
#include "util/buf.h"
#include "bertstudio/common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bs_buf_init(bs_buf *b)
{
    memset(b, 0, sizeof *b);
}

void bs_buf_free(bs_buf *b)
{
    free(b->data);
    bs_buf_init(b);
}

char *bs_buf_steal(bs_buf *b, size_t *len)
{
    if (bs_buf_reserve(b, 0)) {
        bs_buf_free(b);
        return NULL;
    }
    char *p = b->data;
    if (len) *len = b->len;
    bs_buf_init(b);
    return p;
}

static int grow(bs_buf *b, size_t extra, int exact)
{
    if (b->oom) return BS_ENOMEM;
    if (extra > SIZE_MAX - b->len - 1) return b->oom = 1, BS_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = exact ? need : b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) return b->oom = 1, BS_ENOMEM;
    b->data = p;
    b->cap = cap;
    b->data[b->len] = 0;
    return 0;
}

int bs_buf_reserve(bs_buf *b, size_t extra)
{
    return grow(b, extra, 0);
}

int bs_buf_reserve_exact(bs_buf *b, size_t extra)
{
    return grow(b, extra, 1);
}

int bs_buf_append(bs_buf *b, const void *p, size_t n)
{
    if (bs_buf_reserve(b, n)) return BS_ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int bs_buf_puts(bs_buf *b, const char *s)
{
    return bs_buf_append(b, s, strlen(s));
}

int bs_buf_putc(bs_buf *b, char c)
{
    return bs_buf_append(b, &c, 1);
}

int bs_buf_vprintf(bs_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || bs_buf_reserve(b, (size_t)n)) return BS_ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int bs_buf_printf(bs_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = bs_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}
