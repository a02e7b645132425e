/* The request and response records every handler sees. The HTTP library
 * (libmicrohttpd) stays behind server/http.c; handlers only use this API. */
#ifndef BS_SERVER_HTTP_H
#define BS_SERVER_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bertstudio/common.h"
#include "util/buf.h"

#define BS_HTTP_MAX_PARAMS  4
#define BS_HTTP_MAX_HEADERS 16

struct bs_server;

/* Permission bits (api_keys.permissions). */
enum {
    BS_PERM_TASKS_EXECUTE = 1u << 0,   /* "tasks:execute" */
    BS_PERM_TASKS_SAVE = 1u << 1,      /* "tasks:save" */
    BS_PERM_MODELS_DOWNLOAD = 1u << 2, /* "models:download" */
    BS_PERM_ADMIN_READ = 1u << 3,      /* "admin:read" */
    BS_PERM_ADMIN_WRITE = 1u << 4,     /* "admin:write" */
};

/* Who is calling, filled by the server before the handler runs (all empty
 * on public routes). api_key_id owns what the caller creates; session_id is
 * the session's public reference (its hash, as stored in
 * execution_logs.session_id and custom_tasks.created_by), empty when the
 * caller authenticated with a key rather than the bs_session cookie. */
typedef struct bs_auth {
    int authenticated;
    char api_key_id[25];
    char key_name[128];
    unsigned perms;             /* BS_PERM_* bits */
    char session_id[129];       /* hash; "" without a session */
    char session_doc_id[25];    /* user_sessions._id; "" without a session */
    int64_t session_expires_ms; /* the session's expires_at (ms since the epoch) */
    /* The key's rate_limits (0 = none). */
    int64_t rl_per_minute, rl_per_hour, rl_custom_tasks_per_hour;
} bs_auth;

typedef struct bs_request {
    struct bs_server *server;
    const char *method;
    const char *path; /* without the query string */
    void *conn;       /* the library's connection, for headers and arguments */
    const char *body;
    size_t body_len;
    json_t *json; /* the body parsed once by bs_request_json(); owned by the request */
    char client_ip[64];
    bs_auth auth;
    const char *route_pattern; /* the matched route's pattern ("/api-keys/{id}") */
    size_t route_index;        /* index in bs_routes (bs_routes_count: none) */
    int activity_logged;       /* the handler wrote the session's activity entry */
    int64_t started_ns;
    /* Path parameters captured by the router ("/custom-tasks/{id}"). */
    size_t n_params;
    struct {
        char name[32];
        char value[256];
    } params[BS_HTTP_MAX_PARAMS];
} bs_request;

/* Produces the next bytes of a streamed body into buf (at most max):
 * returns how many (> 0), 0 at the end of the body, or -1 to abort the
 * connection. Runs on a worker thread, never the network loop's, after the
 * handler has returned, and may block while waiting for something to send:
 * what one call returns is sent before the next call. */
typedef long (*bs_body_fn)(void *ud, char *buf, size_t max);

typedef struct bs_response {
    int status;
    const char *content_type; /* static string; default application/json */
    bs_buf body;
    size_t n_headers;
    struct {
        char name[64];
        char value[512];
    } headers[BS_HTTP_MAX_HEADERS];
    /* A streamed body (bs_response_stream) instead of `body`. */
    bs_body_fn stream;
    void *stream_ud;
    void (*stream_free)(void *ud);
    size_t streamed; /* bytes sent so far, for the access log */
    /* Error answers take OpenAI's shape (a /v1/... path): chosen when the
     * exchange begins, before any byte is written, so that no answer is
     * parsed again to be re-shaped. */
    int openai_errors;
    /* Error answers take FastAPI's {"detail": message} (the original
     * product's task routes): set by the handler before it answers. */
    int detail_errors;
    /* The detail of the envelope error in body (envelope_error set by
     * bs_reply_error, cleared by any other answer), so that it can be
     * re-shaped without reading the body again. */
    int envelope_error;
    char error_detail[1024];
} bs_response;

/* A request header (case-insensitive name), or NULL. */
const char *bs_request_header(const bs_request *req, const char *name);
/* A query-string argument, or NULL. */
const char *bs_request_query(const bs_request *req, const char *name);
/* A path parameter captured by the router, or NULL. */
const char *bs_request_param(const bs_request *req, const char *name);

/* The body as JSON, parsed once. On failure fills res with the 400 error
 * (empty body, invalid UTF-8, nesting deeper than BS_JSON_MAX_DEPTH,
 * malformed JSON with line/column, duplicate keys, NUL characters, numbers
 * out of range) and returns NULL. */
json_t *bs_request_json(bs_request *req, bs_response *res);

/* A path parameter that must be a 24-hex id (store ObjectId). On a
 * malformed value fills res with 400 naming it and returns NULL. */
const char *bs_request_id_param(bs_request *req, bs_response *res, const char *name);

/* Query argument `name` as an integer in [min, max]; *out = dflt when
 * absent. On a malformed or out-of-range value fills res with 400 and
 * returns -1. */
int bs_request_query_int(bs_request *req, bs_response *res, const char *name, int64_t dflt,
                         int64_t min, int64_t max, int64_t *out);
/* Query argument `name` as an ISO-8601 date (or date-time) in ms since the
 * epoch; *out = 0 when absent. 400 and -1 when it is not a date. */
int bs_request_query_time(bs_request *req, bs_response *res, const char *name, int64_t *out);
/* Query argument `name` as a bounded string of [A-Za-z0-9_./:-] (names of
 * tasks and models); NULL when absent. 400 and -1 for anything else. */
int bs_request_query_name(bs_request *req, bs_response *res, const char *name, const char **out);

/* Makes res a streamed answer (HTTP/1.1 chunked): after the handler
 * returns, fn(ud, ...) is called for each piece of the body until it
 * returns 0 (or -1). free_fn(ud) (may be NULL) runs once when the exchange
 * ends, also when the client left early or the answer could not start.
 * The status, content type and headers are those of res; `body` is unused.
 * Graceful shutdown waits for the stream to end, so a producer that waits
 * for something must also stop waiting when the server stops. */
void bs_response_stream(bs_response *res, bs_body_fn fn, void *ud, void (*free_fn)(void *ud));

/* Adds a response header (at most BS_HTTP_MAX_HEADERS). */
void bs_response_header(bs_response *res, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The envelope of api.md: {"success": true, "data": data[, "message": msg]}.
 * Takes ownership of data (may be NULL for null). */
void bs_reply_ok(bs_response *res, int status, json_t *data, const char *message);
/* {"success": false, "error": error, "detail": detail, "status_code": status}. */
void bs_reply_error(bs_response *res, int status, const char *error, const char *detail_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps a store / service error to the envelope: BS_EINVAL 400,
 * BS_ENOTFOUND 404, BS_ECONFLICT 409, BS_EPERM 403, BS_EAUTH 401, BS_ELIMIT
 * 429, BS_EUNPROCESSABLE 422, BS_EBUSY and BS_ESTORE 503 with Retry-After
 * (counted in /metrics as store errors), anything else 500. */
void bs_reply_err(bs_request *req, bs_response *res, const bs_err *err);
/* Error answers on a /v1/... path (res->openai_errors, set when the exchange
 * begins) are written by bs_reply_error directly in OpenAI's
 * {"error": {"message", "type", "param", "code"}}, keeping the status and
 * headers (Allow, Retry-After, rate-limit headers): routing 404/405, 413,
 * malformed bodies, refusals by authentication, permissions and rate
 * limits, shutdown 503. This function re-shapes an answer already written
 * in the envelope (status >= 400) the same way; any other answer is left as
 * it is. Type
 * "invalid_request_error" below 500, "server_error" from 500; 401 code
 * "invalid_api_key", 403 "insufficient_permissions", 404 "unknown_url",
 * 429 type "requests" code "rate_limit_exceeded", other codes null. */
void bs_reply_openai_shape(bs_response *res);
/* An envelope error answer (status >= 400, written by bs_reply_error)
 * rewritten as FastAPI's {"detail": detail}, status and headers kept; any
 * other answer is left as it is. */
void bs_reply_detail_only(bs_response *res);
/* The success envelope around a `data` written apart (by rows, or
 * streamed): open appends {"success":true,"data": and close its final },
 * so that only this file spells the envelope; bs_reply_envelope_bytes is
 * what the two add to the answer's size. */
void bs_reply_envelope_open(bs_buf *out);
void bs_reply_envelope_close(bs_buf *out);
size_t bs_reply_envelope_bytes(void);
/* Any JSON body as is (e.g. OpenAI-shaped responses); takes ownership. */
void bs_reply_json(bs_response *res, int status, json_t *body);

#endif
