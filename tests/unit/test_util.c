/* util: error records, buffers, UTF-8 and dates. */
#include "testutil.h"

#include "bertstudio/common.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/time.h"
#include "util/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_err(void **state)
{
    bs_err err = {0};
    assert_int_equal(bs_err_set(&err, BS_EINVAL, "field %s is %d", "top_k", -1), BS_EINVAL);
    assert_string_equal(err.msg, "field top_k is -1");
    bs_err_prefix(&err, "config.json");
    assert_string_equal(err.msg, "config.json: field top_k is -1");
    assert_int_equal(bs_err_set(NULL, BS_EIO, "ignored"), BS_EIO);
    assert_string_equal(bs_strerror(BS_ENOTFOUND), "not found");
}

static void test_buf(void **state)
{
    bs_buf b;
    bs_buf_init(&b);
    for (int i = 0; i < 1000; i++) assert_int_equal(bs_buf_printf(&b, "%d,", i), 0);
    assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
    assert_int_equal(b.data[b.len], 0);
    size_t len;
    char *s = bs_buf_steal(&b, &len);
    assert_int_equal(strlen(s), len);
    free(s);
    assert_null(b.data);
}

static void test_utf8(void **state)
{
    size_t bad;
    assert_int_equal(bs_utf8_validate("h\xc3\xa9llo \xf0\x9f\x98\x80", 11, &bad), 0);
    assert_int_equal(bs_utf8_validate("ab\xc0\xaf", 4, &bad), -1); /* overlong '/' */
    assert_int_equal(bad, 2);
    assert_int_equal(bs_utf8_validate("\xed\xa0\x80", 3, &bad), -1);     /* surrogate */
    assert_int_equal(bs_utf8_validate("\xf4\x90\x80\x80", 4, &bad), -1); /* > U+10FFFF */
    assert_int_equal(bs_utf8_validate("\xe2\x82", 2, &bad), -1);         /* truncated */
    assert_int_equal(bs_utf8_count("h\xc3\xa9\xf0\x9f\x98\x80", 7), 3);
    char out[4];
    assert_int_equal(bs_utf8_encode(0x1F600, out), 4);
    assert_memory_equal(out, "\xf0\x9f\x98\x80", 4);
}

static void test_time(void **state)
{
    char buf[32];
    assert_string_equal(bs_time_iso8601(1705314600123, buf, sizeof buf),
                        "2024-01-15T10:30:00.123Z");
    int64_t ms;
    assert_int_equal(bs_time_parse_iso8601("2024-01-15T10:30:00.123Z", &ms), 0);
    assert_int_equal(ms, 1705314600123);
    assert_int_equal(bs_time_parse_iso8601("2024-01-15", &ms), 0);
    assert_int_equal(ms, 1705276800000);
    assert_int_equal(bs_time_parse_iso8601("2024-13-15", &ms), -1);
    assert_int_equal(bs_time_parse_iso8601("yesterday", &ms), -1);
    assert_int_equal(bs_time_parse_iso8601("2024-01-15T10:30:00Zjunk", &ms), -1);
}

/* A logged value cannot end the line and forge the next (issue 17 L3). */
static void test_log_escapes_control_bytes(void **state)
{
    (void)state;
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    bs_log_info("test", "revision %s", "main\n2026-01-01T00:00:00Z info auth: forged\r\x1b[2J");
    dup2(saved, STDERR_FILENO);
    close(saved);
    char out[512] = {0};
    rewind(tmp);
    size_t n = fread(out, 1, sizeof out - 1, tmp);
    fclose(tmp);
    assert_true(n > 0);
    assert_non_null(
        strstr(out, "revision main\\x0a2026-01-01T00:00:00Z info auth: forged\\x0d\\x1b[2J\n"));
    assert_ptr_equal(strchr(out, '\n'), out + n - 1); /* one line */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_log_escapes_control_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
