/* Secrets of the store: ObjectIds, the server key for keyed hashing of API
 * keys and session ids (so a stolen database yields no usable credential),
 * random base62 secrets, and IP anonymization for the privacy rules. */
#include "store/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char hexd[] = "0123456789abcdef";

static _Atomic uint32_t oid_counter;
static unsigned char oid_rnd[5];
static _Atomic pid_t oid_pid;
static pthread_mutex_t oid_lock = PTHREAD_MUTEX_INITIALIZER;

void bs_store_oid_new(int64_t now_ms, char out[25])
{
    /* MongoDB's layout: 4-byte seconds, 5 random bytes, 3-byte counter, so
     * ids sort by creation time in both engines. The random part is drawn
     * again in a forked child, or parent and child would make equal ids. */
    pid_t pid = getpid();
    if (oid_pid != pid) {
        pthread_mutex_lock(&oid_lock);
        if (oid_pid != pid) {
            randombytes_buf(oid_rnd, sizeof oid_rnd);
            oid_counter = randombytes_random();
            oid_pid = pid;
        }
        pthread_mutex_unlock(&oid_lock);
    }
    unsigned char b[12];
    uint32_t secs = (uint32_t)(now_ms / 1000);
    uint32_t c = oid_counter++;
    b[0] = secs >> 24, b[1] = secs >> 16, b[2] = secs >> 8, b[3] = secs;
    memcpy(b + 4, oid_rnd, 5);
    b[9] = c >> 16, b[10] = c >> 8, b[11] = c;
    for (int i = 0; i < 12; i++) {
        out[2 * i] = hexd[b[i] >> 4];
        out[2 * i + 1] = hexd[b[i] & 15];
    }
    out[24] = 0;
}

bool bs_store_oid_valid(const char *s)
{
    if (!s) return false;
    for (int i = 0; i < 24; i++)
        if (!strchr(hexd, s[i]) || !s[i]) return false;
    return s[24] == 0;
}

int bs_store_secret_load(const char *dir, unsigned char key[32], bs_err *err)
{
    if (sodium_init() < 0) return bs_err_set(err, BS_EINTERNAL, "libsodium failed to initialise");
    char path[4096];
    if (snprintf(path, sizeof path, "%s/store.key", dir) >= (int)sizeof path)
        return bs_err_set(err, BS_EINVAL, "data dir path too long");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (mkdir(dir, 0700) && errno != EEXIST)
            return bs_err_set(err, BS_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
        int w = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (w < 0) return bs_err_set(err, BS_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        unsigned char k[32];
        randombytes_buf(k, sizeof k);
        bool ok = write(w, k, sizeof k) == (ssize_t)sizeof k && fsync(w) == 0;
        close(w);
        sodium_memzero(k, sizeof k);
        /* link() fails when another process created the key first: then
         * everyone uses that one. */
        if (!ok || (link(tmp, path) && errno != EEXIST)) {
            unlink(tmp);
            return bs_err_set(err, BS_EIO, "%s: cannot write the store key", path);
        }
        unlink(tmp);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) return bs_err_set(err, BS_EIO, "%s: cannot open: %s", path, strerror(errno));
    ssize_t n = read(fd, key, 32);
    close(fd);
    if (n != 32) return bs_err_set(err, BS_EFORMAT, "%s: store key must be 32 bytes", path);
    return 0;
}

void bs_store_hash(const bs_store *s, const char *text, size_t len, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)text, len, s->secret, sizeof s->secret);
    sodium_bin2hex(out, 65, h, sizeof h);
}

char *bs_store_random_secret(const char *prefix, size_t nchars)
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t pl = strlen(prefix);
    char *out = malloc(pl + nchars + 1);
    if (!out) return NULL;
    memcpy(out, prefix, pl);
    for (size_t i = 0; i < nchars; i++) out[pl + i] = b62[randombytes_uniform(62)];
    out[pl + nchars] = 0;
    return out;
}

const char *bs_store_anonymize_ip(const char *ip, char *out, size_t outlen)
{
    unsigned char a[16];
    if (!ip || outlen < INET6_ADDRSTRLEN) return NULL;
    if (inet_pton(AF_INET, ip, a) == 1) {
        a[3] = 0;
        return inet_ntop(AF_INET, a, out, (socklen_t)outlen);
    }
    if (inet_pton(AF_INET6, ip, a) == 1) {
        /* IPv4-mapped addresses are anonymized like IPv4. */
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(a, mapped, 12)) {
            a[15] = 0;
            return inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
        }
        memset(a + 6, 0, 10);
        return inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
    }
    return NULL;
}
