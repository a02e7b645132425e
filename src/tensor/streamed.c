/* Memory for data that every forward pass streams whole from DRAM: the packed
 * weights. On 4 KB pages, one pass over BERT-base's 340 MB of f32 panels
 * touches 85,000 pages, far more than the L2 TLB holds (3,072 entries, 12 MB,
 * on Zen 4), so every new page costs a page walk in the middle of the
 * weights' stream. On 2 MB pages that is 170 walks. Measured with 2 threads
 * on the avx2 path (batch 1, 16 tokens, 4 interleaved rounds, medians): f32
 * 23.4 -> 20.5 ms, fp16 22.4 -> 19.1 ms, int8 12.5 -> 11.6 ms; docs/engine.md
 * has the load's cost (the kernel compacting memory for the 2 MB pages).
 *
 * Linux gives anonymous memory 2 MB pages when transparent huge pages are
 * "always", or "madvise" and the range is advised. With "never", or where
 * 2 MB pages can't be had, the same memory comes in 4 KB pages and only the
 * speed differs. */
#include "tensor/tensor.h"

#include <stdlib.h>
#include <sys/mman.h>

void *bs_streamed_alloc(size_t bytes)
{
    void *p = NULL;
    if (bytes < BS_HUGE_PAGE) /* rounding up would cost more than it saves */
        return posix_memalign(&p, 64, bytes ? bytes : 1) == 0 ? p : NULL;
    /* whole 2 MB pages: the last one is touched in full once advised */
    size_t whole = (bytes + BS_HUGE_PAGE - 1) & ~(size_t)(BS_HUGE_PAGE - 1);
    if (whole < bytes || posix_memalign(&p, BS_HUGE_PAGE, whole) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, whole, MADV_HUGEPAGE); /* advice: no error matters */
#endif
    return p;
}
