/* Test helpers: tests find fixtures through BS_FIXTURES, set by ctest. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *bs_test_fixture(const char *fmt, ...)
{
    static char path[4096];
    const char *root = getenv("BS_FIXTURES");
    if (!root) root = "tests/fixtures";
    int n = snprintf(path, sizeof path, "%s/", root);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path + n, sizeof path - (size_t)n, fmt, ap);
    va_end(ap);
    return path;
}

char *bs_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = 0;
        if (len) *len = (size_t)n;
    }
    return p;
}

const char *bs_test_tmpdir(const char *tag)
{
    static char dir[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/bs-%s-XXXXXX", tmp ? tmp : "/tmp", tag);
    if (!mkdtemp(dir)) return NULL;
    return dir;
}

/* BS_TEST_SKIP=PATTERN (cmocka's, with * and ?) leaves out the test functions
 * whose name it matches, in every unit test: `make test-arm64` drops those too
 * slow under emulation this way. */
__attribute__((constructor)) static void skip_from_env(void)
{
    const char *pattern = getenv("BS_TEST_SKIP");
    if (pattern && *pattern) cmocka_set_skip_filter(pattern);
}
