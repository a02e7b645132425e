/* The original product's API where it is not the model cache (see
 * compat_models.c): what tells its requests from ours on a shared path,
 * GET /stats, its settings object, its /api-keys, /auth/check, /logout,
 * the task routes' FastAPI errors, and OpenAI's GET /v1/models/{id}.
 * Each answer is built from ours (same checks, same store), reshaped. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "server/context.h"
#include "server/guard.h"
#include "server/handlers/compat.h"
#include "server/handlers/handlers.h"
#include "server/handlers/tasks.h"

/* ── telling the two APIs apart (server/routes.c's variants) ── */

/* The body as JSON without answering (a bad body falls through to our
 * route, which answers its 400). */
static json_t *peek_json(bs_request *req)
{
    if (req->json) return req->json;
    if (req->body_len == 0) return NULL;
    bs_response scratch = {0};
    bs_buf_init(&scratch.body);
    json_t *j = bs_request_json(req, &scratch);
    bs_buf_free(&scratch.body);
    return j;
}

int bs_compat_is_model_id_body(bs_request *req)
{
    /* Routing comes before authentication: only a body naming the field is
     * parsed here (ours is parsed after it, as before). */
    static const char field[] = "\"model_id\"";
    if (!req->json && !memmem(req->body, req->body_len, field, sizeof field - 1)) return 0;
    json_t *b = peek_json(req);
    return json_is_object(b) && json_object_get(b, "model_id") && !json_object_get(b, "model_name");
}

int bs_compat_is_author_model_query(bs_request *req)
{
    return bs_request_query(req, "author") && bs_request_query(req, "model") &&
           !bs_request_query(req, "model_name");
}

int bs_compat_is_bodyless(bs_request *req)
{
    /* An empty body announced as JSON is ours, and answers its 400. */
    return req->body_len == 0 && !bs_request_header(req, "Content-Type");
}

int bs_compat_is_original_get(bs_request *req)
{
    const char *shape = bs_request_query(req, "shape");
    if (shape) return !strcmp(shape, "original");
    if (!req->server) return 0; /* a request made up by a test */
    return bs_settings_bool(req->server->settings, "original_get_shapes");
}

int bs_compat_is_anonymous(bs_request *req)
{
    char cookie[160];
    return bs_compat_is_original_get(req) && !bs_request_header(req, "Authorization") &&
           !bs_request_header(req, "X-API-Key") && !bs_request_query(req, "api_key") &&
           bs_request_cookie(req, "bs_session", cookie, sizeof cookie) != 0;
}

/* ── shared helpers ── */

void bs_compat_detail_only(bs_response *res)
{
    bs_reply_detail_only(res);
}

void bs_compat_message(bs_response *res, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *s = json_string(msg);
    bs_reply_json(res, status, json_pack("{s:o}", "message", s ? s : json_string("")));
}

/* ── the task routes: default model, FastAPI errors ── */

void bs_compat_default_model(bs_request *req, json_t *body)
{
    /* Absent or null, as the original's Optional[str]; another type stays
     * for the field check to refuse. */
    json_t *given = json_object_get(body, "model");
    if (!json_is_object(body) || (given && !json_is_null(given))) return;
    json_t *m = bs_settings_value(req->server->settings, "default_model");
    if (json_is_string(m) && json_string_length(m))
        json_object_set_new(body, "model", m);
    else
        json_decref(m);
}

static atomic_size_t embeddings_generated;

void bs_compat_count_embeddings(size_t n)
{
    atomic_fetch_add(&embeddings_generated, n);
}

/* The original's task routes answer errors as FastAPI's {"detail"},
 * written so from the start (res->detail_errors). */
#define DETAIL_ONLY(name, inner)                                                                   \
    void name(bs_request *req, bs_response *res)                                                   \
    {                                                                                              \
        res->detail_errors = 1;                                                                    \
        inner(req, res);                                                                           \
    }

DETAIL_ONLY(bs_handle_compat_classify, bs_handle_legacy_classify)
DETAIL_ONLY(bs_handle_compat_qa, bs_handle_legacy_qa)
DETAIL_ONLY(bs_handle_compat_ner, bs_handle_legacy_ner)
DETAIL_ONLY(bs_handle_compat_summarize, bs_handle_legacy_summarize)
DETAIL_ONLY(bs_handle_compat_features, bs_handle_legacy_features)

void bs_handle_compat_embed(bs_request *req, bs_response *res)
{
    res->detail_errors = 1;
    bs_handle_legacy_embed(req, res);
    if (res->status == 200) {
        json_t *t = json_object_get(req->json, "texts");
        if (!t) t = json_object_get(req->json, "text");
        bs_compat_count_embeddings(json_is_array(t) ? json_array_size(t) : 1);
    }
}

/* The original answered 400 to a text without a mask (ours: 422). */
void bs_handle_compat_fill_mask(bs_request *req, bs_response *res)
{
    res->detail_errors = 1;
    bs_handle_legacy_fill_mask(req, res);
    if (res->status == 422) res->status = 400;
}

/* ── GET /stats: public, counts only ── */

void bs_handle_compat_stats(bs_request *req, bs_response *res)
{
    json_t *models = bs_tasks_model_list(req, res);
    if (!models) {
        bs_compat_detail_only(res);
        return;
    }
    json_int_t loaded = 0;
    size_t i;
    json_t *d;
    json_array_foreach(models, i, d) loaded +=
        !strcmp(json_string_value(json_object_get(d, "state")), "loaded");
    bs_batch_stats s;
    bs_tasks_batch_stats(req, &s);
    char avail[32];
    snprintf(avail, sizeof avail, "%zu", json_array_size(models));
    json_decref(models);
    bs_reply_json(res, 200,
                  json_pack("{s:I, s:s, s:I, s:I}", "loaded_models", loaded, "available_models",
                            avail, "embeddings_generated",
                            (json_int_t)atomic_load(&embeddings_generated), "playground_sessions",
                            (json_int_t)(s.requests + s.direct)));
}

/* ── GET/POST /settings: the original's settings object ── */

static json_t *setting(bs_request *req, const char *key)
{
    return bs_settings_value(req->server->settings, key);
}

static int setting_bool(bs_request *req, const char *key)
{
    return bs_settings_bool(req->server->settings, key);
}

/* server_url: public_origin, else the listening address. */
static json_t *server_url(bs_request *req)
{
    json_t *pub = setting(req, "public_origin");
    if (json_is_string(pub) && json_string_length(pub)) return pub;
    json_decref(pub);
    const char *host = bs_request_header(req, "Host");
    char url[300];
    snprintf(url, sizeof url, "%s://%s", req->server->tls ? "https" : "http",
             host ? host : "127.0.0.1");
    json_t *s = json_string(url);
    return s ? s : json_string("");
}

static void models_dir(bs_request *req, char *out, size_t len)
{
    snprintf(out, len, "%s", bs_hub_models_dir(req->server->serving->hub));
}

void bs_handle_compat_settings_get(bs_request *req, bs_response *res)
{
    bs_err err = {0};
    if (bs_settings_refresh(req->server->settings, req->server->store, &err)) {
        bs_reply_err(req, res, &err);
        bs_compat_detail_only(res);
        return;
    }
    char dir[4096];
    models_dir(req, dir, sizeof dir);
    /* hf_token is write-only: never echoed back. */
    json_t *out = json_pack("{s:n, s:o, s:s, s:{s:b, s:b}, s:{s:b, s:b}}", "hf_token", "server_url",
                            server_url(req), "model_cache_dir", dir, "notifications",
                            "download_complete", setting_bool(req, "notify_download_complete"),
                            "on_error", setting_bool(req, "notify_on_error"), "security",
                            "verify_checksums", 1, "sandbox_mode", 1);
    bs_reply_json(res, 200, out);
}

/* One change of a POST /settings: the typed setting key gets value. */
typedef struct change {
    const char *key;
    json_t *value;
} change;

static int bad_setting(bs_response *res, const char *fmt, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, what);
    bs_reply_json(res, 400, json_pack("{s:s}", "detail", msg));
    return -1;
}

/* The original's booleans of group (notifications, security) onto keys. */
static int map_group(bs_response *res, const json_t *body, const char *group,
                     const char *const names[], const char *const keys[], change *ch, size_t *n)
{
    json_t *g = json_object_get(body, group);
    if (!g || json_is_null(g)) return 0;
    if (!json_is_object(g)) return bad_setting(res, "%s: must be an object", group);
    const char *k;
    json_t *v;
    json_object_foreach(g, k, v)
    {
        size_t i = 0;
        while (names[i] && strcmp(names[i], k)) i++;
        if (!names[i] || !json_is_boolean(v)) {
            char what[200];
            snprintf(what, sizeof what, "%.60s.%.100s", group, k);
            return bad_setting(res, "%s: not a known boolean setting", what);
        }
        if (!keys[i]) {
            /* Always on here: downloads are checked against the Hub's
             * SHA-256 of each file, custom tasks run in the sandbox. */
            if (!json_is_true(v))
                return bad_setting(res,
                                   "security.%s: always on in this server (downloads are "
                                   "checked, custom tasks run in the sandbox)",
                                   k);
            continue;
        }
        ch[(*n)++] = (change){keys[i], v};
    }
    return 0;
}

void bs_handle_compat_settings_post(bs_request *req, bs_response *res)
{
    json_t *body = bs_request_json(req, res);
    if (!body) {
        bs_compat_detail_only(res);
        return;
    }
    if (!json_is_object(body)) {
        bad_setting(res, "%s", "the body must be a JSON object");
        return;
    }
    static const char *const known[] = {"hf_token",      "server_url", "model_cache_dir",
                                        "notifications", "security",   NULL};
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        size_t i = 0;
        while (known[i] && strcmp(known[i], k)) i++;
        if (!known[i]) {
            char what[120];
            snprintf(what, sizeof what, "%.100s", k);
            bad_setting(res, "%s: not a setting of this object", what);
            return;
        }
    }
    change ch[8];
    size_t n = 0;
    json_t *tok = json_object_get(body, "hf_token"), *url = json_object_get(body, "server_url");
    json_t *dir = json_object_get(body, "model_cache_dir");
    if (tok && !json_is_null(tok)) ch[n++] = (change){"hf_token", tok};
    if (url && !json_is_null(url)) {
        if (!json_is_string(url)) {
            bad_setting(res, "%s: must be a string", "server_url");
            return;
        }
        /* The listening address itself is no setting: only a public origin. */
        json_t *now = server_url(req);
        if (!json_equal(now, url)) ch[n++] = (change){"public_origin", url};
        json_decref(now);
    }
    if (dir && !json_is_null(dir)) {
        char cur[4096];
        models_dir(req, cur, sizeof cur);
        if (!json_is_string(dir) || strcmp(json_string_value(dir), cur)) {
            bad_setting(res, "%s",
                        "model_cache_dir: the models live under the data directory (GET "
                        "/settings shows where); start the server with another --data-dir to "
                        "move them");
            return;
        }
    }
    static const char *const notif_names[] = {"download_complete", "on_error", NULL};
    static const char *const notif_keys[] = {"notify_download_complete", "notify_on_error", NULL};
    static const char *const sec_names[] = {"verify_checksums", "sandbox_mode", NULL};
    static const char *const sec_keys[] = {NULL, NULL, NULL};
    if (map_group(res, body, "notifications", notif_names, notif_keys, ch, &n) ||
        map_group(res, body, "security", sec_names, sec_keys, ch, &n))
        return;
    /* Every value is checked before any is stored: all or nothing. */
    json_t *norm[8] = {0};
    int failed = 0;
    for (size_t i = 0; i < n && !failed; i++) {
        char detail[512];
        if (bs_settings_check(bs_settings_def(ch[i].key), ch[i].value, &norm[i], detail,
                              sizeof detail)) {
            bs_reply_json(res, 400, json_pack("{s:s}", "detail", detail));
            failed = 1;
        }
    }
    bs_err err = {0};
    for (size_t i = 0; i < n && !failed; i++) {
        const bs_setting_def *def = bs_settings_def(ch[i].key);
        json_t *doc = NULL;
        if (bs_store_settings_put(req->server->store, def->key, norm[i],
                                  bs_settings_type_name(def->type), def->description,
                                  req->auth.key_name, &doc, &err)) {
            bs_reply_err(req, res, &err);
            bs_compat_detail_only(res);
            failed = 1;
        }
        json_decref(doc);
    }
    for (size_t i = 0; i < n; i++) json_decref(norm[i]);
    if (failed) return;
    if (bs_settings_refresh(req->server->settings, req->server->store, &err)) {
        bs_reply_err(req, res, &err);
        bs_compat_detail_only(res);
        return;
    }
    bs_compat_message(res, 200, "Settings updated");
}

/* ── /api-keys: {"api_keys": [...]} and a body-less POST ── */

void bs_handle_compat_keys_list(bs_request *req, bs_response *res)
{
    res->detail_errors = 1;
    json_t *data = bs_keys_list_data(req, res);
    if (!data) return;
    json_t *out = json_array();
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(data, "api_keys"), i, k)
    {
        json_t *last = json_object_get(k, "last_used");
        json_array_append_new(out,
                              json_pack("{s:O, s:O, s:b, s:O}", "id", json_object_get(k, "_id"),
                                        "created_at", json_object_get(k, "created_at"), "revoked",
                                        !json_is_true(json_object_get(k, "is_active")),
                                        "last_used_at", json_is_string(last) ? last : json_null()));
    }
    json_decref(data);
    bs_reply_json(res, 200, json_pack("{s:o}", "api_keys", out));
}

/* The original's keys served its scripts: run tasks, save custom tasks,
 * download and load models, never administer; and, as every key here,
 * they hold only what their creator holds. */
void bs_handle_compat_keys_create(bs_request *req, bs_response *res)
{
    unsigned perms =
        req->auth.perms & (BS_PERM_TASKS_EXECUTE | BS_PERM_TASKS_SAVE | BS_PERM_MODELS_DOWNLOAD);
    json_decref(req->json);
    req->json = json_pack("{s:s, s:s, s:o}", "name", "original-client", "description",
                          "made by the original product's POST /api-keys", "permissions",
                          bs_perms_to_json(perms));
    res->detail_errors = 1;
    json_t *data = bs_keys_create_doc(req, res);
    if (!data) return;
    bs_reply_json(res, 200,
                  json_pack("{s:O, s:O}", "id", json_object_get(data, "_id"), "key",
                            json_object_get(data, "api_key")));
    json_decref(data);
}

/* ── /auth/check, /logout ── */

void bs_handle_compat_auth_anonymous(bs_request *req, bs_response *res)
{
    (void)req;
    bs_reply_json(res, 200, json_pack("{s:b}", "authenticated", 0));
}

void bs_handle_compat_auth_check(bs_request *req, bs_response *res)
{
    (void)req;
    bs_reply_json(res, 200, json_pack("{s:b}", "authenticated", 1));
}

void bs_handle_compat_logout(bs_request *req, bs_response *res)
{
    bs_handle_auth_logout(req, res);
    if (res->status >= 400) {
        bs_compat_detail_only(res);
        return;
    }
    /* The Set-Cookie that ends the session stays among the headers. */
    bs_reply_json(res, 200, json_pack("{s:b}", "success", 1));
}

/* ── GET /v1/models/{id} (also {org}/{name}): OpenAI's model object ── */

void bs_handle_v1_model(bs_request *req, bs_response *res)
{
    const char *org = bs_request_param(req, "org"), *name = bs_request_param(req, "name");
    char id[600];
    snprintf(id, sizeof id, "%s%s%s", org ? org : "", org ? "/" : "", name ? name : "");
    json_t *list = bs_v1_models_list(req, res), *found = NULL;
    if (!list) return;
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        if (!strcmp(json_string_value(json_object_get(m, "id")), id)) found = json_incref(m);
    }
    json_decref(list);
    if (found)
        bs_reply_json(res, 200, found);
    else
        bs_reply_error(res, 404, "Model not found",
                       "The model '%.300s' does not exist in the local cache", id);
}
