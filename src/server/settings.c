/* The settings registry and its cache. Hot settings (body limit, rate
 * limits, session TTL) are read on every request, so the cache is a
 * read-mostly snapshot under a rwlock instead of a store read each time. */
#include "server/settings.h"
#include "bertstudio/model.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
const bs_setting_def bs_settings_registry[] = {
    {"max_custom_tasks_per_user", BS_SETTING_INTEGER, "50", 0, 1000000,
     "Maximum number of custom tasks one API key may save"},
    {"custom_task_memory_mb", BS_SETTING_INTEGER, "512", 64, 65536,
     "Address space of one custom task run, in MB (RLIMIT_AS of the jailed child)"},
    {"custom_task_timeout_seconds", BS_SETTING_FLOAT, "10", 0.1, 3600,
     "Wall time of one custom task run, in seconds (the child is killed after it)"},
    {"custom_task_max_output_bytes", BS_SETTING_INTEGER, "1048576", 1024, 67108864,
     "Largest result of one custom task run (its JSON), in bytes"},
    {"session_ttl_hours", BS_SETTING_FLOAT, "8.0", 1.0 / 3600, 8760,
     "Session lifetime in hours since the last activity (fractions allowed, minimum 1 second)"},
    {"log_retention_days", BS_SETTING_INTEGER, "90", 1, 36500,
     "Execution logs older than this are deleted by the sweeper"},
    {"session_retention_days", BS_SETTING_INTEGER, "30", 1, 36500,
     "Sessions expired for longer than this are deleted by the sweeper"},
    {"log_input_text", BS_SETTING_BOOLEAN, "false", 0, 0,
     "Store the input text in execution logs (otherwise only its length and a keyed hash)"},
    {"max_request_bytes", BS_SETTING_INTEGER, "10485760", 1024, 1073741824,
     "Largest request body accepted, in bytes (413 beyond)"},
    {"max_concurrent_downloads", BS_SETTING_INTEGER, "4", 1, 64,
     "Hub downloads running at once (more are answered 429 + Retry-After)"},
    {"max_body_memory_bytes", BS_SETTING_INTEGER, "268435456", 1048576, 1e12,
     "Request bodies buffered at once by the whole server, in bytes (503 + Retry-After beyond)"},
    /* Connections (issue 17 H1; server/conns.h) */
    {"max_connections", BS_SETTING_INTEGER, "4096", 16, 1000000,
     "Connections held at once (bounded by the open-file limit); beyond, the oldest idle one is "
     "closed, or the new one's request is answered 503 + Retry-After and closed"},
    {"max_connections_per_ip", BS_SETTING_INTEGER, "256", 1, 1000000,
     "Connections held at once from one client IP (trusted proxies exempt); beyond, that IP's "
     "oldest idle one is closed, or the new one's request is answered 429 (never for a valid "
     "admin key)"},
    {"header_timeout_seconds", BS_SETTING_FLOAT, "10", 0.1, 3600,
     "A request's headers must arrive within this time of the connection opening or of the "
     "previous answer (keep-alive), or the connection is closed"},
    {"min_body_bytes_per_second", BS_SETTING_INTEGER, "1024", 0, 1000000000,
     "Slowest request body accepted, in bytes/s over each body_rate_window_seconds; slower, the "
     "connection is closed (0 = no minimum)"},
    {"body_rate_window_seconds", BS_SETTING_FLOAT, "10", 0.1, 3600,
     "The window over which min_body_bytes_per_second is measured (the first one starts when "
     "the headers arrive: a grace period)"},
    {"per_ip_requests_per_minute", BS_SETTING_INTEGER, "100", 1, 100000000,
     "Requests per minute accepted from one client IP address"},
    {"default_rate_limits", BS_SETTING_JSON,
     "{\"requests_per_minute\":100,\"requests_per_hour\":1000,\"custom_tasks_per_hour\":50}", 0, 0,
     "Rate limits given to new API keys created without rate_limits"},
    {"max_loaded_models", BS_SETTING_INTEGER, "8", 1, 1024,
     "Models kept loaded in memory at once (least recently used unloaded first; explicit loads stay until unloaded). 8 fits every playground of the studio in turn"},
    {"model_cache_max_bytes", BS_SETTING_INTEGER, "10737418240", 0, 1e15,
     "Disk space for downloaded models, in bytes (0 = unlimited)"},
    {"max_batch_tokens", BS_SETTING_INTEGER, "8192", 16, 16777216,
     "Most tokens the batcher puts in one forward pass"},
    {"stream_answer_numbers", BS_SETTING_INTEGER, "65536", 0, 1e12,
     "Task answers holding more numbers than this are streamed (chunked) rather than built whole "
     "in memory (0 = never)"},
    {"batch_max_queue", BS_SETTING_INTEGER, "256", 1, 65536,
     "Requests a model's batcher holds waiting at once (more are answered 503 + Retry-After)"},
    {"default_precision", BS_SETTING_STRING, "\"\"", 0, 0,
     "Dense-layer arithmetic of models loaded without a precision of their own: f32, fp16, bf16 "
     "or int8 (\"\": serve --precision). Applies to the next load; loaded models keep theirs"},
    {"cors_allowed_origins", BS_SETTING_JSON, "[]", 0, 0,
     "Origins (\"https://host:port\") whose browser scripts may call the API"},
    {"public_origin", BS_SETTING_STRING, "\"\"", 0, 0,
     "The origin (\"https://host:port\") browsers use to reach the studio, when it is not the "
     "listening address (behind a proxy); session-cookie writes must come from it"},
    {"trusted_proxies", BS_SETTING_JSON, "[]", 0, 0,
     "IP addresses of reverse proxies whose X-Forwarded-For is believed for the client IP"},
    {"usage_flush_seconds", BS_SETTING_INTEGER, "5", 1, 3600,
     "How often API key usage counters are written to the store"},
    {"sweep_interval_seconds", BS_SETTING_INTEGER, "3600", 1, 604800,
     "How often old execution logs and sessions are deleted"},
    {"default_model", BS_SETTING_STRING, "\"bert-base-uncased\"", 0, 0,
     "The model of the original product's task routes (/embed, /fill-mask, ...) when a request "
     "names none"},
    {"original_get_shapes", BS_SETTING_BOOLEAN, "false", 0, 0,
     "GETs on paths shared with the original product's API (/models/*, /settings, /api-keys, "
     "/auth/check) answer in its shapes (docs/compat.md)"},
    {"hf_token", BS_SETTING_STRING, "\"\"", 0, 0,
     "HuggingFace token for downloads of gated or private models (write-only; empty: the "
     "HF_TOKEN environment variable)"},
    {"notify_download_complete", BS_SETTING_BOOLEAN, "true", 0, 0,
     "The studio tells when a model download completes"},
    {"notify_on_error", BS_SETTING_BOOLEAN, "true", 0, 0, "The studio tells about errors"},
};
/* clang-format on */
const size_t bs_settings_registry_count =
    sizeof bs_settings_registry / sizeof *bs_settings_registry;

struct bs_settings {
    pthread_rwlock_t lock;
    json_t *values; /* key -> current value */
};

const bs_setting_def *bs_settings_def(const char *key)
{
    for (size_t i = 0; i < bs_settings_registry_count; i++)
        if (!strcmp(bs_settings_registry[i].key, key)) return &bs_settings_registry[i];
    return NULL;
}

const char *bs_settings_type_name(bs_setting_type t)
{
    static const char *names[] = {"integer", "float", "boolean", "string", "json"};
    return names[t];
}

static int check_rate_limits(const json_t *v, char *detail, size_t len)
{
    static const char *known[] = {"requests_per_minute", "requests_per_hour",
                                  "custom_tasks_per_hour"};
    if (!json_is_object(v)) {
        snprintf(detail, len, "default_rate_limits must be an object");
        return -1;
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        size_t i = 0;
        while (i < 3 && strcmp(known[i], k)) i++;
        if (i == 3) {
            snprintf(detail, len, "default_rate_limits: unknown limit '%.64s'", k);
            return -1;
        }
        if (!json_is_integer(x) || json_integer_value(x) < 1) {
            snprintf(detail, len, "default_rate_limits.%s must be a positive integer", k);
            return -1;
        }
    }
    return 0;
}

/* An origin: scheme, host, optional port, nothing else. */
static int origin_shape_ok(const char *s)
{
    return s && (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8)) && strlen(s) <= 200 &&
           !strchr(s + 8, '/') && !strpbrk(s, " \t\r\n,");
}

static int check_origins(const json_t *v, char *detail, size_t len)
{
    if (!json_is_array(v) || json_array_size(v) > 64) {
        snprintf(detail, len, "cors_allowed_origins must be an array of at most 64 origins");
        return -1;
    }
    size_t i;
    json_t *o;
    json_array_foreach(v, i, o)
    {
        const char *s = json_string_value(o);
        if (!origin_shape_ok(s)) {
            snprintf(detail, len,
                     "cors_allowed_origins[%zu] must be an origin like \"https://host:port\" "
                     "(scheme, host, optional port, no path)",
                     i);
            return -1;
        }
    }
    return 0;
}

static int check_ips(const json_t *v, char *detail, size_t len)
{
    if (!json_is_array(v) || json_array_size(v) > 64) {
        snprintf(detail, len, "trusted_proxies must be an array of at most 64 IP addresses");
        return -1;
    }
    size_t i;
    json_t *o;
    json_array_foreach(v, i, o)
    {
        unsigned char bin[16];
        const char *s = json_string_value(o);
        if (!s || (inet_pton(AF_INET, s, bin) != 1 && inet_pton(AF_INET6, s, bin) != 1)) {
            snprintf(detail, len, "trusted_proxies[%zu] must be an IPv4 or IPv6 address", i);
            return -1;
        }
    }
    return 0;
}

/* default_precision: "" (serve --precision) or a precision this CPU runs. */
static int check_precision(const char *p, char *detail, size_t len)
{
    int prec = *p ? bs_precision_parse(p) : 0;
    if (prec < 0)
        snprintf(detail, len,
                 "default_precision: \"%.32s\" is not f32, fp16, bf16 or int8 (or \"\")", p);
    else if (!bs_precision_supported((bs_precision)prec))
        snprintf(detail, len, "default_precision: %s is not supported by this CPU's kernel path",
                 p);
    else
        return 0;
    return -1;
}

/* An HF token goes into an Authorization header: printable ASCII, no
 * spaces, bounded (the download job keeps a copy of fixed size). */
static int token_shape_ok(const char *t)
{
    size_t n = strlen(t);
    if (n > 256) return 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] <= 0x20 || t[i] >= 0x7f) return 0;
    return 1;
}

int bs_settings_check(const bs_setting_def *def, const json_t *value, json_t **normalized,
                      char *detail, size_t len)
{
    json_t *norm = NULL;
    switch (def->type) {
    case BS_SETTING_INTEGER:
        if (!json_is_integer(value)) {
            snprintf(detail, len, "setting %s is an integer", def->key);
            return -1;
        }
        norm = json_incref((json_t *)value);
        break;
    case BS_SETTING_FLOAT:
        if (!json_is_number(value) || !isfinite(json_number_value(value))) {
            snprintf(detail, len, "setting %s is a number", def->key);
            return -1;
        }
        norm = json_real(json_number_value(value));
        break;
    case BS_SETTING_BOOLEAN:
        if (!json_is_boolean(value)) {
            snprintf(detail, len, "setting %s is a boolean", def->key);
            return -1;
        }
        norm = json_incref((json_t *)value);
        break;
    case BS_SETTING_STRING:
        if (!json_is_string(value)) {
            snprintf(detail, len, "setting %s is a string", def->key);
            return -1;
        }
        if (!strcmp(def->key, "public_origin") && *json_string_value(value) &&
            !origin_shape_ok(json_string_value(value))) {
            snprintf(detail, len,
                     "public_origin must be \"\" or an origin like \"https://host:port\" (scheme, "
                     "host, optional port, no path)");
            return -1;
        }
        if (!strcmp(def->key, "hf_token") && !token_shape_ok(json_string_value(value))) {
            snprintf(detail, len,
                     "hf_token must be \"\" or a token of 1-256 printable ASCII characters "
                     "without spaces");
            return -1;
        }
        if (!strcmp(def->key, "default_precision") &&
            check_precision(json_string_value(value), detail, len))
            return -1;
        if (!strcmp(def->key, "default_model") && !*json_string_value(value)) {
            snprintf(detail, len, "default_model must name a model");
            return -1;
        }
        norm = json_incref((json_t *)value);
        break;
    case BS_SETTING_JSON:
        if (!strcmp(def->key, "default_rate_limits") && check_rate_limits(value, detail, len))
            return -1;
        if (!strcmp(def->key, "cors_allowed_origins") && check_origins(value, detail, len))
            return -1;
        if (!strcmp(def->key, "trusted_proxies") && check_ips(value, detail, len)) return -1;
        norm = json_deep_copy(value);
        break;
    }
    if (def->max > def->min && json_is_number(value)) {
        double x = json_number_value(value);
        if (x < def->min || x > def->max) {
            json_decref(norm);
            snprintf(detail, len, "setting %s: %g is outside the allowed range %g to %g", def->key,
                     x, def->min, def->max);
            return -1;
        }
    }
    if (!norm) {
        snprintf(detail, len, "out of memory");
        return -1;
    }
    *normalized = norm;
    return 0;
}

static json_t *defaults(void)
{
    json_t *o = json_object();
    for (size_t i = 0; i < bs_settings_registry_count; i++)
        json_object_set_new(
            o, bs_settings_registry[i].key,
            json_loads(bs_settings_registry[i].default_json, JSON_DECODE_ANY, NULL));
    return o;
}

bs_settings *bs_settings_new(void)
{
    bs_settings *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_rwlock_init(&c->lock, NULL);
    c->values = defaults();
    return c;
}

void bs_settings_free(bs_settings *c)
{
    if (!c) return;
    json_decref(c->values);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

int bs_settings_refresh(bs_settings *c, bs_store *s, bs_err *err)
{
    json_t *list = NULL;
    int rc = bs_store_settings_list(s, &list, err);
    if (rc) return rc;
    json_t *values = defaults();
    size_t i;
    json_t *doc;
    json_array_foreach(list, i, doc)
    {
        const char *key = json_string_value(json_object_get(doc, "setting_key"));
        const bs_setting_def *def = key ? bs_settings_def(key) : NULL;
        if (!def) continue; /* settings of other components, not ours */
        json_t *norm;
        char detail[256];
        if (bs_settings_check(def, json_object_get(doc, "setting_value"), &norm, detail,
                              sizeof detail)) {
            bs_log_warn("settings", "stored value ignored, default used: %s", detail);
            continue;
        }
        json_object_set_new(values, key, norm);
    }
    json_decref(list);
    pthread_rwlock_wrlock(&c->lock);
    json_t *old = c->values;
    c->values = values;
    pthread_rwlock_unlock(&c->lock);
    json_decref(old);
    return 0;
}

json_t *bs_settings_value(bs_settings *c, const char *key)
{
    pthread_rwlock_rdlock(&c->lock);
    json_t *v = json_incref(json_object_get(c->values, key));
    pthread_rwlock_unlock(&c->lock);
    return v;
}

int64_t bs_settings_int(bs_settings *c, const char *key)
{
    pthread_rwlock_rdlock(&c->lock);
    json_t *v = json_object_get(c->values, key);
    int64_t x = json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)json_number_value(v);
    pthread_rwlock_unlock(&c->lock);
    return x;
}

double bs_settings_float(bs_settings *c, const char *key)
{
    pthread_rwlock_rdlock(&c->lock);
    double x = json_number_value(json_object_get(c->values, key));
    pthread_rwlock_unlock(&c->lock);
    return x;
}

bool bs_settings_bool(bs_settings *c, const char *key)
{
    pthread_rwlock_rdlock(&c->lock);
    bool x = json_is_true(json_object_get(c->values, key));
    pthread_rwlock_unlock(&c->lock);
    return x;
}
