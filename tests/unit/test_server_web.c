/* The web studio's serving (server/web.c): which paths are the API's, the
 * embedded files with their headers, index.html for the studio's own pages
 * only, and a --web-dir folder that a path cannot leave. */
#include "testutil.h"

#include "server/web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *header(const bs_response *res, const char *name)
{
    for (size_t i = 0; i < res->n_headers; i++)
        if (!strcmp(res->headers[i].name, name)) return res->headers[i].value;
    return NULL;
}

/* GET path (no request headers: a request made up by the test). */
static void get(const char *path, const char *dir, bs_response *res)
{
    bs_request req = {.method = "GET", .path = path};
    memset(res, 0, sizeof *res);
    bs_buf_init(&res->body);
    bs_web_serve(&req, res, dir);
}

static void test_api_paths(void **state)
{
    (void)state;
    const char *api[] = {"/models/x/y/z", "/settings",       "/settings/a/b", "/v1/nothing",
                         "/health/x",     "/custom-tasks/1", "relative"};
    for (size_t i = 0; i < sizeof api / sizeof *api; i++) assert_true(bs_web_is_api_path(api[i]));
    const char *web[] = {"/",          "/dashboard", "/playground/ner", "/assets/app.js",
                         "/settingsx", "/custom"};
    for (size_t i = 0; i < sizeof web / sizeof *web; i++) assert_false(bs_web_is_api_path(web[i]));
}

static void test_embedded(void **state)
{
    (void)state;
    bs_response res;
    get("/", NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.content_type, "text/html; charset=utf-8");
    assert_non_null(header(&res, "ETag"));
    assert_non_null(strstr(header(&res, "Content-Security-Policy"), "script-src 'self'"));
    assert_string_equal(header(&res, "Cache-Control"), "no-cache");
    assert_null(header(&res, "Content-Encoding")); /* no Accept-Encoding: identity */
    size_t index_len = res.body.len;
    assert_true(index_len > 0);
    bs_buf_free(&res.body);
    /* A deep link of the studio is index.html; other unknown paths are not. */
    get("/playground/ner", NULL, &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body.len, index_len);
    bs_buf_free(&res.body);
    const char *missing[] = {"/etc/passwd", "/nothing", "/assets/missing.js", "/dashboardx"};
    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++) {
        get(missing[i], NULL, &res);
        assert_int_equal(res.status, 404);
        assert_non_null(strstr(res.body.data, "\"success\":false"));
        bs_buf_free(&res.body);
    }
    /* Every embedded file is served with its own type and bytes. */
    for (size_t i = 0; i < bs_web_assets_count; i++) {
        get(bs_web_assets[i].path, NULL, &res);
        assert_int_equal(res.status, 200);
        assert_string_equal(res.content_type, bs_web_assets[i].content_type);
        assert_int_equal(res.body.len, bs_web_assets[i].len);
        assert_memory_equal(res.body.data, bs_web_assets[i].data, res.body.len);
        assert_string_equal(header(&res, "ETag"), bs_web_assets[i].etag);
        bs_buf_free(&res.body);
    }
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_web_dir(void **state)
{
    (void)state;
    char root[] = "/tmp/bs-web-test-XXXXXX", dir[64], path[128];
    assert_non_null(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/web", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/index.html", dir);
    put(path, "<p>dev</p>");
    snprintf(path, sizeof path, "%s/app.css", dir);
    put(path, "p{}");
    snprintf(path, sizeof path, "%s/secret.txt", root);
    put(path, "outside");
    bs_response res;
    get("/app.css", dir, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.content_type, "text/css; charset=utf-8");
    assert_int_equal(res.body.len, 3);
    assert_non_null(header(&res, "ETag"));
    bs_buf_free(&res.body);
    get("/keys", dir, &res);
    assert_int_equal(res.status, 200);
    assert_memory_equal(res.body.data, "<p>dev</p>", 10);
    bs_buf_free(&res.body);
    const char *refused[] = {"/../secret.txt", "/a/../../secret.txt", "/..", "/none.js"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        get(refused[i], dir, &res);
        assert_int_equal(res.status, 404);
        assert_null(strstr(res.body.data, "outside"));
        bs_buf_free(&res.body);
    }
    snprintf(path, sizeof path, "rm -rf '%s'", root);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_paths),
        cmocka_unit_test(test_embedded),
        cmocka_unit_test(test_web_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
