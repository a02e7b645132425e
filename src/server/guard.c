/* Authentication, authorization and limits, in the order that keeps the
 * cheap refusals first: the per-IP limit before any store access, then
 * credentials, the route's permission, the key's limits, CSRF, and last
 * the body's field table. Secrets are never logged or echoed: details name
 * what was wrong with a credential, never its value. */
#include "server/guard.h"
#include "server/context.h"
#include "server/router.h"
#include "util/log.h"
#include "util/time.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    unsigned bit;
    const char *name;
} perm_names[] = {
    {BS_PERM_TASKS_EXECUTE, "tasks:execute"},     {BS_PERM_TASKS_SAVE, "tasks:save"},
    {BS_PERM_MODELS_DOWNLOAD, "models:download"}, {BS_PERM_ADMIN_READ, "admin:read"},
    {BS_PERM_ADMIN_WRITE, "admin:write"},
};
#define NPERMS (sizeof perm_names / sizeof *perm_names)

unsigned bs_perms_from_json(const json_t *arr)
{
    unsigned bits = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        for (size_t k = 0; s && k < NPERMS; k++)
            if (!strcmp(s, perm_names[k].name)) bits |= perm_names[k].bit;
    }
    return bits;
}

json_t *bs_perms_to_json(unsigned bits)
{
    json_t *a = json_array();
    for (size_t k = 0; k < NPERMS; k++)
        if (bits & perm_names[k].bit) json_array_append_new(a, json_string(perm_names[k].name));
    return a;
}

const char *bs_perm_missing(unsigned need, unsigned have)
{
    for (size_t k = 0; k < NPERMS; k++)
        if ((need & perm_names[k].bit) && !(have & perm_names[k].bit)) return perm_names[k].name;
    return NULL;
}

int bs_request_cookie(const bs_request *req, const char *name, char *out, size_t len)
{
    const char *c = bs_request_header(req, "Cookie");
    size_t nlen = strlen(name);
    while (c && *c) {
        while (*c == ' ' || *c == ';') c++;
        const char *end = strchr(c, ';');
        size_t seg = end ? (size_t)(end - c) : strlen(c);
        if (seg > nlen && !strncmp(c, name, nlen) && c[nlen] == '=') {
            size_t vlen = seg - nlen - 1;
            while (vlen && c[nlen + 1 + vlen - 1] == ' ') vlen--;
            if (vlen >= len) return -1;
            memcpy(out, c + nlen + 1, vlen);
            out[vlen] = 0;
            return 0;
        }
        c = end;
    }
    return -1;
}

/* Replaces a header already set (rate-limit headers are set by several
 * checks; the tightest limit wins). */
static void set_header(bs_response *res, const char *name, const char *fmt, long long v)
{
    for (size_t i = 0; i < res->n_headers; i++)
        if (!strcasecmp(res->headers[i].name, name)) {
            snprintf(res->headers[i].value, sizeof res->headers[i].value, fmt, v);
            return;
        }
    bs_response_header(res, name, fmt, v);
}

static long long header_ll(const bs_response *res, const char *name, long long dflt)
{
    for (size_t i = 0; i < res->n_headers; i++)
        if (!strcasecmp(res->headers[i].name, name)) return atoll(res->headers[i].value);
    return dflt;
}

static void rl_headers(bs_response *res, const bs_rl_result *r)
{
    if (r->remaining > header_ll(res, "X-RateLimit-Remaining", (long long)1 << 62)) return;
    set_header(res, "X-RateLimit-Limit", "%lld", (long long)r->limit);
    set_header(res, "X-RateLimit-Remaining", "%lld", (long long)r->remaining);
    set_header(res, "X-RateLimit-Reset", "%lld", (long long)r->reset_s);
}

/* The 429 of a refused limiter check, with Retry-After. */
static void refuse(bs_request *req, bs_response *res, const bs_rl_result *r, int64_t max,
                   int64_t window_ms, bs_rl_scope scope, const char *what)
{
    bs_metrics_rate_limited(req->server->metrics, scope);
    set_header(res, "X-RateLimit-Limit", "%lld", (long long)r->limit);
    set_header(res, "X-RateLimit-Remaining", "%lld", 0);
    set_header(res, "X-RateLimit-Reset", "%lld", (long long)r->reset_s);
    set_header(res, "Retry-After", "%lld", (long long)r->retry_after_s);
    bs_reply_error(res, 429, "Rate limit exceeded", "%s: %lld requests per %s; retry after %lld s",
                   what, (long long)max, window_ms == 60000 ? "minute" : "hour",
                   (long long)r->retry_after_s);
}

/* One limiter check; on refusal answers 429 with Retry-After. */
static int limit(bs_request *req, bs_response *res, const char *counter, int64_t max,
                 int64_t window_ms, bs_rl_scope scope, const char *what)
{
    bs_rl_result r;
    if (bs_ratelimit_hit(req->server->limiter, counter, max, window_ms, bs_time_now_ms(), &r)) {
        rl_headers(res, &r);
        return 0;
    }
    refuse(req, res, &r, max, window_ms, scope, what);
    return -1;
}

static int admin_caller(bs_request *req);

int bs_guard_ip(bs_request *req, bs_response *res)
{
    char counter[96];
    snprintf(counter, sizeof counter, "ip:%s", req->client_ip);
    int64_t max = bs_settings_int(req->server->settings, "per_ip_requests_per_minute");
    bs_rl_result r;
    if (bs_ratelimit_hit(req->server->limiter, counter, max, 60000, bs_time_now_ms(), &r)) {
        rl_headers(res, &r);
        return 0;
    }
    /* Whoever holds an admin:write key can always reach the server, so
     * that lowering the limit (or sharing an IP with a flood) never locks
     * the administrator out. Checked only once the IP is over its limit. */
    if (admin_caller(req)) return 0;
    refuse(req, res, &r, max, 60000, BS_RL_IP, "per-IP limit (setting per_ip_requests_per_minute)");
    return -1;
}

int bs_server_limit_custom_task(bs_request *req, bs_response *res)
{
    if (!req->auth.authenticated || req->auth.rl_custom_tasks_per_hour <= 0) return 0;
    char counter[96];
    snprintf(counter, sizeof counter, "ct:%s", req->auth.api_key_id);
    return limit(req, res, counter, req->auth.rl_custom_tasks_per_hour, 3600000, BS_RL_CUSTOM_TASKS,
                 "custom task limit of this API key (custom_tasks_per_hour)");
}

static void unauthorized(bs_response *res, const char *error, const char *detail)
{
    bs_response_header(res, "WWW-Authenticate", "Bearer realm=\"bertstudio\"");
    bs_reply_error(res, 401, error, "%s", detail);
}

/* Plausible secret shape: prefix + base62, bounded. Anything else is
 * refused before it reaches the store. */
static int secret_shape_ok(const char *s, const char *prefix)
{
    size_t plen = strlen(prefix), n = strlen(s);
    if (n <= plen || n > 128 || strncmp(s, prefix, plen)) return 0;
    for (size_t i = plen; i < n; i++)
        if (!isalnum((unsigned char)s[i])) return 0;
    return 1;
}

static const char *str_or_empty(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

static void fill_auth_from_key(bs_request *req, const json_t *key)
{
    bs_auth *a = &req->auth;
    a->authenticated = 1;
    snprintf(a->api_key_id, sizeof a->api_key_id, "%s", str_or_empty(json_object_get(key, "_id")));
    snprintf(a->key_name, sizeof a->key_name, "%s", str_or_empty(json_object_get(key, "name")));
    a->perms = bs_perms_from_json(json_object_get(key, "permissions"));
    const json_t *rl = json_object_get(key, "rate_limits");
    a->rl_per_minute = json_integer_value(json_object_get(rl, "requests_per_minute"));
    a->rl_per_hour = json_integer_value(json_object_get(rl, "requests_per_hour"));
    a->rl_custom_tasks_per_hour = json_integer_value(json_object_get(rl, "custom_tasks_per_hour"));
}

int bs_auth_with_key(bs_request *req, bs_response *res, const char *secret, json_t **key_doc)
{
    if (!secret_shape_ok(secret, "ak_")) {
        unauthorized(res, "Invalid API key", "the API key is malformed (expected ak_ + base62)");
        return -1;
    }
    struct bs_server *srv = req->server;
    int64_t now = bs_time_now_ms();
    uint64_t gen = bs_authcache_generation(srv->authcache);
    json_t *key = bs_authcache_get(srv->authcache, secret, now);
    bs_err err = {0};
    int rc = 0;
    if (!key) {
        rc = bs_store_keys_find_by_secret(srv->store, secret, &key, &err);
        if (!rc) bs_authcache_put(srv->authcache, secret, key, gen, now);
    }
    if (rc == BS_ENOTFOUND) {
        unauthorized(res, "Invalid API key", "no API key matches the one given");
        return -1;
    }
    if (rc) {
        bs_reply_err(req, res, &err);
        return -1;
    }
    if (!json_is_true(json_object_get(key, "is_active"))) {
        json_decref(key);
        unauthorized(res, "API key revoked", "this API key has been revoked or deactivated");
        return -1;
    }
    fill_auth_from_key(req, key);
    if (key_doc)
        *key_doc = key;
    else
        json_decref(key);
    return 0;
}

static int64_t doc_ms(const json_t *doc, const char *field)
{
    int64_t ms = 0;
    const char *s = json_string_value(json_object_get(doc, field));
    if (!s || bs_time_parse_iso8601(s, &ms)) return 0;
    return ms;
}

static int auth_with_session(bs_request *req, bs_response *res, const char *secret)
{
    struct bs_server *srv = req->server;
    if (!secret_shape_ok(secret, "sess_")) {
        unauthorized(res, "Invalid session", "the bs_session cookie is malformed");
        return -1;
    }
    json_t *sess = NULL, *key = NULL;
    bs_err err = {0};
    int rc = bs_store_sessions_get_by_secret(srv->store, secret, &sess, &err);
    if (rc == BS_ENOTFOUND) {
        unauthorized(res, "Invalid session", "no session matches the bs_session cookie");
        return -1;
    }
    if (rc) {
        bs_reply_err(req, res, &err);
        return -1;
    }
    int64_t now = bs_time_now_ms();
    if (!json_is_true(json_object_get(sess, "is_active"))) {
        unauthorized(res, "Session ended", "this session was logged out; log in again");
        goto fail;
    }
    if (doc_ms(sess, "expires_at") <= now) {
        unauthorized(res, "Session expired",
                     "this session expired (setting session_ttl_hours); log in again");
        goto fail;
    }
    const char *key_id = json_string_value(json_object_get(sess, "api_key_id"));
    rc = key_id ? bs_store_keys_get(srv->store, key_id, &key, &err) : BS_ENOTFOUND;
    if (rc == BS_ENOTFOUND || (!rc && !json_is_true(json_object_get(key, "is_active")))) {
        unauthorized(res, "API key revoked", "the API key of this session has been revoked");
        goto fail;
    }
    if (rc) {
        bs_reply_err(req, res, &err);
        goto fail;
    }
    fill_auth_from_key(req, key);
    snprintf(req->auth.session_id, sizeof req->auth.session_id, "%s",
             str_or_empty(json_object_get(sess, "session_id")));
    snprintf(req->auth.session_doc_id, sizeof req->auth.session_doc_id, "%s",
             str_or_empty(json_object_get(sess, "_id")));
    /* Sliding expiry without a write per request: touch once a tenth of
     * the lifetime (at most every minute) has passed since the last one. */
    int64_t ttl_ms = (int64_t)(bs_settings_float(srv->settings, "session_ttl_hours") * 3600000.0);
    int64_t step = ttl_ms / 10 < 60000 ? ttl_ms / 10 : 60000;
    req->auth.session_expires_ms = doc_ms(sess, "expires_at");
    if (now - doc_ms(sess, "last_activity") >= step) {
        if (bs_store_sessions_touch(srv->store, req->auth.session_doc_id, ttl_ms, &err))
            bs_log_warn("auth", "session touch failed: %s", err.msg);
        else
            req->auth.session_expires_ms = now + ttl_ms;
    }
    json_decref(key);
    json_decref(sess);
    return 0;
fail:
    json_decref(key);
    json_decref(sess);
    return -1;
}

static int is_unsafe(const char *method)
{
    return strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "OPTIONS");
}

/* Origin allowed for CORS (cors_allowed_origins)? */
static int origin_allowed(struct bs_server *srv, const char *origin)
{
    json_t *list = bs_settings_value(srv->settings, "cors_allowed_origins");
    int ok = 0;
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        if (json_is_string(o) && !strcmp(json_string_value(o), origin)) ok = 1;
    }
    json_decref(list);
    return ok;
}

/* The studio's own origin: the setting public_origin, else the listening
 * address (with "localhost" for a loopback one). Never the Host header,
 * which the client writes (a DNS-rebinding page sends its own name there
 * and in Origin alike). A wildcard address without public_origin has no
 * own origin: then only cors_allowed_origins or X-Requested-With pass. */
static int same_origin(const bs_request *req, const char *origin)
{
    struct bs_server *srv = req->server;
    json_t *pub = bs_settings_value(srv->settings, "public_origin");
    const char *p = json_string_value(pub);
    int ok = 0;
    if (p && *p) {
        ok = !strcmp(origin, p);
        json_decref(pub);
        return ok;
    }
    json_decref(pub);
    const char *scheme = srv->tls ? "https" : "http";
    const char *host = srv->host;
    if (!*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::")) return 0;
    int v6 = strchr(host, ':') != NULL;
    char own[320];
    snprintf(own, sizeof own, "%s://%s%s%s:%u", scheme, v6 ? "[" : "", host, v6 ? "]" : "",
             (unsigned)srv->port);
    if (!strcmp(origin, own)) return 1;
    if (!strcmp(host, "127.0.0.1") || !strcmp(host, "::1") || !strcmp(host, "localhost")) {
        snprintf(own, sizeof own, "%s://localhost:%u", scheme, (unsigned)srv->port);
        return !strcmp(origin, own);
    }
    return 0;
}

/* Cookies ride along on cross-site requests that the browser makes by
 * itself (forms, images); such requests can neither set custom headers nor
 * forge Origin. So a cookie-authenticated write must prove it comes from
 * our pages: a same-origin (or allow-listed) Origin, or X-Requested-With,
 * which only scripts permitted by CORS can send. */
static int csrf_ok(bs_request *req)
{
    const char *origin = bs_request_header(req, "Origin");
    if (origin) return same_origin(req, origin) || origin_allowed(req->server, origin);
    return bs_request_header(req, "X-Requested-With") != NULL;
}

/* The credential a request presents: 1 with *secret (a key) or cookie (a
 * session, *by_session set), 0 when none, -1 for an Authorization header
 * of another scheme than Bearer. */
static int find_credential(const bs_request *req, const char **secret, char *cookie, size_t len,
                           int *by_session)
{
    const char *authz = bs_request_header(req, "Authorization");
    *by_session = 0;
    if (authz) {
        if (strncasecmp(authz, "Bearer ", 7)) return -1;
        *secret = authz + 7;
        while (**secret == ' ') (*secret)++;
        return 1;
    }
    if ((*secret = bs_request_header(req, "X-API-Key"))) return 1;
    if ((*secret = bs_request_query(req, "api_key"))) return 1;
    if (!bs_request_cookie(req, "bs_session", cookie, len)) {
        *by_session = 1;
        return 1;
    }
    return 0;
}

/* Whether the request carries a valid credential with admin:write. Its
 * refusals (401) are not answered here: the caller answers 429. */
static int admin_caller(bs_request *req)
{
    const char *secret = NULL;
    char cookie[160];
    int by_session = 0;
    if (find_credential(req, &secret, cookie, sizeof cookie, &by_session) != 1) return 0;
    bs_response *scratch = calloc(1, sizeof *scratch);
    if (!scratch) return 0;
    bs_buf_init(&scratch->body);
    int ok = !(by_session ? auth_with_session(req, scratch, cookie)
                          : bs_auth_with_key(req, scratch, secret, NULL)) &&
             (req->auth.perms & BS_PERM_ADMIN_WRITE);
    bs_buf_free(&scratch->body);
    free(scratch);
    /* The route's own check fills req->auth again (public routes: never). */
    memset(&req->auth, 0, sizeof req->auth);
    return ok;
}

int bs_guard_admin(bs_request *req)
{
    return admin_caller(req);
}

int bs_guard_early(bs_request *req, bs_response *res)
{
    int status = 404;
    char allow[128];
    const bs_route *route =
        bs_router_match(bs_routes, bs_routes_count, req, &status, allow, sizeof allow);
    if (!route || (route->perm & BS_ROUTE_PUBLIC)) return 0;
    const char *secret = NULL;
    char cookie[160];
    int by_session = 0;
    int found = find_credential(req, &secret, cookie, sizeof cookie, &by_session);
    int rc = 0;
    if (found < 0) {
        unauthorized(res, "Unsupported authorization scheme",
                     "use 'Authorization: Bearer <api key>'");
        rc = -1;
    } else if (!found) {
        unauthorized(res, "Authentication required",
                     "send 'Authorization: Bearer <api key>' or 'X-API-Key', or log in with "
                     "POST /auth/login for a session cookie");
        rc = -1;
    } else {
        rc = by_session ? auth_with_session(req, res, cookie)
                        : bs_auth_with_key(req, res, secret, NULL);
    }
    /* bs_guard_route checks again, with the route's permission, once the
     * body is in (the key cache makes the second lookup cheap). */
    memset(&req->auth, 0, sizeof req->auth);
    return rc;
}

int bs_guard_route(bs_request *req, bs_response *res, const bs_route *route)
{
    struct bs_server *srv = req->server;
    if (!(route->perm & BS_ROUTE_PUBLIC)) {
        const char *secret = NULL;
        char cookie[160];
        int by_session = 0;
        int found = find_credential(req, &secret, cookie, sizeof cookie, &by_session);
        if (found < 0) {
            unauthorized(res, "Unsupported authorization scheme",
                         "use 'Authorization: Bearer <api key>'");
            return -1;
        }
        if (!found) {
            unauthorized(res, "Authentication required",
                         "send 'Authorization: Bearer <api key>' or 'X-API-Key', or log in with "
                         "POST /auth/login for a session cookie");
            return -1;
        }
        if (by_session ? auth_with_session(req, res, cookie)
                       : bs_auth_with_key(req, res, secret, NULL))
            return -1;
        unsigned need = route->perm & ~BS_ROUTE_PUBLIC;
        const char *missing = bs_perm_missing(need, req->auth.perms);
        if (missing) {
            bs_reply_error(res, 403, "Missing permission",
                           "%s %s needs the permission %s, which this API key does not have",
                           req->method, route->pattern, missing);
            return -1;
        }
        if (by_session && is_unsafe(req->method) && !csrf_ok(req)) {
            bs_reply_error(res, 403, "Cross-site request refused",
                           "a request authenticated by the session cookie that changes state "
                           "needs a same-origin Origin header or X-Requested-With");
            return -1;
        }
        char counter[96];
        snprintf(counter, sizeof counter, "k:%s", req->auth.api_key_id);
        if (req->auth.rl_per_minute > 0 &&
            limit(req, res, counter, req->auth.rl_per_minute, 60000, BS_RL_KEY_MINUTE,
                  "limit of this API key (requests_per_minute)"))
            return -1;
        if (req->auth.rl_per_hour > 0 &&
            limit(req, res, counter, req->auth.rl_per_hour, 3600000, BS_RL_KEY_HOUR,
                  "limit of this API key (requests_per_hour)"))
            return -1;
        bs_usage_record(srv->usage, req->auth.api_key_id, req->client_ip, bs_time_now_ms());
    }
    if (route->body) {
        json_t *body = bs_request_json(req, res);
        if (!body) return -1;
        char detail[512];
        if (bs_validate(body, route->body, detail, sizeof detail)) {
            bs_reply_error(res, 400, "Invalid request body", "%s", detail);
            return -1;
        }
    }
    return 0;
}

void bs_guard_after(bs_request *req, bs_response *res)
{
    (void)res;
    if (!req->auth.session_doc_id[0] || req->activity_logged || !is_unsafe(req->method)) return;
    char action[32];
    snprintf(action, sizeof action, "%s", req->method);
    for (char *p = action; *p; p++) *p = (char)tolower((unsigned char)*p);
    bs_logq_push_activity(req->server->logq, req->auth.session_doc_id, action,
                          req->route_pattern ? req->route_pattern : req->path, NULL);
}

static void cors_common(bs_response *res, const char *origin)
{
    bs_response_header(res, "Access-Control-Allow-Origin", "%s", origin);
    bs_response_header(res, "Access-Control-Allow-Credentials", "true");
    bs_response_header(res, "Vary", "Origin");
}

void bs_cors_headers(bs_request *req, bs_response *res)
{
    const char *origin = bs_request_header(req, "Origin");
    if (!origin || !origin_allowed(req->server, origin)) return;
    cors_common(res, origin);
    bs_response_header(res, "Access-Control-Expose-Headers",
                       "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset");
}

void bs_cors_preflight(bs_request *req, bs_response *res, const char *allow)
{
    const char *origin = bs_request_header(req, "Origin");
    res->status = 204;
    bs_response_header(res, "Allow", "%s, OPTIONS", allow);
    /* The common CORS headers were added by bs_cors_headers already. */
    if (!origin || !origin_allowed(req->server, origin)) return;
    bs_response_header(res, "Access-Control-Allow-Methods", "%s", allow);
    bs_response_header(res, "Access-Control-Allow-Headers",
                       "Authorization, X-API-Key, Content-Type, X-Requested-With");
    bs_response_header(res, "Access-Control-Max-Age", "600");
}
