/* libmicrohttpd glue: turns the library's callbacks into one bs_request /
 * bs_response per exchange, enforces the body limit while the body streams
 * in, writes the access log line when the exchange completes, and follows
 * open connections so that a graceful shutdown drops no request.
 *
 * The library runs a few epoll threads that serve every connection; they
 * never run a handler. Whatever may block (the checks on a body's headers,
 * which read the store; the handler; each piece of a streamed answer) runs
 * on a worker (server/workers.h) while the connection is suspended, and
 * the worker resumes it when the answer is ready. So thousands of idle or
 * slow connections cost memory, not threads (issue 17 H1); their limits
 * live in server/conns.h. */
#include "server/conns.h"
#include "server/context.h"
#include "server/guard.h"
#include "server/http.h"
#include "server/http_glue.h"
#include "server/router.h"
#include "server/web.h"
#include "server/workers.h"
#include "util/log.h"
#include "util/time.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

/* How long graceful shutdown waits for a request on a connection accepted
 * before the stop (or left open by an answer sent before it) that has not
 * sent one yet: long enough for a client that was writing it, short enough
 * not to hold the shutdown for an idle one. */
#define BS_HTTP_DRAIN_WAIT_MS 5000

/* Bytes of a streamed answer produced per trip to a worker. */
#define BS_HTTP_STREAM_CHUNK 16384

/* Per-connection state (MHD_OPTION_NOTIFY_CONNECTION), from accept to close. */
typedef struct conn_state {
    bs_conn link; /* in srv->conns, for the caps and deadlines */
    int waiting;  /* counted in srv->conns_waiting */
    int nul_seen; /* the request line being read holds %00 (see unescape) */
} conn_state;

/* Where an exchange is; the stages a worker runs (run_job) suspend the
 * connection until the worker is done. */
enum {
    STAGE_HEADERS = 1, /* worker: admission and credentials of a request announcing a body */
    STAGE_BODY,        /* the event thread reads the body */
    STAGE_HANDLER,     /* worker: routing, checks, the handler */
    STAGE_STREAM,      /* worker: the next piece of a streamed answer */
};

/* Per-exchange state, kept from the first callback to completion. */
typedef struct exchange {
    bs_request req;
    bs_response res;
    bs_buf body;
    conn_state *conn;
    int too_large;      /* the body passed the limit: discard the rest, answer 413 */
    int refused;        /* begun while shutting down: discard the body, answer 503 */
    int closing;        /* the answer carries Connection: close */
    int answered;       /* a response was queued */
    size_t limit;       /* max_request_bytes when the exchange began */
    int ip_checked;     /* the per-IP limit ran when the headers arrived */
    int over_memory;    /* bodies in flight passed max_body_memory_bytes: answer 503 */
    size_t mem_cap;     /* max_body_memory_bytes when the exchange began */
    size_t mem_counted; /* this body's bytes in body_bytes_in_flight */
    size_t announced;   /* Content-Length, when given (and within the limit) */
    int stage;          /* STAGE_* */
    int has_body;       /* a body was announced */
    int over_ip;        /* its connection is over max_connections_per_ip */
    int refusal;        /* the headers stage wrote an answer: send it, read no body */
    bs_workers_job job; /* the stage a worker runs */
    /* A streamed answer: the piece a worker produced, sent from the event
     * thread; st_end 1 at the end of the stream, -1 when it failed. */
    char *st_buf;
    size_t st_len, st_off;
    int st_end;
} exchange;

/* Bytes of request bodies buffered by every exchange of the process: the
 * bound of setting max_body_memory_bytes (issue 17 M1). */
static atomic_size_t body_bytes_in_flight;

/* Counts n more body bytes of ex; false (nothing counted) past the cap. */
static int body_memory_take(exchange *ex, size_t n)
{
    size_t before = atomic_fetch_add(&body_bytes_in_flight, n);
    if (before + n > ex->mem_cap) {
        atomic_fetch_sub(&body_bytes_in_flight, n);
        return 0;
    }
    ex->mem_counted += n;
    return 1;
}

static void body_memory_release(exchange *ex)
{
    if (ex->mem_counted) atomic_fetch_sub(&body_bytes_in_flight, ex->mem_counted);
    ex->mem_counted = 0;
}

static void client_ip(struct MHD_Connection *conn, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = 0;
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}

static int ip_listed(const json_t *list, const char *ip)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), ip)) return 1;
    }
    return 0;
}

/* Behind a reverse proxy every connection comes from the proxy: when the
 * peer is one of trusted_proxies, the client is the rightmost address of
 * X-Forwarded-For that is not itself a trusted proxy. Entries left of it
 * were written by the client and are never believed. */
static void forwarded_ip(struct bs_server *srv, struct MHD_Connection *conn, char *ip, size_t len)
{
    json_t *trusted = bs_settings_value(srv->settings, "trusted_proxies");
    const char *xff = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
    if (xff && ip_listed(trusted, ip)) {
        const char *end = xff + strlen(xff);
        while (end > xff) {
            const char *start = end;
            while (start > xff && start[-1] != ',') start--;
            const char *a = start, *b = end;
            while (a < b && (*a == ' ' || *a == '\t')) a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
            char cand[64];
            unsigned char bin[16];
            size_t n = (size_t)(b - a);
            if (n == 0 || n >= sizeof cand) break;
            memcpy(cand, a, n);
            cand[n] = 0;
            if (inet_pton(AF_INET, cand, bin) != 1 && inet_pton(AF_INET6, cand, bin) != 1) break;
            snprintf(ip, len, "%s", cand);
            if (!ip_listed(trusted, cand)) break;
            end = start > xff ? start - 1 : xff;
        }
    }
    json_decref(trusted);
}

void bs_response_stream(bs_response *res, bs_body_fn fn, void *ud, void (*free_fn)(void *ud))
{
    if (res->stream_free) res->stream_free(res->stream_ud);
    res->stream = fn;
    res->stream_ud = ud;
    res->stream_free = free_fn;
}

static enum MHD_Result offload(struct MHD_Connection *conn, exchange *ex, int stage);

/* On the event thread: hands out what a worker produced, or sends a worker
 * for the next piece (the producer may block) and returns 0 with the
 * connection suspended until it is there. */
static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    exchange *ex = cls;
    if (ex->st_off < ex->st_len) {
        size_t n = ex->st_len - ex->st_off;
        if (n > max) n = max;
        memcpy(buf, ex->st_buf + ex->st_off, n);
        ex->st_off += n;
        ex->res.streamed += n;
        return (ssize_t)n;
    }
    if (ex->st_end)
        return ex->st_end > 0 ? MHD_CONTENT_READER_END_OF_STREAM
                              : MHD_CONTENT_READER_END_WITH_ERROR;
    offload(ex->req.conn, ex, STAGE_STREAM);
    return 0;
}

/* On a worker: one call of the producer. */
static void fill_stream(exchange *ex)
{
    ex->st_len = ex->st_off = 0;
    if (!ex->st_buf) ex->st_buf = malloc(BS_HTTP_STREAM_CHUNK);
    long n = ex->st_buf ? ex->res.stream(ex->res.stream_ud, ex->st_buf, BS_HTTP_STREAM_CHUNK) : -1;
    if (n > 0)
        ex->st_len = (size_t)n;
    else
        ex->st_end = n == 0 ? 1 : -1;
}

/* The producer's state lives until the exchange ends (on_completed). */
static struct MHD_Response *stream_response(exchange *ex)
{
    return MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BS_HTTP_STREAM_CHUNK, read_stream,
                                             ex, NULL);
}

static enum MHD_Result queue(struct MHD_Connection *conn, exchange *ex)
{
    bs_response *res = &ex->res;
    struct MHD_Response *r =
        res->stream ? stream_response(ex)
                    : MHD_create_response_from_buffer(res->body.len,
                                                      res->body.data ? res->body.data : (char *)"",
                                                      MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type",
                            res->content_type ? res->content_type : "application/json");
    for (size_t i = 0; i < res->n_headers; i++)
        MHD_add_response_header(r, res->headers[i].name, res->headers[i].value);
    /* While shutting down no connection goes back to waiting for another
     * request: the client learns it must reconnect before it sends one. */
    if (atomic_load(&ex->req.server->draining)) ex->closing = 1;
    if (ex->closing) MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)res->status, r);
    MHD_destroy_response(r);
    ex->answered = 1;
    return ok;
}

static void dispatch(exchange *ex)
{
    bs_request *req = &ex->req;
    bs_response *res = &ex->res;
    req->body = ex->body.data ? ex->body.data : "";
    req->body_len = ex->body.len;
    req->route_index = bs_routes_count;
    bs_cors_headers(req, res);
    int status = 404;
    char allow[128];
    const bs_route *route =
        bs_router_match(bs_routes, bs_routes_count, req, &status, allow, sizeof allow);
    /* The studio's own files are served from memory and one page view asks
     * for several of them: the per-IP request limit is the API's, so a busy
     * studio user is not refused by the scripts and styles of their pages. */
    int get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    int studio = !route && status == 404 && get && !bs_web_is_api_path(req->path);
    if (!(studio && bs_web_is_studio_path(req->path)) && !ex->ip_checked && bs_guard_ip(req, res))
        return;
    if (!route) {
        if (studio) {
            bs_web_serve(req, res, req->server->opts.web_dir); /* the studio at / */
        } else if (status == 405 && !strcmp(req->method, "OPTIONS")) {
            bs_cors_preflight(req, res, allow);
        } else if (status == 405) {
            bs_response_header(res, "Allow", "%s", allow);
            bs_reply_error(res, 405, "Method not allowed", "%s %s: allowed methods are %s",
                           req->method, req->path, allow);
        } else {
            bs_reply_error(res, 404, "Not found", "no route for %s %s", req->method, req->path);
        }
        return;
    }
    req->route_index = (size_t)(route - bs_routes);
    req->route_pattern = route->pattern;
    if (bs_guard_route(req, res, route)) return;
    route->handler(req, res);
    if (!res->status) bs_reply_error(res, 500, "Internal error", "handler gave no response");
    bs_guard_after(req, res);
}

static void wake_drain(struct bs_server *srv)
{
    pthread_mutex_lock(&srv->drain_mu);
    pthread_cond_broadcast(&srv->drain_cv);
    pthread_mutex_unlock(&srv->drain_mu);
}

/* Marks whether a request may still arrive on connection c (one callback
 * of the connection's thread at a time touches c). */
static void set_waiting(struct bs_server *srv, conn_state *c, int waiting)
{
    if (!c || c->waiting == waiting) return;
    c->waiting = waiting;
    if (waiting)
        atomic_fetch_add(&srv->conns_waiting, 1);
    else if (atomic_fetch_sub(&srv->conns_waiting, 1) == 1)
        wake_drain(srv);
}

/* MHD decodes the path and the query before the first callback, and a
 * decoded NUL would cut what the router and the checks see ("/a%00/b" is
 * "/a"). The default decoding, noting %00 on the connection so that the
 * request is refused (issue 17 L9). Runs on the connection's thread. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    if (strstr(s, "%00")) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        conn_state *c = ci ? ci->socket_context : NULL;
        if (c) c->nul_seen = 1;
    }
    return MHD_http_unescape(s);
}

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    (void)value;
    int *n = cls;
    if (!strcasecmp(key, "Content-Length")) n[0]++;
    if (!strcasecmp(key, "Transfer-Encoding")) n[1]++;
    return MHD_YES;
}

/* Refuses, before any body is read, what a proxy in front could frame
 * differently from us (request smuggling: two Content-Lengths, both
 * Content-Length and Transfer-Encoding; MHD itself refuses a space before
 * the colon) and a URL holding %00. 0 when the request may go on. */
static int refuse_ambiguous(struct MHD_Connection *conn, exchange *ex)
{
    int n[2] = {0, 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, n);
    int nul = ex->conn && ex->conn->nul_seen;
    if (ex->conn) ex->conn->nul_seen = 0;
    if (n[0] > 1 || (n[0] && n[1]) || n[1] > 1) {
        bs_reply_error(&ex->res, 400, "Ambiguous request framing",
                       "send one Content-Length or one Transfer-Encoding, not %s",
                       n[0] > 1 ? "several Content-Length headers" : "both");
        ex->closing = 1;
        return -1;
    }
    if (nul) {
        bs_reply_error(&ex->res, 400, "Invalid URL",
                       "the path or query string holds an encoded NUL (%%00)");
        ex->closing = 1;
        return -1;
    }
    return 0;
}

/* The caps of server/conns.h refuse a request with an answer rather than
 * a silent close; the connection closes after it. */
static void refuse_connection(exchange *ex, int why)
{
    struct bs_server *srv = ex->req.server;
    bs_response_header(&ex->res, "Retry-After", "1");
    if (why == BS_CONNS_OVER_TOTAL) {
        bs_conns_limits lim;
        bs_http_limits(srv, &lim);
        bs_reply_error(&ex->res, 503, "Service unavailable",
                       "the server holds too many connections (setting max_connections, %lld); "
                       "send the request again",
                       (long long)lim.max_total);
    } else {
        bs_metrics_rate_limited(srv->metrics, BS_RL_IP);
        bs_reply_error(&ex->res, 429, "Too many connections",
                       "this IP address holds too many connections with requests in progress "
                       "(setting max_connections_per_ip, %lld)",
                       (long long)bs_settings_int(srv->settings, "max_connections_per_ip"));
    }
    bs_cors_headers(&ex->req, &ex->res);
    ex->closing = 1;
}

/* On a worker, for a request announcing a body (or over the per-IP cap):
 * what needs the store is checked before any of the body is read. */
static void check_headers(exchange *ex)
{
    struct bs_server *srv = ex->req.server;
    if (ex->over_ip) {
        /* A valid admin key is never limited by IP (as for requests). */
        if (!bs_guard_admin(&ex->req)) {
            refuse_connection(ex, BS_CONNS_OVER_IP);
            ex->refusal = 1;
            return;
        }
        if (ex->conn) bs_conns_admit(srv->conns, &ex->conn->link);
    }
    if (!ex->has_body) return;
    /* Limit and authenticate on the headers, so that no body is buffered
     * for a client without valid credentials. */
    ex->ip_checked = 1;
    if (bs_guard_ip(&ex->req, &ex->res) || bs_guard_early(&ex->req, &ex->res)) {
        bs_cors_headers(&ex->req, &ex->res);
        ex->closing = 1;
        ex->refusal = 1;
    }
}

static void run_job(bs_workers_job *job)
{
    exchange *ex = (exchange *)(void *)((char *)job - offsetof(exchange, job));
    struct MHD_Connection *conn = ex->req.conn;
    if (ex->stage == STAGE_HEADERS)
        check_headers(ex);
    else if (ex->stage == STAGE_HANDLER)
        dispatch(ex);
    else
        fill_stream(ex);
    /* The last touch of ex: once resumed, the event thread may end the
     * exchange and free it. */
    MHD_resume_connection(conn);
}

/* Suspends the connection (so that the event thread neither waits nor
 * touches it) and has a worker run the stage. Suspended first: the worker
 * resumes it, which must never come before. */
static enum MHD_Result offload(struct MHD_Connection *conn, exchange *ex, int stage)
{
    ex->stage = stage;
    ex->job.fn = run_job;
    MHD_suspend_connection(conn);
    bs_workers_run(ex->req.server->workers, &ex->job);
    return MHD_YES;
}

/* The headers passed their checks: the body (if any) is read next. */
static enum MHD_Result headers_passed(exchange *ex)
{
    ex->stage = STAGE_BODY;
    if (ex->has_body && ex->conn)
        bs_conns_body(ex->req.server->conns, &ex->conn->link, 1, bs_time_mono_ns() / 1000000);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct bs_server *srv = cls;
    exchange *ex = *con_cls;
    if (!ex) {
        ex = calloc(1, sizeof *ex);
        if (!ex) return MHD_NO;
        *con_cls = ex;
        atomic_fetch_add(&srv->in_flight, 1);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        ex->conn = ci ? ci->socket_context : NULL;
        /* Counted in flight first: the drain never sees both counts at 0. */
        set_waiting(srv, ex->conn, 0);
        ex->refused = atomic_load(&srv->draining);
        ex->req.server = srv;
        ex->req.method = method;
        ex->req.path = url;
        /* No body yet: the routing done on the headers sees an empty one. */
        ex->req.body = "";
        /* OpenAI clients parse only OpenAI's error shape, whatever refuses. */
        ex->res.openai_errors = !strncmp(url, "/v1", 3) && (url[3] == '/' || url[3] == 0);
        ex->req.conn = conn;
        ex->req.started_ns = bs_time_mono_ns();
        ex->req.route_index = bs_routes_count;
        client_ip(conn, ex->req.client_ip, sizeof ex->req.client_ip);
        forwarded_ip(srv, conn, ex->req.client_ip, sizeof ex->req.client_ip);
        ex->limit = (size_t)bs_settings_int(srv->settings, "max_request_bytes");
        ex->mem_cap = (size_t)bs_settings_int(srv->settings, "max_body_memory_bytes");
        int admit = ex->conn
                        ? bs_conns_begin(srv->conns, &ex->conn->link, ex->req.started_ns / 1000000)
                        : BS_CONNS_OK;
        if (admit == BS_CONNS_OVER_TOTAL) {
            refuse_connection(ex, admit);
            return queue(conn, ex);
        }
        ex->over_ip = admit == BS_CONNS_OVER_IP;
        if (refuse_ambiguous(conn, ex)) return queue(conn, ex);
        /* Refuse an announced oversized body before reading any of it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end == 0 && n <= ex->limit) ex->announced = (size_t)n;
            if (*end == 0 && n > ex->limit) {
                /* Answer now: MHD then closes the connection unread. */
                ex->too_large = 1;
                bs_reply_error(&ex->res, 413, "Request body too large",
                               "the limit is %zu bytes (setting max_request_bytes)", ex->limit);
                return queue(conn, ex);
            }
        }
        const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
        ex->has_body = te || (cl && strcmp(cl, "0"));
        if (!ex->refused && (ex->over_ip || ex->has_body)) return offload(conn, ex, STAGE_HEADERS);
        return headers_passed(ex);
    }
    if (ex->stage == STAGE_HEADERS) {
        /* Called again once the worker checked the headers. */
        if (ex->refusal) return queue(conn, ex);
        return headers_passed(ex);
    }
    if (*upload_data_size) {
        if (ex->conn) bs_conns_body_bytes(&ex->conn->link, *upload_data_size);
        /* answered: refused on its headers (401, 429, 400); whatever MHD
         * still reads of its body is dropped, never kept or counted. */
        if (!ex->too_large && !ex->refused && !ex->over_memory && !ex->answered) {
            if (ex->body.len + *upload_data_size > ex->limit) {
                ex->too_large = 1;
            } else {
                /* What counts against max_body_memory_bytes is the memory
                 * held, not the bytes received: an announced body gets its
                 * whole buffer at once (no doubling chain left behind in the
                 * allocator), a chunked one grows as it comes. */
                size_t had = ex->body.cap;
                int whole = !had && ex->announced > *upload_data_size;
                if (whole ? bs_buf_reserve_exact(&ex->body, ex->announced)
                          : bs_buf_reserve(&ex->body, *upload_data_size))
                    return MHD_NO;
                if (!body_memory_take(ex, ex->body.cap - had)) {
                    /* The rest is read and dropped; 503 once it ends. */
                    ex->over_memory = 1;
                    body_memory_release(ex);
                    bs_buf_free(&ex->body);
                    bs_buf_init(&ex->body);
                } else if (bs_buf_append(&ex->body, upload_data, *upload_data_size)) {
                    return MHD_NO;
                }
            }
        }
        /* A chunked body has no announced length: past the limit its bytes
         * are discarded (memory stays bounded) and the 413 goes out once it
         * ends, since MHD cannot answer in the middle of an upload. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* Called again once the worker ran the handler: its answer. */
    if (ex->stage == STAGE_HANDLER) return queue(conn, ex);
    if (ex->answered) return MHD_YES;
    if (ex->has_body && ex->conn)
        bs_conns_body(srv->conns, &ex->conn->link, 0, bs_time_mono_ns() / 1000000);
    if (ex->too_large) {
        bs_reply_error(&ex->res, 413, "Request body too large",
                       "the limit is %zu bytes (setting max_request_bytes)", ex->limit);
    } else if (ex->over_memory) {
        bs_response_header(&ex->res, "Retry-After", "1");
        bs_reply_error(&ex->res, 503, "Service unavailable",
                       "the server holds too many request bodies at once (setting "
                       "max_body_memory_bytes, %zu bytes); send the request again",
                       ex->mem_cap);
    } else if (ex->refused) {
        /* Nothing ran: safe to send again elsewhere or after the restart.
         * The body was read first, so that closing cannot reset the
         * connection before the client reads this answer. */
        bs_response_header(&ex->res, "Retry-After", "1");
        bs_reply_error(&ex->res, 503, "Service unavailable",
                       "the server is shutting down; send the request again");
    } else {
        return offload(conn, ex, STAGE_HANDLER);
    }
    return queue(conn, ex);
}

/* The path as it may appear in a log line: control bytes escaped (no
 * forged lines through %0A), at most ~400 bytes, and anything shaped like
 * a secret ("ak_..." or "sess_..." followed by 16 or more base62
 * characters) replaced, should a client put one in a path. */
static void loggable(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 16 < len; i++) {
        size_t plen = !strncmp(in + i, "ak_", 3) ? 3 : !strncmp(in + i, "sess_", 5) ? 5 : 0;
        if (plen) {
            size_t n = 0;
            while (isalnum((unsigned char)in[i + plen + n])) n++;
            if (n >= 16) {
                o += (size_t)snprintf(out + o, len - o, "%.*s[redacted]", (int)plen, in + i);
                i += plen + n - 1;
                continue;
            }
        }
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = 0;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct bs_server *srv = cls;
    exchange *ex = *con_cls;
    if (!ex) return;
    double ms = (double)(bs_time_mono_ns() - ex->req.started_ns) / 1e6;
    bs_metrics_observe(srv->metrics, ex->req.route_index, ex->res.status, ms / 1000.0);
    if (!srv->opts.quiet) {
        /* The path only, never the query string: it may carry ?api_key=. */
        char method[32], path[420];
        loggable(ex->req.method, method, sizeof method);
        loggable(ex->req.path, path, sizeof path);
        bs_log_info("access", "method=%s path=%s status=%d bytes=%zu duration_ms=%.2f%s", method,
                    path, ex->res.status, ex->res.stream ? ex->res.streamed : ex->res.body.len, ms,
                    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    }
    /* An answer sent before the stop left the connection open: the client
     * may be sending its next request, which the drain waits for too. */
    if (atomic_load(&srv->draining) && !ex->closing) set_waiting(srv, ex->conn, 1);
    /* From now on the header deadline runs for the next request. */
    if (ex->conn) bs_conns_end(srv->conns, &ex->conn->link, bs_time_mono_ns() / 1000000);
    if (ex->res.stream_free) ex->res.stream_free(ex->res.stream_ud);
    free(ex->st_buf);
    json_decref(ex->req.json);
    body_memory_release(ex);
    bs_buf_free(&ex->body);
    bs_buf_free(&ex->res.body);
    free(ex);
    *con_cls = NULL;
    if (atomic_fetch_sub(&srv->in_flight, 1) == 1) wake_drain(srv);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct bs_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_state *c = calloc(1, sizeof *c);
        *socket_context = c;
        if (!c) return; /* served untracked: every use of the state allows NULL */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->link.fd = ci ? ci->connect_fd : -1;
        client_ip(conn, c->link.ip, sizeof c->link.ip);
        /* Behind a proxy every connection is the proxy's: no per-IP cap. */
        json_t *trusted = bs_settings_value(srv->settings, "trusted_proxies");
        c->link.trusted = ip_listed(trusted, c->link.ip);
        json_decref(trusted);
        bs_conns_add(srv->conns, &c->link, bs_time_mono_ns() / 1000000);
        /* Until its first request begins, the client may be writing it. */
        set_waiting(srv, c, 1);
        return;
    }
    conn_state *c = *socket_context;
    if (c) bs_conns_remove(srv->conns, &c->link);
    set_waiting(srv, c, 0);
    free(c);
    *socket_context = NULL;
}

void bs_http_limits(struct bs_server *srv, bs_conns_limits *out)
{
    out->max_total = bs_settings_int(srv->settings, "max_connections");
    if (out->max_total > srv->conn_hard_cap) out->max_total = srv->conn_hard_cap;
    out->max_per_ip = bs_settings_int(srv->settings, "max_connections_per_ip");
    out->header_ms = (int64_t)(bs_settings_float(srv->settings, "header_timeout_seconds") * 1000.0);
    out->min_body_rate = bs_settings_int(srv->settings, "min_body_bytes_per_second");
    out->body_window_ms =
        (int64_t)(bs_settings_float(srv->settings, "body_rate_window_seconds") * 1000.0);
}

static void limits_fn(void *ud, bs_conns_limits *out)
{
    bs_http_limits(ud, out);
}

/* /metrics: the connections held and those the limits closed. */
static void conn_metrics(bs_buf *out, void *ud)
{
    struct bs_server *srv = ud;
    bs_conns_stats st;
    bs_conns_stats_get(srv->conns, &st);
    bs_buf_printf(
        out,
        "# HELP bertstudio_connections_open Connections the server holds.\n"
        "# TYPE bertstudio_connections_open gauge\nbertstudio_connections_open %lld\n"
        "# HELP bertstudio_connections_busy Of them, those with a request in progress (the "
        "others wait for their next request).\n"
        "# TYPE bertstudio_connections_busy gauge\nbertstudio_connections_busy %lld\n"
        "# HELP bertstudio_connections_closed_total Connections closed by a limit: idle ones "
        "closed to make room (max_connections, max_connections_per_ip), headers not in time "
        "(header_timeout_seconds), bodies too slow (min_body_bytes_per_second).\n"
        "# TYPE bertstudio_connections_closed_total counter\n"
        "bertstudio_connections_closed_total{reason=\"evicted_idle\"} %lld\n"
        "bertstudio_connections_closed_total{reason=\"header_timeout\"} %lld\n"
        "bertstudio_connections_closed_total{reason=\"slow_body\"} %lld\n"
        "# HELP bertstudio_http_workers Threads running request handlers (at most --threads).\n"
        "# TYPE bertstudio_http_workers gauge\nbertstudio_http_workers %u\n",
        (long long)st.open, (long long)st.busy, (long long)st.evicted_idle, (long long)st.header_timeouts,
        (long long)st.slow_bodies, bs_workers_threads(srv->workers));
}

/* Thousands of sockets need as many descriptors: the soft limit goes up to
 * the hard one. The connections the library may hold leave room for the
 * store, the model files and the sandbox. */
static int64_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return 1024;
    rlim_t was = rl.rlim_cur, want = rl.rlim_max;
    if (want == RLIM_INFINITY || want > (rlim_t)1 << 20) want = (rlim_t)1 << 20;
    if (want > rl.rlim_cur) {
        struct rlimit up = {want, rl.rlim_max};
        if (!setrlimit(RLIMIT_NOFILE, &up)) rl.rlim_cur = want;
    }
    int64_t n = (int64_t)rl.rlim_cur;
    int64_t reserve = n / 8 > 64 ? n / 8 : 64;
    int64_t cap = n - reserve > 16 ? n - reserve : 16;
    bs_log_info("http",
                "open files: soft limit %llu (was %llu, hard %llu); at most %lld connections",
                (unsigned long long)rl.rlim_cur, (unsigned long long)was,
                (unsigned long long)rl.rlim_max, (long long)cap);
    return cap;
}

int bs_http_start(struct bs_server *srv, bs_err *err)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(srv->opts.port)};
    if (inet_pton(AF_INET, srv->host, &addr.sin_addr) != 1)
        return bs_err_set(err, BS_EINVAL, "--host %s is not an IPv4 address", srv->host);
    srv->conn_hard_cap = raise_nofile();
    /* Handlers block (a model's batch queue, a forward pass, an event
     * stream): they run on workers, one each, up to --threads at once, so
     * that a burst of requests reaches the batcher together. */
    unsigned workers = srv->opts.threads ? srv->opts.threads : 1024;
    srv->workers = bs_workers_new(workers, (size_t)1 << 20);
    srv->conns = bs_conns_new(limits_fn, srv);
    if (!srv->workers || !srv->conns) return bs_err_set(err, BS_ENOMEM, "out of memory");
    if (bs_conns_start(srv->conns))
        return bs_err_set(err, BS_EINTERNAL, "cannot start the connection sweeper");
    if (bs_server_metrics_hook(srv, conn_metrics, srv))
        bs_log_warn("http", "no room for the connections' metrics hook");
    /* The event threads only move bytes: one per core (2 to 8). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned pool = cores < 2 ? 2 : cores > 8 ? 8 : (unsigned)cores;
    unsigned flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    if (srv->tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            return bs_err_set(err, BS_EUNSUPPORTED,
                              "--tls-cert: this libmicrohttpd was built without TLS support");
        flags |= MHD_USE_TLS;
    } else {
        tls_opts[0].option = MHD_OPTION_END;
    }
    /* The library's own limit is the descriptors' bound (a silent close
     * past it); max_connections, below it, is answered 503. */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)srv->conn_hard_cap, MHD_OPTION_THREAD_POOL_SIZE, pool,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1 << 20), MHD_OPTION_UNESCAPE_CALLBACK, unescape,
        NULL, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!d)
        return bs_err_set(err, BS_EIO, "cannot listen on %s:%u (in use, not permitted%s)",
                          srv->host, (unsigned)srv->opts.port,
                          srv->tls ? ", or the TLS certificate/key was refused" : "");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : srv->opts.port;
    srv->daemon = d;
    return 0;
}

void bs_http_quiesce(struct bs_server *srv)
{
    atomic_store(&srv->draining, 1);
    if (srv->daemon) {
        MHD_socket s = MHD_quiesce_daemon(srv->daemon);
        if (s != MHD_INVALID_SOCKET) close(s);
    }
}

void bs_http_drain(struct bs_server *srv)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += BS_HTTP_DRAIN_WAIT_MS / 1000;
    until.tv_nsec += (BS_HTTP_DRAIN_WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    int late = 0;
    pthread_mutex_lock(&srv->drain_mu);
    /* Exchanges in flight always finish; connections that owe a request
     * are waited for until the deadline, then closed. */
    while (atomic_load(&srv->in_flight) > 0 || (!late && atomic_load(&srv->conns_waiting) > 0)) {
        if (late || atomic_load(&srv->conns_waiting) == 0)
            pthread_cond_wait(&srv->drain_cv, &srv->drain_mu);
        else
            late = pthread_cond_timedwait(&srv->drain_cv, &srv->drain_mu, &until) == ETIMEDOUT;
    }
    pthread_mutex_unlock(&srv->drain_mu);
}

void bs_http_stop(struct bs_server *srv)
{
    /* After the drain nothing is suspended (MHD_stop_daemon requires it):
     * every exchange a worker held has ended. */
    if (srv->daemon) MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    bs_conns_free(srv->conns); /* every connection was closed and unregistered */
    srv->conns = NULL;
    bs_workers_free(srv->workers);
    srv->workers = NULL;
}
