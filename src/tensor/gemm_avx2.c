/* The AVX2+FMA3 packed-weight GEMM: C[M][N] = act(A[M][K] W[N][K]^T + bias)
 * with W packed once at load as panels of 16 output columns x K
 * (gemm_packed.c). A 6x16 micro-kernel (12 accumulators, two panel loads and
 * one broadcast a step: 15 of the 16 ymm) reads the rows of A in place, so a
 * call copies nothing (except over many rows that alias in L1, see below);
 * bias enters as the accumulators' start and the activation is applied
 * while the tile is in registers. */
#include "tensor/gemm_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#include "tensor/simd_avx2.h"

#include <string.h>

#define NR      BS_NR_AVX2
#define MR      6   /* rows per micro-tile */
#define KC      256 /* depth per pass: the panel's 16 KB slice stays in L1 */
#define MC      336 /* rows per pass: their KC-deep slice of A (336 KB) stays in L2 */
#define NB      16  /* panels per block: their KC-deep slices (256 KB) stay in L2 */
#define SMALL_M 36  /* up to this many rows, each panel is streamed once (see below) */
/* fewest panels that share a copied block of A (many rows, aliasing rows) */
#define COPY_PANELS 16
/* How far ahead of the first tile the few-rows loop fetches the weights'
 * stream into L2: a DRAM latency's worth of lines (measured best at 8-32 KB;
 * the hardware prefetcher alone left half the time on stalled panel loads). */
#define PF_AHEAD 16384

/* Depth of a panel chunk in the few-rows loop: the chunk (64 B a step) and
 * the M rows' slice of A (4 M bytes a step) fill about 24 KB of the L1. */
static int small_depth(int M)
{
    int d = 24576 / (64 + 4 * M);
    d = d > 512 ? 512 : d < 64 ? 64 : d;
    return d & ~15;
}

/* Rows of the next tile when `left` remain: a 7-9 row rest becomes two
 * tiles of 3-5 rows rather than 6 and 1-3, as a 1- or 2-row tile costs
 * nearly what a 4-row one does (its panel loads are not shared). */
static inline int tile_rows(int left)
{
    return left >= 10 || left == MR ? MR : left > MR ? left - 4 : left;
}

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

/* R rows (a constant after inlining) x 16 columns over kc steps of depth;
 * every accumulator a named register. cols < 16 masks the last panel's C
 * and bias (its padding columns of W are zero). */
BS_AI void micro_r(const int R, const int h, const float *A, int lda, const void *B, int kc,
                   float *C, int ldc, int first, const float *bias, int cols, bs_act act,
                   const char *pf)
{
    const int full = cols >= NR;
    const __m256i m0 = mask256(cols), m1 = mask256(cols - 8);
    __m256 b0i = _mm256_setzero_ps(), b1i = _mm256_setzero_ps();
    if (first && bias) {
        b0i = full ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, m0);
        b1i = full ? _mm256_loadu_ps(bias + 8) : _mm256_maskload_ps(bias + 8, m1);
    }
#define DECL(i) __m256 c0_##i = b0i, c1_##i = b1i;
    ROWS(DECL)
#undef DECL
    if (!first) {
#define LOAD(i)                                                                                    \
    if (i < R) {                                                                                   \
        const float *c = C + (size_t)(i)*ldc;                                                      \
        c0_##i = full ? _mm256_loadu_ps(c) : _mm256_maskload_ps(c, m0);                            \
        c1_##i = full ? _mm256_loadu_ps(c + 8) : _mm256_maskload_ps(c + 8, m1);                    \
    }
        ROWS(LOAD)
#undef LOAD
    }
    const float *a = A;
    const size_t step = (size_t)NR * (h ? 2 : 4); /* bytes of B per depth step */
    for (int k = 0; k < kc; k++, a++) {
        /* pf: weights further on, fetched into L2 while this tile computes */
        if (pf) _mm_prefetch(pf + (size_t)k * step, _MM_HINT_T1);
        __m256 b0, b1;
        if (h == 1) { /* f16 panels, widened by F16C on the way in */
            const uint16_t *hb = (const uint16_t *)B + (size_t)k * NR;
            b0 = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)hb));
            b1 = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(hb + 8)));
        } else if (h == 2) { /* bf16 pairs (columns i, i + 8): the high half of an f32 */
            __m256i w = _mm256_load_si256((const __m256i *)((const uint16_t *)B + (size_t)k * NR));
            b0 = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
            b1 = _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32((int)0xffff0000u)));
        } else {
            b0 = _mm256_load_ps((const float *)B + (size_t)k * NR);
            b1 = _mm256_load_ps((const float *)B + (size_t)k * NR + 8);
        }
#define FMA(i)                                                                                     \
    if (i < R) {                                                                                   \
        __m256 ai = _mm256_broadcast_ss(a + (size_t)(i)*lda);                                      \
        c0_##i = _mm256_fmadd_ps(ai, b0, c0_##i);                                                  \
        c1_##i = _mm256_fmadd_ps(ai, b1, c1_##i);                                                  \
    }
        ROWS(FMA)
#undef FMA
    }
    if (act != BS_ACT_NONE) {
#define ACT(i)                                                                                     \
    if (i < R) {                                                                                   \
        c0_##i = act256(c0_##i, act);                                                              \
        c1_##i = act256(c1_##i, act);                                                              \
    }
        ROWS(ACT)
#undef ACT
    }
#define STORE(i)                                                                                   \
    if (i < R) {                                                                                   \
        float *c = C + (size_t)(i)*ldc;                                                            \
        if (full) {                                                                                \
            _mm256_storeu_ps(c, c0_##i);                                                           \
            _mm256_storeu_ps(c + 8, c1_##i);                                                       \
        } else {                                                                                   \
            _mm256_maskstore_ps(c, m0, c0_##i);                                                    \
            _mm256_maskstore_ps(c + 8, m1, c1_##i);                                                \
        }                                                                                          \
    }
    ROWS(STORE)
#undef STORE
}

/* One instance per row count and panel type: A is read in place, so a tile
 * never runs past M. */
#define MICRO(R, H)                                                                                \
    static void micro_##R##_##H(const float *A, int lda, const void *B, int kc, float *C, int ldc, \
                                int first, const float *bias, int cols, bs_act act,                \
                                const char *pf)                                                    \
    {                                                                                              \
        micro_r(R, H, A, lda, B, kc, C, ldc, first, bias, cols, act, pf);                          \
    }
MICRO(1, 0)
MICRO(2, 0)
MICRO(3, 0)
MICRO(4, 0)
MICRO(5, 0)
MICRO(6, 0)
MICRO(1, 1)
MICRO(2, 1)
MICRO(3, 1)
MICRO(4, 1)
MICRO(5, 1)
MICRO(6, 1)
MICRO(1, 2)
MICRO(2, 2)
MICRO(3, 2)
MICRO(4, 2)
MICRO(5, 2)
MICRO(6, 2)
#undef MICRO

typedef void (*micro_fn)(const float *, int, const void *, int, float *, int, int, const float *,
                         int, bs_act, const char *);
static const micro_fn micro[3][MR + 1] = {
    {NULL, micro_1_0, micro_2_0, micro_3_0, micro_4_0, micro_5_0, micro_6_0},
    {NULL, micro_1_1, micro_2_1, micro_3_1, micro_4_1, micro_5_1, micro_6_1},
    {NULL, micro_1_2, micro_2_2, micro_3_2, micro_4_2, micro_5_2, micro_6_2}};

/* The full tile on a copied block of A (f32 panels, 6 rows x 16 columns):
 * A's row stride is a constant, so its six rows are one base register and
 * constant displacements. */
static void tile6_copied(const float *A, const float *B, int kc, float *C, int ldc, int first,
                         const float *bias, bs_act act, const char *pf)
{
    micro_r(6, 0, A, KC, B, kc, C, ldc, first, bias, NR, act, pf);
}

/* Many rows whose in-place rows would alias: rows [mb, mb + MC) of A at
 * depth [kb, kb + KC) copied once into Ap (rows 1 KB apart, in L2), then, as
 * the AVX-512 kernel does, each panel's slice (16 KB) meets every row tile
 * of the block while it sits in L1; the first tile fetches the next slice
 * into L2, and each tile the next one's C. */
static void many_rows_copied(int M, const float *A, int lda, const char *panels, int N, int K,
                             size_t elem, const micro_fn *mf, const float *bias, float *C, int ldc,
                             int p0, int p1, bs_act act, float *Ap)
{
    for (int kb = 0; kb < K; kb += KC) {
        int kc = K - kb < KC ? K - kb : KC;
        bs_act a = kb + kc == K ? act : BS_ACT_NONE;
        for (int mb = 0; mb < M; mb += MC) {
            int me = mb + MC < M ? mb + MC : M;
            for (int m = mb; m < me; m++)
                memcpy(Ap + (size_t)(m - mb) * KC, A + (size_t)m * lda + kb,
                       (size_t)kc * sizeof(float));
            for (int p = p0; p < p1; p++) {
                int c0 = p * NR, cols = N - c0 < NR ? N - c0 : NR;
                const char *B = panels + ((size_t)p * K + kb) * NR * elem;
                const char *next = NULL;
                if (p + 1 < p1)
                    next = panels + ((size_t)(p + 1) * K + kb) * NR * elem;
                else if (me < M)
                    next = panels + ((size_t)p0 * K + kb) * NR * elem;
                else if (kb + kc < K)
                    next = panels + ((size_t)p0 * K + kb + kc) * NR * elem;
                for (int m = mb, mr; m < me; m += mr) {
                    mr = tile_rows(me - m);
                    if (kb > 0 && m + mr < me) /* the next tile's C, while this one computes */
                        for (int i = 0; i < tile_rows(me - m - mr); i++)
                            _mm_prefetch((const char *)(C + (size_t)(m + mr + i) * ldc + c0),
                                         _MM_HINT_T0);
                    if (mr == MR && cols == NR && elem == 4)
                        tile6_copied(Ap + (size_t)(m - mb) * KC, (const float *)B, kc,
                                     C + (size_t)m * ldc + c0, ldc, kb == 0,
                                     bias ? bias + c0 : NULL, a, m == mb ? next : NULL);
                    else
                        mf[mr](Ap + (size_t)(m - mb) * KC, KC, B, kc, C + (size_t)m * ldc + c0, ldc,
                               kb == 0, bias ? bias + c0 : NULL, cols, a, m == mb ? next : NULL);
                }
            }
        }
    }
}

void bs_g256_packed(int M, const float *A, int lda, const bs_packed *pk, const float *bias,
                    float *C, int ldc, int n0, int n1, bs_act act)
{
    int N = pk->N, K = pk->K, p0 = n0 / NR, p1 = (n1 + NR - 1) / NR;
    const char *panels = (const char *)pk + BS_PACKED_HEADER;
    int h = pk->kind == BS_PACK_F16 ? 1 : pk->kind == BS_PACK_BF16W ? 2 : 0;
    size_t elem = h ? 2 : 4;
    const micro_fn *mf = micro[h];
    /* Few rows (a batch of one short sequence): the weights come from DRAM
     * and are used by only a few tiles, so they are read once, in memory
     * order, as one sequential stream that the first tile fetches PF_AHEAD
     * bytes ahead into L2: panel by panel, and within a panel in chunks of
     * depth that every row tile uses while the chunk (and the rows' slice of
     * A) is in L1. C is re-read per chunk, a few loads per thousand FMAs.
     * Measured at b1: 25-36 rows ran 10-15% faster this way than blocked as
     * many rows; at 40-48 rows the two ran alike. */
    if (M <= SMALL_M) {
        int ks = M <= MR ? K : small_depth(M);
        for (int p = p0; p < p1; p++) {
            int c0 = p * NR, cols = N - c0 < NR ? N - c0 : NR;
            const char *B = panels + (size_t)p * K * NR * elem;
            const float *bp = bias ? bias + c0 : NULL;
            for (int kb = 0; kb < K; kb += ks) {
                int kc = K - kb < ks ? K - kb : ks;
                bs_act a = kb + kc == K ? act : BS_ACT_NONE;
                const char *Bk = B + (size_t)kb * NR * elem;
                for (int m = 0, mr; m < M; m += mr) {
                    mr = tile_rows(M - m);
                    mf[mr](A + (size_t)m * lda + kb, lda, Bk, kc, C + (size_t)m * ldc + c0, ldc,
                           kb == 0, bp, cols, a, m == 0 ? Bk + PF_AHEAD : NULL);
                }
            }
        }
        return;
    }
    /* Rows of A 2 or 4 KB apart (K = 512, 1024, 3072 ...) meet in a few L1
     * sets and evict each other (and the panel slices) in place: copied
     * (measured +5% on BERT-base's 3072-deep output layer), when enough
     * panels share the copy. */
    if ((lda & 511) == 0 && p1 - p0 >= COPY_PANELS) {
        float *Ap = bs_thread_scratch(BS_SCRATCH_GEMM_A, (size_t)MC * KC * sizeof(float));
        if (Ap) {
            many_rows_copied(M, A, lda, panels, N, K, elem, mf, bias, C, ldc, p0, p1, act, Ap);
            return;
        }
    }
    for (int kb = 0; kb < K; kb += KC) {
        int kc = K - kb < KC ? K - kb : KC, last = kb + kc == K;
        bs_act a = last ? act : BS_ACT_NONE;
        for (int mb = 0; mb < M; mb += MC) {
            int me = mb + MC < M ? mb + MC : M;
            /* many rows: a tile of A (6 rows x KC, 6 KB) stays in L1 while it
             * meets NB panels' slices, which stay in L2 (NB x 16 KB) */
            for (int pb = p0; pb < p1; pb += NB) {
                int pe = pb + NB < p1 ? pb + NB : p1;
                /* the next block's slices (of this depth, or the next one
                 * from the first panel) are fetched into L2 while this block
                 * computes: slice j by tile j modulo the tiles */
                int nkb = kb, npb = pe, tiles = (me - mb + MR - 1) / MR;
                if (npb >= p1) npb = p0, nkb = me < M ? kb : kb + KC;
                for (int m = mb, mr; m < me; m += mr) {
                    mr = tile_rows(me - m);
                    int ti = (m - mb) / MR;
                    for (int p = pb; p < pe; p++) {
                        int c0 = p * NR, cols = N - c0 < NR ? N - c0 : NR, j = p - pb;
                        const char *pf = NULL;
                        if (nkb < K && npb + j < p1 && j % tiles == ti)
                            pf = panels + ((size_t)(npb + j) * K + nkb) * NR * elem;
                        mf[mr](A + (size_t)m * lda + kb, lda,
                               panels + ((size_t)p * K + kb) * NR * elem, kc,
                               C + (size_t)m * ldc + c0, ldc, kb == 0, bias ? bias + c0 : NULL,
                               cols, a, pf);
                    }
                }
            }
        }
    }
}

/* 8 rows of 8 floats in r[] become 8 columns: r[k] holds element k of each row. */
BS_AI void transpose8(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

void bs_g256_pack_f32(const float *w, int ldw, int N, int K, int transposed, int nr, float *out)
{
    int panels = (N + nr - 1) / nr;
    for (int pn = 0; pn < panels; pn++) {
        float *dst = out + (size_t)pn * K * nr;
        int n0 = pn * nr, cols = N - n0 < nr ? N - n0 : nr;
        if (transposed) { /* step k of the panel: nr floats of row k */
            for (int k = 0; k < K; k++) {
                const float *src = w + (size_t)k * ldw + n0;
                for (int g = 0; g < nr; g += 8)
                    _mm256_store_ps(dst + (size_t)k * nr + g,
                                    _mm256_maskload_ps(src + g, mask256(cols - g)));
            }
            continue;
        }
        /* 8 rows x 8 depth steps at a time, transposed in registers; rows
         * past N are zero, a depth tail is loaded masked and stored in part */
        for (int g = 0; g < nr; g += 8)
            for (int k0 = 0; k0 < K; k0 += 8) {
                int kn = K - k0 < 8 ? K - k0 : 8;
                const __m256i mk = mask256(kn);
                __m256 r[8];
                for (int i = 0; i < 8; i++) {
                    int j = g + i;
                    const float *src = w + (size_t)(n0 + j) * ldw + k0;
                    r[i] = j >= cols ? _mm256_setzero_ps()
                           : kn == 8 ? _mm256_loadu_ps(src)
                                     : _mm256_maskload_ps(src, mk);
                }
                transpose8(r);
                for (int k = 0; k < kn; k++)
                    _mm256_store_ps(dst + (size_t)(k0 + k) * nr + g, r[k]);
            }
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
void bs_g256_packed(int M, const float *A, int lda, const bs_packed *pk, const float *bias,
                    float *C, int ldc, int n0, int n1, bs_act act)
{
    bs_gc_packed(M, A, lda, pk, bias, C, ldc, n0, n1, act);
}
#endif
