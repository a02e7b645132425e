/* The 256-bit VNNI int8 tile, one source for two encodings: R <= 6 rows x 16
 * columns, two ymm of weights (8 columns x 4 depth steps each) a step and two
 * vpdpbusd per row, which sum four u8 x s8 products straight into int32 (no
 * saturation: full 8-bit activations, exact). Included once by
 * gemm_int8_avxvnni.c (VEX, AVX-VNNI) and once by gemm_int8_avxvnni_evex.c
 * (EVEX, AVX512_VNNI + VL), each under its own target, after defining
 * BS_DPBUSD256(acc, u8, s8) and BS_VNNI256_TILE (the function's name). The
 * VEX encoding has 16 ymm: 12 accumulators, 2 weights and a broadcast. */
#ifndef BS_DPBUSD256
#error "define BS_DPBUSD256 and BS_VNNI256_TILE before including gemm_int8_vnni256.h"
#endif

#include "tensor/gemm_int8_epi256.h"

BS_INLINE void tile_r(const int R, const uint8_t *A, int lda, const int8_t *B, int kg,
                      const int8_t *pf, const bs_i8_epi *e, int32_t acc[BS_I8_MR_MAX][BS_I8_NR])
{
    __m256i c0[BS_I8_MR_VNNI256], c1[BS_I8_MR_VNNI256];
    BS_UNROLL(6)
    for (int i = 0; i < R; i++) c0[i] = c1[i] = _mm256_setzero_si256();
    for (int g = 0; g < kg; g++) {
        __m256i w0 = _mm256_load_si256((const __m256i *)(B + (size_t)g * 64));
        __m256i w1 = _mm256_load_si256((const __m256i *)(B + (size_t)g * 64 + 32));
        if (pf) _mm_prefetch((const char *)(pf + (size_t)g * 64), _MM_HINT_T0);
        BS_UNROLL(6)
        for (int i = 0; i < R; i++) {
            int32_t four;
            __builtin_memcpy(&four, A + (size_t)i * lda + 4 * g, 4);
            __m256i a = _mm256_set1_epi32(four);
            c0[i] = BS_DPBUSD256(c0[i], a, w0);
            c1[i] = BS_DPBUSD256(c1[i], a, w1);
        }
    }
    i8_finish256(R, c0, c1, e, acc);
}

void BS_VNNI256_TILE(int R, const uint8_t *A, int lda, const int8_t *B, int kg, const int8_t *pf,
                     const bs_i8_epi *e, int32_t acc[BS_I8_MR_MAX][BS_I8_NR])
{
    BS_I8_TILE_ROWS(R, BS_I8_MR_VNNI256, A, lda, B, kg, pf, e, acc)
}
