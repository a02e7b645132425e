/* AVX-512 element-wise kernels, chosen at run time when the CPU has
 * AVX-512F/DQ. This file alone is compiled for AVX-512 (target pragma); the
 * portable table in ops.c stays the reference they are tested against.
 * exp/erf/tanh are polynomial approximations accurate to a few ulp (erf to
 * 2e-7 absolute), far inside the engine's 1e-4 contract. */
#include "tensor/tensor.h"

#include <math.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))),        \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw")
#endif
#include "tensor/simd_avx512.h"

static void bias_act(float *y, const float *bias, int n, bs_act act)
{
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, y + i);
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));
        _mm512_mask_storeu_ps(y + i, m, act512(v, act));
    }
}

static void add_layernorm(float *x, const float *res, const float *gamma, const float *beta, int n,
                          float eps)
{
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (res) {
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res + i));
            _mm512_mask_storeu_ps(x + i, m, v);
        }
        sum = _mm512_add_ps(sum, v);
    }
    float mean = _mm512_reduce_add_ps(sum) / (float)n;
    __m512 vm = _mm512_set1_ps(mean), var = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vm);
        var = _mm512_fmadd_ps(d, d, var);
    }
    float inv = 1.0f / sqrtf(_mm512_reduce_add_ps(var) / (float)n + eps);
    __m512 vi = _mm512_set1_ps(inv);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vi);
        __m512 r = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, gamma + i),
                                   _mm512_maskz_loadu_ps(m, beta + i));
        _mm512_mask_storeu_ps(x + i, m, r);
    }
}

static void softmax(float *x, int n, float scale)
{
    __m512 vs = _mm512_set1_ps(scale), mx = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        mx = _mm512_mask_max_ps(mx, m, mx, v);
    }
    __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp512(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, x + i), vs, vmax));
        e = _mm512_maskz_mov_ps(m, e);
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(x + i, m, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

static const bs_kernels avx512 = {"avx512", bias_act, add_layernorm, softmax};

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const bs_kernels *bs_kernels_avx512(void)
{
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
        return &avx512;
    return NULL;
}
#else
const bs_kernels *bs_kernels_avx512(void)
{
    return NULL;
}
#endif
