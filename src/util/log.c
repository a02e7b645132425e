/* Logging: single write(2) per line so lines from concurrent threads never
 * interleave. The level is process-wide configuration, set once at start. */
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
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
