/* The request and response records every handler sees. The HTTP library
 * (libmicrohttpd) stays behind server/http.c; handlers only use this API. */
#ifndef BS_SERVER_HTTP_H
#define BS_SERVER_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define BS_HTTP_MAX_PARAMS 4

struct bs_server;

typedef struct bs_request {
    struct bs_server *server;
    const char *method;
    const char *path; /* without the query string */
    void *conn;       /* the library's connection, for headers and arguments */
    const char *body;
    size_t body_len;
    json_t *json; /* the body parsed once by bs_request_json(); owned by the request */
    char client_ip[64];
    int64_t started_ns;
    /* Path parameters captured by the router ("/custom-tasks/{id}"). */
    size_t n_params;
    struct {
        char name[32];
        char value[256];
    } params[BS_HTTP_MAX_PARAMS];
} bs_request;

typedef struct bs_response {
    int status;
    const char *content_type; /* static string; default application/json */
    bs_buf body;
    size_t n_headers;
    struct {
        char name[64];
        char value[256];
    } headers[8];
} bs_response;

/* A request header (case-insensitive name), or NULL. */
const char *bs_request_header(const bs_request *req, const char *name);
/* A query-string argument, or NULL. */
const char *bs_request_query(const bs_request *req, const char *name);
/* A path parameter captured by the router, or NULL. */
const char *bs_request_param(const bs_request *req, const char *name);

/* The body as JSON, parsed once. On failure fills res with the 400 error
 * (empty body, malformed JSON with line/column, invalid UTF-8) and returns NULL. */
json_t *bs_request_json(bs_request *req, bs_response *res);

/* Adds a response header (at most 8). */
void bs_response_header(bs_response *res, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The envelope of api.md: {"success": true, "data": data[, "message": msg]}.
 * Takes ownership of data (may be NULL for null). */
void bs_reply_ok(bs_response *res, int status, json_t *data, const char *message);
/* {"success": false, "error": error, "detail": detail, "status_code": status}. */
void bs_reply_error(bs_response *res, int status, const char *error, const char *detail_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Any JSON body as is (e.g. OpenAI-shaped responses); takes ownership. */
void bs_reply_json(bs_response *res, int status, json_t *body);

#endif
