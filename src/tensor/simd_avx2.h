/* AVX2+FMA3 math shared by the AVX2 kernels (ops_avx2.c, gemm_avx2.c): exp,
 * erf and the activations on 8 floats, the same approximations as
 * simd_avx512.h. Include only after `#pragma GCC target("avx2,fma")`. */
#ifndef BS_TENSOR_SIMD_AVX2_H
#define BS_TENSOR_SIMD_AVX2_H

#include <immintrin.h>

#include "tensor/tensor.h"

#define BS_AI static inline __attribute__((always_inline))

BS_AI __m256 abs256(__m256 v)
{
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

/* sign of s copied onto |m| (m >= 0) */
BS_AI __m256 copysign256(__m256 m, __m256 s)
{
    return _mm256_or_ps(m,
                        _mm256_and_ps(s, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u))));
}

/* e^x: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, times 2^n built in
 * the exponent field (x clamped so that 2^n stays a normal float). */
BS_AI __m256 exp256(__m256 x)
{
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3f)), _mm256_set1_ps(-87.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* erf for x >= 0 (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7). */
BS_AI __m256 erf256_pos(__m256 x)
{
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                             _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), x, _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 e = exp256(_mm256_mul_ps(_mm256_mul_ps(x, x), _mm256_set1_ps(-1.0f)));
    return _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
}

BS_AI __m256 act256(__m256 v, bs_act act)
{
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    switch (act) {
    case BS_ACT_GELU: {
        __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f));
        __m256 az = abs256(z);
        __m256 e = copysign256(erf256_pos(az), z);
        /* small |z|: Taylor series, A&S loses relative accuracy near 0 */
        __m256 z2 = _mm256_mul_ps(z, z);
        __m256 tay = _mm256_mul_ps(z, _mm256_fmadd_ps(z2, _mm256_set1_ps(-0.37612638903183752f),
                                                      _mm256_set1_ps(1.1283791670955126f)));
        tay = _mm256_fmadd_ps(_mm256_mul_ps(z2, _mm256_mul_ps(z2, z)),
                              _mm256_set1_ps(0.11283791670955126f), tay);
        e = _mm256_blendv_ps(e, tay, _mm256_cmp_ps(az, _mm256_set1_ps(0.05f), _CMP_LT_OQ));
        return _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e));
    }
    case BS_ACT_GELU_TANH:
    case BS_ACT_TANH: {
        __m256 u = v;
        if (act == BS_ACT_GELU_TANH) {
            __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
            u = _mm256_mul_ps(_mm256_set1_ps(0.79788456080286536f),
                              _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), v3, v));
        }
        /* tanh(u) = sign(u) (1 - 2 / (e^{2|u|} + 1)) */
        __m256 au = abs256(u);
        __m256 t =
            _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f),
                                             _mm256_add_ps(exp256(_mm256_add_ps(au, au)), one)));
        __m256 u2 = _mm256_mul_ps(au, au);
        __m256 tay = _mm256_mul_ps(
            au, _mm256_fmadd_ps(
                    u2, _mm256_fmadd_ps(u2, _mm256_set1_ps(2.0f / 15), _mm256_set1_ps(-1.0f / 3)),
                    one));
        t = _mm256_blendv_ps(t, tay, _mm256_cmp_ps(au, _mm256_set1_ps(0.04f), _CMP_LT_OQ));
        t = copysign256(t, u);
        if (act == BS_ACT_TANH) return t;
        return _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t));
    }
    case BS_ACT_RELU:
        return _mm256_max_ps(v, _mm256_setzero_ps());
    case BS_ACT_SILU:
        return _mm256_div_ps(v, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), v))));
    case BS_ACT_NONE:
        break;
    }
    return v;
}

/* Mask of the first n (0..8) lanes, for maskload/maskstore of a tail. */
BS_AI __m256i mask256(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

BS_AI float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

BS_AI float hmax256(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
