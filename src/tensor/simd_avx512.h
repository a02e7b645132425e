/* AVX-512 math shared by the AVX-512 kernels (ops_avx512.c, gemm_avx512.c):
 * exp, erf, tanh-based activations on 16 floats. Include only after
 * `#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw")`. */
#ifndef BS_TENSOR_SIMD_AVX512_H
#define BS_TENSOR_SIMD_AVX512_H

#include <immintrin.h>

#include "tensor/tensor.h"

/* e^x: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, times 2^n. */
static inline __attribute__((always_inline)) __m512 exp512(__m512 x)
{
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-103.9f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* erf for x >= 0 (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7). */
static inline __attribute__((always_inline)) __m512 erf512_pos(__m512 x)
{
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                             _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), x, _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    __m512 e = exp512(_mm512_mul_ps(_mm512_mul_ps(x, x), _mm512_set1_ps(-1.0f)));
    return _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
}

static inline __attribute__((always_inline)) __m512 act512(__m512 v, bs_act act)
{
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    switch (act) {
    case BS_ACT_GELU: {
        __m512 z = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f));
        __m512 az = _mm512_abs_ps(z);
        __m512 e = erf512_pos(az);
        /* restore the sign of z */
        e = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_castps_si512(e),
            _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32((int)0x80000000u))));
        /* For small |z| use the Taylor series: A&S loses relative accuracy near 0. */
        __m512 z2 = _mm512_mul_ps(z, z);
        __m512 tay = _mm512_mul_ps(z, _mm512_fmadd_ps(z2, _mm512_set1_ps(-0.37612638903183752f),
                                                      _mm512_set1_ps(1.1283791670955126f)));
        tay = _mm512_fmadd_ps(_mm512_mul_ps(z2, _mm512_mul_ps(z2, z)),
                              _mm512_set1_ps(0.11283791670955126f), tay);
        e = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(az, _mm512_set1_ps(0.05f), _CMP_LT_OQ), e, tay);
        return _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, e));
    }
    case BS_ACT_GELU_TANH:
    case BS_ACT_TANH: {
        __m512 u = v;
        if (act == BS_ACT_GELU_TANH) {
            __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
            u = _mm512_mul_ps(_mm512_set1_ps(0.79788456080286536f),
                              _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), v3, v));
        }
        /* tanh(u) = sign(u) (1 - 2 / (e^{2|u|} + 1)) */
        __m512 au = _mm512_abs_ps(u);
        __m512 t =
            _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f),
                                             _mm512_add_ps(exp512(_mm512_add_ps(au, au)), one)));
        /* small |u|: tanh u = u - u^3/3 + 2u^5/15, avoiding the cancellation above */
        __m512 u2 = _mm512_mul_ps(au, au);
        __m512 tay = _mm512_mul_ps(
            au, _mm512_fmadd_ps(
                    u2, _mm512_fmadd_ps(u2, _mm512_set1_ps(2.0f / 15), _mm512_set1_ps(-1.0f / 3)),
                    one));
        t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(au, _mm512_set1_ps(0.04f), _CMP_LT_OQ), t, tay);
        t = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_castps_si512(t),
            _mm512_and_si512(_mm512_castps_si512(u), _mm512_set1_epi32((int)0x80000000u))));
        if (act == BS_ACT_TANH) return t;
        return _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, t));
    }
    case BS_ACT_RELU:
        return _mm512_max_ps(v, _mm512_setzero_ps());
    case BS_ACT_SILU:
        return _mm512_div_ps(v, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
    case BS_ACT_NONE:
        break;
    }
    return v;
}

#endif
