/* An AVX-512 GEMM for dense layers whose weights were packed once at load:
 * C[M][N] = A[M][K] * W[N][K]^T (+ bias), W stored as panels of 32 output
 * columns x K. Packing at load is what a BLAS redoes on every call; here the
 * 12x32 micro-kernel reads panels straight from memory. F32 panels run on
 * FMAs; BF16 panels hold pairs of depth steps per column, which one
 * AVX512_BF16 dot product consumes at once (A's rows rounded to bf16 pairs as
 * they are packed). Chosen at run time. */
#include "tensor/tensor.h"

#include "tensor/gemm_impl.h"

#include <string.h>

#define NR BS_NR_AVX512 /* columns per panel: two zmm */
#define MR 12           /* rows per micro-tile: 24 accumulators */
_Static_assert(MR == BS_GEMM_ROWS, "bs_gemm_prepare_rows pads A to whole micro-tiles");
#define KC 256 /* depth per pass: a 32 KB panel slice stays in L1/L2 */
#define MC                                                                                         \
    384 /* rows per pass: their KC-deep slice of A, packed, is 384 KB (in L2):                     \
           every pass streams all the weights, so fewer passes = less traffic */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(                                                                      \
    __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx512bf16"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx512bf16")
#endif
#include "tensor/simd_avx512.h"

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* One full MRxNR tile over kc steps of depth, every accumulator in a named
 * register (a loop over an array of them gets spilled). A is R rows lda
 * elements apart (rows past mr zero): floats, or for bf16 (bf = 1) pairs of bf16
 * in 32 bits; a row-major block needs no transpose to build, and lda is
 * never a multiple of 4 KB, so the 12 rows do not fight over one L1 set.
 * B is [kc][NR] floats or [kc/2][NR] pairs, one dot product per pair. C rows
 * are ldc apart; only mr rows are stored. */
static inline __attribute__((always_inline)) void micro_r(const int R, const int bf, int mr,
                                                          const void *A, int lda, const void *B,
                                                          int kc, float *C, int ldc, int first,
                                                          const float *bias, __mmask16 m0,
                                                          __mmask16 m1, bs_act act, const char *pf)
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
    if (bf == 1) {
        const uint32_t *ap = A;
        const uint16_t *bp = B;
        for (int k = 0; k < (kc + 1) / 2; k++) {
            if (pf) { /* the next slice of weights, into L2 (128 bytes a step, as B) */
                _mm_prefetch(pf + (size_t)k * 128, _MM_HINT_T1);
                _mm_prefetch(pf + (size_t)k * 128 + 64, _MM_HINT_T1);
            }
            const __m512bh b0 = (__m512bh)_mm512_load_si512(bp + (size_t)k * 2 * NR),
                           b1 = (__m512bh)_mm512_load_si512(bp + (size_t)k * 2 * NR + NR);
            const uint32_t *a = ap + k;
#define DOT(i)                                                                                     \
    if (i < R) {                                                                                   \
        __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[(size_t)(i)*lda]);                        \
        c0_##i = _mm512_dpbf16_ps(c0_##i, ai, b0);                                                 \
        c1_##i = _mm512_dpbf16_ps(c1_##i, ai, b1);                                                 \
    }
            ROWS(DOT)
#undef DOT
        }
    } else {
        const float *ap = A, *bp = B;
        const uint16_t *hp = B; /* bf 2, 3: f16, bf16 panels, widened as they are loaded */
        const size_t step = bf ? 64 : 128; /* bytes of B a step */
        for (int k = 0; k < kc; k++) {
            if (pf) { /* the next slice of weights, into L2 */
                _mm_prefetch(pf + (size_t)k * step, _MM_HINT_T1);
                if (step > 64) _mm_prefetch(pf + (size_t)k * step + 64, _MM_HINT_T1);
            }
            __m512 b0, b1;
            if (bf == 2) {
                b0 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(hp + (size_t)k * NR)));
                b1 =
                    _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(hp + (size_t)k * NR + 16)));
            } else if (bf == 3) { /* bf16 pairs (columns i, i + 16) */
                __m512i w = _mm512_load_si512((const void *)(hp + (size_t)k * NR));
                b0 = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
                b1 = _mm512_castsi512_ps(
                    _mm512_and_si512(w, _mm512_set1_epi32((int)0xffff0000u)));
            } else {
                b0 = _mm512_load_ps(bp + (size_t)k * NR);
                b1 = _mm512_load_ps(bp + (size_t)k * NR + 16);
            }
            const float *a = ap + k;
#define FMA(i)                                                                                     \
    if (i < R) {                                                                                   \
        __m512 ai = _mm512_set1_ps(a[(size_t)(i)*lda]);                                            \
        c0_##i = _mm512_fmadd_ps(ai, b0, c0_##i);                                                  \
        c1_##i = _mm512_fmadd_ps(ai, b1, c1_##i);                                                  \
    }
            ROWS(FMA)
#undef FMA
        }
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
#define MICRO(BF)                                                                                  \
    static void micro_##BF(int mr, const void *A, int lda, const void *B, int kc, float *C,        \
                           int ldc, int first, const float *bias, __mmask16 m0, __mmask16 m1,      \
                           bs_act act, const char *pf)                                             \
    {                                                                                              \
        if (mr > 8)                                                                                \
            micro_r(12, BF, mr, A, lda, B, kc, C, ldc, first, bias, m0, m1, act, pf);              \
        else if (mr > 4)                                                                           \
            micro_r(8, BF, mr, A, lda, B, kc, C, ldc, first, bias, m0, m1, act, pf);               \
        else                                                                                       \
            micro_r(4, BF, mr, A, lda, B, kc, C, ldc, first, bias, m0, m1, act, pf);               \
    }
MICRO(0) /* f32 panels */
MICRO(1) /* bf16 pairs */
MICRO(2) /* f16 panels */
MICRO(3) /* bf16 panels (widened) */
#undef MICRO

/* Rows m..m+mr of A, depth kb..kb+kc, into dst as [MR][KC] floats (rows
 * past mr zero). */
static void pack_a_f32(const float *A, int lda, int m, int mr, int kb, int kc, float *dst)
{
    for (int i = 0; i < MR; i++) {
        if (i < mr)
            memcpy(dst + (size_t)i * KC, A + (size_t)(m + i) * lda + kb, (size_t)kc * sizeof *dst);
        else
            memset(dst + (size_t)i * KC, 0, (size_t)kc * sizeof *dst);
    }
}

/* kc floats of one row as kc/2 pairs of bf16 (an odd kc ends with a zero),
 * rounded to nearest even 32 at a time. */
static void row_bf16(const float *src, int kc, uint32_t *d)
{
    for (int c = 0; c < kc; c += 32) {
        int n = kc - c < 32 ? kc - c : 32;
        __mmask16 lo = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
        __mmask16 hi = n >= 32 ? (__mmask16)0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + c + 16),
                                         _mm512_maskz_loadu_ps(lo, src + c));
        int q = (n + 1) / 2;
        _mm512_mask_storeu_epi32(d + c / 2, (__mmask16)(q >= 16 ? 0xffff : (1u << q) - 1),
                                 (__m512i)v);
    }
}

/* bs_pack_weights' bf16 layout, 32 depth steps of a row rounded at once
 * (to nearest, ties to even; denormals flushed to zero, as the dot products
 * would treat them anyway): a 100 MB model packs in tens of milliseconds. */
void bs_g512_pack_bf16(const float *w, int N, int K, uint16_t *out)
{
    int panels = (N + NR - 1) / NR, Ks = k_stored(K, BS_PACK_BF16);
    uint32_t *o = (uint32_t *)out;
    for (int n = 0; n < panels * NR; n++) {
        /* pair k/2 of column j of panel p: o[(p Ks / 2 + k / 2) NR + j] */
        uint32_t *dst = o + (size_t)(n / NR) * (Ks / 2) * NR + n % NR;
        if (n >= N) {
            for (int q = 0; q < Ks / 2; q++) dst[(size_t)q * NR] = 0;
            continue;
        }
        const float *src = w + (size_t)n * K;
        for (int c = 0; c < K; c += 32) {
            int len = K - c < 32 ? K - c : 32;
            uint32_t t[16];
            row_bf16(src + c, len, t);
            for (int q = 0; q < (len + 1) / 2; q++) dst[(size_t)(c / 2 + q) * NR] = t[q];
        }
    }
}

/* Rows m..m+mr of A, depth kb..kb+kc, as [MR][KC] pairs of bf16 (rows past
 * mr zero). */
static void pack_a_bf16(const float *A, int lda, int m, int mr, int kb, int kc, uint32_t *dst)
{
    for (int i = 0; i < MR; i++) {
        if (i < mr)
            row_bf16(A + (size_t)(m + i) * lda + kb, kc, dst + (size_t)i * KC);
        else
            memset(dst + (size_t)i * KC, 0, (size_t)((kc + 1) / 2) * sizeof *dst);
    }
}

void bs_g512_prepare_bf16(const float *x, int K, int r0, int r1, uint32_t *out, int ld)
{
    for (int r = r0; r < r1; r++) row_bf16(x + (size_t)r * K, K, out + (size_t)r * ld);
}

/* Apre, when not NULL, is A already laid out by bs_gemm_prepare_rows (ldp
 * elements per row): nothing is packed per call. */
static void gemm_packed(int M, const float *A, int lda, const void *Apre, int ldp,
                        const bs_packed *pk, const float *bias, float *C, int ldc, int p0, int p1,
                        bs_act act)
{
    /* A's block, packed per call (it changes every call; the weights do not).
     * Rows of A lie K floats apart: read directly, 12 of them alias in L1.
     * A bf16 pass covers twice the depth in the same bytes. */
    float small[MR * KC] __attribute__((aligned(64)));
    float *Ap = bs_thread_scratch(BS_SCRATCH_GEMM_A, (size_t)MC * KC * sizeof(float));
    int mc = MC, N = pk->N, K = pk->K, bf = pk->kind == BS_PACK_BF16;
    int h = pk->kind == BS_PACK_F16 ? 2 : pk->kind == BS_PACK_BF16W ? 3 : 0;
    int kcmax = bf ? 2 * KC : KC, Ks = k_stored(K, pk->kind);
    const char *panels = (const char *)pk + BS_PACKED_HEADER;
    size_t elem = bf || h ? 2 : 4;
    if (!Ap) { /* no memory for the block buffer: one micro-tile at a time */
        Ap = small;
        mc = MR;
    }
    for (int kb = 0; kb < K; kb += kcmax) {
        int kc = K - kb < kcmax ? K - kb : kcmax, last = kb + kc == K;
        for (int mb = 0; mb < M; mb += mc) {
            int me = mb + mc < M ? mb + mc : M;
            for (int m = mb; m < me && !Apre; m += MR) {
                int mr = me - m < MR ? me - m : MR;
                if (bf)
                    pack_a_bf16(A, lda, m, mr, kb, kc, (uint32_t *)Ap + (size_t)(m - mb) * KC);
                else
                    pack_a_f32(A, lda, m, mr, kb, kc, Ap + (size_t)(m - mb) * KC);
            }
            for (int p = p0; p < p1; p++) {
                int n0 = p * NR, cols = N - n0 < NR ? N - n0 : NR;
                __mmask16 m0 = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);
                __mmask16 m1 = cols >= 32  ? (__mmask16)0xffff
                               : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1)
                                           : 0;
                /* kb is even for bf16, so depth kb starts a pair */
                const void *B = panels + ((size_t)p * Ks + kb) * NR * elem;
                /* the first tile fetches the slice that comes next (the next
                 * panel's, or the first panel's at the next depth) into L2:
                 * at batch 1 the weights stream from DRAM, used by 1-2 tiles */
                const char *next = NULL;
                if (p + 1 < p1)
                    next = panels + ((size_t)(p + 1) * Ks + kb) * NR * elem;
                else if (me < M)
                    next = panels + ((size_t)p0 * Ks + kb) * NR * elem;
                else if (kb + kc < K)
                    next = panels + ((size_t)p0 * Ks + kb + kc) * NR * elem;
                for (int m = mb; m < me; m += MR) {
                    const char *pf = m == mb ? next : NULL;
                    int mr = me - m < MR ? me - m : MR;
                    float *Ct = C + (size_t)m * ldc + n0;
                    const float *bp = bias ? bias + n0 : NULL;
                    bs_act a = last ? act : BS_ACT_NONE;
                    const float *At = Ap + (size_t)(m - mb) * KC;
                    if (Apre && bf)
                        micro_1(mr, (const uint32_t *)Apre + (size_t)m * ldp + kb / 2, ldp, B, kc,
                                Ct, ldc, kb == 0, bp, m0, m1, a, pf);
                    else if (Apre)
                        (h == 2   ? micro_2
                         : h == 3 ? micro_3
                                  : micro_0)(mr, (const float *)Apre + (size_t)m * ldp + kb, ldp, B,
                                             kc, Ct, ldc, kb == 0, bp, m0, m1, a, pf);
                    else if (bf)
                        micro_1(mr, At, KC, B, kc, Ct, ldc, kb == 0, bp, m0, m1, a, pf);
                    else
                        (h == 2 ? micro_2
                         : h == 3
                             ? micro_3
                             : micro_0)(mr, At, KC, B, kc, Ct, ldc, kb == 0, bp, m0, m1, a, pf);
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

void bs_g512_packed(int M, const float *A, int lda, const void *Apre, int ldp, const bs_packed *p,
                    const float *bias, float *C, int ldc, int n0, int n1, bs_act act)
{
    gemm_packed(M, A, lda, Apre, ldp, p, bias, C, ldc, n0 / NR, (n1 + NR - 1) / NR, act);
}
#endif
