/* The answer shapes of server/reply.c: an envelope error re-shaped as
 * OpenAI's error (what /v1/... routes answer to auth, permission and rate
 * limit refusals), with its status and headers kept. */
#include "testutil.h"

#include "server/http.h"

#include <jansson.h>
#include <string.h>

static json_t *reshaped(int status, const char *error, const char *detail, bs_response *res)
{
    memset(res, 0, sizeof *res);
    bs_buf_init(&res->body);
    bs_response_header(res, "Retry-After", "7");
    bs_reply_error(res, status, error, "%s", detail);
    bs_reply_openai_shape(res);
    json_t *j = json_loadb(res->body.data, res->body.len, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_openai_shape(void **state)
{
    (void)state;
    struct {
        int status;
        const char *type, *code;
    } cases[] = {
        {401, "invalid_request_error", "invalid_api_key"},
        {403, "invalid_request_error", "insufficient_permissions"},
        {429, "requests", "rate_limit_exceeded"},
        {503, "server_error", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bs_response res;
        json_t *j = reshaped(cases[i].status, "Refused", "because \"x\"", &res);
        assert_int_equal(res.status, cases[i].status);
        assert_null(json_object_get(j, "success"));
        json_t *e = json_object_get(j, "error");
        assert_int_equal(json_object_size(e), 4);
        assert_string_equal(json_string_value(json_object_get(e, "message")),
                            "Refused: because \"x\"");
        assert_string_equal(json_string_value(json_object_get(e, "type")), cases[i].type);
        assert_true(json_is_null(json_object_get(e, "param")));
        if (cases[i].code)
            assert_string_equal(json_string_value(json_object_get(e, "code")), cases[i].code);
        else
            assert_true(json_is_null(json_object_get(e, "code")));
        /* Headers stay (Retry-After of a 429). */
        assert_int_equal(res.n_headers, 1);
        assert_string_equal(res.headers[0].name, "Retry-After");
        json_decref(j);
        bs_buf_free(&res.body);
    }
}

static void test_success_untouched(void **state)
{
    (void)state;
    bs_response res;
    memset(&res, 0, sizeof res);
    bs_buf_init(&res.body);
    bs_reply_ok(&res, 200, json_pack("{s:i}", "a", 1), NULL);
    size_t len = res.body.len;
    bs_reply_openai_shape(&res);
    assert_int_equal(res.body.len, len);
    assert_memory_equal(res.body.data, "{\"success\":true", 15);
    bs_buf_free(&res.body);
}

/* On a /v1/... exchange (openai_errors set when it begins) bs_reply_error
 * writes OpenAI's shape at once, byte for byte what re-shaping the envelope
 * gives, and invalid UTF-8 in the detail still yields an answer. */
static void test_openai_chosen_before_writing(void **state)
{
    (void)state;
    int statuses[] = {400, 401, 403, 404, 429, 500, 503};
    for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++) {
        bs_response a, b;
        json_decref(reshaped(statuses[i], "Refused", "because \"x\"", &a));
        memset(&b, 0, sizeof b);
        bs_buf_init(&b.body);
        b.openai_errors = 1;
        bs_reply_error(&b, statuses[i], "Refused", "%s", "because \"x\"");
        assert_int_equal(b.status, a.status);
        assert_int_equal(b.body.len, a.body.len);
        assert_memory_equal(b.body.data, a.body.data, a.body.len);
        bs_buf_free(&a.body);
        bs_buf_free(&b.body);
    }
    bs_response r;
    memset(&r, 0, sizeof r);
    bs_buf_init(&r.body);
    r.openai_errors = 1;
    bs_reply_error(&r, 400, "Invalid", "%s", "bad \xff byte");
    json_t *j = json_loadb(r.body.data, r.body.len, 0, NULL);
    assert_non_null(j);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
               "invalid UTF-8"));
    json_decref(j);
    bs_buf_free(&r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_shape),
        cmocka_unit_test(test_success_untouched),
        cmocka_unit_test(test_openai_chosen_before_writing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
