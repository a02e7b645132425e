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
    if (!e) {
        BS_UNROLL(6)
        for (int i = 0; i < R; i++) {
            _mm256_storeu_si256((__m256i *)acc[i], c0[i]);
            _mm256_storeu_si256((__m256i *)(acc[i] + 8), c1[i]);
        }
        return;
    }
    /* (sum - zp cs) sa ws + bias */
    __m256i cs0 = _mm256_loadu_si256((const __m256i *)e->cs);
    __m256i cs1 = _mm256_loadu_si256((const __m256i *)(e->cs + 8));
    __m256 ws0 = _mm256_loadu_ps(e->ws), ws1 = _mm256_loadu_ps(e->ws + 8);
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    if (e->bias && e->cols == 16) {
        b0 = _mm256_loadu_ps(e->bias);
        b1 = _mm256_loadu_ps(e->bias + 8);
    } else if (e->bias) {
        float bt[16] = {0}; /* the bias holds only N values: no load past its end */
        for (int j = 0; j < e->cols; j++) bt[j] = e->bias[j];
        b0 = _mm256_loadu_ps(bt);
        b1 = _mm256_loadu_ps(bt + 8);
    }
    BS_UNROLL(6)
    for (int i = 0; i < R; i++) {
        __m256i z = _mm256_set1_epi32(e->zp[i]);
        __m256 sa = _mm256_set1_ps(e->sa[i]);
        __m256i v0 = _mm256_sub_epi32(c0[i], _mm256_mullo_epi32(z, cs0));
        __m256i v1 = _mm256_sub_epi32(c1[i], _mm256_mullo_epi32(z, cs1));
        __m256 f0 =
            _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v0), _mm256_mul_ps(sa, ws0)), b0);
        __m256 f1 =
            _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v1), _mm256_mul_ps(sa, ws1)), b1);
        float *c = e->C + (size_t)i * e->ldc;
        if (e->cols == 16) {
            _mm256_storeu_ps(c, f0);
            _mm256_storeu_ps(c + 8, f1);
        } else {
            float t[16];
            _mm256_storeu_ps(t, f0);
            _mm256_storeu_ps(t + 8, f1);
            for (int j = 0; j < e->cols; j++) c[j] = t[j];
        }
    }
}

void BS_VNNI256_TILE(int R, const uint8_t *A, int lda, const int8_t *B, int kg, const int8_t *pf,
                     const bs_i8_epi *e, int32_t acc[BS_I8_MR_MAX][BS_I8_NR])
{
    switch (R) {
    case 1:
        tile_r(1, A, lda, B, kg, pf, e, acc);
        break;
    case 2:
        tile_r(2, A, lda, B, kg, pf, e, acc);
        break;
    case 3:
        tile_r(3, A, lda, B, kg, pf, e, acc);
        break;
    case 4:
        tile_r(4, A, lda, B, kg, pf, e, acc);
        break;
    case 5:
        tile_r(5, A, lda, B, kg, pf, e, acc);
        break;
    default:
        tile_r(BS_I8_MR_VNNI256, A, lda, B, kg, pf, e, acc);
        break;
    }
}
