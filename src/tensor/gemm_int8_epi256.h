/* The 256-bit int8 tiles' last step, shared by the AVX2 tile
 * (gemm_int8_avx2.c) and the 256-bit VNNI one (gemm_int8_vnni256.h): rows
 * 0..R of int32 sums, columns 0-7 in c0 and 8-15 in c1, either stored raw
 * in acc (e NULL: the caller sums depth blocks) or turned into floats,
 * (sum - zp cs) sa ws + bias, and stored in C. Include it after the
 * includer's target pragma, so that it compiles for that target. */
#ifndef BS_GEMM_INT8_EPI256_H
#define BS_GEMM_INT8_EPI256_H

#include <immintrin.h>

BS_INLINE void i8_finish256(const int R, const __m256i *c0, const __m256i *c1, const bs_i8_epi *e,
                            int32_t acc[BS_I8_MR_MAX][BS_I8_NR])
{
    if (!e) {
        BS_UNROLL(6)
        for (int i = 0; i < R; i++) {
            _mm256_storeu_si256((__m256i *)acc[i], c0[i]);
            _mm256_storeu_si256((__m256i *)(acc[i] + 8), c1[i]);
        }
        return;
    }
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

#endif
