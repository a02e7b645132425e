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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_shape),
        cmocka_unit_test(test_success_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
