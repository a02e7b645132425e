/* server/multipart.c: finding the uploaded file of a multipart/form-data
 * body as browsers and curl send it, and refusing what is malformed. */
#include "testutil.h"

#include "server/multipart.h"

#include <string.h>

static int find(const char *ctype, const char *body, const char **data, size_t *n, char *detail)
{
    return bs_multipart_file(ctype, body, strlen(body), data, n, detail, 256);
}

static void test_multipart_finds_the_file_part(void **state)
{
    (void)state;
    const char *body = "--XyZ\r\n"
                       "Content-Disposition: form-data; name=\"note\"\r\n\r\n"
                       "hello\r\n"
                       "--XyZ\r\n"
                       "Content-Disposition: form-data; name=\"file\"; filename=\"t.json\"\r\n"
                       "Content-Type: application/json\r\n\r\n"
                       "[1,\r\n2]\r\n"
                       "--XyZ--\r\n";
    const char *data;
    size_t n;
    char detail[256];
    assert_int_equal(find("multipart/form-data; boundary=XyZ", body, &data, &n, detail), 0);
    assert_int_equal(n, 7);
    assert_memory_equal(data, "[1,\r\n2]", 7);
    /* a quoted boundary, and a body opening with CRLF (a preamble) */
    const char *pre =
        "\r\n--a b\r\nContent-Disposition: form-data; filename=\"x\"; name=\"up\"\r\n\r\n"
        "{}\r\n--a b--";
    assert_int_equal(find("multipart/form-data; boundary=\"a b\"", pre, &data, &n, detail), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(data, "{}", 2);
}

static void test_multipart_refuses_malformed_bodies(void **state)
{
    (void)state;
    const char *data;
    size_t n;
    char detail[256];
    const char *field =
        "--b\r\nContent-Disposition: form-data; name=\"filename\"\r\n\r\nv\r\n--b--";
    assert_int_equal(find("multipart/form-data; boundary=b", field, &data, &n, detail), -1);
    assert_non_null(strstr(detail, "no file part"));
    assert_int_equal(find("multipart/form-data", field, &data, &n, detail), -1);
    assert_non_null(strstr(detail, "boundary"));
    const char *open_ended = "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n[1,2";
    assert_int_equal(find("multipart/form-data; boundary=b", open_ended, &data, &n, detail), -1);
    assert_non_null(strstr(detail, "closing boundary"));
    assert_int_equal(
        find("multipart/form-data; boundary=b", "--b\r\nno headers end", &data, &n, detail), -1);
    assert_non_null(strstr(detail, "headers"));
    assert_int_equal(find("multipart/form-data; boundary=b", "", &data, &n, detail), -1);
    char longb[120] = "multipart/form-data; boundary=";
    memset(longb + strlen(longb), 'q', 85);
    assert_int_equal(find(longb, "--q", &data, &n, detail), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multipart_finds_the_file_part),
        cmocka_unit_test(test_multipart_refuses_malformed_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
