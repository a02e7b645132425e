/* An AVX-512 GEMM for dense layers whose weights were packed once at load:
 * C[M][N] = A[M][K] * W[N][K]^T (+ bias), W stored as panels of 32 output
 * columns x K. Packing at load is what a BLAS redoes on every call; here the
 * 12x32 micro-kernel reads panels straight from memory. Chosen at run time. */
#include "tensor/tensor.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NR 32  /* columns per panel: two zmm */
#define MR 12  /* rows per micro-tile: 24 accumulators */
#define KC 256 /* depth per pass: a 32 KB panel slice stays in L1/L2 */
#define MC                                                                                         \
    384 /* rows per pass: their KC-deep slice of A, packed, is 384 KB (in L2):                     \
           every pass streams all the weights, so fewer passes = less traffic */

size_t bs_pack_floats(int N, int K)
{
    return (size_t)((N + NR - 1) / NR) * NR * (size_t)K;
}

void bs_pack_weights(const float *w, int N, int K, float *packed)
{
    int panels = (N + NR - 1) / NR;
    /* Rows of w are read in order; a panel's writes stay within L2. */
    for (int p = 0; p < panels; p++)
        for (int j = 0; j < NR; j++) {
            int n = p * NR + j;
            float *dst = packed + (size_t)p * K * NR + j;
            if (n < N)
                for (int k = 0; k < K; k++) dst[(size_t)k * NR] = w[(size_t)n * K + k];
            else
                for (int k = 0; k < K; k++) dst[(size_t)k * NR] = 0.0f;
        }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))),        \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw")
#endif
#include "tensor/simd_avx512.h"

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* One full MRxNR tile over kc steps of depth, every accumulator in a named
 * register (a loop over an array of them gets spilled). A is packed as
 * [kc][MR] (rows interleaved, zero rows past the end of A), so each step
 * reads one contiguous line. C rows are ldc apart; only mr rows are stored. */
static inline __attribute__((always_inline)) void micro_r(const int R, int mr, const float *A,
                                                          const float *B, int kc, float *C, int ldc,
                                                          int first, const float *bias,
                                                          __mmask16 m0, __mmask16 m1, bs_act act)
{
    __m512 b0i = _mm512_setzero_ps(), b1i = _mm512_setzero_ps();
    if (first && bias) {
        b0i = _mm512_maskz_loadu_ps(m0, bias);
        b1i = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
#define DECL(i) __m512 c0_##i = b0i, c1_##i = b1i;
    ROWS(DECL)
#undef DECL
    if (!first) {
#define LOAD(i)                                                                                    \
    if (i < mr) {                                                                                  \
        c0_##i = _mm512_maskz_loadu_ps(m0, C + (size_t)(i)*ldc);                                   \
        c1_##i = _mm512_maskz_loadu_ps(m1, C + (size_t)(i)*ldc + 16);                              \
    }
        ROWS(LOAD)
#undef LOAD
    }
    for (int k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(B + (size_t)k * NR),
                     b1 = _mm512_load_ps(B + (size_t)k * NR + 16);
        const float *a = A + (size_t)k * MR;
#define FMA(i)                                                                                     \
    if (i < R) {                                                                                   \
        __m512 ai = _mm512_set1_ps(a[i]);                                                          \
        c0_##i = _mm512_fmadd_ps(ai, b0, c0_##i);                                                  \
        c1_##i = _mm512_fmadd_ps(ai, b1, c1_##i);                                                  \
    }
        ROWS(FMA)
#undef FMA
    }
    if (act != BS_ACT_NONE) { /* last pass: activation while the tile is in registers */
#define ACT(i)                                                                                     \
    if (i < R) {                                                                                   \
        c0_##i = act512(c0_##i, act);                                                              \
        c1_##i = act512(c1_##i, act);                                                              \
    }
        ROWS(ACT)
#undef ACT
    }
#define STORE(i)                                                                                   \
    if (i < mr) {                                                                                  \
        _mm512_mask_storeu_ps(C + (size_t)(i)*ldc, m0, c0_##i);                                    \
        _mm512_mask_storeu_ps(C + (size_t)(i)*ldc + 16, m1, c1_##i);                               \
    }
    ROWS(STORE)
#undef STORE
}

/* Tiles of 12, 8 and 4 rows: the last tile of M rows computes at most 3
 * padding rows (M = 16 is 12 + 4, M = 128 is 10 x 12 + 8). */
static void micro(int mr, const float *A, const float *B, int kc, float *C, int ldc, int first,
                  const float *bias, __mmask16 m0, __mmask16 m1, bs_act act)
{
    if (mr > 8)
        micro_r(12, mr, A, B, kc, C, ldc, first, bias, m0, m1, act);
    else if (mr > 4)
        micro_r(8, mr, A, B, kc, C, ldc, first, bias, m0, m1, act);
    else
        micro_r(4, mr, A, B, kc, C, ldc, first, bias, m0, m1, act);
}

/* One A-block buffer per thread, allocated on its first GEMM and freed when
 * the thread exits: later calls allocate nothing. */
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static void buf_key_init(void)
{
    pthread_key_create(&buf_key, free);
}

static float *thread_buffer(void)
{
    pthread_once(&buf_once, buf_key_init);
    float *b = pthread_getspecific(buf_key);
    if (!b) {
        if (posix_memalign((void **)&b, 64, (size_t)MC * KC * sizeof(float)) != 0) return NULL;
        if (pthread_setspecific(buf_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    return b;
}

static void gemm_packed(int M, int N, int K, const float *A, int lda, const float *packed,
                        const float *bias, float *C, int ldc, int p0, int p1, bs_act act)
{
    /* A's block, packed per call (it changes every call; the weights do not).
     * Rows of A lie K floats apart: read directly, 12 of them alias in L1. */
    float small[MR * KC] __attribute__((aligned(64)));
    float *Ap = thread_buffer();
    int mc = MC;
    if (!Ap) { /* no memory for the block buffer: one micro-tile at a time */
        Ap = small;
        mc = MR;
    }
    for (int kb = 0; kb < K; kb += KC) {
        int kc = K - kb < KC ? K - kb : KC, last = kb + kc == K;
        for (int mb = 0; mb < M; mb += mc) {
            int me = mb + mc < M ? mb + mc : M;
            for (int m = mb; m < me; m += MR) {
                int mr = me - m < MR ? me - m : MR;
                float *dst = Ap + (size_t)(m - mb) * KC;
                for (int i = 0; i < MR; i++) {
                    const float *src = A + (size_t)(m + i) * lda + kb;
                    if (i < mr)
                        for (int k = 0; k < kc; k++) dst[(size_t)k * MR + i] = src[k];
                    else
                        for (int k = 0; k < kc; k++) dst[(size_t)k * MR + i] = 0.0f;
                }
            }
            for (int p = p0; p < p1; p++) {
                int n0 = p * NR, cols = N - n0 < NR ? N - n0 : NR;
                __mmask16 m0 = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);
                __mmask16 m1 = cols >= 32  ? (__mmask16)0xffff
                               : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1)
                                           : 0;
                const float *B = packed + ((size_t)p * K + kb) * NR;
                for (int m = mb; m < me; m += MR) {
                    int mr = me - m < MR ? me - m : MR;
                    float *Ct = C + (size_t)m * ldc + n0;
                    micro(mr, Ap + (size_t)(m - mb) * KC, B, kc, Ct, ldc, kb == 0,
                          bias ? bias + n0 : NULL, m0, m1, last ? act : BS_ACT_NONE);
                }
            }
        }
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

int bs_gemm_packed_available(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
}

void bs_gemm_packed_cols(int M, int N, int K, const float *A, int lda, const float *packed,
                         const float *bias, float *C, int ldc, int n0, int n1, bs_act act)
{
    gemm_packed(M, N, K, A, lda, packed, bias, C, ldc, n0 / NR, (n1 + NR - 1) / NR, act);
}
#else
int bs_gemm_packed_available(void)
{
    return 0;
}
void bs_gemm_packed_cols(int M, int N, int K, const float *A, int lda, const float *packed,
                         const float *bias, float *C, int ldc, int n0, int n1, bs_act act)
{
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)packed, (void)bias, (void)C, (void)ldc,
        (void)n0, (void)n1, (void)act;
}
#endif
