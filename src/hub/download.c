/* The Hub's file protocol over libcurl: list a repo at a revision, fetch the
 * files inference needs with redirects, bearer auth, resume (Range) after a
 * dropped connection, and sha256 checks against what the Hub announces. */
#include "hub/download.h"
#include "hub/internal.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/time.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define LISTING_MAX (16u << 20)

typedef struct want {
    char *name;
    int64_t size;    /* -1 unknown */
    char sha256[65]; /* "" unknown */
} want;

/* State of one transfer, reset for each request. */
typedef struct xfer {
    long status;      /* status of the latest response */
    char etag[128];   /* ETag of the latest response */
    char linked[128]; /* X-Linked-Etag of any response (the Hub's redirect) */
    FILE *out;        /* file body goes here (NULL: into mem) */
    int64_t offset;   /* bytes already in out before this request */
    int truncated;    /* server ignored Range: restart from 0 */
    bs_buf mem;       /* listing body, or the first bytes of an error body */
    size_t mem_max;
    int too_big;
} xfer;

typedef struct dl {
    const bs_hub_fetch *f;
    bs_hub_progress prog;
    int64_t done_before; /* bytes of completed files + resumed offset of the current one */
    int64_t session;     /* bytes transferred by this process */
    int64_t session_before;
    int64_t start_ns, last_cb_ns;
    int cancelled;
    xfer x;
} dl;

static int emit(dl *d, int force)
{
    int64_t now = bs_time_mono_ns();
    if (!force && now - d->last_cb_ns < 100000000) return 0;
    d->last_cb_ns = now;
    double secs = (double)(now - d->start_ns) / 1e9;
    d->prog.rate = secs > 0 ? (double)d->session / secs : 0;
    d->prog.eta_s = d->prog.total >= 0 && d->prog.rate > 0
                        ? (double)(d->prog.total - d->prog.done) / d->prog.rate
                        : -1;
    if (d->f->cb && d->f->cb(&d->prog, d->f->ud)) d->cancelled = 1;
    return d->cancelled;
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (len > 5 && !strncmp(buf, "HTTP/", 5)) {
        const char *sp = memchr(buf, ' ', len);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->etag[0] = 0;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon) return len;
    size_t klen = (size_t)(colon - buf);
    const char *v = colon + 1, *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    char *dst = NULL;
    if (klen == 4 && !strncasecmp(buf, "etag", 4))
        dst = x->etag;
    else if (klen == 13 && !strncasecmp(buf, "x-linked-etag", 13))
        dst = x->linked;
    if (dst) {
        size_t vl = (size_t)(end - v);
        if (vl >= sizeof x->etag) vl = sizeof x->etag - 1;
        memcpy(dst, v, vl);
        dst[vl] = 0;
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
    dl *d = ud;
    xfer *x = &d->x;
    size_t len = size * n;
    int ok_status = x->status == 200 || x->status == 206;
    if (!x->out || !ok_status) {
        /* Listing body, or an error body kept for the message. */
        size_t max = x->out ? 512 : x->mem_max;
        if (x->mem.len + len > max) {
            if (!x->out) {
                x->too_big = 1;
                return 0;
            }
            return len;
        }
        bs_buf_append(&x->mem, buf, len);
        return x->mem.oom ? 0 : len;
    }
    if (x->status == 200 && x->offset > 0 && !x->truncated) {
        /* The server ignored our Range: start the file over. */
        x->truncated = 1;
        if (fflush(x->out) || ftruncate(fileno(x->out), 0) || fseek(x->out, 0, SEEK_SET)) return 0;
        d->done_before -= x->offset;
        x->offset = 0;
    }
    if (fwrite(buf, 1, len, x->out) != len) return 0;
    d->session += (int64_t)len;
    return len;
}

static int on_xfer(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
    dl *d = ud;
    if (!d->x.out || (d->x.status != 200 && d->x.status != 206)) return 0;
    d->prog.done = d->done_before + (int64_t)dlnow;
    return emit(d, 0);
}

static CURL *new_handle(dl *d, struct curl_slist **hdrs)
{
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    *hdrs = curl_slist_append(NULL, "User-Agent: bertstudio/" BS_VERSION);
    if (d->f->token && *d->f->token) {
        char auth[1024];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", d->f->token);
        *hdrs = curl_slist_append(*hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stalled transfer (under 1 byte/s for 60 s) fails and is resumed. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &d->x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, d);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    return h;
}

static void xfer_reset(xfer *x)
{
    bs_buf_free(&x->mem);
    memset(x, 0, sizeof *x);
    bs_buf_init(&x->mem);
}

/* An HTTP status other than success, as an error naming what was asked. */
static int http_error(dl *d, const char *what, bs_err *err)
{
    long s = d->x.status;
    const char *body = d->x.mem.data ? d->x.mem.data : "";
    if (s == 401)
        return bs_err_set(err, BS_EAUTH,
                          "%s: the Hub answered 401 (the repo is private or gated and needs a "
                          "token: set HF_TOKEN; or it does not exist)",
                          what);
    if (s == 403)
        return bs_err_set(err, BS_EAUTH, "%s: the Hub answered 403 (HF_TOKEN has no access)", what);
    if (s == 404)
        return bs_err_set(err, BS_ENOTFOUND, "%s: not found on %s (404)", what, d->f->endpoint);
    return bs_err_set(err, BS_EIO, "%s: the Hub answered HTTP %ld %.200s", what, s, body);
}

static int list_repo(dl *d, CURL *h, want **out, size_t *nout, char commit[41], bs_err *err)
{
    char *rev = curl_easy_escape(h, d->f->revision, 0);
    char url[4096];
    snprintf(url, sizeof url, "%s/api/models/%s/revision/%s?blobs=true", d->f->endpoint, d->f->repo,
             rev ? rev : "main");
    curl_free(rev);
    xfer_reset(&d->x);
    d->x.mem_max = LISTING_MAX;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_RANGE, NULL);
    CURLcode cc = curl_easy_perform(h);
    char what[512];
    snprintf(what, sizeof what, "model %s (revision %s)", d->f->repo, d->f->revision);
    if (d->x.too_big) return bs_err_set(err, BS_EFORMAT, "%s: the file listing is too large", what);
    if (cc != CURLE_OK)
        return bs_err_set(err, BS_EIO, "%s: cannot reach %s: %s", what, d->f->endpoint,
                          curl_easy_strerror(cc));
    if (d->x.status != 200) return http_error(d, what, err);
    json_error_t je;
    json_t *doc = json_loadb(d->x.mem.data ? d->x.mem.data : "", d->x.mem.len, 0, &je);
    json_t *sib = doc ? json_object_get(doc, "siblings") : NULL;
    if (!json_is_array(sib)) {
        json_decref(doc);
        return bs_err_set(err, BS_EFORMAT, "%s: the Hub's listing has no \"siblings\" array", what);
    }
    const char *sha = json_string_value(json_object_get(doc, "sha"));
    commit[0] = 0;
    if (sha && strlen(sha) == 40 && strspn(sha, "0123456789abcdef") == 40) memcpy(commit, sha, 41);
    size_t n = 0, idx;
    json_t *s;
    want *w = calloc(json_array_size(sib) + 1, sizeof *w);
    if (!w) {
        json_decref(doc);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    json_array_foreach(sib, idx, s)
    {
        const char *name = json_string_value(json_object_get(s, "rfilename"));
        if (!bs_hub_file_wanted(name)) continue;
        /* Weight shard names become local file names: plain characters only. */
        if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") !=
                strlen(name) ||
            strstr(name, ".."))
            continue;
        w[n].name = strdup(name);
        json_t *lfs = json_object_get(s, "lfs");
        json_t *size = json_object_get(lfs ? lfs : s, "size");
        w[n].size =
            json_is_integer(size) && json_integer_value(size) >= 0 ? json_integer_value(size) : -1;
        const char *lsha = json_string_value(json_object_get(lfs, "sha256"));
        if (lsha && strlen(lsha) == 64 && strspn(lsha, "0123456789abcdef") == 64)
            memcpy(w[n].sha256, lsha, 65);
        if (w[n].name) n++;
    }
    json_decref(doc);
    *out = w;
    *nout = n;
    return 0;
}

/* A sha256 announced by the Hub in an ETag-like header value, or "". */
static void etag_sha(const char *v, char out[65])
{
    out[0] = 0;
    if (!strncmp(v, "W/", 2)) v += 2;
    if (*v == '"') v++;
    if (strspn(v, "0123456789abcdef") == 64 && (v[64] == '"' || v[64] == 0)) {
        memcpy(out, v, 64);
        out[64] = 0;
    }
}

static int mkdirs_for(const char *path, bs_err *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *slash = strrchr(tmp, '/');
    if (!slash) return 0;
    *slash = 0;
    return bs_hub_mkdirs(tmp, err);
}

static int retryable(CURLcode cc)
{
    return cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR ||
           cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_GOT_NOTHING ||
           cc == CURLE_COULDNT_CONNECT || cc == CURLE_HTTP2_STREAM;
}

static int fetch_one(dl *d, CURL *h, const char *base_url, const want *w, const char *dir,
                     bs_err *err)
{
    char final[4096], part[4096], url[4096];
    if ((size_t)snprintf(final, sizeof final, "%s/%s", dir, w->name) >= sizeof final ||
        (size_t)snprintf(part, sizeof part, "%s.part", final) >= sizeof part ||
        (size_t)snprintf(url, sizeof url, "%s/%s", base_url, w->name) >= sizeof url)
        return bs_err_set(err, BS_ERANGE, "%s: path or URL too long", w->name);
    struct stat st;
    if (!stat(final, &st)) {
        /* Verified by an earlier attempt at this commit (see same_snapshot). */
        if (w->size < 0 || st.st_size == w->size) {
            d->done_before += st.st_size;
            return 0;
        }
        unlink(final);
    }
    int rc = mkdirs_for(final, err);
    if (rc) return rc;
    d->prog.file = w->name;
    int max = d->f->max_attempts > 0 ? d->f->max_attempts : 4;
    int64_t base_done = d->done_before;
    char announced[65] = "";
    for (int attempt = 1;; attempt++) {
        int64_t offset = stat(part, &st) ? 0 : st.st_size;
        FILE *out = fopen(part, "ab");
        if (!out) return bs_err_set(err, BS_EIO, "%s: %s", part, strerror(errno));
        xfer_reset(&d->x);
        d->x.out = out;
        d->x.offset = offset;
        d->done_before = base_done + offset;
        char range[64];
        snprintf(range, sizeof range, "%lld-", (long long)offset);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_RANGE, offset > 0 ? range : NULL);
        CURLcode cc = curl_easy_perform(h);
        int closed = fclose(out);
        char linked[65], tag[65];
        etag_sha(d->x.linked, linked);
        etag_sha(d->x.etag, tag);
        if (linked[0])
            memcpy(announced, linked, 65);
        else if (tag[0])
            memcpy(announced, tag, 65);
        if (d->cancelled) return bs_err_set(err, BS_EIO, "%s: download cancelled", w->name);
        if (cc == CURLE_OK && closed)
            return bs_err_set(err, BS_EIO, "%s: write failed (disk full?)", part);
        if (cc == CURLE_OK && d->x.status == 416 && offset > 0) break; /* already complete */
        if (cc == CURLE_OK && (d->x.status == 200 || d->x.status == 206)) break;
        if (cc == CURLE_OK) {
            char what[512];
            snprintf(what, sizeof what, "%s of model %s", w->name, d->f->repo);
            return http_error(d, what, err);
        }
        if (!retryable(cc) || attempt >= max)
            return bs_err_set(err, BS_EIO,
                              "%s of model %s: %s after %d attempt(s); the partial file is kept "
                              "and the next download resumes it",
                              w->name, d->f->repo, curl_easy_strerror(cc), attempt);
        bs_log_warn("hub", "%s of %s: %s; resuming (attempt %d of %d)", w->name, d->f->repo,
                    curl_easy_strerror(cc), attempt + 1, max);
    }
    char hex[65];
    int64_t size;
    if ((rc = bs_hub_sha256_file(part, hex, &size, err))) return rc;
    const char *expect = w->sha256[0] ? w->sha256 : announced[0] ? announced : NULL;
    if ((w->size >= 0 && size != w->size) || (expect && strcmp(hex, expect))) {
        unlink(part);
        if (expect && strcmp(hex, expect))
            return bs_err_set(err, BS_EFORMAT,
                              "%s of model %s: checksum mismatch (the Hub announced sha256 %s, "
                              "the downloaded bytes have %s); the file was discarded",
                              w->name, d->f->repo, expect, hex);
        return bs_err_set(err, BS_EFORMAT,
                          "%s of model %s: size mismatch (listed %lld bytes, got %lld); the "
                          "file was discarded",
                          w->name, d->f->repo, (long long)w->size, (long long)size);
    }
    if (rename(part, final))
        return bs_err_set(err, BS_EIO, "%s: cannot rename: %s", part, strerror(errno));
    d->done_before = base_done + size;
    return 0;
}

static int has_weights(const want *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(w[i].name);
        if (l > 12 && !strcmp(w[i].name + l - 12, ".safetensors")) return 1;
    }
    return 0;
}

static int has_file(const want *w, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w[i].name, name)) return 1;
    return 0;
}

/* Files kept in dir by an earlier attempt are reused only when that attempt
 * listed the same commit (recorded in dir/BS_HUB_COMMIT_FILE): a branch that
 * moved meanwhile must not mix two snapshots. */
static int same_snapshot(const char *dir, const char *sha, bs_err *err)
{
    char path[4096], old[64] = "";
    snprintf(path, sizeof path, "%s/%s", dir, BS_HUB_COMMIT_FILE);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(old, sizeof old, f)) old[0] = 0;
        fclose(f);
    }
    if (f && strcmp(old, sha)) {
        int rc = bs_hub_rmtree(dir, err);
        if (!rc) rc = bs_hub_mkdirs(dir, err);
        if (rc) return rc;
    }
    if (!(f = fopen(path, "w")) || fputs(sha, f) < 0 || fclose(f))
        return bs_err_set(err, BS_EIO, "%s: cannot write", path);
    return 0;
}

int bs_hub_fetch_repo(const bs_hub_fetch *f, const char *dir, char commit[41], bs_err *err)
{
    dl d = {.f = f};
    d.start_ns = d.last_cb_ns = bs_time_mono_ns();
    bs_buf_init(&d.x.mem);
    d.prog.stage = "listing";
    d.prog.total = -1;
    d.prog.eta_s = -1;
    emit(&d, 1);
    struct curl_slist *hdrs = NULL;
    CURL *h = new_handle(&d, &hdrs);
    if (!h) return bs_err_set(err, BS_ENOMEM, "cannot create a download handle");
    want *w = NULL;
    size_t n = 0;
    char sha[41] = "";
    int rc = list_repo(&d, h, &w, &n, sha, err);
    if (!rc && !has_file(w, n, "config.json"))
        rc = bs_err_set(err, BS_ENOTFOUND, "model %s (revision %s) has no config.json", f->repo,
                        f->revision);
    if (!rc && !has_weights(w, n))
        rc = bs_err_set(err, BS_ENOTFOUND,
                        "model %s (revision %s) has no .safetensors weights (only other "
                        "formats, e.g. pytorch_model.bin: convert them with transformers' "
                        "save_pretrained(safe_serialization=True))",
                        f->repo, f->revision);
    if (!rc) rc = same_snapshot(dir, sha, err);
    if (!rc) {
        /* Pin the commit the listing saw, so every file comes from one snapshot. */
        char base[4096];
        char *rev = curl_easy_escape(h, sha[0] ? sha : f->revision, 0);
        snprintf(base, sizeof base, "%s/%s/resolve/%s", f->endpoint, f->repo, rev ? rev : "main");
        curl_free(rev);
        d.prog.total = 0;
        for (size_t i = 0; i < n; i++) {
            if (w[i].size < 0) {
                d.prog.total = -1;
                break;
            }
            d.prog.total += w[i].size;
        }
        d.prog.files_total = (int)n;
        d.prog.stage = "downloading";
        emit(&d, 1);
        for (size_t i = 0; !rc && i < n; i++) {
            rc = fetch_one(&d, h, base, &w[i], dir, err);
            d.prog.files_done = (int)i + (rc ? 0 : 1);
            d.prog.done = d.done_before;
            if (!rc) emit(&d, 1);
        }
    }
    if (!rc && commit) memcpy(commit, sha, 41);
    for (size_t i = 0; i < n; i++) free(w[i].name);
    free(w);
    bs_buf_free(&d.x.mem);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    return rc;
}
