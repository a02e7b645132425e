/* A growable byte buffer for building strings and bodies without guessing
 * sizes up front. The bytes are always NUL-terminated for convenience. */
#ifndef BS_UTIL_BUF_H
#define BS_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct bs_buf {
    char *data;
    size_t len, cap;
    int oom; /* sticky: set when a growth failed; later appends are no-ops */
} bs_buf;

void bs_buf_init(bs_buf *b);
void bs_buf_free(bs_buf *b);
/* Hands the bytes to the caller (who frees them) and resets b. */
char *bs_buf_steal(bs_buf *b, size_t *len);
int bs_buf_reserve(bs_buf *b, size_t extra);
/* Room for exactly extra more bytes, for a size known up front. */
int bs_buf_reserve_exact(bs_buf *b, size_t extra);
int bs_buf_append(bs_buf *b, const void *p, size_t n);
int bs_buf_puts(bs_buf *b, const char *s);
int bs_buf_putc(bs_buf *b, char c);
int bs_buf_printf(bs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int bs_buf_vprintf(bs_buf *b, const char *fmt, va_list ap);

#endif
