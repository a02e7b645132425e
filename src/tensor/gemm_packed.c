/* The packed-weight GEMM's public face: weights laid out once at load in the
 * panel layout of the kernel path in use (32 columns for AVX-512, 16 for
 * AVX2 and portable C), and each call sent to that path's kernel. */
#include "tensor/gemm_impl.h"

#include <stdlib.h>
#include <string.h>

static int panel_width(void)
{
    return bs_cpu_path_get() == BS_CPU_AVX512 ? BS_NR_AVX512 : BS_NR_AVX2;
}

/* Where column j of a panel step sits among its nr 16-bit slots: BF16W
 * pairs columns (bs_bf16w_slot), F16 keeps their order. */
static inline int slot(bs_pack_kind kind, int j, int nr)
{
    return kind == BS_PACK_BF16W ? bs_bf16w_slot(j, nr) : j;
}

int bs_gemm_packed_available(bs_pack_kind kind)
{
    if (kind == BS_PACK_F32 || kind == BS_PACK_F16 || kind == BS_PACK_BF16W || kind == BS_PACK_I8)
        return 1; /* every path has these kernels */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return kind == BS_PACK_BF16 && bs_cpu_path_get() == BS_CPU_AVX512 &&
           __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

int bs_gemm_prepared_ld(int K, bs_pack_kind kind)
{
    int w = kind == BS_PACK_BF16 ? (K + 1) / 2 : K;
    int ld = (w + 15) & ~15;         /* whole cache lines per row */
    return ld % 1024 ? ld : ld + 16; /* and rows not 4 KB apart: no L1 set aliasing */
}

size_t bs_packed_bytes(int N, int K, bs_pack_kind kind)
{
    if (kind == BS_PACK_I8) return bs_i8_packed_bytes(N, K);
    size_t elem = kind == BS_PACK_F32 ? 4 : 2;
    size_t nr = (size_t)panel_width();
    return BS_PACKED_HEADER + (size_t)(N + nr - 1) / nr * nr * (size_t)k_stored(K, kind) * elem;
}

void bs_pack_weights(const float *w, int N, int K, bs_pack_kind kind, bs_packed *p)
{
    if (kind == BS_PACK_I8) {
        bs_i8_pack(w, N, K, p);
        return;
    }
    int nr = panel_width();
    p->kind = kind;
    p->N = N;
    p->K = K;
    p->nr = nr;
    if (kind == BS_PACK_BF16) {
        /* Element (n, k) of a panel sits at (k / 2) * 2 NR + 2 (n % NR) + k % 2.
         * Only CPUs that run the bf16 kernel pack for it. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        bs_g512_pack_bf16(w, N, K, (uint16_t *)((char *)p + BS_PACKED_HEADER));
#endif
        return;
    }
    int panels = (N + nr - 1) / nr;
    if (kind == BS_PACK_F16 || kind == BS_PACK_BF16W) {
        uint16_t (*cvt)(float) = kind == BS_PACK_F16 ? bs_f32_to_f16 : bs_f32_to_bf16;
        uint16_t *h = (uint16_t *)((char *)p + BS_PACKED_HEADER);
        for (int pn = 0; pn < panels; pn++)
            for (int j = 0; j < nr; j++) {
                int n = pn * nr + j;
                uint16_t *dst = h + (size_t)pn * K * nr + slot(kind, j, nr);
                for (int k = 0; k < K; k++)
                    dst[(size_t)k * nr] = n < N ? cvt(w[(size_t)n * K + k]) : 0;
            }
        return;
    }
    /* Rows of w are read in order; a panel's writes stay within L2. */
    float *out = (float *)((char *)p + BS_PACKED_HEADER);
    for (int pn = 0; pn < panels; pn++)
        for (int j = 0; j < nr; j++) {
            int n = pn * nr + j;
            float *dst = out + (size_t)pn * K * nr + j;
            if (n < N)
                for (int k = 0; k < K; k++) dst[(size_t)k * nr] = w[(size_t)n * K + k];
            else
                for (int k = 0; k < K; k++) dst[(size_t)k * nr] = 0.0f;
        }
}

int bs_pack_weights_h16(const uint16_t *w, int bf, int N, int K, bs_pack_kind kind, bs_packed *p)
{
    void (*widen)(const uint16_t *, float *, size_t) = bf ? bs_bf16_to_f32 : bs_f16_to_f32;
    if (kind == BS_PACK_BF16 || kind == BS_PACK_I8) { /* from a widened copy */
        float *all = malloc((size_t)N * K * sizeof *all);
        if (!all) return -1;
        widen(w, all, (size_t)N * K);
        bs_pack_weights(all, N, K, kind, p);
        free(all);
        return 0;
    }
    int nr = panel_width();
    float *row = malloc((size_t)K * sizeof *row);
    if (!row) return -1;
    p->kind = kind;
    p->N = N;
    p->K = K;
    p->nr = nr;
    int panels = (N + nr - 1) / nr;
    char *base = (char *)p + BS_PACKED_HEADER;
    for (int n = 0; n < panels * nr; n++) {
        size_t at = (size_t)(n / nr) * K * nr + slot(kind, n % nr, nr); /* element (n, 0) */
        if (n < N)
            widen(w + (size_t)n * K, row, (size_t)K);
        else
            memset(row, 0, (size_t)K * sizeof *row);
        if (kind == BS_PACK_F32)
            for (int k = 0; k < K; k++) ((float *)base)[at + (size_t)k * nr] = row[k];
        else {
            uint16_t (*cvt)(float) = kind == BS_PACK_F16 ? bs_f32_to_f16 : bs_f32_to_bf16;
            for (int k = 0; k < K; k++) ((uint16_t *)base)[at + (size_t)k * nr] = cvt(row[k]);
        }
    }
    free(row);
    return 0;
}

void bs_pack_f32_strided(const float *w, int ldw, int N, int K, int transposed, bs_packed *p)
{
    int nr = panel_width();
    p->kind = BS_PACK_F32;
    p->N = N;
    p->K = K;
    p->nr = nr;
    int panels = (N + nr - 1) / nr;
    float *out = (float *)((char *)p + BS_PACKED_HEADER);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (bs_cpu_path_get() >= BS_CPU_AVX2) {
        bs_g256_pack_f32(w, ldw, N, K, transposed, nr, out);
        return;
    }
#endif
    for (int pn = 0; pn < panels; pn++) {
        float *dst = out + (size_t)pn * K * nr;
        int n0 = pn * nr, cols = N - n0 < nr ? N - n0 : nr;
        if (transposed) /* W[n][k] = w[k][n]: a panel's step k is a slice of row k */
            for (int k = 0; k < K; k++) {
                const float *src = w + (size_t)k * ldw + n0;
                for (int j = 0; j < cols; j++) dst[(size_t)k * nr + j] = src[j];
                for (int j = cols; j < nr; j++) dst[(size_t)k * nr + j] = 0.0f;
            }
        else
            for (int j = 0; j < nr; j++) {
                const float *src = w + (size_t)(n0 + j) * ldw;
                for (int k = 0; k < K; k++) dst[(size_t)k * nr + j] = j < cols ? src[k] : 0.0f;
            }
    }
}

int bs_gemm_wants_prepared(const bs_packed *p)
{
    return p->nr == BS_NR_AVX512;
}

void bs_gemm_prepare_rows(bs_pack_kind kind, const float *x, int K, int r0, int r1, void *out,
                          int ld)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (kind == BS_PACK_BF16) {
        bs_g512_prepare_bf16(x, K, r0, r1, out, ld);
        return;
    }
#endif
    for (int r = r0; r < r1; r++)
        memcpy((float *)out + (size_t)r * ld, x + (size_t)r * K, (size_t)K * sizeof(float));
}

/* A in place, f32 rows lda apart, on the kernel the panels were packed for */
static void run_inplace(int M, const float *A, int lda, const bs_packed *p, const float *bias,
                        float *C, int ldc, int n0, int n1, bs_act act)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (p->nr == BS_NR_AVX512) {
        bs_g512_packed(M, A, lda, NULL, 0, p, bias, C, ldc, n0, n1, act);
        return;
    }
    if (bs_cpu_path_get() >= BS_CPU_AVX2) {
        bs_g256_packed(M, A, lda, p, bias, C, ldc, n0, n1, act);
        return;
    }
#endif
    bs_gc_packed(M, A, lda, p, bias, C, ldc, n0, n1, act);
}

void bs_gemm_packed_cols(int M, const float *A, int lda, const bs_packed *p, const float *bias,
                         float *C, int ldc, int n0, int n1, bs_act act)
{
    run_inplace(M, A, lda, p, bias, C, ldc, n0, n1, act);
}

void bs_gemm_prepared_cols(int M, const void *A, int lda, const bs_packed *p, const float *bias,
                           float *C, int ldc, int n0, int n1, bs_act act)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (p->nr == BS_NR_AVX512) {
        bs_g512_packed(M, NULL, 0, A, lda, p, bias, C, ldc, n0, n1, act);
        return;
    }
#endif
    run_inplace(M, A, lda, p, bias, C, ldc, n0, n1, act); /* f32 rows, lda apart */
}
