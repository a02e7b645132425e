/* Dynamic int8 dense layers, as ONNX Runtime's quantize_dynamic does them:
 * weights quantized once at load per output channel (symmetric, +-127),
 * activations per row at run time (u8 with a zero point), int32 sums, then
 * dequantized with both scales plus bias and activation. Holds the
 * quantizers, the portable reference kernel and the dispatch. */
#include "tensor/gemm_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NR BS_I8_NR
#define MC 192 /* rows per block: multiple of every tile height (4, 6, 8) */

static int kp_of(int K)
{
    return (K + 3) & ~3;
}

static int np_of(int N)
{
    return (N + NR - 1) / NR * NR;
}

size_t bs_i8_packed_bytes(int N, int K)
{
    return BS_PACKED_HEADER + (size_t)np_of(N) * 8 + (size_t)np_of(N) * (size_t)kp_of(K);
}

/* Layout after the header: float scale[Np], int32 colsum[Np], then panels of
 * 16 columns, each Kp/4 groups of 64 bytes holding (n, k) at (n % 16) * 4 +
 * k % 4: one ymm pair (AVX2) or one zmm (VNNI) per group. */
static float *w_scale(const bs_packed *p)
{
    return (float *)((char *)p + BS_PACKED_HEADER);
}
static int32_t *w_colsum(const bs_packed *p)
{
    return (int32_t *)((char *)p + BS_PACKED_HEADER) + np_of(p->N);
}
static int8_t *w_panels(const bs_packed *p)
{
    return (int8_t *)((char *)p + BS_PACKED_HEADER) + (size_t)np_of(p->N) * 8;
}

void bs_i8_pack(const float *w, int N, int K, bs_packed *p)
{
    p->kind = BS_PACK_I8;
    p->N = N;
    p->K = K;
    p->nr = NR;
    int Np = np_of(N), Kp = kp_of(K);
    float *sc = w_scale(p);
    int32_t *cs = w_colsum(p);
    int8_t *q = w_panels(p);
    memset(q, 0, (size_t)Np * (size_t)Kp);
    for (int n = 0; n < Np; n++) {
        sc[n] = 0.0f;
        cs[n] = 0;
        if (n >= N) continue;
        const float *row = w + (size_t)n * K;
        float amax = 0.0f, m8[8] = {0}; /* 8 lanes for the vectoriser */
        int k8 = K & ~7;
        for (int k = 0; k < k8; k += 8)
            for (int j = 0; j < 8; j++)
                m8[j] = fabsf(row[k + j]) > m8[j] ? fabsf(row[k + j]) : m8[j];
        for (int k = k8; k < K; k++) amax = fabsf(row[k]) > amax ? fabsf(row[k]) : amax;
        for (int j = 0; j < 8; j++) amax = m8[j] > amax ? m8[j] : amax;
        float s = amax > 0.0f ? amax / BS_I8_WMAX : 1.0f;
        int8_t *panel = q + (size_t)(n / NR) * Kp * NR + (n % NR) * 4;
        int32_t sum = 0;
        /* a chunk of the row quantized contiguously (vectorised: a division
         * each, as the tests' reference does), then moved 4 bytes at a time */
        enum { CH = 512 };
        int8_t qb[CH];
        for (int k0 = 0; k0 < K; k0 += CH) {
            int len = K - k0 < CH ? K - k0 : CH;
            for (int k = 0; k < len; k++) {
                float v = nearbyintf(row[k0 + k] / s);
                v = v >= BS_I8_WMAX ? BS_I8_WMAX : v;
                v = v <= -BS_I8_WMAX ? -BS_I8_WMAX : v;
                v = v == v ? v : 0.0f; /* NaN (a broken file) to 0 */
                qb[k] = (int8_t)(int)v;
            }
            for (int k = 0; k < len; k++) sum += qb[k];
            for (int k = len; k % 4; k++) qb[k] = 0;
            for (int k = 0; k < len; k += 4)
                memcpy(panel + (size_t)((k0 + k) / 4) * NR * 4, qb + k, 4);
        }
        sc[n] = s;
        cs[n] = sum;
    }
}

int bs_i8_row_ld(int K)
{
    return (kp_of(K) + 63) & ~63;
}

int bs_i8_act_max(bs_i8_impl impl)
{
    return impl == BS_I8_AVX2 ? BS_I8_AMAX_AVX2 : 255;
}

void bs_i8_quantize_rows_for(bs_i8_impl impl, const float *x, int K, int r0, int r1, uint8_t *q,
                             int ld, float *scale, int32_t *zp)
{
    const float top = (float)bs_i8_act_max(impl);
    for (int r = r0; r < r1; r++) {
        const float *row = x + (size_t)r * K;
        /* the range always holds 0, so 0 is exact; 8 lanes for the vectoriser
         * (a min or max is the same in any order, NaN skipped either way) */
        float lo8[8] = {0}, hi8[8] = {0}, lo = 0.0f, hi = 0.0f;
        int k8 = K & ~7;
        for (int k = 0; k < k8; k += 8)
            for (int j = 0; j < 8; j++) {
                lo8[j] = row[k + j] < lo8[j] ? row[k + j] : lo8[j];
                hi8[j] = row[k + j] > hi8[j] ? row[k + j] : hi8[j];
            }
        for (int k = k8; k < K; k++) {
            lo = row[k] < lo ? row[k] : lo;
            hi = row[k] > hi ? row[k] : hi;
        }
        for (int j = 0; j < 8; j++) {
            lo = lo8[j] < lo ? lo8[j] : lo;
            hi = hi8[j] > hi ? hi8[j] : hi;
        }
        float s = hi > lo ? (hi - lo) / top : 1.0f, inv = 1.0f / s;
        float z = nearbyintf(-lo / s);
        int zi = z >= top ? (int)top : z >= 0 ? (int)z : 0; /* NaN, inf inputs: 0 */
        float zf = (float)zi;
        uint8_t *out = q + (size_t)r * ld;
        /* branch-free for the vectoriser: clamp (NaN to 0), then round to
         * nearest even by adding and removing 1.5 * 2^23 */
        for (int k = 0; k < K; k++) {
            float v = row[k] * inv + zf;
            v = v >= 0.0f ? v : 0.0f;
            v = v <= top ? v : top;
            out[k] = (uint8_t)(int)((v + 0x1.8p23f) - 0x1.8p23f);
        }
        memset(out + K, 0, (size_t)(ld - K)); /* against zero weights */
        scale[r] = s;
        zp[r] = zi;
    }
}

void bs_i8_quantize_rows(const float *x, int K, int r0, int r1, uint8_t *q, int ld, float *scale,
                         int32_t *zp)
{
    bs_i8_quantize_rows_for(bs_i8_impl_in_use(), x, K, r0, r1, q, ld, scale, zp);
}

/* The reference: R rows x 16 columns of sum_k A[i][k] W[n][k], kg groups of 4. */
static void tile_portable(int R, const uint8_t *A, int lda, const int8_t *B, int kg,
                          const int8_t *pf, const bs_i8_epi *e, int32_t acc[BS_I8_MR_MAX][NR])
{
    (void)pf;
    for (int i = 0; i < R; i++) {
        int32_t s[NR] = {0};
        const uint8_t *a = A + (size_t)i * lda;
        for (int g = 0; g < kg; g++) {
            const int8_t *b = B + (size_t)g * NR * 4;
            for (int j = 0; j < NR; j++)
                s[j] += a[4 * g] * b[4 * j] + a[4 * g + 1] * b[4 * j + 1] +
                        a[4 * g + 2] * b[4 * j + 2] + a[4 * g + 3] * b[4 * j + 3];
        }
        if (!e) {
            memcpy(acc[i], s, sizeof s);
            continue;
        }
        float *c = e->C + (size_t)i * e->ldc;
        for (int j = 0; j < e->cols; j++) {
            float v = (float)(s[j] - e->zp[i] * e->cs[j]) * (e->sa[i] * e->ws[j]);
            c[j] = e->bias ? v + e->bias[j] : v;
        }
    }
}

static int probe(bs_i8_impl impl)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (impl == BS_I8_AVX2) return bs_cpu_can(BS_CPU_AVX2);
    if (impl == BS_I8_VNNI)
        return bs_cpu_can(BS_CPU_AVX512) && __builtin_cpu_supports("avx512vnni");
    if (impl == BS_I8_AVXVNNI) return bs_cpu_can(BS_CPU_AVX2) && bs_cpu_can_vnni256(BS_VNNI256_VEX);
    if (impl == BS_I8_AVXVNNI_EVEX)
        return bs_cpu_can(BS_CPU_AVX2) && bs_cpu_can_vnni256(BS_VNNI256_EVEX);
#endif
    return impl == BS_I8_PORTABLE;
}

/* Probed once per kernel: every quantization and GEMM call asks (through
 * bs_i8_impl_in_use), and bs_cpu_can spells out what a path lacks. */
int bs_i8_available(bs_i8_impl impl)
{
    _Static_assert(BS_I8_IMPLS == 5, "one -1 a kernel below");
    static int known[BS_I8_IMPLS] = {-1, -1, -1, -1, -1};
    if (impl < BS_I8_PORTABLE || impl >= BS_I8_IMPLS) return 0;
    int has = __atomic_load_n(&known[impl], __ATOMIC_RELAXED);
    if (has < 0) {
        has = probe(impl);
        __atomic_store_n(&known[impl], has, __ATOMIC_RELAXED);
    }
    return has;
}

struct impl {
    bs_i8_tile_fn tile;
    int mr;
};

static struct impl impl_get(bs_i8_impl which)
{
    struct impl r = {tile_portable, 4};
    if (!bs_i8_available(which)) return r;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (which == BS_I8_AVX2) r = (struct impl){bs_i8_tile_avx2, 4};
    if (which == BS_I8_VNNI) r = (struct impl){bs_i8_tile_vnni, 8};
    if (which == BS_I8_AVXVNNI) r = (struct impl){bs_i8_tile_avxvnni, BS_I8_MR_VNNI256};
    if (which == BS_I8_AVXVNNI_EVEX) r = (struct impl){bs_i8_tile_avxvnni_evex, BS_I8_MR_VNNI256};
#endif
    return r;
}

bs_i8_impl bs_i8_impl_in_use(void)
{
    bs_cpu_path path = bs_cpu_path_get();
    bs_vnni256 v = bs_cpu_vnni256_get(); /* the avxvnni path, or NONE */
    if (path == BS_CPU_AVX512 && bs_i8_available(BS_I8_VNNI)) return BS_I8_VNNI;
    if (v == BS_VNNI256_VEX && bs_i8_available(BS_I8_AVXVNNI)) return BS_I8_AVXVNNI;
    if (v == BS_VNNI256_EVEX && bs_i8_available(BS_I8_AVXVNNI_EVEX)) return BS_I8_AVXVNNI_EVEX;
    if (path >= BS_CPU_AVX2 && bs_i8_available(BS_I8_AVX2)) return BS_I8_AVX2;
    return BS_I8_PORTABLE;
}

const char *bs_i8_impl_name(bs_i8_impl impl)
{
    static const char *const shown[BS_I8_IMPLS] = {
        "portable C", "avx2", "avx512-vnni", "avx-vnni (vex encoding)", "avx-vnni (evex encoding)"};
    return impl >= BS_I8_PORTABLE && impl < BS_I8_IMPLS ? shown[impl] : "?";
}

void bs_i8_gemm_s32(bs_i8_impl which, int M, const uint8_t *A, int lda, const bs_packed *p,
                    int32_t *C, int ldc, int n0, int n1)
{
    struct impl im = impl_get(which);
    int kg = kp_of(p->K) / 4;
    int32_t acc[BS_I8_MR_MAX][NR];
    for (int pn = n0 / NR; pn < (n1 + NR - 1) / NR; pn++) {
        const int8_t *B = w_panels(p) + (size_t)pn * kp_of(p->K) * NR;
        int c0 = pn * NR, cols = n1 - c0 < NR ? n1 - c0 : NR;
        for (int m = 0; m < M; m += im.mr) {
            int R = M - m < im.mr ? M - m : im.mr;
            im.tile(R, A + (size_t)m * lda, lda, B, kg, NULL, NULL, acc);
            for (int i = 0; i < R; i++)
                memcpy(C + (size_t)(m + i) * ldc + c0, acc[i], (size_t)cols * sizeof(int32_t));
        }
    }
}

void bs_i8_gemm_cols(int M, const uint8_t *A, int lda, const float *a_scale, const int32_t *a_zp,
                     const bs_packed *p, const float *bias, float *C, int ldc, int n0, int n1,
                     bs_act act)
{
    struct impl im = impl_get(bs_i8_impl_in_use());
    const bs_kernels *kern = bs_kernels_best();
    int kg = kp_of(p->K) / 4, N = p->N;
    const float *ws = w_scale(p);
    const int32_t *cs = w_colsum(p);
    int32_t acc[BS_I8_MR_MAX][NR];
    if (n1 > N) n1 = N;
    /* blocks of MC rows (their MC x K bytes stay in L2), in them panel by
     * panel: a panel's slice of W (K x 16 bytes) stays in L1/L2 over the
     * block, and its second tile (the first with one tile) prefetches the
     * next panel, which at a few rows would otherwise stall on memory */
    int pend = (n1 + NR - 1) / NR;
    for (int mb = 0; mb < M; mb += MC)
        for (int pn = n0 / NR; pn < pend; pn++) {
            const int8_t *B = w_panels(p) + (size_t)pn * kp_of(p->K) * NR;
            const int8_t *next = pn + 1 < pend ? B + (size_t)kp_of(p->K) * NR : NULL;
            int c0 = pn * NR, cols = n1 - c0 < NR ? n1 - c0 : NR;
            int mend = M - mb < MC ? M : mb + MC;
            for (int m = mb; m < mend; m += im.mr) {
                int R = mend - m < im.mr ? mend - m : im.mr;
                int second = m == mb + im.mr || (m == mb && mend - mb <= im.mr);
                const int8_t *pf = second ? next : NULL;
                if (p->K < BS_I8_K_EPI) { /* dequantized in the tile's registers */
                    bs_i8_epi e = {a_scale + m, ws + c0, bias ? bias + c0 : NULL,
                                   a_zp + m,    cs + c0, C + (size_t)m * ldc + c0,
                                   ldc,         cols};
                    im.tile(R, A + (size_t)m * lda, lda, B, kg, pf, &e, acc);
                    if (act != BS_ACT_NONE)
                        for (int i = 0; i < R; i++)
                            kern->bias_act(C + (size_t)(m + i) * ldc + c0, NULL, cols, act);
                    continue;
                }
                im.tile(R, A + (size_t)m * lda, lda, B, kg, pf, NULL, acc);
                for (int i = 0; i < R; i++) {
                    float sa = a_scale[m + i];
                    int64_t z = a_zp[m + i];
                    float *c = C + (size_t)(m + i) * ldc + c0;
                    /* sum (q_a - zp) q_w = sum q_a q_w - zp * sum q_w; exact in int64 */
                    for (int j = 0; j < cols; j++) {
                        float v = (float)((int64_t)acc[i][j] - z * cs[c0 + j]) * (sa * ws[c0 + j]);
                        c[j] = bias ? v + bias[c0 + j] : v;
                    }
                    if (act != BS_ACT_NONE) kern->bias_act(c, NULL, cols, act);
                }
            }
        }
}
