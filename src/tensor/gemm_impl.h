/* Internals shared by the packed-weight GEMMs of each kernel path
 * (gemm_packed.c dispatches to gemm_avx512.c, gemm_avx2.c, gemm_portable.c). */
#ifndef BS_TENSOR_GEMM_IMPL_H
#define BS_TENSOR_GEMM_IMPL_H

#include "tensor/tensor.h"

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

#endif
