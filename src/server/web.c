/* Serves the web studio at / beside the JSON API: embedded files (or a
 * development folder), strong ETags, precompressed gzip, a strict
 * Content-Security-Policy, and index.html for the single page's deep links. */
#include "server/web.h"
#include "server/router.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The studio loads only its own files and talks only to this server:
 * no inline script, no other origin (styles may be set inline, which the
 * chart and editor libraries do through the CSSOM). */
#define WEB_CSP                                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "                    \
    "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "         \
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/* Files larger than this are not served from --web-dir. */
#define WEB_DIR_MAX_FILE (64u << 20)

int bs_web_is_api_path(const char *path)
{
    if (path[0] != '/') return 1;
    size_t seg = strcspn(path + 1, "/");
    if (seg == 0) return 0;
    for (size_t i = 0; i < bs_routes_count; i++) {
        const char *p = bs_routes[i].pattern + 1;
        if (strcspn(p, "/") == seg && !strncmp(p, path + 1, seg)) return 1;
    }
    return 0;
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
        if (!strcasecmp(dot, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

/* Whether the last segment of path names a file ("app.js"), not a page. */
static int has_extension(const char *path)
{
    const char *last = strrchr(path, '/');
    return strchr(last ? last : path, '.') != NULL;
}

/* Whether path is one of the single page's own pages (the paths of
 * web/src/main.jsx): those deep links get index.html. Any other unknown
 * path stays a 404, so that typos and probes ("/etc/passwd") are told so. */
static int is_page(const char *path)
{
    static const char *const pages[] = {"login",  "dashboard", "playground", "hub",
                                        "custom", "keys",      "system"};
    if (!strcmp(path, "/")) return 1;
    size_t seg = strcspn(path + 1, "/");
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++)
        if (strlen(pages[i]) == seg && !strncmp(path + 1, pages[i], seg)) return 1;
    return 0;
}

int bs_web_is_studio_path(const char *path)
{
    if (!strncmp(path, "/assets/", 8)) return 1;
    if (!has_extension(path)) return is_page(path);
    for (size_t i = 0; i < bs_web_assets_count; i++)
        if (!strcmp(bs_web_assets[i].path, path)) return 1;
    return 0;
}

/* Whether a comma-separated header lists token (weak or strong, or "*"). */
static int etag_matches(const char *header, const char *etag)
{
    if (!header) return 0;
    size_t n = strlen(etag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!strncmp(p, "W/", 2)) p += 2;
        size_t len = strcspn(p, ",");
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if ((len == 1 && *p == '*') || (len == n && !strncmp(p, etag, n))) return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

/* Whether Accept-Encoding allows gzip (listed, and not with q=0). */
static int accepts_gzip(const bs_request *req)
{
    const char *ae = bs_request_header(req, "Accept-Encoding");
    for (const char *p = ae; p && (p = strcasestr(p, "gzip")); p += 4) {
        const char *end = p + 4 + strcspn(p + 4, ",");
        const char *q = strstr(p, "q=");
        if (q && q < end && strtod(q + 2, NULL) <= 0) return 0;
        return 1;
    }
    return 0;
}

static void common_headers(bs_response *res, const char *path, const char *etag)
{
    bs_response_header(res, "Content-Security-Policy", "%s", WEB_CSP);
    bs_response_header(res, "X-Content-Type-Options", "nosniff");
    bs_response_header(res, "Referrer-Policy", "no-referrer");
    bs_response_header(res, "ETag", "%s", etag);
    /* Vite names its bundles by content hash: those never change. */
    if (!strncmp(path, "/assets/", 8))
        bs_response_header(res, "Cache-Control", "public, max-age=31536000, immutable");
    else
        bs_response_header(res, "Cache-Control", "no-cache");
}

static void not_found(bs_response *res, const char *path)
{
    bs_reply_error(res, 404, "Not found", "no file %s in the web studio", path);
}

static void serve_embedded(bs_request *req, bs_response *res)
{
    const char *path = !strcmp(req->path, "/") ? "/index.html" : req->path;
    const bs_web_asset *a = NULL, *index = NULL;
    for (size_t i = 0; i < bs_web_assets_count; i++) {
        if (!strcmp(bs_web_assets[i].path, path)) a = &bs_web_assets[i];
        if (!strcmp(bs_web_assets[i].path, "/index.html")) index = &bs_web_assets[i];
    }
    if (!a && !has_extension(path) && is_page(path)) a = index, path = "/index.html";
    if (!a) {
        not_found(res, req->path);
        return;
    }
    res->content_type = a->content_type;
    common_headers(res, path, a->etag);
    if (a->gz) bs_response_header(res, "Vary", "Accept-Encoding");
    if (etag_matches(bs_request_header(req, "If-None-Match"), a->etag)) {
        res->status = 304;
        return;
    }
    const unsigned char *data = a->data;
    size_t len = a->len;
    if (a->gz && accepts_gzip(req)) {
        data = a->gz, len = a->gz_len;
        bs_response_header(res, "Content-Encoding", "gzip");
    }
    res->status = bs_buf_append(&res->body, data, len) ? 503 : 200;
}

/* FNV-1a 64 of the bytes: a strong validator for files read from disk. */
static void disk_etag(const char *data, size_t len, char *out, size_t out_len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)data[i]) * 1099511628211ull;
    snprintf(out, out_len, "\"%016llx-%zx\"", (unsigned long long)h, len);
}

/* Reads dir + path into res->body when it is a regular file inside dir. */
static int read_under(const char *dir, const char *path, bs_response *res)
{
    /* No ".." segment, no backslash: the path stays inside dir. */
    if (strstr(path, "/..") || strchr(path, '\\') || strlen(path) > 1024) return -1;
    char full[PATH_MAX];
    if (snprintf(full, sizeof full, "%s%s", dir, path) >= (int)sizeof full) return -1;
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    int rc = -1;
    if (!fstat(fd, &st) && S_ISREG(st.st_mode) && (size_t)st.st_size <= WEB_DIR_MAX_FILE &&
        !bs_buf_reserve(&res->body, (size_t)st.st_size)) {
        size_t got = 0;
        ssize_t n = 1;
        while (got < (size_t)st.st_size &&
               (n = read(fd, res->body.data + got, (size_t)st.st_size - got)) > 0)
            got += (size_t)n;
        res->body.len = got;
        rc = n > 0 || got == (size_t)st.st_size ? 0 : -1;
    }
    close(fd);
    return rc;
}

static void serve_dir(bs_request *req, bs_response *res, const char *dir)
{
    const char *path = !strcmp(req->path, "/") ? "/index.html" : req->path;
    if (read_under(dir, path, res)) {
        res->body.len = 0;
        if (has_extension(path) || !is_page(path) || read_under(dir, "/index.html", res)) {
            not_found(res, req->path);
            return;
        }
        path = "/index.html";
    }
    char etag[48];
    disk_etag(res->body.data, res->body.len, etag, sizeof etag);
    res->content_type = content_type(path);
    common_headers(res, path, etag);
    res->status = 200;
    if (etag_matches(bs_request_header(req, "If-None-Match"), etag)) {
        res->status = 304;
        res->body.len = 0;
    }
}

void bs_web_serve(bs_request *req, bs_response *res, const char *dir)
{
    if (dir)
        serve_dir(req, res, dir);
    else
        serve_embedded(req, res);
}
