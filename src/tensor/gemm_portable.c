/* The portable path's packed-weight GEMM in plain C, on the AVX2 path's
 * layout (panels of 16 columns): a 4x16 tile of accumulators over a fixed
 * 16-wide inner loop, which compilers keep in vector registers (two ymm a
 * row on x86-64-v3, four q registers on NEON). A is read in place. */
#include "tensor/gemm_impl.h"

#define NR BS_NR_AVX2
#define MR 4
#define KC 256

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

BS_INLINE void micro_r(const int R, const float *A, int lda, const float *B, int kc, float *C,
                       int ldc, int first, const float *bias, int cols, bs_act act)
{
    float acc[MR][NR];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < NR; j++)
            acc[i][j] = first ? (bias && j < cols ? bias[j] : 0.0f)
                              : (j < cols ? C[(size_t)i * ldc + j] : 0.0f);
    /* fully unrolled, the tile's 64 sums become registers (scalar
     * replacement) and each row's 16 multiply-adds one vector operation */
    for (int k = 0; k < kc; k++) {
        const float *b = B + (size_t)k * NR;
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

#define MICRO(R)                                                                                   \
    static void micro_##R(const float *A, int lda, const float *B, int kc, float *C, int ldc,      \
                          int first, const float *bias, int cols, bs_act act)                      \
    {                                                                                              \
        micro_r(R, A, lda, B, kc, C, ldc, first, bias, cols, act);                                 \
    }
MICRO(1)
MICRO(2)
MICRO(3)
MICRO(4)
#undef MICRO

typedef void (*micro_fn)(const float *, int, const float *, int, float *, int, int, const float *,
                         int, bs_act);
static const micro_fn micro[MR + 1] = {0, micro_1, micro_2, micro_3, micro_4};

void bs_gc_packed(int M, const float *A, int lda, const bs_packed *pk, const float *bias, float *C,
                  int ldc, int n0, int n1, bs_act act)
{
    int N = pk->N, K = pk->K, p0 = n0 / NR, p1 = (n1 + NR - 1) / NR;
    const float *panels = (const float *)((const char *)pk + BS_PACKED_HEADER);
    for (int kb = 0; kb < K; kb += KC) {
        int kc = K - kb < KC ? K - kb : KC;
        bs_act a = kb + kc == K ? act : BS_ACT_NONE;
        for (int p = p0; p < p1; p++) {
            int c0 = p * NR, cols = N - c0 < NR ? N - c0 : NR;
            const float *B = panels + ((size_t)p * K + kb) * NR;
            const float *bp = bias ? bias + c0 : NULL;
            for (int m = 0; m < M; m += MR) {
                int mr = M - m < MR ? M - m : MR;
                micro[mr](A + (size_t)m * lda + kb, lda, B, kc, C + (size_t)m * ldc + c0, ldc,
                          kb == 0, bp, cols, a);
            }
        }
    }
}
