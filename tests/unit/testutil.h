/* Helpers shared by the cmocka unit tests: fixture paths and file reading.
 * BS_TEST_SKIP=PATTERN in the environment leaves out the test functions it
 * matches (cmocka's skip filter: * and ?), in every unit test. */
#ifndef BS_TESTUTIL_H
#define BS_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Path of a file under tests/fixtures (env BS_FIXTURES); static buffer. */
const char *bs_test_fixture(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads a whole file (NUL-terminated); NULL when it cannot. Caller frees. */
char *bs_test_read_file(const char *path, size_t *len);
/* A fresh empty directory under $TMPDIR; static buffer. */
const char *bs_test_tmpdir(const char *tag);

#endif
