/* The few file-system operations the cache needs that libc lacks in one
 * call: mkdir -p, rm -rf (never following symlinks) and a file copy. */
#include "hub/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bs_hub_mkdirs(const char *path, bs_err *err)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s", path) >= sizeof tmp)
        return bs_err_set(err, BS_ERANGE, "path too long: %.100s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST)
            return bs_err_set(err, BS_EIO, "cannot create %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST)
        return bs_err_set(err, BS_EIO, "cannot create %s: %s", tmp, strerror(errno));
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int bs_hub_rmtree(const char *path, bs_err *err)
{
    struct stat st;
    if (lstat(path, &st))
        return errno == ENOENT ? 0 : bs_err_set(err, BS_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path))
            return bs_err_set(err, BS_EIO, "cannot remove %s: %s", path, strerror(errno));
        return 0;
    }
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS))
        return bs_err_set(err, BS_EIO, "cannot remove %s: %s", path, strerror(errno));
    return 0;
}

int bs_hub_copy_file(const char *src, const char *dst, bs_err *err)
{
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dst);
    char *slash = strrchr(parent, '/');
    if (slash) {
        *slash = 0;
        int rc = bs_hub_mkdirs(parent, err);
        if (rc) return rc;
    }
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return bs_err_set(err, BS_EIO, "%s: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        int e = errno;
        close(in);
        return bs_err_set(err, BS_EIO, "%s: %s", dst, strerror(e));
    }
    char buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = bs_err_set(err, BS_EIO, "%s: %s", src, strerror(errno));
            break;
        }
        if (r == 0) break;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                rc = bs_err_set(err, BS_EIO, "%s: %s", dst, strerror(errno));
                break;
            }
            off += w;
        }
        if (rc) break;
    }
    close(in);
    if (close(out) && !rc) rc = bs_err_set(err, BS_EIO, "%s: %s", dst, strerror(errno));
    return rc;
}
