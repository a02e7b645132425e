/* The portable path's packed-weight GEMM in plain C, on the AVX2 path's
 * layout (panels of 16 columns): a 4x16 tile of accumulators over a fixed
 * 16-wide inner loop, which compilers keep in vector registers (two ymm a
 * row on x86-64-v3, four q registers on NEON). A is read in place. */
#include "tensor/gemm_impl.h"

#include <string.h>

#define NR BS_NR_AVX2
#define MR 4
#define KC 256

/* An IEEE half to float, branch-free for the vectoriser: the magnitude's
 * bits moved into place and scaled by 2^112 rebias normals and subnormals
 * alike (panels hold no infinities: packing saturates only past 65504). */
BS_INLINE float h2f(uint16_t h)
{
    uint32_t bits = (uint32_t)(h & 0x7fffu) << 13;
    float f;
    memcpy(&f, &bits, sizeof f);
    f *= 0x1p112f;
    return (h & 0x8000u) ? -f : f;
}

BS_INLINE void micro_r(const int R, const int h, const float *A, int lda, const void *Bv, int kc,
                       float *C, int ldc, int first, const float *bias, int cols, bs_act act)
{
    float acc[MR][NR];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < NR; j++)
            acc[i][j] = first ? (bias && j < cols ? bias[j] : 0.0f)
                              : (j < cols ? C[(size_t)i * ldc + j] : 0.0f);
    /* fully unrolled, the tile's 64 sums become registers (scalar
     * replacement) and each row's 16 multiply-adds one vector operation */
    for (int k = 0; k < kc; k++) {
        float wide[NR];
        const float *b = (const float *)Bv + (size_t)k * NR;
        if (h) {
            const uint16_t *hb = (const uint16_t *)Bv + (size_t)k * NR;
            if (h == 1)
                for (int j = 0; j < NR; j++) wide[j] = h2f(hb[j]);
            else /* bf16 pairs (columns j, j + 8): the high half of an f32 */
                for (int j = 0; j < NR; j++) {
                    uint32_t bits = (uint32_t)hb[bs_bf16w_slot(j, NR)] << 16;
                    memcpy(&wide[j], &bits, sizeof bits);
                }
            b = wide;
        }
        BS_UNROLL(4)
        for (int i = 0; i < R; i++) {
            float a = A[(size_t)i * lda + k];
            BS_UNROLL(16)
            for (int j = 0; j < NR; j++) acc[i][j] += a * b[j];
        }
    }
    for (int i = 0; i < R; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < cols; j++) c[j] = acc[i][j];
        if (act != BS_ACT_NONE) bs_kernels_portable()->bias_act(c, NULL, cols, act);
    }
}

#define MICRO(R, H)                                                                                \
    static void micro_##R##_##H(const float *A, int lda, const void *B, int kc, float *C, int ldc, \
                                int first, const float *bias, int cols, bs_act act)                \
    {                                                                                              \
        micro_r(R, H, A, lda, B, kc, C, ldc, first, bias, cols, act);                              \
    }
MICRO(1, 0)
MICRO(2, 0)
MICRO(3, 0)
MICRO(4, 0)
MICRO(1, 1)
MICRO(2, 1)
MICRO(3, 1)
MICRO(4, 1)
MICRO(1, 2)
MICRO(2, 2)
MICRO(3, 2)
MICRO(4, 2)
#undef MICRO

typedef void (*micro_fn)(const float *, int, const void *, int, float *, int, int, const float *,
                         int, bs_act);
static const micro_fn micro[3][MR + 1] = {{0, micro_1_0, micro_2_0, micro_3_0, micro_4_0},
                                          {0, micro_1_1, micro_2_1, micro_3_1, micro_4_1},
                                          {0, micro_1_2, micro_2_2, micro_3_2, micro_4_2}};

void bs_gc_packed(int M, const float *A, int lda, const bs_packed *pk, const float *bias, float *C,
                  int ldc, int n0, int n1, bs_act act)
{
    int N = pk->N, K = pk->K, p0 = n0 / NR, p1 = (n1 + NR - 1) / NR;
    const char *panels = (const char *)pk + BS_PACKED_HEADER;
    int h = pk->kind == BS_PACK_F16 ? 1 : pk->kind == BS_PACK_BF16W ? 2 : 0;
    size_t elem = h ? 2 : 4;
    for (int kb = 0; kb < K; kb += KC) {
        int kc = K - kb < KC ? K - kb : KC;
        bs_act a = kb + kc == K ? act : BS_ACT_NONE;
        for (int p = p0; p < p1; p++) {
            int c0 = p * NR, cols = N - c0 < NR ? N - c0 : NR;
            const void *B = panels + ((size_t)p * K + kb) * NR * elem;
            const float *bp = bias ? bias + c0 : NULL;
            for (int m = 0; m < M; m += MR) {
                int mr = M - m < MR ? M - m : MR;
                micro[h][mr](A + (size_t)m * lda + kb, lda, B, kc, C + (size_t)m * ldc + c0, ldc,
                             kb == 0, bp, cols, a);
            }
        }
    }
}
