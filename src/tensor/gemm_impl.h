/* Internals shared by the packed-weight GEMMs of each kernel path
 * (gemm_packed.c dispatches to gemm_avx512.c, gemm_avx2.c, gemm_portable.c). */
#ifndef BS_TENSOR_GEMM_IMPL_H
#define BS_TENSOR_GEMM_IMPL_H

#include "tensor/tensor.h"

/* For the kernels: a helper always inlined, and a loop unrolled in full so
 * that its accumulators stay in registers. */
#if defined(__GNUC__) || defined(__clang__)
#define BS_INLINE static inline __attribute__((always_inline))
#else
#define BS_INLINE static inline
#endif
#if defined(__clang__)
#define BS_UNROLL(n) _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define BS_PRAGMA(x) _Pragma(#x)
#define BS_UNROLL(n) BS_PRAGMA(GCC unroll n)
#else
#define BS_UNROLL(n)
#endif

#define BS_NR_AVX512 32 /* panel width of the AVX-512 path: two zmm */
#define BS_NR_AVX2   16 /* of the AVX2 and portable paths: two ymm */

/* Depth steps stored per panel column: bf16 panels hold whole pairs. */
static inline int k_stored(int K, bs_pack_kind kind)
{
    return kind == BS_PACK_BF16 ? (K + 1) & ~1 : K;
}

/* AVX-512: bf16 panels, bf16 rows of A, and the 12x32 GEMM (Apre, when not
 * NULL, is A laid out by bs_gemm_prepare_rows, ldp elements a row). */
void bs_g512_pack_bf16(const float *w, int N, int K, uint16_t *out);
void bs_g512_prepare_bf16(const float *x, int K, int r0, int r1, uint32_t *out, int ld);
void bs_g512_packed(int M, const float *A, int lda, const void *Apre, int ldp, const bs_packed *p,
                    const float *bias, float *C, int ldc, int n0, int n1, bs_act act);
/* AVX2+FMA3 and portable C: F32 panels of 16 columns, A read in place. */
void bs_g256_packed(int M, const float *A, int lda, const bs_packed *p, const float *bias, float *C,
                    int ldc, int n0, int n1, bs_act act);
void bs_gc_packed(int M, const float *A, int lda, const bs_packed *p, const float *bias, float *C,
                  int ldc, int n0, int n1, bs_act act);
/* The 16-bit slot of column j (of nr) in a step of a BF16W panel: column j
 * and column j + nr/2 share one 32-bit word, so that a kernel widens a whole
 * step with one shift (low halves: columns 0..nr/2) and one AND (high
 * halves), instead of zero-extending and shifting each half (4 operations
 * against 2 on the ports the FMAs use). */
static inline int bs_bf16w_slot(int j, int nr)
{
    return j < nr / 2 ? 2 * j : 2 * (j - nr / 2) + 1;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* bs_pack_f32_strided's panels of nr (16 or 32) columns with AVX2, for the
 * avx2 and avx512 paths alike: 8 x 8 blocks transposed in registers. out
 * 32-byte aligned. */
void bs_g256_pack_f32(const float *w, int ldw, int N, int K, int transposed, int nr, float *out);
#endif

/* int8 (gemm_int8.c): panels of BS_I8_NR columns in groups of 4 depth steps,
 * weights within +-BS_I8_WMAX. A tile kernel sums R (<= its rows) x 16
 * columns over kg groups into acc: exact int32, so every variant equals the
 * portable one. pf (or NULL): kg * 64 bytes the tile prefetches, a group a
 * step (the next panel, while this one is read from cache). */
#define BS_I8_NR     16
#define BS_I8_WMAX   127
#define BS_I8_MR_MAX 8
/* Rows of the 256-bit VNNI tile (gemm_int8_vnni256.h) */
#define BS_I8_MR_VNNI256 6
/* The AVX2 kernel's largest activation code: u8 x s8 pairs within 16 bits */
#define BS_I8_AMAX_AVX2 128
/* The dequantization a tile applies in registers when given one (else it
 * stores the sums in acc): C[i][j] = (float)(sum - zp[i] cs[j]) * (sa[i] ws[j])
 * + bias[j] for j < cols, sums in int32 (K < BS_I8_K_EPI). Pointers at the
 * tile's first row and column. */
#define BS_I8_K_EPI 32768
typedef struct bs_i8_epi {
    const float *sa, *ws, *bias;
    const int32_t *zp, *cs;
    float *C;
    int ldc, cols;
} bs_i8_epi;
/* The body of a bs_i8_tile_fn: calls the file's tile_r(rows, args...) with
 * rows a constant (so that its accumulators become registers): R itself
 * below MAX (at most 8), MAX from there on. A case at or past MAX compiles
 * to nothing and falls through to MAX. */
#define BS_I8_TILE_CASE(k, MAX, ...)                                                               \
    case k:                                                                                        \
        if ((k) < (MAX)) {                                                                         \
            tile_r((k) < (MAX) ? (k) : 1, __VA_ARGS__);                                            \
            break;                                                                                 \
        }                                                                                          \
        __attribute__((fallthrough));
#define BS_I8_TILE_ROWS(R, MAX, ...)                                                               \
    switch (R) {                                                                                   \
        BS_I8_TILE_CASE(1, MAX, __VA_ARGS__)                                                       \
        BS_I8_TILE_CASE(2, MAX, __VA_ARGS__)                                                       \
        BS_I8_TILE_CASE(3, MAX, __VA_ARGS__)                                                       \
        BS_I8_TILE_CASE(4, MAX, __VA_ARGS__)                                                       \
        BS_I8_TILE_CASE(5, MAX, __VA_ARGS__)                                                       \
        BS_I8_TILE_CASE(6, MAX, __VA_ARGS__)                                                       \
        BS_I8_TILE_CASE(7, MAX, __VA_ARGS__)                                                       \
    default:                                                                                       \
        tile_r(MAX, __VA_ARGS__);                                                                  \
        break;                                                                                     \
    }
typedef void (*bs_i8_tile_fn)(int R, const uint8_t *A, int lda, const int8_t *B, int kg,
                              const int8_t *pf, const bs_i8_epi *epi,
                              int32_t acc[BS_I8_MR_MAX][BS_I8_NR]);
size_t bs_i8_packed_bytes(int N, int K);
void bs_i8_pack(const float *w, int N, int K, bs_packed *p);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
void bs_i8_tile_avx2(int R, const uint8_t *A, int lda, const int8_t *B, int kg, const int8_t *pf,
                     const bs_i8_epi *epi, int32_t acc[BS_I8_MR_MAX][BS_I8_NR]);
void bs_i8_tile_vnni(int R, const uint8_t *A, int lda, const int8_t *B, int kg, const int8_t *pf,
                     const bs_i8_epi *epi, int32_t acc[BS_I8_MR_MAX][BS_I8_NR]);
/* gemm_int8_vnni256.h's tile in the VEX (AVX-VNNI) and EVEX (AVX512_VNNI + VL) encodings */
void bs_i8_tile_avxvnni(int R, const uint8_t *A, int lda, const int8_t *B, int kg, const int8_t *pf,
                        const bs_i8_epi *epi, int32_t acc[BS_I8_MR_MAX][BS_I8_NR]);
void bs_i8_tile_avxvnni_evex(int R, const uint8_t *A, int lda, const int8_t *B, int kg,
                             const int8_t *pf, const bs_i8_epi *epi,
                             int32_t acc[BS_I8_MR_MAX][BS_I8_NR]);
#endif

#endif
