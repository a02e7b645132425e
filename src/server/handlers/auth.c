/* POST /auth/login, POST /auth/logout, GET /auth/check: browser sessions
 * on top of API keys. The session secret travels only in the bs_session
 * cookie (set once, at login); the store keeps its hash. */
#include "server/context.h"
#include "server/guard.h"
#include "server/handlers/handlers.h"
#include "util/log.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

const bs_field_spec bs_body_login[] = {
    {"api_key", BS_T_STRING, BS_REQUIRED, 1, 200, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static json_t *whoami(const bs_request *req)
{
    return json_pack("{s:b, s:s, s:s, s:o, s:s}", "authenticated", 1, "api_key_id",
                     req->auth.api_key_id, "name", req->auth.key_name, "permissions",
                     bs_perms_to_json(req->auth.perms), "auth_method",
                     req->auth.session_doc_id[0] ? "session" : "api_key");
}

void bs_handle_auth_login(bs_request *req, bs_response *res)
{
    struct bs_server *srv = req->server;
    const char *secret = json_string_value(json_object_get(req->json, "api_key"));
    if (bs_auth_with_key(req, res, secret, NULL)) return;
    double hours = bs_settings_float(srv->settings, "session_ttl_hours");
    int64_t ttl_ms = (int64_t)(hours * 3600000.0);
    const char *ua = bs_request_header(req, "User-Agent");
    char ua_buf[512];
    snprintf(ua_buf, sizeof ua_buf, "%s", ua ? ua : "");
    char *sess_secret = NULL;
    json_t *sess = NULL;
    bs_err err = {0};
    if (bs_store_sessions_create(srv->store, req->auth.api_key_id, ttl_ms, req->client_ip,
                                 ua ? ua_buf : NULL, &sess_secret, &sess, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    /* The store opens activity_log with the "login" entry. */
    req->activity_logged = 1;
    bs_response_header(res, "Set-Cookie", "bs_session=%s; Path=/; HttpOnly; SameSite=Strict%s",
                       sess_secret, srv->tls ? "; Secure" : "");
    free(sess_secret);
    json_t *data = whoami(req);
    json_object_set_new(data, "auth_method", json_string("session"));
    json_object_set(data, "expires_at", json_object_get(sess, "expires_at"));
    json_object_set_new(data, "session_ttl_hours", json_real(hours));
    json_decref(sess);
    bs_reply_ok(res, 200, data, "Logged in; the session cookie bs_session is set");
}

void bs_handle_auth_logout(bs_request *req, bs_response *res)
{
    struct bs_server *srv = req->server;
    req->activity_logged = 1;
    if (!req->auth.session_doc_id[0]) {
        bs_reply_ok(res, 200, json_pack("{s:b}", "logged_out", 0),
                    "Authenticated by API key: there is no session to end");
        return;
    }
    bs_logq_push_activity(srv->logq, req->auth.session_doc_id, "logout", "/auth/logout", NULL);
    /* The activity entry must land before the session is ended. */
    bs_logq_flush(srv->logq);
    bs_err err = {0};
    if (bs_store_sessions_end(srv->store, req->auth.session_doc_id, &err)) {
        bs_reply_err(req, res, &err);
        return;
    }
    bs_response_header(res, "Set-Cookie",
                       "bs_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
                       srv->tls ? "; Secure" : "");
    bs_reply_ok(res, 200, json_pack("{s:b}", "logged_out", 1), "Session ended");
}

void bs_handle_auth_check(bs_request *req, bs_response *res)
{
    json_t *data = whoami(req);
    if (req->auth.session_doc_id[0]) {
        char ts[32];
        json_object_set_new(
            data, "expires_at",
            json_string(bs_time_iso8601(req->auth.session_expires_ms, ts, sizeof ts)));
    }
    bs_reply_ok(res, 200, data, NULL);
}
