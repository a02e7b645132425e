/* The AVX512-VNNI int8 tile: R <= 8 rows x 16 columns, one zmm of weights
 * (16 columns x 4 depth steps) a step and one vpdpbusd per row, which sums
 * four u8 x s8 products straight into int32 (no saturation): exact. */
#include "tensor/gemm_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vnni")
#endif
#include <immintrin.h>

BS_INLINE void tile_r(const int R, const uint8_t *A, int lda, const int8_t *B, int kg,
                      const int8_t *pf, const bs_i8_epi *e, int32_t acc[BS_I8_MR_MAX][BS_I8_NR])
{
    __m512i c[8];
    BS_UNROLL(8)
    for (int i = 0; i < R; i++) c[i] = _mm512_setzero_si512();
    for (int g = 0; g < kg; g++) {
        __m512i w = _mm512_load_si512((const void *)(B + (size_t)g * 64));
        if (pf) _mm_prefetch((const char *)(pf + (size_t)g * 64), _MM_HINT_T0);
        BS_UNROLL(8)
        for (int i = 0; i < R; i++) {
            int32_t four;
            __builtin_memcpy(&four, A + (size_t)i * lda + 4 * g, 4);
            c[i] = _mm512_dpbusd_epi32(c[i], _mm512_set1_epi32(four), w);
        }
    }
    if (!e) {
        for (int i = 0; i < R; i++) _mm512_storeu_si512((void *)acc[i], c[i]);
        return;
    }
    /* (sum - zp cs) sa ws + bias, in registers; masked columns of a last panel */
    __mmask16 k = (__mmask16)((1u << e->cols) - 1);
    __m512i cs = _mm512_maskz_loadu_epi32(k, e->cs);
    __m512 ws = _mm512_maskz_loadu_ps(k, e->ws);
    __m512 b = e->bias ? _mm512_maskz_loadu_ps(k, e->bias) : _mm512_setzero_ps();
    for (int i = 0; i < R; i++) {
        __m512i v = _mm512_sub_epi32(c[i], _mm512_mullo_epi32(_mm512_set1_epi32(e->zp[i]), cs));
        __m512 f =
            _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_mul_ps(_mm512_set1_ps(e->sa[i]), ws));
        _mm512_mask_storeu_ps(e->C + (size_t)i * e->ldc, k, _mm512_add_ps(f, b));
    }
}

void bs_i8_tile_vnni(int R, const uint8_t *A, int lda, const int8_t *B, int kg, const int8_t *pf,
                     const bs_i8_epi *e, int32_t acc[BS_I8_MR_MAX][BS_I8_NR])
{
    BS_I8_TILE_ROWS(R, 8, A, lda, B, kg, pf, e, acc)
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
