/* The AVX-VNNI int8 tile (avxvnni path on CPUs with AVX2 + AVX-VNNI and no
 * AVX-512: Intel Alder Lake and later, AMD Zen 5): gemm_int8_vnni256.h's
 * 6 x 16 tile on the VEX-encoded 256-bit vpdpbusd. */
#include "tensor/gemm_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avxvnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,avxvnni")
#endif
#include <immintrin.h>

#define BS_DPBUSD256(acc, u8, s8) _mm256_dpbusd_avx_epi32(acc, u8, s8)
#define BS_VNNI256_TILE           bs_i8_tile_avxvnni
#include "tensor/gemm_int8_vnni256.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
