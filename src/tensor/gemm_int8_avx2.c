/* The AVX2 int8 tile: R <= 4 rows x 16 columns of sum_k a[k] w[n][k], u8
 * activations within 0..BS_I8_AMAX_AVX2 (128) by full 8-bit weights (+-127).
 * vpmaddubsw multiplies u8 by s8 and saturates its pairwise 16-bit sums; with
 * activations <= 128 a pair stays within 2 * 128 * 127 = 32512 < 32767, so
 * vpmaddubsw, vpmaddwd by ones and vpaddd are exact in int32: 6 operations
 * per 64 multiply-adds. */
#include "tensor/gemm_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2")
#endif
#include <immintrin.h>

#include "tensor/gemm_int8_epi256.h"

BS_INLINE void tile_r(const int R, const uint8_t *A, int lda, const int8_t *B, int kg,
                      const int8_t *pf, const bs_i8_epi *e, int32_t acc[BS_I8_MR_MAX][BS_I8_NR])
{
    __m256i c0[4], c1[4];
    const __m256i ones = _mm256_set1_epi16(1);
    BS_UNROLL(4)
    for (int i = 0; i < R; i++) c0[i] = c1[i] = _mm256_setzero_si256();
    for (int g = 0; g < kg; g++) {
        __m256i w0 = _mm256_load_si256((const __m256i *)(B + (size_t)g * 64));
        __m256i w1 = _mm256_load_si256((const __m256i *)(B + (size_t)g * 64 + 32));
        if (pf) _mm_prefetch((const char *)(pf + (size_t)g * 64), _MM_HINT_T0);
        BS_UNROLL(4)
        for (int i = 0; i < R; i++) {
            int32_t four;
            __builtin_memcpy(&four, A + (size_t)i * lda + 4 * g, 4);
            __m256i a = _mm256_set1_epi32(four);
            __m256i p0 = _mm256_maddubs_epi16(a, w0), p1 = _mm256_maddubs_epi16(a, w1);
            c0[i] = _mm256_add_epi32(c0[i], _mm256_madd_epi16(p0, ones));
            c1[i] = _mm256_add_epi32(c1[i], _mm256_madd_epi16(p1, ones));
        }
    }
    i8_finish256(R, c0, c1, e, acc);
}

void bs_i8_tile_avx2(int R, const uint8_t *A, int lda, const int8_t *B, int kg, const int8_t *pf,
                     const bs_i8_epi *e, int32_t acc[BS_I8_MR_MAX][BS_I8_NR])
{
    /* R <= 4: 8 accumulators, 2 weights, ones and 3 temporaries fill 14 ymm */
    BS_I8_TILE_ROWS(R, 4, A, lda, B, kg, pf, e, acc)
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
