/* Error records: every fallible function fills a bs_err with a sentence that
 * names the bad input, so that the message can travel unchanged to the user. */
#include "bertstudio/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int bs_err_set(bs_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int bs_err_prefix(bs_err *err, const char *fmt, ...)
{
    if (!err) return BS_EINVAL;
    char prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation is fine here: the start of the sentence matters most. */
    size_t n = strnlen(prefix, sizeof prefix);
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3;
    size_t m = strnlen(old, room);
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = 0;
    return err->code;
}

const char *bs_strerror(int code)
{
    switch (code) {
    case BS_OK:
        return "ok";
    case BS_EINVAL:
        return "invalid argument";
    case BS_ENOMEM:
        return "out of memory";
    case BS_EIO:
        return "input/output error";
    case BS_ENOTFOUND:
        return "not found";
    case BS_EFORMAT:
        return "malformed input";
    case BS_ERANGE:
        return "value out of range";
    case BS_EUNSUPPORTED:
        return "not supported";
    case BS_ECONFLICT:
        return "conflict";
    case BS_EBUSY:
        return "busy";
    case BS_EUTF8:
        return "invalid UTF-8";
    case BS_ESTORE:
        return "store error";
    case BS_EUNPROCESSABLE:
        return "unprocessable input";
    case BS_EPERM:
        return "permission denied";
    case BS_EAUTH:
        return "authentication failed";
    case BS_ELIMIT:
        return "limit exceeded";
    case BS_EINTERNAL:
        return "internal error";
    }
    return "unknown error";
}

const char *bs_version(void)
{
    return BS_VERSION;
}
