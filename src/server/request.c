/* The request accessors handlers use: headers, query and path parameters,
 * and the JSON body parsed once, each refusing bad input with a 400 that
 * names the parameter. Apart from http.c, which only glues libmicrohttpd. */
#include "server/http.h"
#include "server/validate.h"
#include "util/time.h"
#include "util/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

const char *bs_request_header(const bs_request *req, const char *name)
{
    if (!req->conn) return NULL; /* a request made up by a test or an internal caller */
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *bs_request_query(const bs_request *req, const char *name)
{
    if (!req->conn) return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *bs_request_param(const bs_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_params; i++)
        if (!strcmp(req->params[i].name, name)) return req->params[i].value;
    return NULL;
}

json_t *bs_request_json(bs_request *req, bs_response *res)
{
    if (req->json) return req->json;
    if (req->body_len == 0) {
        bs_reply_error(res, 400, "Request body is empty", "expected a JSON object");
        return NULL;
    }
    size_t bad;
    if (bs_utf8_validate(req->body, req->body_len, &bad)) {
        bs_reply_error(res, 400, "Request body is not valid UTF-8",
                       "invalid UTF-8 sequence at byte %zu", bad);
        return NULL;
    }
    /* jansson recurses once per nesting level: refuse deep bodies first. */
    int depth = bs_json_depth(req->body, req->body_len, BS_JSON_MAX_DEPTH);
    if (depth > BS_JSON_MAX_DEPTH) {
        bs_reply_error(res, 400, "JSON nested too deeply",
                       "arrays and objects may nest at most %d levels", BS_JSON_MAX_DEPTH);
        return NULL;
    }
    json_error_t jerr;
    req->json =
        json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!req->json) {
        bs_reply_error(res, 400, "Malformed JSON", "%s at line %d, column %d", jerr.text, jerr.line,
                       jerr.column);
        return NULL;
    }
    return req->json;
}

const char *bs_request_id_param(bs_request *req, bs_response *res, const char *name)
{
    const char *v = bs_request_param(req, name);
    size_t n = v ? strlen(v) : 0;
    int ok = n == 24;
    for (size_t i = 0; ok && i < n; i++)
        ok = isxdigit((unsigned char)v[i]) && !isupper((unsigned char)v[i]);
    if (!ok) {
        bs_reply_error(res, 400, "Invalid id",
                       "path parameter '%s' must be a 24-character lowercase hex id", name);
        return NULL;
    }
    return v;
}

int bs_request_query_int(bs_request *req, bs_response *res, const char *name, int64_t dflt,
                         int64_t min, int64_t max, int64_t *out)
{
    const char *v = bs_request_query(req, name);
    if (!v) {
        *out = dflt;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < min || x > max) {
        bs_reply_error(res, 400, "Invalid query parameter",
                       "'%s' must be an integer from %lld to %lld", name, (long long)min,
                       (long long)max);
        return -1;
    }
    *out = x;
    return 0;
}

int bs_request_query_time(bs_request *req, bs_response *res, const char *name, int64_t *out)
{
    const char *v = bs_request_query(req, name);
    *out = 0;
    if (!v) return 0;
    if (strlen(v) > 40 || bs_time_parse_iso8601(v, out)) {
        bs_reply_error(res, 400, "Invalid query parameter",
                       "'%s' must be an ISO-8601 date such as 2024-01-15 or 2024-01-15T10:30:00Z",
                       name);
        return -1;
    }
    return 0;
}

int bs_request_query_name(bs_request *req, bs_response *res, const char *name, const char **out)
{
    const char *v = bs_request_query(req, name);
    *out = NULL;
    if (!v) return 0;
    size_t n = strlen(v);
    int ok = n > 0 && n <= 200;
    for (size_t i = 0; ok && i < n; i++) ok = isalnum((unsigned char)v[i]) || strchr("_./:-", v[i]);
    if (!ok || strstr(v, "..")) {
        bs_reply_error(res, 400, "Invalid query parameter",
                       "'%s' must be 1-200 characters of letters, digits and _ . / : -", name);
        return -1;
    }
    *out = v;
    return 0;
}
