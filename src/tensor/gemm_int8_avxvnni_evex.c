/* The avxvnni path's int8 tile in the EVEX encoding (AVX512_VNNI +
 * AVX512VL): the same source (gemm_int8_vnni256.h) and operation as
 * gemm_int8_avxvnni.c, so that AVX-512 CPUs, which lack AVX-VNNI's VEX form,
 * run, test and benchmark that kernel with BS_CPU=avxvnni. */
#include "tensor/gemm_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512vnni,avx512vl"))),              \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512vnni,avx512vl")
#endif
#include <immintrin.h>

#define BS_DPBUSD256(acc, u8, s8) _mm256_dpbusd_epi32(acc, u8, s8)
#define BS_VNNI256_TILE           bs_i8_tile_avxvnni_evex
#include "tensor/gemm_int8_vnni256.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
