/* Response envelopes of api.md. Every answer, success or error, goes through
 * here so that clients can rely on one shape. */
#include "server/context.h"
#include "util/json.h"
#include "server/http.h"
#include "batch/batch.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void set_body(bs_response *res, int status, json_t *body)
{
    res->envelope_error = 0;
    res->status = status;
    res->content_type = "application/json";
    res->body.len = 0;
    /* Reals in their shortest round-trip form (0.731, not 0.73099999999999998). */
    bs_json_write(body, NULL, &res->body);
    json_decref(body);
}

static const char envelope_open[] = "{\"success\":true,\"data\":";

void bs_reply_envelope_open(bs_buf *out)
{
    bs_buf_puts(out, envelope_open);
}

void bs_reply_envelope_close(bs_buf *out)
{
    bs_buf_putc(out, '}');
}

size_t bs_reply_envelope_bytes(void)
{
    return sizeof envelope_open - 1 + 1;
}

void bs_reply_json(bs_response *res, int status, json_t *body)
{
    set_body(res, status, body);
}

void bs_reply_ok(bs_response *res, int status, json_t *data, const char *message)
{
    res->envelope_error = 0;
    res->status = status;
    res->content_type = "application/json";
    res->body.len = 0;
    bs_reply_envelope_open(&res->body);
    if (data)
        bs_json_write(data, NULL, &res->body);
    else
        bs_buf_puts(&res->body, "null");
    if (message) {
        bs_buf_puts(&res->body, ",\"message\":");
        bs_json_put_string(&res->body, message, strlen(message));
    }
    bs_reply_envelope_close(&res->body);
    json_decref(data);
}

/* OpenAI's {"error": {"message", "type", "param", "code"}} for an error of
 * this status: its own types and codes for 401, 403, 404 and 429. */
static void openai_error(bs_response *res, int status, const char *error, const char *detail)
{
    char msg[1200];
    if (error && detail)
        snprintf(msg, sizeof msg, "%s: %s", error, detail);
    else
        snprintf(msg, sizeof msg, "%s", error ? error : detail ? detail : "request refused");
    const char *type = "invalid_request_error", *code = NULL;
    switch (status) {
    case 401:
        code = "invalid_api_key";
        break;
    case 403:
        code = "insufficient_permissions";
        break;
    case 404:
        code = "unknown_url"; /* the handlers' own 404s (a model) are in OpenAI's shape already */
        break;
    case 429:
        type = "requests";
        code = "rate_limit_exceeded";
        break;
    default:
        if (status >= 500) type = "server_error";
    }
    json_t *o = json_pack("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", msg, "type", type,
                          "param", "code", code);
    set_body(res, status, o);
}

void bs_reply_error(bs_response *res, int status, const char *error, const char *detail_fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof detail, detail_fmt, ap);
    va_end(ap);
    /* json_string rejects invalid UTF-8: a detail quoting bad input must not
     * lose the whole answer, so fall back to a lossy copy. */
    json_t *e = json_string(error), *d = json_string(detail);
    if (!e) e = json_string("invalid request");
    if (!d) d = json_string("(detail contained invalid UTF-8)");
    if (res->openai_errors) {
        openai_error(res, status, json_string_value(e), json_string_value(d));
        json_decref(e);
        json_decref(d);
        return;
    }
    if (res->detail_errors) {
        json_decref(e);
        set_body(res, status, json_pack("{s:o}", "detail", d));
        return;
    }
    json_t *env = json_object();
    json_object_set_new(env, "success", json_false());
    json_object_set_new(env, "error", e);
    json_object_set_new(env, "detail", d);
    json_object_set_new(env, "status_code", json_integer(status));
    snprintf(res->error_detail, sizeof res->error_detail, "%s", json_string_value(d));
    set_body(res, status, env);
    res->envelope_error = 1;
}

void bs_reply_detail_only(bs_response *res)
{
    if (res->status < 400 || !res->envelope_error) return;
    json_t *d = json_string(res->error_detail);
    set_body(res, res->status, json_pack("{s:o}", "detail", d ? d : json_string("")));
}

void bs_response_header(bs_response *res, const char *name, const char *fmt, ...)
{
    if (res->n_headers >= sizeof res->headers / sizeof *res->headers) return;
    snprintf(res->headers[res->n_headers].name, sizeof res->headers[0].name, "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->headers[res->n_headers].value, sizeof res->headers[0].value, fmt, ap);
    va_end(ap);
    res->n_headers++;
}

void bs_reply_err(bs_request *req, bs_response *res, const bs_err *err)
{
    int code = err ? err->code : BS_EINTERNAL;
    const char *msg = err && err->msg[0] ? err->msg : bs_strerror(code);
    int status;
    const char *title;
    switch (code) {
    case BS_EINVAL:
    case BS_EUTF8:
    case BS_EFORMAT:
    case BS_ERANGE:
        status = 400, title = "Invalid request";
        break;
    case BS_ENOTFOUND:
        status = 404, title = "Not found";
        break;
    case BS_ECONFLICT:
        status = 409, title = "Conflict";
        break;
    case BS_EPERM:
        status = 403, title = "Missing permission";
        break;
    case BS_EAUTH:
        status = 401, title = "Authentication failed";
        break;
    case BS_ELIMIT:
        status = 429, title = "Limit exceeded";
        break;
    case BS_EUNPROCESSABLE:
        status = 422, title = "Unprocessable input";
        break;
    case BS_EUNSUPPORTED:
        status = 422, title = "Unsupported";
        break;
    case BS_EBUSY:
    case BS_ESTORE:
        status = 503, title = "Service unavailable";
        break;
    default:
        status = 500, title = "Internal error";
        break;
    }
    if (status == 503 || status == 429) bs_response_header(res, "Retry-After", "5");
    if ((code == BS_ESTORE || code == BS_EBUSY) && req && req->server && req->server->metrics)
        bs_metrics_store_error(req->server->metrics);
    bs_reply_error(res, status, title, "%s", msg);
}

void bs_reply_openai_shape(bs_response *res)
{
    if (res->status < 400 || res->stream) return;
    json_t *env = json_loadb(res->body.data ? res->body.data : "", res->body.len, 0, NULL);
    /* Only envelope errors: an answer already in OpenAI's shape is kept. */
    if (json_is_false(json_object_get(env, "success")))
        openai_error(res, res->status, json_string_value(json_object_get(env, "error")),
                     json_string_value(json_object_get(env, "detail")));
    json_decref(env);
}
