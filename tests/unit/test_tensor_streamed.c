/* bs_streamed_alloc: packed weights' memory. Small blocks stay small; from
 * one huge page on, the block is 2 MB-aligned and the kernel may back it with
 * huge pages (smaps' THPeligible), which plain heap memory of the same size
 * is not when transparent huge pages are "madvise". */
#include "testutil.h"

#include "tensor/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The THP mode in brackets ("always", "madvise", "never"), or "" where the
 * kernel has none. */
static void thp_mode(char *out, size_t cap)
{
    out[0] = 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char line[128];
    if (!f) return;
    if (fgets(line, sizeof line, f)) {
        char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
        if (a && b && (size_t)(b - a) < cap) {
            memcpy(out, a + 1, (size_t)(b - a - 1));
            out[b - a - 1] = 0;
        }
    }
    fclose(f);
}

/* THPeligible of the mapping holding p: 0 or 1, or -1 where smaps doesn't say. */
static int thp_eligible(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int in = 0, r = -1;
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = a >= lo && a < hi;
            continue;
        }
        if (in && sscanf(line, "THPeligible: %d", &r) == 1) break;
    }
    fclose(f);
    return r;
}

/* THPeligible of a 2 MB-aligned heap block of n bytes, advised by hand or not:
 * where advice doesn't reach the kernel (qemu-user drops it), even an advised
 * block is not eligible. */
static int heap_eligible(size_t n, int advise)
{
    char *q = NULL;
    if (posix_memalign((void **)&q, BS_HUGE_PAGE, n) != 0) return -1;
    if (advise) madvise(q, n, MADV_HUGEPAGE);
    memset(q, 1, n);
    int e = thp_eligible(q);
    free(q);
    return e;
}

static void test_small_block_is_plain(void **state)
{
    (void)state;
    char *p = bs_streamed_alloc(1000);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    memset(p, 1, 1000);
    free(p);
}

static void test_large_block_on_huge_pages(void **state)
{
    (void)state;
    size_t n = 2 * BS_HUGE_PAGE + 4096; /* not a whole number of pages */
    char *p = bs_streamed_alloc(n);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % BS_HUGE_PAGE, 0);
    memset(p, 1, n);
    char mode[32];
    thp_mode(mode, sizeof mode);
    int e = thp_eligible(p);
    if (!mode[0] || !strcmp(mode, "never") || e < 0 || heap_eligible(n, 1) != 1) {
        printf("# huge pages can't be seen or advised here (mode '%s', THPeligible %d): "
               "alignment only\n",
               mode, e);
        free(p);
        return;
    }
    assert_int_equal(e, 1);
    if (!strcmp(mode, "madvise")) /* the advice made the difference */
        assert_int_equal(heap_eligible(n, 0), 0);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_block_is_plain),
        cmocka_unit_test(test_large_block_on_huge_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
