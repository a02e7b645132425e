/* Router: a linear scan of a small static table is faster than anything
 * cleverer at this size, and keeps every route visible in one place. */
#include "server/router.h"

#include <string.h>

/* Matches pattern against path segment by segment; "{name}" captures one
 * non-empty segment into req (when req is not NULL). */
static int match(const char *pattern, const char *path, bs_request *req)
{
    size_t n_params = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            size_t seg = strcspn(s, "/");
            if (!close || seg == 0 || n_params >= BS_HTTP_MAX_PARAMS) return 0;
            if (req) {
                size_t name_len = (size_t)(close - p - 1);
                if (seg >= sizeof req->params[0].value || name_len >= sizeof req->params[0].name)
                    return 0;
                memcpy(req->params[n_params].name, p + 1, name_len);
                req->params[n_params].name[name_len] = 0;
                memcpy(req->params[n_params].value, s, seg);
                req->params[n_params].value[seg] = 0;
            }
            n_params++;
            p = close + 1;
            s += seg;
            continue;
        }
        if (*p != *s) return 0;
        p++, s++;
    }
    if (*p || *s) return 0;
    if (req) req->n_params = n_params;
    return 1;
}

/* Whether row r serves req (rows without a predicate serve every request). */
static int serves(const bs_route *r, bs_request *req)
{
    for (size_t i = 0; i < bs_route_whens_count; i++)
        if (bs_route_whens[i].handler == r->handler) return bs_route_whens[i].pred(req);
    return 1;
}

const bs_route *bs_router_match(const bs_route *routes, size_t n, bs_request *req, int *status,
                                char *allow, size_t allow_len)
{
    int path_known = 0, found_method = 0;
    size_t used = 0;
    if (allow_len) allow[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (!match(routes[i].pattern, req->path, NULL)) continue;
        /* HEAD is GET without the body (the HTTP library drops it). */
        if (!strcmp(routes[i].method, req->method) ||
            (!strcmp(req->method, "HEAD") && !strcmp(routes[i].method, "GET"))) {
            if (!serves(&routes[i], req)) continue;
            found_method = 1;
            if (match(routes[i].pattern, req->path, req)) return &routes[i];
            break; /* a path parameter too long to hold: no such resource */
        }
        path_known = 1;
        size_t m = strlen(routes[i].method);
        if (used + m + 3 < allow_len) {
            if (used) memcpy(allow + used, ", ", 2), used += 2;
            memcpy(allow + used, routes[i].method, m + 1);
            used += m;
        }
    }
    *status = path_known && !found_method ? 405 : 404;
    return NULL;
}
