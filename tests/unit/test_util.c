/* util: error records, buffers, UTF-8, dates, the file reader and the JSON writer. */
#include "testutil.h"

#include "bertstudio/common.h"
#include "util/buf.h"
#include "util/file.h"
#include "util/json.h"
#include "util/log.h"
#include "util/time.h"
#include "util/utf8.h"

#include <math.h>
#include <stdint.h>
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

/* The one whole-file reader: exact bytes NUL-terminated, the cap refused
 * with BS_ELIMIT (one byte over is enough), a missing file BS_ENOTFOUND. */
static void test_file_read(void **state)
{
    (void)state;
    char path[] = "/tmp/bs-test-file-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    assert_non_null(f);
    static char big[20000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
    assert_int_equal(fwrite(big, 1, sizeof big, f), sizeof big);
    fclose(f);
    char *text = NULL;
    size_t len = 0;
    bs_err err = {0};
    assert_int_equal(bs_file_read(path, sizeof big, &text, &len, &err), 0);
    assert_int_equal(len, sizeof big);
    assert_memory_equal(text, big, sizeof big);
    assert_int_equal(text[len], 0);
    free(text);
    assert_int_equal(bs_file_read(path, sizeof big - 1, &text, &len, &err), BS_ELIMIT);
    assert_null(text);
    assert_non_null(strstr(err.msg, path));
    unlink(path);
    assert_int_equal(bs_file_read(path, 100, &text, &len, &err), BS_ENOTFOUND);
    assert_null(text);
}

/* buf (n bytes) reads back as v (as a float when single), and its
 * significant digits less one would not. */
static void assert_shortest(double v, int single, int n, const char *buf)
{
    assert_true(n > 0 && n < 32 && (int)strlen(buf) == n);
    if (single)
        assert_true(strtof(buf, NULL) == (float)v);
    else
        assert_true(strtod(buf, NULL) == v);
    int digits = 0, seen_nonzero = 0; /* leading zeros of 0.00123 are not significant */
    for (const char *p = buf; *p && *p != 'e'; p++) {
        if (*p >= '1' && *p <= '9') seen_nonzero = 1;
        digits += seen_nonzero && *p >= '0' && *p <= '9';
    }
    if (digits > 1) {
        char shorter[400];
        /* %g drops trailing zeros, so the digit count is at most the precision used. */
        snprintf(shorter, sizeof shorter, "%.*g", digits - 1, v);
        if (single)
            assert_true(strtof(shorter, NULL) != (float)v);
        else
            assert_true(strtod(shorter, NULL) != v);
    }
}

static void test_fmt_float(void **state)
{
    (void)state;
    char buf[32];
    bs_json_fmt_float(0.1f, buf);
    assert_string_equal(buf, "0.1");
    bs_json_fmt_float(1.0f / 3.0f, buf);
    assert_string_equal(buf, "0.33333334");
    bs_json_fmt_float(-2.5f, buf);
    assert_string_equal(buf, "-2.5");
    bs_json_fmt_float(16777216.0f, buf);
    assert_string_equal(buf, "16777216");
    bs_json_fmt_float(1e-45f, buf);
    assert_string_equal(buf, "1e-45");
    bs_json_fmt_float(NAN, buf);
    assert_string_equal(buf, "null");
    bs_json_fmt_float(-0.0f, buf);
    assert_string_equal(buf, "-0");
    bs_json_fmt_float(100.0f, buf); /* %g's form: exponent >= digits */
    assert_string_equal(buf, "1e+02");
    bs_json_fmt_float(1e-4f, buf);
    assert_string_equal(buf, "0.0001");
    bs_json_fmt_float(1e-5f, buf);
    assert_string_equal(buf, "1e-05");
    bs_json_fmt_float(123456.5f, buf);
    assert_string_equal(buf, "123456.5");
    bs_json_fmt_float(3.4028235e38f, buf);
    assert_string_equal(buf, "3.4028235e+38");
    /* a power of two: 8 digits read back above v, where %g's 8-digit rounding
     * (below v) does not */
    bs_json_fmt_float(ldexpf(1.0f, -96), buf);
    assert_string_equal(buf, "1.2621775e-29");
    bs_json_fmt_double(-1e300, buf);
    assert_string_equal(buf, "-1e+300");
    bs_json_fmt_double(5e-324, buf);
    assert_string_equal(buf, "5e-324");
    bs_json_fmt_double(0.1, buf);
    assert_string_equal(buf, "0.1");
    bs_json_fmt_double(1.0 / 3.0, buf);
    assert_string_equal(buf, "0.3333333333333333");
    /* Every float and double of a sweep round-trips, and one digit fewer
     * would not (the search for the digits bisects, so that is its test). */
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint32_t x32 = (uint32_t)(x >> 32);
        float f;
        double d;
        memcpy(&f, &x32, sizeof f);
        memcpy(&d, &x, sizeof d);
        if (i % 4 == 0) d = (double)(x % 100000) / 64.0; /* short decimals too */
        if (isfinite(f)) assert_shortest(f, 1, bs_json_fmt_float(f, buf), buf);
        if (isfinite(d)) assert_shortest(d, 0, bs_json_fmt_double(d, buf), buf);
    }
}

static void test_json_write(void **state)
{
    (void)state;
    json_t *j = json_pack("{s:[[f,f]], s:f, s:s, s:I, s:b, s:n, s:[]}", "embeddings", (double)0.1f,
                          (double)(1.0f / 3.0f), "score", 0.1, "word", "a\"b\\c\n\x01é", "n",
                          (json_int_t)-42, "ok", 1, "none", "e");
    bs_buf out;
    bs_buf_init(&out);
    const char *const keys[] = {"embeddings", NULL};
    assert_int_equal(bs_json_write(j, keys, &out), 0);
    assert_string_equal(out.data, "{\"embeddings\":[[0.1,0.33333334]],\"score\":0.1,"
                                  "\"word\":\"a\\\"b\\\\c\\n\\u0001é\",\"n\":-42,\"ok\":true,"
                                  "\"none\":null,\"e\":[]}");
    json_t *back = json_loads(out.data, 0, NULL);
    assert_non_null(back);
    assert_string_equal(json_string_value(json_object_get(back, "word")), "a\"b\\c\n\x01é");
    json_decref(back);
    bs_buf_free(&out);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_log_escapes_control_bytes),
        cmocka_unit_test(test_file_read),
        cmocka_unit_test(test_fmt_float),
        cmocka_unit_test(test_json_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
