/* libFuzzer target: safetensors header parsing (length prefix, JSON header,
 * dtypes, shapes, offsets against the buffer size, overlap and alignment).
 * Run: build-fuzz/fuzz/fuzz_model_safetensors -max_total_time=60 */
#include "model/safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy into an 8-aligned buffer as mmap would give, so that alignment
     * checks see file offsets, not the fuzzer's buffer placement. */
    void *buf = NULL;
    if (posix_memalign(&buf, 64, size ? size : 1) != 0) return 0;
    if (size) memcpy(buf, data, size);
    bs_st_file f;
    bs_err err;
    if (bs_st_parse(buf, size, "fuzz.safetensors", &f, &err) == 0) {
        /* Every accepted tensor must lie inside the buffer. */
        for (size_t i = 0; i < f.n_tensors; i++) {
            const bs_st_tensor *t = &f.tensors[i];
            const unsigned char *p = t->data;
            if (p < (const unsigned char *)buf ||
                p + (t->end - t->begin) > (const unsigned char *)buf + size)
                abort();
            volatile unsigned char sink = 0;
            if (t->end > t->begin) sink ^= p[t->end - t->begin - 1];
            (void)sink;
            (void)bs_st_find(&f, t->name);
        }
        bs_st_close(&f);
    }
    free(buf);
    return 0;
}
