/*
 * Shared vocabulary of the public API: error codes and the error record that
 * every fallible function fills. A function that can fail returns 0 or a
 * negative BS_E* code and takes `bs_err *err` as its last argument (which may
 * be NULL when the caller does not want the sentence).
 */
#ifndef BERTSTUDIO_COMMON_H
#define BERTSTUDIO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BS_API __attribute__((visibility("default")))

enum {
    BS_OK = 0,
    BS_EINVAL = -1,          /* bad argument or request field */
    BS_ENOMEM = -2,          /* allocation failed */
    BS_EIO = -3,             /* file or network I/O failed */
    BS_ENOTFOUND = -4,       /* no such file, id, model, key */
    BS_EFORMAT = -5,         /* a file or document is malformed */
    BS_ERANGE = -6,          /* a value is outside its allowed range */
    BS_EUNSUPPORTED = -7,    /* valid but not supported (dtype, architecture...) */
    BS_ECONFLICT = -8,       /* duplicate unique key */
    BS_EBUSY = -9,           /* temporarily unavailable (loading, queue full) */
    BS_EUTF8 = -10,          /* invalid UTF-8 */
    BS_ESTORE = -11,         /* the store failed or is unreachable */
    BS_EUNPROCESSABLE = -12, /* well-formed but unusable input (no mask token...) */
    BS_EPERM = -13,          /* missing permission */
    BS_EAUTH = -14,          /* missing or bad credentials */
    BS_ELIMIT = -15,         /* a size or rate limit was exceeded */
    BS_EINTERNAL = -16,      /* a bug: should never reach a user */
};

/* A human sentence naming the bad input, e.g.
 * "config.json: hidden_size 770 is not divisible by num_attention_heads 12". */
typedef struct bs_err {
    int code;
    char msg[512];
} bs_err;

/* Fills err (when not NULL) with code and a printf-style message; returns code
 * so that callers can write `return bs_err_set(err, BS_EINVAL, "...")`. */
BS_API int bs_err_set(bs_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to err's message (for adding context such as a file
 * name while an error travels up); returns err->code. */
BS_API int bs_err_prefix(bs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Short name of an error code ("invalid argument", "not found", ...). */
BS_API const char *bs_strerror(int code);

/* The library's version string, e.g. "0.1.0". */
BS_API const char *bs_version(void);

#ifdef __cplusplus
}
#endif
#endif
