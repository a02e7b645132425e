/* /models: the model cache over HTTP. Listing with each model's state,
 * info, downloads from the Hub (as background jobs whose progress is read
 * as server-sent events), imports of local folders (admin), load through the
 * task endpoints' registry, and removal. Model names hold '/', so every
 * /models/{name}/... route also exists as /models/{org}/{name}/...
 * (libmicrohttpd decodes %2F before routing, so an encoded slash cannot
 * keep a name in one segment). */
#include "hub/hub.h"
#include "server/context.h"
#include "server/downloads.h"
#include "server/handlers/handlers.h"
#include "server/handlers/tasks.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_KEEPALIVE_S 15

/* The model name of a /models/{name}/... or /models/{org}/{name}/... route;
 * NULL after a 400 when it is not a valid name. */
static const char *model_param(bs_request *req, bs_response *res, char *buf, size_t len)
{
    const char *org = bs_request_param(req, "org"), *name = bs_request_param(req, "name");
    if (!name) name = "";
    if (org)
        snprintf(buf, len, "%s/%s", org, name);
    else
        snprintf(buf, len, "%s", name);
    bs_err e = {0};
    if (bs_hub_name_check(buf, &e)) {
        bs_reply_error(res, 400, "Invalid model name", "%s", e.msg);
        return NULL;
    }
    return buf;
}

/* Status of a failed download: the Hub's refusals and network trouble are
 * a bad gateway (502), not the client's own credentials (401). */
static void reply_download_error(bs_request *req, bs_response *res, const bs_err *e)
{
    switch (e->code) {
    case BS_EAUTH:
        bs_reply_error(res, 502, "The Hub refused the download", "%s", e->msg);
        break;
    case BS_EIO:
        bs_reply_error(res, 502, "The download failed", "%s", e->msg);
        break;
    case BS_EFORMAT:
        bs_reply_error(res, 502, "The downloaded files are not valid", "%s", e->msg);
        break;
    case BS_EBUSY:
        bs_response_header(res, "Retry-After", "5");
        bs_reply_error(res, 409, "Download in progress", "%s", e->msg);
        break;
    default:
        bs_reply_err(req, res, e);
    }
}

static const char *opt_string(const json_t *body, const char *key)
{
    return json_string_value(json_object_get(body, key));
}

static int check_len(bs_response *res, const json_t *body, const char *key, size_t max)
{
    const char *v = opt_string(body, key);
    if (v && strlen(v) > max) {
        bs_reply_error(res, 400, "Invalid request", "field '%s' is longer than %zu bytes", key,
                       max);
        return -1;
    }
    return 0;
}

void bs_handle_models_download(bs_request *req, bs_response *res)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return;
    if (!json_is_object(body)) {
        bs_reply_error(res, 400, "Invalid request", "the body must be a JSON object");
        return;
    }
    const char *name = opt_string(body, "model_name");
    bs_err e = {0};
    if (!name) {
        bs_reply_error(res, 400, "Invalid request", "field 'model_name' is required");
        return;
    }
    if (check_len(res, body, "revision", 128) || check_len(res, body, "task_type", 31) ||
        check_len(res, body, "cache_priority", 15))
        return;
    if (bs_hub_name_check(name, &e)) {
        bs_reply_error(res, 400, "Invalid model name", "%s", e.msg);
        return;
    }
    /* Checked before answering 202: a bad revision is the request's fault. */
    const char *revision = opt_string(body, "revision");
    if (revision && bs_hub_revision_check(revision, &e)) {
        bs_reply_error(res, 400, "Invalid revision", "%s", e.msg);
        return;
    }
    bool wait = json_is_true(json_object_get(body, "wait"));
    bs_downloads *d = req->server->models;
    bs_hub_download_req r = {.model_name = name,
                             .revision = opt_string(body, "revision"),
                             .task_type = opt_string(body, "task_type"),
                             .cache_priority = opt_string(body, "cache_priority"),
                             .token = NULL};
    /* The hf_token setting (write-only), else the hub's HF_TOKEN. */
    json_t *tok = bs_settings_value(req->server->settings, "hf_token");
    r.token = json_string_value(tok);
    int rc = bs_downloads_start(d, &r, &e);
    json_decref(tok);
    if (rc == BS_EBUSY) {
        bs_response_header(res, "Retry-After", "5");
        bs_reply_error(res, 409, "Download in progress",
                       "model %s is already being downloaded; follow GET /models/%s/events", name,
                       name);
        return;
    }
    if (rc == BS_ELIMIT) {
        bs_response_header(res, "Retry-After", "5");
        bs_reply_error(res, 429, "Too many downloads", "%s", e.msg);
        return;
    }
    if (rc == BS_ENOMEM) {
        bs_reply_error(res, 503, "Service unavailable", "cannot start the download");
        return;
    }
    if (!wait) {
        json_t *data =
            json_pack("{s:s, s:s, s:s}", "model_name", name, "status", "downloading", "events", "");
        char url[BS_HUB_NAME_MAX + 32];
        snprintf(url, sizeof url, "/models/%s/events", name);
        json_object_set_new(data, "events", json_string(url));
        bs_reply_ok(res, 202, data, "download started");
        return;
    }
    json_t *doc = NULL;
    if (bs_downloads_wait(d, name, &doc, &e))
        reply_download_error(req, res, &e);
    else
        bs_reply_ok(res, 201, doc, "downloaded");
}

void bs_handle_models_import(bs_request *req, bs_response *res)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return;
    if (!json_is_object(body)) {
        bs_reply_error(res, 400, "Invalid request", "the body must be a JSON object");
        return;
    }
    const char *path = opt_string(body, "path"), *name = opt_string(body, "model_name");
    if (!path || !name) {
        bs_reply_error(res, 400, "Invalid request", "fields 'path' and 'model_name' are required");
        return;
    }
    if (check_len(res, body, "task_type", 31) || check_len(res, body, "cache_priority", 15) ||
        check_len(res, body, "path", PATH_MAX - 1))
        return;
    /* The server's working directory is nobody's business: absolute only. */
    if (path[0] != '/') {
        bs_reply_error(res, 400, "Invalid path", "path must be absolute (got \"%.200s\")", path);
        return;
    }
    bs_err e = {0};
    bs_server *srv = req->server;
    json_t *doc = NULL;
    if (bs_hub_import(srv->serving->hub, path, name, opt_string(body, "task_type"),
                      opt_string(body, "cache_priority"), &doc, &e)) {
        if (e.code == BS_EBUSY) {
            bs_reply_error(res, 409, "Import in progress", "%s", e.msg);
            return;
        }
        if (e.code == BS_EUNPROCESSABLE) {
            bs_reply_error(res, 422, "Not a usable model folder", "%s", e.msg);
            return;
        }
        bs_reply_err(req, res, &e);
        return;
    }
    bs_reply_ok(res, 201, doc, "imported");
}

/* Every known model's entry from the task endpoints' registry (state, and
 * precision when loaded or loading), by name. */
static json_t *states(bs_request *req)
{
    bs_response tmp = {0};
    bs_buf_init(&tmp.body);
    json_t *list = bs_tasks_model_list(req, &tmp);
    bs_buf_free(&tmp.body);
    json_t *map = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        const char *n = json_string_value(json_object_get(m, "model_name"));
        if (n) json_object_set(map, n, m);
    }
    json_decref(list);
    return map;
}

/* in_list: 1 when the JSON list of strings holds name. */
static int in_list(const json_t *list, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (!strcmp(json_string_value(v), name)) return 1;
    return 0;
}

/* running: the names being downloaded (bs_downloads_running_names);
 * map: the registry's entries (states()). */
static const char *state_of(const json_t *running, json_t *map, const json_t *doc)
{
    const char *name = json_string_value(json_object_get(doc, "model_name"));
    if (name && in_list(running, name)) return "downloading";
    if (!json_is_true(json_object_get(doc, "is_cached"))) return "not_cached";
    const char *st =
        json_string_value(json_object_get(json_object_get(map, name ? name : ""), "state"));
    return st ? st : "not_loaded";
}

/* Sets doc's state, and its precision when it is loaded or loading. */
static void set_state(json_t *doc, const json_t *running, json_t *map)
{
    const char *st = state_of(running, map, doc);
    json_object_set_new(doc, "state", json_string(st));
    const char *name = json_string_value(json_object_get(doc, "model_name"));
    json_t *prec = json_object_get(json_object_get(map, name ? name : ""), "precision");
    if (prec && (!strcmp(st, "loaded") || !strcmp(st, "loading")))
        json_object_set(doc, "precision", prec);
}

json_t *bs_models_listing(bs_request *req, bs_response *res, const char *only)
{
    bs_err e = {0};
    bs_server *srv = req->server;
    json_t *docs = NULL;
    if (bs_hub_list(srv->serving->hub, &docs, &e)) {
        bs_reply_err(req, res, &e);
        return NULL;
    }
    json_t *map = states(req), *out = json_array();
    json_t *running = bs_downloads_running_names(srv->models);
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        const char *st = state_of(running, map, d);
        if (only && strcmp(only, st) && !(!strcmp(only, "cached") && strcmp(st, "not_cached")))
            continue;
        json_t *o = json_deep_copy(d);
        set_state(o, running, map);
        json_array_append_new(out, o);
    }
    /* Downloads of models not registered yet. */
    if (!only || !strcmp(only, "downloading") || !strcmp(only, "loading")) {
        size_t k;
        json_t *r;
        json_array_foreach(running, k, r)
        {
            const char *name = json_string_value(r);
            int known = 0;
            json_array_foreach(docs, i, d) known |=
                !strcmp(json_string_value(json_object_get(d, "model_name")), name);
            if (!known)
                json_array_append_new(
                    out, json_pack("{s:s, s:s}", "model_name", name, "state", "downloading"));
        }
    }
    json_decref(running);
    json_decref(map);
    json_decref(docs);
    return out;
}

/* GET /models and its filtered views: {"models": [...], "count": n}. */
static void reply_listing(bs_request *req, bs_response *res, const char *state)
{
    json_t *out = bs_models_listing(req, res, state);
    if (out)
        bs_reply_ok(
            res, 200,
            json_pack("{s:o, s:I}", "models", out, "count", (json_int_t)json_array_size(out)),
            NULL);
}

void bs_handle_models_list(bs_request *req, bs_response *res)
{
    reply_listing(req, res, NULL);
}

void bs_handle_models_downloaded(bs_request *req, bs_response *res)
{
    reply_listing(req, res, "cached");
}

void bs_handle_models_loaded(bs_request *req, bs_response *res)
{
    reply_listing(req, res, "loaded");
}

void bs_handle_models_loading(bs_request *req, bs_response *res)
{
    json_t *a = bs_models_listing(req, res, "loading");
    if (!a) return;
    json_t *b = bs_models_listing(req, res, "downloading");
    if (!b) {
        json_decref(a);
        return;
    }
    json_array_extend(a, b);
    json_decref(b);
    bs_reply_ok(res, 200,
                json_pack("{s:o, s:I}", "models", a, "count", (json_int_t)json_array_size(a)),
                NULL);
}

json_t *bs_models_manifest_files(const char *dir)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, BS_HUB_MANIFEST);
    FILE *f = fopen(path, "r");
    json_t *files = json_array();
    if (!f) return files;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strlen(line) < 67 || line[64] != ' ' || line[65] != ' ') continue;
        line[64] = 0;
        json_array_append_new(files, json_pack("{s:s, s:s}", "path", line + 66, "sha256", line));
    }
    fclose(f);
    return files;
}

void bs_handle_models_info(bs_request *req, bs_response *res)
{
    char buf[BS_HUB_NAME_MAX * 2];
    const char *name = model_param(req, res, buf, sizeof buf);
    if (!name) return;
    bs_err e = {0};
    bs_server *srv = req->server;
    json_t *doc = NULL;
    const char *task = bs_request_query(req, "task_type");
    if (bs_hub_info(srv->serving->hub, name, task, &doc, &e)) {
        bs_reply_err(req, res, &e);
        return;
    }
    json_t *map = states(req);
    json_t *running = bs_downloads_running_names(srv->models);
    set_state(doc, running, map);
    json_decref(running);
    json_decref(map);
    const char *dir = json_string_value(json_object_get(doc, "local_path"));
    if (dir) json_object_set_new(doc, "files", bs_models_manifest_files(dir));
    bs_reply_ok(res, 200, doc, NULL);
}

/* The optional "precision" of a load body: the bs_precision, -1 when the
 * body names none (absent or null), -2 after a 400. */
static int body_precision(bs_response *res, const json_t *body)
{
    json_t *v = json_object_get(body, "precision");
    if (!v || json_is_null(v)) return -1;
    int p = bs_precision_parse(json_string_value(v));
    if (p < 0) {
        bs_reply_error(res, 400, "Invalid precision",
                       "field 'precision' must be \"f32\", \"fp16\", \"bf16\" or \"int8\"");
        return -2;
    }
    if (!bs_precision_supported((bs_precision)p)) {
        bs_reply_error(res, 422, "Precision not supported",
                       "field 'precision': %s is not supported by this CPU's kernel path",
                       bs_precision_name((bs_precision)p));
        return -2;
    }
    return p;
}

/* precision: -1, the model as it is loaded, else the default_precision
 * setting (or serve --precision); else that one, loading the model again
 * when it runs in another. */
static void do_load(bs_request *req, bs_response *res, const char *name, int precision)
{
    /* Through the task endpoints' registry, so that the model loaded here
     * is the one tasks use. */
    bs_response tmp = {0};
    bs_buf_init(&tmp.body);
    bs_task_model tm;
    bs_err e = {0};
    int rc = bs_tasks_acquire_at(req, &tmp, name, precision, &tm, &e);
    /* Asked for explicitly: the LRU leaves it alone until it is unloaded. */
    if (!rc || rc == BS_EBUSY) bs_tasks_pin(req, name);
    int now = bs_registry_option(req->server->serving->reg, name, NULL);
    if (now < 0) now = bs_serving_default_precision(req->server);
    const char *prec = bs_precision_name((bs_precision)now);
    if (!rc) {
        bs_tasks_release(req, &tm);
        bs_buf_free(&tmp.body);
        bs_reply_ok(
            res, 200,
            json_pack("{s:s, s:s, s:s}", "model_name", name, "state", "loaded", "precision", prec),
            "loaded");
        return;
    }
    if (rc == BS_EBUSY) {
        bs_buf_free(&tmp.body);
        bs_response_header(res, "Retry-After", "1");
        bs_reply_ok(
            res, 202,
            json_pack("{s:s, s:s, s:s}", "model_name", name, "state", "loading", "precision", prec),
            "loading in the background");
        return;
    }
    /* The task layer's answer (404 unknown model, 500 cannot load) stands. */
    bs_buf_free(&res->body);
    *res = tmp;
}

void bs_handle_models_load_named(bs_request *req, bs_response *res)
{
    char buf[BS_HUB_NAME_MAX * 2];
    const char *name = model_param(req, res, buf, sizeof buf);
    if (!name) return;
    /* The body is optional: {"precision": "int8"} pins this model's precision. */
    int precision = -1;
    if (req->body_len) {
        json_t *body = bs_request_json(req, res);
        if (!body) return;
        if (!json_is_object(body)) {
            bs_reply_error(res, 400, "Invalid request", "the body must be a JSON object");
            return;
        }
        const char *k;
        json_t *v;
        json_object_foreach(body, k, v)
        {
            if (strcmp(k, "precision")) {
                bs_reply_error(res, 400, "Invalid request",
                               "field '%.64s' is not known here (the body may hold 'precision')",
                               k);
                return;
            }
        }
        if ((precision = body_precision(res, body)) == -2) return;
    }
    do_load(req, res, name, precision);
}

void bs_handle_models_load(bs_request *req, bs_response *res)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return;
    const char *name = opt_string(body, "model_name");
    bs_err e = {0};
    if (!name || bs_hub_name_check(name, &e)) {
        bs_reply_error(res, 400, "Invalid model name", "%s",
                       name ? e.msg : "field 'model_name' is required");
        return;
    }
    int precision = body_precision(res, body);
    if (precision != -2) do_load(req, res, name, precision);
}

/* POST /models/{name}/unload: frees the loaded model now when idle, else
 * as soon as its last in-flight request ends (those requests complete
 * normally); later requests load it again. */
void bs_handle_models_unload(bs_request *req, bs_response *res)
{
    char buf[BS_HUB_NAME_MAX * 2];
    const char *name = model_param(req, res, buf, sizeof buf);
    if (!name) return;
    bool deferred = false;
    bs_err e = {0};
    int rc = bs_tasks_unload(req, name, &deferred, &e);
    if (rc == BS_ENOTFOUND) {
        bs_reply_error(res, 404, "Model not loaded", "model %s is not loaded", name);
        return;
    }
    if (rc) {
        bs_reply_err(req, res, &e);
        return;
    }
    bs_reply_ok(
        res, 200,
        json_pack("{s:s, s:s}", "model_name", name, "state", deferred ? "unloading" : "not_loaded"),
        deferred ? "unloads when its in-flight requests end" : "unloaded");
}

static void do_delete(bs_request *req, bs_response *res, const char *name)
{
    bs_err e = {0};
    bs_server *srv = req->server;
    if (bs_downloads_running(srv->models, name)) {
        bs_reply_error(res, 409, "Download in progress", "model %s is being downloaded", name);
        return;
    }
    /* Unloaded first: its in-flight requests finish on the model in memory
     * (the registry frees it after their release), new ones find no folder. */
    bool deferred = false;
    if (bs_tasks_unload(req, name, &deferred, &e) && e.code != BS_ENOTFOUND) {
        bs_reply_err(req, res, &e);
        return;
    }
    memset(&e, 0, sizeof e);
    if (bs_hub_remove(srv->serving->hub, name, &e)) {
        if (e.code == BS_EBUSY)
            bs_reply_error(res, 409, "Busy", "%s", e.msg);
        else
            bs_reply_err(req, res, &e);
        return;
    }
    bs_reply_ok(res, 200, json_pack("{s:s, s:b}", "model_name", name, "deleted", 1), "deleted");
}

void bs_handle_models_delete(bs_request *req, bs_response *res)
{
    char buf[BS_HUB_NAME_MAX * 2];
    const char *name = model_param(req, res, buf, sizeof buf);
    if (name) do_delete(req, res, name);
}

void bs_handle_models_downloaded_delete(bs_request *req, bs_response *res)
{
    const char *name = bs_request_query(req, "model_name");
    bs_err e = {0};
    if (!name || bs_hub_name_check(name, &e)) {
        bs_reply_error(res, 400, "Invalid model name", "%s",
                       name ? e.msg : "query argument 'model_name' is required");
        return;
    }
    do_delete(req, res, name);
}

void bs_models_delete_named(bs_request *req, bs_response *res, const char *name)
{
    bs_err e = {0};
    if (bs_hub_name_check(name, &e)) {
        bs_reply_error(res, 400, "Invalid model name", "%s", e.msg);
        return;
    }
    do_delete(req, res, name);
}

void bs_handle_models_available(bs_request *req, bs_response *res)
{
    const char *search = NULL, *tag = NULL;
    int64_t limit = 20;
    if (bs_request_query_int(req, res, "limit", 20, 1, 100, &limit)) return;
    search = bs_request_query(req, "search");
    tag = bs_request_query(req, "tag");
    if ((search && strlen(search) > 200) || (tag && strlen(tag) > 100)) {
        bs_reply_error(res, 400, "Invalid request", "search or tag is too long");
        return;
    }
    bs_err e = {0};
    bs_server *srv = req->server;
    json_t *out = NULL;
    if (bs_hub_search(srv->serving->hub, search, tag, (int)limit, &out, &e)) {
        if (e.code == BS_EIO || e.code == BS_EFORMAT)
            bs_reply_error(res, 502, "The Hub cannot be searched", "%s", e.msg);
        else
            bs_reply_err(req, res, &e);
        return;
    }
    bs_reply_ok(
        res, 200,
        json_pack("{s:o, s:s}", "models", out, "endpoint", bs_hub_endpoint(srv->serving->hub)),
        NULL);
}

/* One open GET /models/{name}/events stream. */
typedef struct sse {
    bs_server *srv;
    bs_request *req; /* for the state event */
    char name[BS_HUB_NAME_MAX + 1];
    int64_t after;  /* last event id sent */
    bs_buf pending; /* formatted, not yet sent */
    size_t off;
    int ended; /* the last event is in pending */
} sse;

/* The "state" event of a model that has no download running. */
static void sse_state(sse *e)
{
    json_t *map = states(e->req);
    json_t *doc = NULL;
    bs_err e2 = {0};
    const char *st = "not_cached";
    json_t *running = bs_downloads_running_names(e->srv->models);
    if (!bs_hub_info(e->srv->serving->hub, e->name, NULL, &doc, &e2))
        st = state_of(running, map, doc);
    json_t *d = json_pack("{s:s, s:s}", "model_name", e->name, "state", st);
    char *text = json_dumps(d, JSON_COMPACT);
    bs_buf_printf(&e->pending, "event: state\ndata: %s\n\n", text ? text : "null");
    free(text);
    json_decref(d);
    json_decref(doc);
    json_decref(running);
    json_decref(map);
    e->ended = 1;
}

/* bs_body_fn: sends what is pending, else waits for the job's next event
 * (a comment line every SSE_KEEPALIVE_S, so that a client that left is
 * noticed), and ends after the job's final event or when the server stops. */
static long sse_read(void *ud, char *buf, size_t max)
{
    sse *e = ud;
    while (e->off == e->pending.len) {
        if (e->ended) return 0;
        e->pending.len = e->off = 0;
        if (bs_downloads_events(e->srv->models, e->name, &e->after, SSE_KEEPALIVE_S, &e->pending,
                                &e->ended) == BS_ENOTFOUND) {
            sse_state(e);
            break;
        }
        if (e->pending.oom) return -1;
    }
    size_t n = e->pending.len - e->off;
    if (n > max) n = max;
    memcpy(buf, e->pending.data + e->off, n);
    e->off += n;
    return (long)n;
}

static void sse_free(void *ud)
{
    sse *e = ud;
    bs_buf_free(&e->pending);
    free(e);
}

/* Server-sent events of a model's download on one open connection: the
 * events after Last-Event-ID as they happen, until the final "done" or
 * "error" (or one "state" event when no download is known). The retry
 * hint lets EventSource reconnect and resume where it left off. */
void bs_handle_models_events(bs_request *req, bs_response *res)
{
    char buf[BS_HUB_NAME_MAX * 2];
    const char *name = model_param(req, res, buf, sizeof buf);
    if (!name) return;
    const char *lei = bs_request_header(req, "Last-Event-ID");
    if (!lei) lei = bs_request_query(req, "last_event_id");
    sse *e = calloc(1, sizeof *e);
    if (!e) {
        bs_reply_error(res, 503, "Out of memory", "cannot open the event stream");
        return;
    }
    e->srv = req->server;
    e->req = req;
    snprintf(e->name, sizeof e->name, "%s", name);
    e->after = lei ? strtoll(lei, NULL, 10) : 0;
    bs_buf_init(&e->pending);
    bs_buf_puts(&e->pending, "retry: 500\n\n");
    res->status = 200;
    res->content_type = "text/event-stream";
    bs_response_header(res, "Cache-Control", "no-cache");
    bs_response_stream(res, sse_read, e, sse_free);
}
