/* Logging to stderr: one line per event, "ts level module: message", so that
 * the access log and errors can be read by people and grepped by tools. */
#ifndef BS_UTIL_LOG_H
#define BS_UTIL_LOG_H

enum bs_log_level { BS_LOG_DEBUG, BS_LOG_INFO, BS_LOG_WARN, BS_LOG_ERROR };

void bs_log_set_level(enum bs_log_level level);
void bs_log(enum bs_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define bs_log_debug(mod, ...) bs_log(BS_LOG_DEBUG, mod, __VA_ARGS__)
#define bs_log_info(mod, ...)  bs_log(BS_LOG_INFO, mod, __VA_ARGS__)
#define bs_log_warn(mod, ...)  bs_log(BS_LOG_WARN, mod, __VA_ARGS__)
#define bs_log_error(mod, ...) bs_log(BS_LOG_ERROR, mod, __VA_ARGS__)

#endif
