/* The one whole-file reader. It grows its buffer geometrically and stops
 * at the caller's cap, so that a huge or endless input (a FIFO, /dev/zero)
 * costs at most the cap, never the whole of memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

int bs_file_readf(FILE *f, size_t max, char **out, size_t *len, bs_err *err)
{
    *out = NULL;
    if (len) *len = 0;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap > max) break; /* one byte past max was read: too large */
            size_t want = cap ? cap * 2 : 8192;
            if (want > max + 1) want = max + 1;
            char *nb = realloc(buf, want + 1);
            if (!nb) {
                free(buf);
                return bs_err_set(err, BS_ENOMEM, "out of memory");
            }
            buf = nb;
            cap = want;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    if (n > max) {
        free(buf);
        return bs_err_set(err, BS_ELIMIT, "larger than %zu bytes", max);
    }
    if (ferror(f)) {
        free(buf);
        return bs_err_set(err, BS_EIO, "read error");
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return 0;
}

int bs_file_read(const char *path, size_t max, char **out, size_t *len, bs_err *err)
{
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return bs_err_set(err, errno == ENOENT ? BS_ENOTFOUND : BS_EIO, "%s: %s", path,
                          strerror(errno));
    int rc = bs_file_readf(f, max, out, len, err);
    fclose(f);
    if (rc) bs_err_prefix(err, "%s", path);
    return rc;
}
