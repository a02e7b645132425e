/* Length-prefixed JSON frames between the server, the sandbox worker and its
 * children. The peer may be a child running hostile code: a length is checked
 * against the reader's bound before anything is allocated, and a reader
 * never waits longer than its deadline. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/time.h"

static int write_all(int fd, const void *p, size_t n, bs_err *err)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK) w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return bs_err_set(err, BS_EBUSY, "sandbox: the other side does not read");
        if (w <= 0) return bs_err_set(err, BS_EIO, "sandbox: write failed: %s", strerror(errno));
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int bs_sandbox_frame_write_raw(int fd, const char *bytes, size_t len, bs_err *err)
{
    if (len > BS_SANDBOX_MAX_FRAME)
        return bs_err_set(err, BS_ELIMIT, "sandbox: a message of %zu bytes is over the limit", len);
    uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 24)};
    /* One buffer, one write in the common case: a child killed between two
     * writes must not leave a header without its body looking complete. */
    char *buf = malloc(len + 4);
    if (!buf) return bs_err_set(err, BS_ENOMEM, "sandbox: out of memory");
    memcpy(buf, hdr, 4);
    memcpy(buf + 4, bytes, len);
    int rc = write_all(fd, buf, len + 4, err);
    free(buf);
    return rc;
}

int bs_sandbox_frame_write(int fd, const json_t *v, bs_err *err)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) return bs_err_set(err, BS_ENOMEM, "sandbox: cannot encode a message");
    int rc = bs_sandbox_frame_write_raw(fd, s, strlen(s), err);
    free(s);
    return rc;
}

static int read_all(int fd, void *p, size_t n, int64_t deadline_ns, bs_err *err)
{
    char *c = p;
    while (n) {
        if (deadline_ns >= 0) {
            int64_t left = (deadline_ns - bs_time_mono_ns()) / 1000000;
            if (left <= 0) return bs_err_set(err, BS_EBUSY, "sandbox: no answer in time");
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int pr = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
            if (pr < 0 && errno == EINTR) continue;
            if (pr == 0) continue;
        }
        ssize_t r = read(fd, c, n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r == 0) return bs_err_set(err, BS_EIO, "sandbox: the other side closed the channel");
        if (r < 0) return bs_err_set(err, BS_EIO, "sandbox: read failed: %s", strerror(errno));
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

int bs_sandbox_frame_read(int fd, size_t max, int timeout_ms, json_t **out, bs_err *err)
{
    *out = NULL;
    int64_t deadline = timeout_ms < 0 ? -1 : bs_time_mono_ns() + (int64_t)timeout_ms * 1000000;
    uint8_t hdr[4];
    int rc = read_all(fd, hdr, 4, deadline, err);
    if (rc) return rc;
    size_t len = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
    if (len > max || len > BS_SANDBOX_MAX_FRAME)
        return bs_err_set(err, BS_ELIMIT, "sandbox: a message of %zu bytes is over the %zu limit",
                          len, max);
    char *buf = malloc(len + 1);
    if (!buf) return bs_err_set(err, BS_ENOMEM, "sandbox: out of memory");
    rc = read_all(fd, buf, len, deadline, err);
    if (!rc) {
        json_error_t je;
        *out = json_loadb(buf, len, JSON_DECODE_ANY, &je);
        if (!*out) rc = bs_err_set(err, BS_EFORMAT, "sandbox: a message is not JSON: %s", je.text);
    }
    free(buf);
    return rc;
}
