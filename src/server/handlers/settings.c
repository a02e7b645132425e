/* /settings: the registry of known settings with their current values.
 * A PUT is checked against the registry, stored, and the cache refreshed
 * at once, so the change applies to the next request without a restart. */
#include "server/context.h"
#include "server/handlers/handlers.h"

#include <string.h>

const bs_field_spec bs_body_setting_put[] = {
    {"value", BS_T_ANY, BS_REQUIRED, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* The registry entry merged with the stored document (when there is one). */
static json_t *describe(struct bs_server *srv, const bs_setting_def *def, const json_t *stored)
{
    json_t *d = json_object();
    json_object_set_new(d, "setting_key", json_string(def->key));
    json_t *value = bs_settings_value(srv->settings, def->key);
    if (!strcmp(def->key, "hf_token")) {
        /* Write-only: whether it is set, never what it is. */
        json_object_set_new(d, "is_set", json_boolean(json_string_length(value) > 0));
        json_decref(value);
        value = json_null();
    }
    json_object_set_new(d, "setting_value", value);
    json_object_set_new(d, "setting_type", json_string(bs_settings_type_name(def->type)));
    json_object_set_new(d, "description", json_string(def->description));
    json_object_set_new(d, "default", json_loads(def->default_json, JSON_DECODE_ANY, NULL));
    if (def->max > def->min) {
        json_object_set_new(d, "min",
                            def->type == BS_SETTING_INTEGER ? json_integer((json_int_t)def->min)
                                                            : json_real(def->min));
        json_object_set_new(d, "max",
                            def->type == BS_SETTING_INTEGER ? json_integer((json_int_t)def->max)
                                                            : json_real(def->max));
    }
    static const char *const keep[] = {"created_at", "updated_at", "updated_by", NULL};
    for (const char *const *k = keep; *k; k++) {
        json_t *v = json_object_get(stored, *k);
        if (v) json_object_set(d, *k, v);
    }
    json_object_set_new(d, "is_default", json_boolean(stored == NULL));
    return d;
}

void bs_handle_settings_list(bs_request *req, bs_response *res)
{
    struct bs_server *srv = req->server;
    json_t *stored = NULL;
    bs_err err = {0};
    if (bs_store_settings_list(srv->store, &stored, &err) ||
        bs_settings_refresh(srv->settings, srv->store, &err)) {
        json_decref(stored);
        bs_reply_err(req, res, &err);
        return;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < bs_settings_registry_count; i++) {
        const bs_setting_def *def = &bs_settings_registry[i];
        const json_t *doc = NULL;
        size_t j;
        json_t *d;
        json_array_foreach(stored, j, d)
        {
            const char *k = json_string_value(json_object_get(d, "setting_key"));
            if (k && !strcmp(k, def->key)) doc = d;
        }
        json_array_append_new(out, describe(srv, def, doc));
    }
    json_decref(stored);
    bs_reply_ok(res, 200, json_pack("{s:o}", "settings", out), NULL);
}

static const bs_setting_def *find_def(bs_request *req, bs_response *res)
{
    const char *key = bs_request_param(req, "key");
    const bs_setting_def *def = key ? bs_settings_def(key) : NULL;
    if (!def)
        bs_reply_error(res, 404, "Unknown setting",
                       "no setting named '%.100s' (GET /settings lists them)", key ? key : "");
    return def;
}

void bs_handle_settings_get(bs_request *req, bs_response *res)
{
    const bs_setting_def *def = find_def(req, res);
    if (!def) return;
    json_t *doc = NULL;
    bs_err err = {0};
    /* Read through to the store: another process may have changed it. */
    int rc = bs_store_settings_get(req->server->store, def->key, &doc, &err);
    if (rc == BS_ENOTFOUND || !rc)
        rc = bs_settings_refresh(req->server->settings, req->server->store, &err);
    if (rc) {
        json_decref(doc);
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200, describe(req->server, def, doc), NULL);
    json_decref(doc);
}

void bs_handle_settings_put(bs_request *req, bs_response *res)
{
    struct bs_server *srv = req->server;
    const bs_setting_def *def = find_def(req, res);
    if (!def) return;
    json_t *norm = NULL;
    char detail[512];
    if (bs_settings_check(def, json_object_get(req->json, "value"), &norm, detail, sizeof detail)) {
        bs_reply_error(res, 400, "Invalid setting value", "%s", detail);
        return;
    }
    json_t *doc = NULL;
    bs_err err = {0};
    int rc = bs_store_settings_put(srv->store, def->key, norm, bs_settings_type_name(def->type),
                                   def->description, req->auth.key_name, &doc, &err);
    json_decref(norm);
    if (!rc) rc = bs_settings_refresh(srv->settings, srv->store, &err);
    if (rc) {
        json_decref(doc);
        bs_reply_err(req, res, &err);
        return;
    }
    bs_reply_ok(res, 200, describe(srv, def, doc), "Setting updated");
    json_decref(doc);
}
