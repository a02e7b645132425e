/* server: field tables, JSON depth, the router, the sliding-window rate
 * limiter, the settings registry, metrics rendering and the route table's
 * permission declarations. */
#include "testutil.h"

#include "server/authcache.h"
#include "server/context.h"
#include "server/guard.h"
#include "server/handlers/handlers.h"
#include "server/metrics.h"
#include "server/ratelimit.h"
#include "server/router.h"
#include "server/settings.h"
#include "server/validate.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const colors[] = {"red", "green", NULL};
static const bs_field_spec fields[] = {
    {"text", BS_T_TEXT, BS_REQUIRED, 1, 10, NULL},
    {"top_k", BS_T_INT, BS_NULLABLE, 1, 100, NULL},
    {"temperature", BS_T_NUMBER, 0, 0, 2, NULL},
    {"color", BS_T_STRING, 0, 0, 0, colors},
    {"tags", BS_T_STRINGS, 0, 0, 3, NULL},
    {"flag", BS_T_BOOL, 0, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static int check(const char *json, char *detail)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    int rc = bs_validate(v, fields, detail, 256);
    json_decref(v);
    return rc;
}

static void test_validate(void **state)
{
    char d[256];
    assert_int_equal(check("{\"text\": \"hi\"}", d), 0);
    assert_int_equal(check("{\"text\": [\"a\", \"b\"], \"top_k\": null, \"color\": \"red\", "
                           "\"tags\": [\"x\"], \"flag\": true, \"temperature\": 1}",
                           d),
                     0);
    assert_int_equal(check("{}", d), -1);
    assert_string_equal(d, "field 'text' is required");
    assert_int_equal(check("{\"text\": \"hi\", \"bogus\": 1}", d), -1);
    assert_non_null(strstr(d, "unknown field 'bogus'"));
    assert_non_null(strstr(d, "text, top_k"));
    assert_int_equal(check("{\"text\": 5}", d), -1);
    assert_string_equal(d, "field 'text' must be a string or an array of strings, got an integer");
    assert_int_equal(check("{\"text\": \"hi\", \"top_k\": 0}", d), -1);
    assert_non_null(strstr(d, "field 'top_k': 0 is outside the allowed range 1 to 100"));
    assert_int_equal(check("{\"text\": \"hi\", \"top_k\": 1.5}", d), -1);
    assert_non_null(strstr(d, "must be an integer, got a real number"));
    assert_int_equal(check("{\"text\": \"hi\", \"color\": \"blue\"}", d), -1);
    assert_non_null(strstr(d, "'blue' is not one of: red, green"));
    assert_int_equal(check("{\"text\": \"hi\", \"tags\": [\"a\", 1]}", d), -1);
    assert_non_null(strstr(d, "item 1 is an integer"));
    assert_int_equal(check("{\"text\": \"hi\", \"tags\": [\"a\", \"b\", \"c\", \"d\"]}", d), -1);
    assert_non_null(strstr(d, "has 4 items"));
    assert_int_equal(check("{\"text\": \"\"}", d), -1);
    assert_non_null(strstr(d, "has 0 characters"));
    /* Length counts code points, not bytes: 10 x "é" is 20 bytes. */
    assert_int_equal(check("{\"text\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                           "\xc3\xa9\xc3\xa9\xc3\xa9\"}",
                           d),
                     0);
    assert_int_equal(check("{\"text\": []}", d), -1);
    assert_int_equal(check("{\"text\": \"hi\", \"flag\": null}", d), -1);
    assert_string_equal(d, "field 'flag' may not be null");
    assert_int_equal(check("[1]", d), -1);
    assert_non_null(strstr(d, "must be a JSON object"));
}

static void test_json_depth(void **state)
{
    const char *flat = "{\"a\": [1, 2, {\"b\": \"[[[[\"}]}";
    assert_int_equal(bs_json_depth(flat, strlen(flat), 32), 3);
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    assert_true(bs_json_depth(deep, sizeof deep, 32) > 32);
    const char *esc = "[\"\\\"[[[\"]";
    assert_int_equal(bs_json_depth(esc, strlen(esc), 32), 1);
}

static void h1(bs_request *req, bs_response *res)
{
    (void)req, (void)res;
}

static void test_router(void **state)
{
    static const bs_route routes[] = {
        {"GET", "/custom-tasks", h1, 0, NULL},
        {"GET", "/custom-tasks/{id}", h1, 0, NULL},
        {"PUT", "/custom-tasks/{id}", h1, 0, NULL},
        {"POST", "/models/{name}/load", h1, 0, NULL},
    };
    bs_request req = {.method = "PUT", .path = "/custom-tasks/abc"};
    int status;
    char allow[64];
    const bs_route *r = bs_router_match(routes, 4, &req, &status, allow, sizeof allow);
    assert_ptr_equal(r, &routes[2]);
    assert_string_equal(bs_request_param(&req, "id"), "abc");
    req = (bs_request){.method = "DELETE", .path = "/custom-tasks/abc"};
    assert_null(bs_router_match(routes, 4, &req, &status, allow, sizeof allow));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "GET, PUT");
    req = (bs_request){.method = "GET", .path = "/custom-tasks/a/b"};
    assert_null(bs_router_match(routes, 4, &req, &status, allow, sizeof allow));
    assert_int_equal(status, 404);
    req = (bs_request){.method = "GET", .path = "/custom-tasks/"};
    assert_null(bs_router_match(routes, 4, &req, &status, allow, sizeof allow));
    assert_int_equal(status, 404);
    req = (bs_request){.method = "HEAD", .path = "/custom-tasks/x"};
    assert_ptr_equal(bs_router_match(routes, 4, &req, &status, allow, sizeof allow), &routes[1]);
    req = (bs_request){.method = "POST", .path = "/models/bert/load"};
    assert_ptr_equal(bs_router_match(routes, 4, &req, &status, allow, sizeof allow), &routes[3]);
    assert_string_equal(bs_request_param(&req, "name"), "bert");
}

static void test_ratelimit_decide(void **state)
{
    bs_rl_result r;
    /* Fresh counter: limit 10 per minute. */
    assert_int_equal(bs_ratelimit_decide(0, 0, 0, 10, 60000, &r), 1);
    assert_int_equal(r.remaining, 9);
    assert_int_equal(r.reset_s, 60);
    /* Current window full, nothing before: wait for the window to end. */
    assert_int_equal(bs_ratelimit_decide(0, 10, 15000, 10, 60000, &r), 0);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.retry_after_s, 46); /* 45 s left in the window, +1 */
    /* Previous window full, 30 s into this one: weighted 5 + cur 5 = 10,
     * refused; one slot frees when prev*(60-30-d)/60 < 5, i.e. d > 0. */
    assert_int_equal(bs_ratelimit_decide(10, 5, 30000, 10, 60000, &r), 0);
    assert_int_equal(r.retry_after_s, 1);
    /* Weighted previous window: 20 * (60-45)/60 = 5, + 4 = 9 < 10: allowed. */
    assert_int_equal(bs_ratelimit_decide(20, 4, 45000, 10, 60000, &r), 1);
    assert_int_equal(r.remaining, 0);
    /* 20 * 40/60 = 13 >= 10: refused until 20*(60-20-d)/60 < 10: d > 10 s. */
    assert_int_equal(bs_ratelimit_decide(20, 0, 20000, 10, 60000, &r), 0);
    assert_int_equal(r.retry_after_s, 11);
}

static void test_ratelimit_hit(void **state)
{
    bs_ratelimiter *rl = bs_ratelimit_new(1000);
    int64_t t0 = 1700000000000 - 1700000000000 % 60000; /* window start */
    bs_rl_result r;
    for (int i = 0; i < 5; i++)
        assert_int_equal(bs_ratelimit_hit(rl, "k", 5, 60000, t0 + i, &r), 1);
    assert_int_equal(r.remaining, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(bs_ratelimit_hit(rl, "k", 5, 60000, t0 + 10, &r), 0);
    /* Refused hits are not counted: in the next window, the previous one
     * holds 5, weighted 5*(60-30)/60 = 2 at 30 s, so 3 more fit. */
    int ok = 0;
    for (int i = 0; i < 10; i++) ok += bs_ratelimit_hit(rl, "k", 5, 60000, t0 + 90000, &r);
    assert_int_equal(ok, 3);
    /* Another key and another window size are other counters. */
    assert_int_equal(bs_ratelimit_hit(rl, "other", 5, 60000, t0, &r), 1);
    assert_int_equal(bs_ratelimit_hit(rl, "k", 5, 3600000, t0, &r), 1);
    assert_int_equal(bs_ratelimit_size(rl), 3);
    bs_ratelimit_gc(rl, t0 + 3 * 60000);
    assert_int_equal(bs_ratelimit_size(rl), 1); /* the hour counter is still live */
    bs_ratelimit_free(rl);
    /* Bounded memory: beyond max_entries counters are not tracked. */
    rl = bs_ratelimit_new(2);
    bs_ratelimit_hit(rl, "a", 1, 60000, t0, NULL);
    bs_ratelimit_hit(rl, "b", 1, 60000, t0, NULL);
    assert_int_equal(bs_ratelimit_hit(rl, "c", 1, 60000, t0, NULL), 1);
    assert_int_equal(bs_ratelimit_size(rl), 2);
    bs_ratelimit_free(rl);
}

typedef struct {
    bs_ratelimiter *rl;
    int64_t t0;
    int allowed;
} hit_arg;

static void *hammer(void *p)
{
    hit_arg *a = p;
    for (int i = 0; i < 2000; i++)
        a->allowed += bs_ratelimit_hit(a->rl, "shared", 1000, 60000, a->t0, NULL);
    return NULL;
}

static void test_ratelimit_threads(void **state)
{
    bs_ratelimiter *rl = bs_ratelimit_new(100);
    int64_t t0 = 1700000000000 - 1700000000000 % 60000;
    pthread_t th[4];
    hit_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (hit_arg){rl, t0, 0};
        pthread_create(&th[i], NULL, hammer, &args[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += args[i].allowed;
    }
    assert_int_equal(total, 1000); /* exactly the limit, no lost updates */
    bs_ratelimit_free(rl);
}

static void test_settings_registry(void **state)
{
    char d[256];
    json_t *norm;
    const bs_setting_def *ttl = bs_settings_def("session_ttl_hours");
    assert_non_null(ttl);
    json_t *v = json_integer(2);
    assert_int_equal(bs_settings_check(ttl, v, &norm, d, sizeof d), 0);
    assert_true(json_is_real(norm)); /* float settings are stored as reals */
    json_decref(norm);
    json_decref(v);
    v = json_real(0.0001);
    assert_int_equal(bs_settings_check(ttl, v, &norm, d, sizeof d), -1);
    assert_non_null(strstr(d, "outside the allowed range"));
    json_decref(v);
    const bs_setting_def *mrb = bs_settings_def("max_request_bytes");
    v = json_string("10MB");
    assert_int_equal(bs_settings_check(mrb, v, &norm, d, sizeof d), -1);
    assert_string_equal(d, "setting max_request_bytes is an integer");
    json_decref(v);
    const bs_setting_def *cors = bs_settings_def("cors_allowed_origins");
    v = json_pack("[s]", "https://studio.example:8443");
    assert_int_equal(bs_settings_check(cors, v, &norm, d, sizeof d), 0);
    json_decref(norm);
    json_decref(v);
    v = json_pack("[s]", "https://evil.example/path");
    assert_int_equal(bs_settings_check(cors, v, &norm, d, sizeof d), -1);
    json_decref(v);
    assert_null(bs_settings_def("no_such_setting"));
    /* Every default passes its own check, and the cache serves it. */
    bs_settings *c = bs_settings_new();
    for (size_t i = 0; i < bs_settings_registry_count; i++) {
        const bs_setting_def *def = &bs_settings_registry[i];
        json_t *dv = bs_settings_value(c, def->key);
        assert_non_null(dv);
        assert_int_equal(bs_settings_check(def, dv, &norm, d, sizeof d), 0);
        json_decref(norm);
        json_decref(dv);
    }
    assert_int_equal(bs_settings_int(c, "max_request_bytes"), 10485760);
    assert_int_equal(bs_settings_int(c, "per_ip_requests_per_minute"), 100);
    assert_true(bs_settings_float(c, "session_ttl_hours") == 8.0);
    assert_false(bs_settings_bool(c, "log_input_text"));
    bs_settings_free(c);
}

static void test_perms(void **state)
{
    json_t *a = json_pack("[sss]", "tasks:execute", "admin:read", "bogus");
    unsigned bits = bs_perms_from_json(a);
    json_decref(a);
    assert_int_equal(bits, BS_PERM_TASKS_EXECUTE | BS_PERM_ADMIN_READ);
    assert_string_equal(bs_perm_missing(BS_PERM_ADMIN_WRITE | BS_PERM_ADMIN_READ, bits),
                        "admin:write");
    assert_null(bs_perm_missing(BS_PERM_ADMIN_READ, bits));
    json_t *names = bs_perms_to_json(bits);
    char *s = json_dumps(names, JSON_COMPACT);
    assert_string_equal(s, "[\"tasks:execute\",\"admin:read\"]");
    free(s);
    json_decref(names);
}

static void test_metrics_render(void **state)
{
    bs_metrics *m = bs_metrics_new(2);
    const char *methods[] = {"GET", "POST"}, *patterns[] = {"/health", "/auth/login"};
    bs_metrics_observe(m, 0, 200, 0.0004);
    bs_metrics_observe(m, 0, 200, 0.2);
    bs_metrics_observe(m, 1, 401, 0.003);
    bs_metrics_observe(m, 2, 404, 0.001);
    bs_metrics_rate_limited(m, BS_RL_IP);
    bs_metrics_store_error(m);
    bs_buf out = {0};
    bs_metrics_render(m, methods, patterns, &out);
    assert_non_null(strstr(
        out.data,
        "bertstudio_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2\n"));
    assert_non_null(strstr(out.data, "route=\"/auth/login\",status=\"401\"} 1\n"));
    assert_non_null(strstr(out.data, "route=\"unmatched\",status=\"404\"} 1\n"));
    assert_non_null(strstr(out.data, "bertstudio_http_request_duration_seconds_bucket{method="
                                     "\"GET\",route=\"/health\",le=\"0.001\"} 1\n"));
    assert_non_null(strstr(out.data, "bertstudio_http_request_duration_seconds_bucket{method="
                                     "\"GET\",route=\"/health\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(out.data, "bertstudio_rate_limited_total{scope=\"ip\"} 1\n"));
    assert_non_null(strstr(out.data, "bertstudio_store_errors_total 1\n"));
    bs_buf_free(&out);
    bs_metrics_free(m);
}

/* Shared paths (docs/compat.md): the original's row serves the requests
 * its predicate accepts, ours every other one. */
static void test_router_variants(void **state)
{
    static const struct {
        const char *method, *path, *body;
        bs_handler_fn want;
    } cases[] = {
        {"POST", "/models/download", "{\"model_id\": \"a/b\"}", bs_handle_compat_models_download},
        {"POST", "/models/download", "{\"model_name\": \"a/b\"}", bs_handle_models_download},
        {"POST", "/models/download", "{\"model_name\": \"model_id\"}", bs_handle_models_download},
        {"POST", "/models/download", "{\"model_id\": ", bs_handle_models_download}, /* ours: 400 */
        {"POST", "/models/load", "{\"model_id\": \"x\"}", bs_handle_compat_models_load},
        {"POST", "/models/load", "{\"model_name\": \"x\"}", bs_handle_models_load},
        {"POST", "/api-keys", "", bs_handle_compat_keys_create},
        {"POST", "/api-keys", "{\"name\": \"k\"}", bs_handle_keys_create},
        {"GET", "/models/loaded", "", bs_handle_models_loaded},
        {"GET", "/auth/check", "", bs_handle_auth_check},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bs_request req = {.method = cases[i].method,
                          .path = cases[i].path,
                          .body = cases[i].body,
                          .body_len = strlen(cases[i].body)};
        int status = 0;
        char allow[64];
        const bs_route *r =
            bs_router_match(bs_routes, bs_routes_count, &req, &status, allow, sizeof allow);
        assert_non_null(r);
        assert_true(r->handler == cases[i].want);
        json_decref(req.json);
    }
}

/* The permission table: only health, login, the original product's
 * counts (/stats) and its anonymous /auth/check are public, and every
 * write to keys, settings or purge needs admin:write. */
static void test_route_permissions(void **state)
{
    for (size_t i = 0; i < bs_routes_count; i++) {
        const bs_route *r = &bs_routes[i];
        if (r->perm & BS_ROUTE_PUBLIC)
            assert_true(!strcmp(r->pattern, "/health") || !strcmp(r->pattern, "/health/db") ||
                        !strcmp(r->pattern, "/auth/login") || !strcmp(r->pattern, "/stats") ||
                        r->handler == bs_handle_compat_auth_anonymous);
        if (!strncmp(r->pattern, "/api-keys", 9) || !strncmp(r->pattern, "/settings", 9) ||
            !strncmp(r->pattern, "/admin/", 7))
            assert_true(r->perm &
                        (strcmp(r->method, "GET") ? BS_PERM_ADMIN_WRITE : BS_PERM_ADMIN_READ));
    }
}

static void test_authcache(void **state)
{
    bs_authcache *c = bs_authcache_new(2000);
    json_t *doc = json_pack("{s:s}", "name", "k1");
    uint64_t gen = bs_authcache_generation(c);
    assert_null(bs_authcache_get(c, "ak_one", 1000));
    bs_authcache_put(c, "ak_one", doc, gen, 1000);
    json_t *got = bs_authcache_get(c, "ak_one", 2999);
    assert_non_null(got);
    assert_true(json_equal(got, doc));
    json_decref(got);
    assert_null(bs_authcache_get(c, "ak_onf", 1000)); /* another secret */
    assert_null(bs_authcache_get(c, "ak_one", 3000)); /* expired after the TTL */
    bs_authcache_put(c, "ak_one", doc, gen, 5000);
    bs_authcache_invalidate(c);
    assert_null(bs_authcache_get(c, "ak_one", 5001)); /* a key changed: forgotten */
    /* A lookup that began before the invalidation must not be cached. */
    bs_authcache_put(c, "ak_one", doc, gen, 5002);
    assert_null(bs_authcache_get(c, "ak_one", 5003));
    bs_authcache_put(c, "ak_one", doc, bs_authcache_generation(c), 5004);
    got = bs_authcache_get(c, "ak_one", 5005);
    assert_non_null(got);
    json_decref(got);
    json_decref(doc);
    bs_authcache_free(c);
}

/* The custom-task limit that custom task handlers call. */
static void test_custom_task_limit(void **state)
{
    struct bs_server srv = {.limiter = bs_ratelimit_new(100), .metrics = bs_metrics_new(1)};
    bs_request req = {.server = &srv};
    req.auth.authenticated = 1;
    snprintf(req.auth.api_key_id, sizeof req.auth.api_key_id, "0123456789abcdef01234567");
    req.auth.rl_custom_tasks_per_hour = 2;
    for (int i = 0; i < 2; i++) {
        bs_response res = {0};
        assert_int_equal(bs_server_limit_custom_task(&req, &res), 0);
        assert_int_equal(res.status, 0);
        bs_buf_free(&res.body);
    }
    bs_response res = {0};
    assert_int_equal(bs_server_limit_custom_task(&req, &res), -1);
    assert_int_equal(res.status, 429);
    assert_non_null(strstr(res.body.data, "custom_tasks_per_hour"));
    int retry = 0;
    for (size_t i = 0; i < res.n_headers; i++)
        if (!strcmp(res.headers[i].name, "Retry-After")) retry = atoi(res.headers[i].value);
    assert_true(retry >= 1 && retry <= 3601);
    bs_buf_free(&res.body);
    /* No limit configured: never refused. */
    req.auth.rl_custom_tasks_per_hour = 0;
    bs_response res2 = {0};
    assert_int_equal(bs_server_limit_custom_task(&req, &res2), 0);
    bs_buf out = {0};
    bs_metrics_render(srv.metrics, (const char *[]){"GET"}, (const char *[]){"/x"}, &out);
    assert_non_null(strstr(out.data, "bertstudio_rate_limited_total{scope=\"custom_tasks\"} 1\n"));
    bs_buf_free(&out);
    bs_metrics_free(srv.metrics);
    bs_ratelimit_free(srv.limiter);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_router),
        cmocka_unit_test(test_router_variants),
        cmocka_unit_test(test_ratelimit_decide),
        cmocka_unit_test(test_ratelimit_hit),
        cmocka_unit_test(test_ratelimit_threads),
        cmocka_unit_test(test_settings_registry),
        cmocka_unit_test(test_perms),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_route_permissions),
        cmocka_unit_test(test_authcache),
        cmocka_unit_test(test_custom_task_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
