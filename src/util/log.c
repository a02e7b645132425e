/* Logging: single write(2) per line so lines from concurrent threads never
 * interleave. The level is process-wide configuration, set once at start.
 * Messages carry request values (model names, revisions, paths): control
 * bytes are escaped here, once for every caller, so that no value can end
 * a line and forge the next. */
#include "util/log.h"
#include "util/time.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static atomic_int log_level = BS_LOG_INFO;

void bs_log_set_level(enum bs_log_level level)
{
    atomic_store(&log_level, level);
}

void bs_log(enum bs_log_level level, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if ((int)level < atomic_load(&log_level)) return;
    char line[2048], ts[32];
    bs_time_iso8601(bs_time_now_ms(), ts, sizeof ts);
    int n = snprintf(line, sizeof line, "%s %s %s: ", ts, names[level], module);
    if (n < 0 || (size_t)n >= sizeof line) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    if ((size_t)m >= sizeof msg) m = (int)sizeof msg - 1;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < m && (size_t)n + 5 < sizeof line; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c < 0x20 || c == 0x7f) {
            line[n++] = '\\';
            line[n++] = 'x';
            line[n++] = hex[c >> 4];
            line[n++] = hex[c & 15];
        } else {
            line[n++] = (char)c;
        }
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
