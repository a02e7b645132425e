/* UTF-8 checks and code point counting. Every text that enters the product
 * is validated once at the edge; the rest of the house may assume UTF-8. */
#ifndef BS_UTIL_UTF8_H
#define BS_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0 when s[0..len) is valid UTF-8 (no overlongs, no surrogates, no
 * code points above U+10FFFF); otherwise -1 and *bad_at = the byte offset of
 * the first invalid sequence. */
int bs_utf8_validate(const char *s, size_t len, size_t *bad_at);

/* Decodes one code point at s (of at most len bytes) into *cp and returns its
 * byte length, or 0 when the bytes there are not valid UTF-8. */
size_t bs_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Encodes cp into out (4 bytes at least); returns the byte length. */
size_t bs_utf8_encode(uint32_t cp, char *out);

/* Number of code points in valid UTF-8 text. */
size_t bs_utf8_count(const char *s, size_t len);

#endif
