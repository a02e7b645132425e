/* AVX2+FMA3 element-wise kernels (activations, residual + layernorm,
 * softmax), chosen at run time on CPUs without AVX-512 (or with BS_CPU=avx2).
 * Same approximations as ops_avx512.c; tails through masked loads. */
#include "tensor/tensor.h"

#include <math.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#include "tensor/simd_avx2.h"

/* n - i values from p + i: 8, or a masked tail (zeros past it) */
#define LOAD(p, i, n)                                                                              \
    ((n) - (i) >= 8 ? _mm256_loadu_ps((p) + (i))                                                   \
                    : _mm256_maskload_ps((p) + (i), mask256((n) - (i))))
#define STORE(p, i, n, v)                                                                          \
    ((n) - (i) >= 8 ? _mm256_storeu_ps((p) + (i), v)                                               \
                    : _mm256_maskstore_ps((p) + (i), mask256((n) - (i)), v))

static void bias_act(float *y, const float *bias, int n, bs_act act)
{
    for (int i = 0; i < n; i += 8) {
        __m256 v = LOAD(y, i, n);
        if (bias) v = _mm256_add_ps(v, LOAD(bias, i, n));
        STORE(y, i, n, act256(v, act));
    }
}

static void add_layernorm(float *x, const float *res, const float *gamma, const float *beta, int n,
                          float eps)
{
    __m256 sum = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256 v = LOAD(x, i, n);
        if (res) {
            v = _mm256_add_ps(v, LOAD(res, i, n));
            STORE(x, i, n, v);
        }
        sum = _mm256_add_ps(sum, v);
    }
    float mean = hsum256(sum) / (float)n;
    __m256 vm = _mm256_set1_ps(mean), var = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256 d = _mm256_sub_ps(LOAD(x, i, n), vm);
        if (n - i < 8) d = _mm256_and_ps(d, _mm256_castsi256_ps(mask256(n - i)));
        var = _mm256_fmadd_ps(d, d, var);
    }
    float inv = 1.0f / sqrtf(hsum256(var) / (float)n + eps);
    __m256 vi = _mm256_set1_ps(inv);
    for (int i = 0; i < n; i += 8) {
        __m256 d = _mm256_mul_ps(_mm256_sub_ps(LOAD(x, i, n), vm), vi);
        STORE(x, i, n, _mm256_fmadd_ps(d, LOAD(gamma, i, n), LOAD(beta, i, n)));
    }
}

static void softmax(float *x, int n, float scale)
{
    __m256 vs = _mm256_set1_ps(scale), mx = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 8) {
        __m256 v = _mm256_mul_ps(LOAD(x, i, n), vs);
        if (n - i < 8)
            v = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, _mm256_castsi256_ps(mask256(n - i)));
        mx = _mm256_max_ps(mx, v);
    }
    __m256 vmax = _mm256_set1_ps(hmax256(mx)), sum = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256 e = exp256(_mm256_fmsub_ps(LOAD(x, i, n), vs, vmax));
        if (n - i < 8) e = _mm256_and_ps(e, _mm256_castsi256_ps(mask256(n - i)));
        sum = _mm256_add_ps(sum, e);
        STORE(x, i, n, e);
    }
    __m256 inv = _mm256_set1_ps(1.0f / hsum256(sum));
    for (int i = 0; i < n; i += 8) STORE(x, i, n, _mm256_mul_ps(LOAD(x, i, n), inv));
}

static const bs_kernels avx2 = {"avx2", bias_act, add_layernorm, softmax};

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const bs_kernels *bs_kernels_avx2(void)
{
    return bs_cpu_can(BS_CPU_AVX2) ? &avx2 : NULL;
}
#else
const bs_kernels *bs_kernels_avx2(void)
{
    return NULL;
}
#endif
