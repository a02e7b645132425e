/* Wall-clock and monotonic time, and the UTC ISO-8601 form used in every JSON
 * document ("2024-01-15T10:30:00.000Z"). */
#ifndef BS_UTIL_TIME_H
#define BS_UTIL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (UTC). */
int64_t bs_time_now_ms(void);
/* Monotonic nanoseconds, for durations. */
int64_t bs_time_mono_ns(void);
/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ"; returns buf. len >= 25. */
char *bs_time_iso8601(int64_t ms, char *buf, size_t len);
/* Parses ISO-8601 UTC ("...Z" or "+00:00", optional fraction, or a bare date
 * "YYYY-MM-DD"); returns 0 and sets *ms, or -1 when the text is not a date. */
int bs_time_parse_iso8601(const char *s, int64_t *ms);

#endif
