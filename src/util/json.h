/* Compact JSON text for answers: numbers in the shortest decimal form that
 * reads back to the same value (float32 for model vectors, float64 for
 * scores), so that answers stay small and exact. */
#ifndef BS_UTIL_JSON_H
#define BS_UTIL_JSON_H

#include <jansson.h>

#include "bertstudio/common.h"
#include "util/buf.h"

/* Shortest decimal text of a float32 that parses back (strtof) to the same
 * float, in printf's %g form at that many digits (1..9; "0.1", "1e-45",
 * "16777216"). Writes at most 32 bytes (NUL included); non-finite values
 * print "null". Returns the length. */
int bs_json_fmt_float(float v, char out[32]);
/* Same for a double (1..17 digits). */
int bs_json_fmt_double(double v, char out[32]);
/* Appends s[0..len) to out as a JSON string (quotes, escapes of '"', '\\'
 * and control characters; other bytes as they are). Returns 0 or BS_ENOMEM. */
int bs_json_put_string(bs_buf *out, const char *s, size_t len);
/* Appends json to out, compact, with reals printed by bs_json_fmt_double,
 * except under members named in float_keys (NULL-terminated; e.g.
 * "embeddings", "features") where reals are float32 values printed by
 * bs_json_fmt_float. Returns 0 or BS_ENOMEM. */
int bs_json_write(const json_t *json, const char *const *float_keys, bs_buf *out);

#endif
