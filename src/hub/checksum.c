/* Per-file sha256 digests and the folder manifest (.sha256sums, the format of
 * sha256sum(1)) whose own sha256 is the model's recorded checksum: one value
 * to compare, and a file anyone can check with standard tools. */
#include "hub/hub.h"
#include "util/buf.h"
#include "util/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void to_hex(const unsigned char *d, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * n] = 0;
}

int bs_hub_sha256_file(const char *path, char hex[65], int64_t *size, bs_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bs_err_set(err, BS_EIO, "%s: %s", path, strerror(errno));
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    static const size_t chunk = 1 << 20;
    unsigned char *b = malloc(chunk);
    if (!b) {
        close(fd);
        return bs_err_set(err, BS_ENOMEM, "out of memory hashing %s", path);
    }
    int64_t total = 0;
    for (;;) {
        ssize_t r = read(fd, b, chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(b);
            close(fd);
            return bs_err_set(err, BS_EIO, "%s: %s", path, strerror(e));
        }
        if (r == 0) break;
        crypto_hash_sha256_update(&st, b, (unsigned long long)r);
        total += r;
    }
    free(b);
    close(fd);
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, d);
    to_hex(d, sizeof d, hex);
    if (size) *size = total;
    return 0;
}

typedef struct file_list {
    char **v;
    size_t n, cap;
} file_list;

static void list_free(file_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int list_push(file_list *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v, l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return -1;
    l->n++;
    return 0;
}

/* Regular files below dir/rel, as paths relative to dir. */
static int walk(const char *dir, const char *rel, file_list *out, int depth, bs_err *err)
{
    if (depth > 8) return bs_err_set(err, BS_EFORMAT, "%s: folders nested too deep", dir);
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) return bs_err_set(err, BS_EIO, "%s: %s", path, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!*rel && !strcmp(e->d_name, BS_HUB_MANIFEST)) continue;
        char sub[4096], full[4096];
        if ((size_t)snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
            sizeof sub)
            return closedir(d), bs_err_set(err, BS_ERANGE, "%s: path too long", path);
        struct stat st;
        if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, sub) >= sizeof full) {
            rc = bs_err_set(err, BS_ERANGE, "%s: path too long", path);
        } else if (lstat(full, &st)) {
            rc = bs_err_set(err, BS_EIO, "%s: %s", full, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk(dir, sub, out, depth + 1, err);
        } else if (S_ISREG(st.st_mode)) {
            if (list_push(out, sub)) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        } else {
            rc = bs_err_set(err, BS_EFORMAT,
                            "%s: not a regular file (symlinks are not kept in "
                            "the cache)",
                            full);
        }
    }
    closedir(d);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void digest_text(const char *s, size_t n, char checksum[72])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)s, n);
    memcpy(checksum, "sha256:", 7);
    to_hex(d, sizeof d, checksum + 7);
}

/* The manifest text of dir's current content. */
static int build_manifest(const char *dir, bs_buf *text, int64_t *total, bs_err *err)
{
    file_list files = {0};
    int rc = walk(dir, "", &files, 0, err);
    if (!rc) qsort(files.v, files.n, sizeof *files.v, cmp_str);
    *total = 0;
    for (size_t i = 0; !rc && i < files.n; i++) {
        char path[4096], hex[65];
        int64_t size;
        snprintf(path, sizeof path, "%s/%s", dir, files.v[i]);
        rc = bs_hub_sha256_file(path, hex, &size, err);
        if (!rc) {
            *total += size;
            bs_buf_printf(text, "%s  %s\n", hex, files.v[i]);
        }
    }
    if (!rc && text->oom) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    list_free(&files);
    return rc;
}

int bs_hub_manifest_write(const char *dir, char checksum[72], int64_t *total_bytes, bs_err *err)
{
    bs_buf text;
    bs_buf_init(&text);
    int64_t total = 0;
    int rc = build_manifest(dir, &text, &total, err);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, BS_HUB_MANIFEST);
    if (!rc) {
        FILE *f = fopen(path, "wb");
        if (!f) {
            rc = bs_err_set(err, BS_EIO, "%s: %s", path, strerror(errno));
        } else {
            size_t w = text.len ? fwrite(text.data, 1, text.len, f) : 0;
            if (fclose(f) || w != text.len) rc = bs_err_set(err, BS_EIO, "%s: write failed", path);
        }
    }
    if (!rc) {
        digest_text(text.data ? text.data : "", text.len, checksum);
        if (total_bytes) *total_bytes = total;
    }
    bs_buf_free(&text);
    return rc;
}

int bs_hub_manifest_verify(const char *dir, char checksum[72], bs_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, BS_HUB_MANIFEST);
    bs_buf stored;
    bs_buf_init(&stored);
    /* A manifest lists a folder's files, one short line each. */
    if (bs_file_read(path, (size_t)16 << 20, &stored.data, &stored.len, err)) {
        if (err) err->code = BS_EFORMAT; /* a manifest that cannot be read is a bad folder */
        return BS_EFORMAT;
    }
    stored.cap = stored.len + 1;
    bs_buf now;
    bs_buf_init(&now);
    int64_t total;
    int rc = build_manifest(dir, &now, &total, err);
    if (!rc && (stored.len != now.len || memcmp(stored.data, now.data, now.len))) {
        /* Name the first line that differs: the file that changed. */
        const char *a = stored.data ? stored.data : "", *b = now.data ? now.data : "";
        while (*a && *b) {
            const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
            if (!ea || !eb) break;
            if (ea - a != eb - b || memcmp(a, b, (size_t)(ea - a))) break;
            a = ea + 1, b = eb + 1;
        }
        const char *line = *a ? a : b;
        const char *name = strstr(line, "  ");
        int n = name ? (int)strcspn(name + 2, "\n") : 0;
        rc = bs_err_set(err, BS_EFORMAT, "%s: checksum mismatch at %.*s", dir, n,
                        name ? name + 2 : "?");
    }
    if (!rc && checksum) digest_text(stored.data ? stored.data : "", stored.len, checksum);
    bs_buf_free(&stored);
    bs_buf_free(&now);
    return rc;
}
