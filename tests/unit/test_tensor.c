/* tensor: every kernel table this CPU supports against the libm reference
 * (activations, layernorm, softmax, tails of every length), the kernel path
 * BS_CPU chose (ctest runs this file once per path the CPU has), dtype
 * conversion, the thread pool, dense layers and attention against naive
 * loops. */
#include "testutil.h"

#include "tensor/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float frand(unsigned *s, float lo, float hi)
{
    *s = *s * 1103515245u + 12345u;
    return lo + (hi - lo) * (float)((*s >> 8) & 0xffffff) / (float)0x1000000;
}

static void compare_tables(const bs_kernels *k)
{
    const bs_kernels *ref = bs_kernels_reference();
    unsigned s = 1;
    float a[300], b[300], res[300], g[300], be[300], bias[300];
    double worst_act = 0, worst_ln = 0, worst_sm = 0;
    for (int n = 1; n <= 257; n += (n < 40 ? 1 : 37)) {
        for (int act = BS_ACT_NONE; act <= BS_ACT_TANH; act++) {
            for (int i = 0; i < n; i++) {
                a[i] = b[i] = frand(&s, -9.0f, 9.0f);
                bias[i] = frand(&s, -0.5f, 0.5f);
            }
            a[0] = b[0] = 1e-4f; /* near zero, where approximations lose digits */
            ref->bias_act(a, bias, n, (bs_act)act);
            k->bias_act(b, bias, n, (bs_act)act);
            for (int i = 0; i < n; i++) {
                double d = fabs(a[i] - b[i]) / fmax(1.0, fabs(a[i]));
                if (d > worst_act) worst_act = d;
                if (d > 1e-6)
                    fprintf(stderr, "%s act %d n %d i %d: %g vs %g\n", k->name, act, n, i, a[i],
                            b[i]);
                assert_true(d <= 1e-6);
            }
        }
        for (int i = 0; i < n; i++) {
            a[i] = b[i] = frand(&s, -3.0f, 5.0f);
            res[i] = frand(&s, -1.0f, 1.0f);
            g[i] = frand(&s, 0.5f, 1.5f);
            be[i] = frand(&s, -0.5f, 0.5f);
        }
        ref->add_layernorm(a, res, g, be, n, 1e-12f);
        k->add_layernorm(b, res, g, be, n, 1e-12f);
        for (int i = 0; i < n; i++) worst_ln = fmax(worst_ln, fabs(a[i] - b[i]));
        for (int i = 0; i < n; i++) a[i] = b[i] = frand(&s, -20.0f, 20.0f);
        ref->softmax(a, n, 0.125f);
        k->softmax(b, n, 0.125f);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            worst_sm = fmax(worst_sm, fabs(a[i] - b[i]));
            sum += b[i];
        }
        assert_true(fabs(sum - 1.0) < 1e-5);
    }
    printf("  %s vs reference: act %.2g (rel), layernorm %.2g, softmax %.2g\n", k->name, worst_act,
           worst_ln, worst_sm);
    assert_true(worst_ln <= 2e-6);
    assert_true(worst_sm <= 1e-6);
}

static void test_kernel_tables(void **state)
{
    const bs_kernels *best = bs_kernels_best();
    assert_non_null(best);
    /* the table in use is the path's: BS_CPU (when set) or the best the CPU has */
    bs_cpu_path path = bs_cpu_path_get();
    const char *env = getenv("BS_CPU");
    const char *why;
    bs_err err = {0};
    assert_int_equal(bs_cpu_check(&why, &err), 0);
    printf("  kernel path: %s (%s)\n", bs_cpu_in_use_name(), why);
    /* avxvnni runs the avx2 path's table; the int8 kernel is its difference */
    int avxvnni = env && !strcmp(env, "avxvnni");
    if (env && *env) assert_string_equal(best->name, avxvnni ? "avx2" : env);
    /* BS_CPU's names: each runnable or not as the CPU's features say */
    int vnni256 = bs_cpu_can_vnni256(BS_VNNI256_VEX) || bs_cpu_can_vnni256(BS_VNNI256_EVEX);
    assert_int_equal(bs_cpu_can_name("portable"), 1);
    assert_int_equal(bs_cpu_can_name("avx2"), bs_cpu_can(BS_CPU_AVX2));
    assert_int_equal(bs_cpu_can_name("avxvnni"), bs_cpu_can(BS_CPU_AVX2) && vnni256);
    assert_int_equal(bs_cpu_can_name("avx512"), bs_cpu_can(BS_CPU_AVX512));
    assert_int_equal(bs_cpu_can_name("avx1024"), -1);
    /* the 256-bit VNNI encoding: on the avxvnni path only, VEX where the CPU has it */
    bs_vnni256 enc = bs_cpu_vnni256_get();
    int on_avxvnni =
        avxvnni || ((!env || !*env) && path == BS_CPU_AVX2 && bs_cpu_can_vnni256(BS_VNNI256_VEX));
    assert_int_equal(enc, !on_avxvnni                          ? BS_VNNI256_NONE
                          : bs_cpu_can_vnni256(BS_VNNI256_VEX) ? BS_VNNI256_VEX
                                                               : BS_VNNI256_EVEX);
    if (on_avxvnni) {
        assert_int_equal(path, BS_CPU_AVX2);
        assert_string_equal(bs_cpu_in_use_name(), "avx2+fma3, int8 avx-vnni");
        assert_non_null(strstr(why, enc == BS_VNNI256_VEX ? "vex encoding" : "evex encoding"));
    }
    const bs_kernels *want = path == BS_CPU_AVX512 ? bs_kernels_avx512()
                             : path == BS_CPU_AVX2 ? bs_kernels_avx2()
                                                   : bs_kernels_portable();
    assert_ptr_equal(best, want);
    if (!env || !*env)
        assert_int_equal(path, bs_cpu_can(BS_CPU_AVX512) ? BS_CPU_AVX512
                               : bs_cpu_can(BS_CPU_AVX2) ? BS_CPU_AVX2
                                                         : BS_CPU_PORTABLE);
    compare_tables(bs_kernels_portable());
    if (bs_kernels_avx2()) compare_tables(bs_kernels_avx2());
    if (bs_kernels_avx512()) compare_tables(bs_kernels_avx512());
    compare_tables(bs_kernels_reference()); /* self-consistency: must be exact */
}

static void test_portable_values(void **state)
{
    const bs_kernels *k = bs_kernels_portable();
    float x[5] = {-3.0f, -1.0f, 0.0f, 1.0f, 3.0f};
    k->bias_act(x, NULL, 5, BS_ACT_GELU);
    /* 0.5 x (1 + erf(x / sqrt 2)), from a float64 evaluation */
    const double gelu[5] = {-0.0040496598, -0.15865525393, 0.0, 0.84134474607, 2.99595034};
    for (int i = 0; i < 5; i++) assert_true(fabs(x[i] - gelu[i]) < 1e-6);
    assert_int_equal(bs_act_from_name("gelu_pytorch_tanh"), BS_ACT_GELU_TANH);
    assert_int_equal(bs_act_from_name("nope"), -1);
}

static void test_half(void **state)
{
    uint16_t h[6] = {0x3c00, 0xc000, 0x0001, 0x7bff, 0x0000, 0x8000};
    float f[6];
    bs_f16_to_f32(h, f, 6);
    assert_true(f[0] == 1.0f && f[1] == -2.0f && f[3] == 65504.0f && f[4] == 0.0f);
    assert_true(fabsf(f[2] - 5.9604645e-8f) < 1e-12f);
    assert_true(signbit(f[5]));
    uint16_t b[2] = {0x3f80, 0xc040};
    bs_bf16_to_f32(b, f, 2);
    assert_true(f[0] == 1.0f && f[1] == -3.0f);
    /* f32 -> f16: ties to even, subnormals, overflow, and a round trip of every half */
    assert_int_equal(bs_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(bs_f32_to_bf16(-3.0f), 0xc040);
    assert_int_equal(bs_f32_to_bf16(1.00390625f), 0x3f80); /* tie: even */
    assert_int_equal(bs_f32_to_bf16(1.01171875f), 0x3f82); /* tie: up to even */
    assert_int_equal(bs_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(bs_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(bs_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(bs_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(bs_f32_to_f16(5.9604645e-8f), 0x0001);
    assert_int_equal(bs_f32_to_f16(2.9802322e-8f), 0x0000);      /* half the least: tie to even 0 */
    assert_int_equal(bs_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie: even */
    assert_int_equal(bs_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02); /* tie: up to even */
    for (uint32_t u = 0; u < 0x10000u; u++) {
        uint16_t hv = (uint16_t)u;
        if ((hv & 0x7c00u) == 0x7c00u) continue; /* inf, nan */
        float x;
        bs_f16_to_f32(&hv, &x, 1);
        assert_int_equal(bs_f32_to_f16(x), hv);
    }
}

struct count_ctx {
    int hits[1000];
    int max_worker;
};
static void count_task(void *p, int t, int worker)
{
    struct count_ctx *c = p;
    __atomic_fetch_add(&c->hits[t], 1, __ATOMIC_RELAXED);
    int w = c->max_worker;
    while (worker > w && !__atomic_compare_exchange_n(&c->max_worker, &w, worker, 0,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static void test_pool(void **state)
{
    bs_pool *p = bs_pool_new(3);
    assert_non_null(p);
    assert_int_equal(bs_pool_size(p), 3);
    for (int round = 0; round < 50; round++) {
        struct count_ctx c = {{0}, 0};
        bs_pool_run(p, 1000, count_task, &c);
        for (int t = 0; t < 1000; t++) assert_int_equal(c.hits[t], 1);
        assert_true(c.max_worker < 3);
    }
    bs_pool_free(p);
}

/* A dense layer with its residual + LayerNorm fused (ln_x = LN(ln_x + y)),
 * split by rows (many tokens) and by columns (few: the LayerNorm done by the
 * task that finishes the last block; more: by one more pool job), against
 * the two steps run one after the other. */
static void test_linear_layernorm(void **state)
{
    bs_pool *p = bs_pool_new(2);
    unsigned s = 11;
    const int shapes[3][3] = {{300, 64, 40}, {8, 64, 160}, {64, 64, 600}}; /* M, K, N */
    for (int sh = 0; sh < 3; sh++) {
        int M = shapes[sh][0], K = shapes[sh][1], N = shapes[sh][2];
        float *x = malloc((size_t)M * K * 4), *w = malloc((size_t)N * K * 4), *b = malloc(N * 4),
              *g = malloc(N * 4), *be = malloc(N * 4), *y = malloc((size_t)M * N * 4),
              *r1 = malloc((size_t)M * N * 4), *r2 = malloc((size_t)M * N * 4);
        for (int i = 0; i < M * K; i++) x[i] = frand(&s, -1, 1);
        for (int i = 0; i < N * K; i++) w[i] = frand(&s, -1, 1);
        for (int i = 0; i < N; i++) {
            b[i] = frand(&s, -1, 1);
            g[i] = frand(&s, 0.5f, 1.5f);
            be[i] = frand(&s, -0.5f, 0.5f);
        }
        for (int i = 0; i < M * N; i++) r1[i] = r2[i] = frand(&s, -2, 2);
        bs_dense d = {
            .w = w, .b = b, .N = N, .y = y, .ln_x = r1, .ln_g = g, .ln_b = be, .ln_eps = 1e-5f};
        bs_linear_multi(p, x, M, K, &d, 1);
        bs_linear(p, x, M, K, w, b, N, y, BS_ACT_NONE);
        bs_add_layernorm_rows(p, r2, y, M, N, g, be, 1e-5f);
        for (int i = 0; i < M * N; i++) assert_true(fabsf(r1[i] - r2[i]) < 1e-5f);
        free(x), free(w), free(b), free(g), free(be), free(y), free(r1), free(r2);
    }
    bs_pool_free(p);
}

static void test_linear_and_attention(void **state)
{
    bs_pool *p = bs_pool_new(2);
    unsigned s = 7;
    enum { M = 70, K = 48, N = 37 };
    static float x[M * K], w[N * K], b[N], y[M * N];
    for (int i = 0; i < M * K; i++) x[i] = frand(&s, -1, 1);
    for (int i = 0; i < N * K; i++) w[i] = frand(&s, -1, 1);
    for (int i = 0; i < N; i++) b[i] = frand(&s, -1, 1);
    for (int rows = 1; rows <= M; rows += 23) {
        bs_linear(p, x, rows, K, w, b, N, y, BS_ACT_RELU);
        for (int m = 0; m < rows; m++)
            for (int n = 0; n < N; n++) {
                double acc = b[n];
                for (int k = 0; k < K; k++) acc += (double)x[m * K + k] * w[n * K + k];
                assert_true(fabs(y[m * N + n] - fmax(acc, 0.0)) < 1e-4);
            }
    }
    /* attention: 2 sequences (5 and 9 tokens), 3 heads of 4, causal and not */
    enum { T = 14, H = 12, NH = 3, HD = 4 };
    static float q[T * H], k[T * H], v[T * H], out[T * H], scratch[2 * 9 * 9];
    for (int i = 0; i < T * H; i++) {
        q[i] = frand(&s, -1, 1);
        k[i] = frand(&s, -1, 1);
        v[i] = frand(&s, -1, 1);
    }
    int32_t off[3] = {0, 5, 14}, start[2] = {0, 5}, len[2] = {5, 9};
    for (int causal = 0; causal <= 1; causal++) {
        bs_attn_args a = {q, k, v, H, H, H, out, H, off, start, len, 2, NH, HD, 0.5f, causal};
        bs_attention(p, &a, scratch);
        for (int sq = 0; sq < 2; sq++)
            for (int i = off[sq]; i < off[sq + 1]; i++)
                for (int h = 0; h < NH; h++) {
                    double sc[9], mx = -1e30, sum = 0;
                    int nk = causal ? i - off[sq] + 1 : len[sq];
                    for (int j = 0; j < nk; j++) {
                        double d = 0;
                        for (int e = 0; e < HD; e++)
                            d +=
                                (double)q[i * H + h * HD + e] * k[(start[sq] + j) * H + h * HD + e];
                        sc[j] = d * 0.5;
                        if (sc[j] > mx) mx = sc[j];
                    }
                    for (int j = 0; j < nk; j++) sum += sc[j] = exp(sc[j] - mx);
                    for (int e = 0; e < HD; e++) {
                        double o = 0;
                        for (int j = 0; j < nk; j++)
                            o += sc[j] / sum * v[(start[sq] + j) * H + h * HD + e];
                        assert_true(fabs(out[i * H + h * HD + e] - o) < 1e-5);
                    }
                }
    }
    bs_pool_free(p);
}

/* Panels packed per call from a strided operand (attention's keys, and
 * its values transposed) hold W[n][k] at panel n / nr, step k, column
 * n % nr, and zeros past N: every element, over tails of N and K. */
static void test_pack_strided(void **state)
{
    unsigned s = 9;
    const int Ns[] = {1, 7, 16, 37, 64}, Ks[] = {1, 5, 8, 13, 64, 130};
    for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
        for (size_t b = 0; b < sizeof Ks / sizeof *Ks; b++)
            for (int tr = 0; tr <= 1; tr++) {
                int N = Ns[a], K = Ks[b], ldw = (tr ? N : K) + 3;
                float *w = malloc((size_t)(tr ? K : N) * ldw * 4);
                for (int i = 0; i < (tr ? K : N) * ldw; i++) w[i] = frand(&s, -1, 1);
                bs_packed *P = aligned_alloc(64, (bs_packed_bytes(N, K, BS_PACK_F32) + 63) & ~63);
                bs_pack_f32_strided(w, ldw, N, K, tr, P);
                int nr = P->nr, panels = (N + nr - 1) / nr;
                const float *d = (const float *)((const char *)P + BS_PACKED_HEADER);
                for (int n = 0; n < panels * nr; n++)
                    for (int k = 0; k < K; k++) {
                        float want = n >= N ? 0.0f
                                     : tr   ? w[(size_t)k * ldw + n]
                                            : w[(size_t)n * ldw + k];
                        assert_true(d[(size_t)(n / nr) * K * nr + (size_t)k * nr + n % nr] == want);
                    }
                free(w), free(P);
            }
}

/* A sequence long enough that attention runs its queries in blocks (their
 * scores past 192 KB), causal and not, with more keys than queries (a KV
 * cache) so that the causal offset crosses blocks: against double sums. */
static void test_attention_blocks(void **state)
{
    bs_pool *p = bs_pool_new(2);
    unsigned s = 5;
    enum { NQ = 300, NK = 340, NH = 2, HD = 8, H = NH * HD };
    float *q = malloc(NQ * H * 4), *k = malloc(NK * H * 4), *v = malloc(NK * H * 4),
          *out = malloc(NQ * H * 4), *scratch = malloc(2 * (size_t)NQ * NK * 4);
    double *sc = malloc(NK * sizeof *sc);
    for (int i = 0; i < NQ * H; i++) q[i] = frand(&s, -1, 1);
    for (int i = 0; i < NK * H; i++) {
        k[i] = frand(&s, -1, 1);
        v[i] = frand(&s, -1, 1);
    }
    int32_t off[2] = {0, NQ}, start[1] = {0}, len[1] = {NK};
    for (int causal = 0; causal <= 1; causal++) {
        bs_attn_args a = {q, k, v, H, H, H, out, H, off, start, len, 1, NH, HD, 0.35f, causal};
        bs_attention(p, &a, scratch);
        double worst = 0;
        for (int i = 0; i < NQ; i++)
            for (int h = 0; h < NH; h++) {
                int nk = causal ? NK - NQ + i + 1 : NK;
                double mx = -1e30, sum = 0;
                for (int j = 0; j < nk; j++) {
                    double d = 0;
                    for (int e = 0; e < HD; e++)
                        d += (double)q[i * H + h * HD + e] * k[j * H + h * HD + e];
                    sc[j] = d * 0.35;
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j < nk; j++) sum += sc[j] = exp(sc[j] - mx);
                for (int e = 0; e < HD; e++) {
                    double o = 0;
                    for (int j = 0; j < nk; j++) o += sc[j] / sum * v[j * H + h * HD + e];
                    worst = fmax(worst, fabs(out[i * H + h * HD + e] - o));
                }
            }
        assert_true(worst < 1e-5);
    }
    free(q), free(k), free(v), free(out), free(scratch), free(sc);
    bs_pool_free(p);
}

/* x rounded to the nearest bf16 (ties to even) and back: what the bf16
 * kernel multiplies (the inputs here are normal numbers, no NaN). */
static void round_bf16(float *x, int n)
{
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        memcpy(&x[i], &u, sizeof u);
    }
}

/* One packed GEMM of M x N x K in the given packing against the BLAS
 * backend: the worst difference scaled by sqrt(K) / 10 goes into *worst. */
static void check_packed(int kind, int M, int N, int K, unsigned *s, double *worst)
{
    const bs_gemm_backend *g = bs_gemm_default();
    float *A = malloc((size_t)M * K * 4), *W = malloc((size_t)N * K * 4),
          *bias = malloc((size_t)N * 4);
    float *ref = malloc((size_t)M * N * 4), *out = malloc((size_t)M * N * 4);
    size_t bytes = (bs_packed_bytes(N, K, (bs_pack_kind)kind) + 63) & ~(size_t)63;
    bs_packed *P = aligned_alloc(64, bytes);
    for (int i = 0; i < M * K; i++) A[i] = frand(s, -1, 1);
    for (int i = 0; i < N * K; i++) W[i] = frand(s, -1, 1);
    for (int i = 0; i < N; i++) bias[i] = frand(s, -1, 1);
    bs_pack_weights(W, N, K, (bs_pack_kind)kind, P);
    bs_gemm_packed_cols(M, A, K, P, bias, out, N, 0, N, BS_ACT_GELU);
    {
        /* A laid out once up front: the same numbers, bit for bit */
        int rows = (M + BS_GEMM_ROWS - 1) / BS_GEMM_ROWS * BS_GEMM_ROWS;
        int ld = bs_gemm_prepared_ld(K, (bs_pack_kind)kind);
        uint32_t *Ab = calloc((size_t)rows * ld, 4);
        float *out2 = malloc((size_t)M * N * 4);
        bs_gemm_prepare_rows((bs_pack_kind)kind, A, K, 0, M, Ab, ld);
        bs_gemm_prepared_cols(M, Ab, ld, P, bias, out2, N, 0, N, BS_ACT_GELU);
        /* (on avx2, rows in place 4 KB apart are copied first, padded
         * ones are not: the same sums in the same order) */
        assert_memory_equal(out, out2, (size_t)M * N * 4);
        free(Ab), free(out2);
    }
    if (kind == BS_PACK_BF16) {
        round_bf16(A, M * K);
        round_bf16(W, N * K);
    }
    if (kind == BS_PACK_BF16W) /* bf16 weights, A stays f32 */
        round_bf16(W, N * K);
    if (kind == BS_PACK_F16) /* the weights as f16 holds them; A stays f32 */
        for (int i = 0; i < N * K; i++) {
            uint16_t h = bs_f32_to_f16(W[i]);
            bs_f16_to_f32(&h, &W[i], 1);
        }
    g->sgemm_nt(M, N, K, A, K, W, K, ref, N, 0.0f);
    for (int m = 0; m < M; m++)
        bs_kernels_portable()->bias_act(ref + (size_t)m * N, bias, N, BS_ACT_GELU);
    for (int i = 0; i < M * N; i++) {
        double d = fabs(ref[i] - out[i]) / fmax(1.0, sqrt((double)K) * 0.1);
        if (d > *worst) *worst = d;
    }
    free(A), free(W), free(bias), free(ref), free(out), free(P);
}

/* The packed-weight GEMM against the BLAS backend, over tails of M, N, K, in
 * each packing this CPU runs. BF16 is compared with BLAS on the bf16-rounded
 * operands: products of bf16 values are exact in F32, so only the order of
 * the sums may differ (a wrong rounding of A would show as ~1e-3). Then
 * shapes whose rows of A lie 2-4 KB apart with many panels (the avx2
 * kernel copies those blocks of A), with tails of M and N. */
static void test_packed_gemm(void **state)
{
    (void)state;
    for (int kind = BS_PACK_F32; kind <= BS_PACK_BF16W; kind++) {
        const char *name = kind == BS_PACK_BF16    ? "bf16"
                           : kind == BS_PACK_F16   ? "f16"
                           : kind == BS_PACK_BF16W ? "bf16 (widened)"
                                                   : "f32";
        if (!bs_gemm_packed_available((bs_pack_kind)kind)) {
            printf("  packed %s GEMM: this CPU lacks the instructions, not run\n", name);
            continue;
        }
        unsigned s = 3;
        /* M up to 36 takes the few-rows loop: 7..36 rows in depth chunks
         * that 2-6 row tiles of 3-6 rows share, K not a multiple of the chunk */
        const int Ms[] = {1, 5, 7, 12, 13, 16, 24, 31, 97, 200}, Ns[] = {1, 17, 32, 37, 70},
                  Ks[] = {1, 31, 256, 300, 601};
        double worst = 0;
        for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
            for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
                for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++)
                    check_packed(kind, Ms[a], Ns[b], Ks[c], &s, &worst);
        const int big[][3] = {{97, 260, 1024}, {343, 256, 512}, {40, 300, 1024}};
        for (size_t i = 0; i < sizeof big / sizeof *big; i++)
            check_packed(kind, big[i][0], big[i][1], big[i][2], &s, &worst);
        /* F32 sums in another order differ by ~1e-5 at K = 601; a misrounded
         * bf16 operand would differ by ~1e-3. */
        printf("  packed %s GEMM vs BLAS: max scaled diff %.2g\n", name, worst);
        assert_true(worst < 3e-5);
    }
}

/* Packing straight from F16/BF16 weights (no F32 copy of the matrix) lays
 * out exactly what packing their widened F32 copy does, in every kind. */
static void test_pack_from_half(void **state)
{
    (void)state;
    unsigned s = 21;
    enum { N = 37, K = 45 };
    uint16_t h[N * K];
    float wide[N * K];
    for (int bf = 0; bf <= 1; bf++)
        for (int kind = BS_PACK_F32; kind <= BS_PACK_I8; kind++) {
            if (!bs_gemm_packed_available((bs_pack_kind)kind)) continue;
            for (int i = 0; i < N * K; i++) {
                float x = frand(&s, -2, 2);
                h[i] = bf ? bs_f32_to_bf16(x) : bs_f32_to_f16(x);
            }
            if (bf)
                bs_bf16_to_f32(h, wide, N * K);
            else
                bs_f16_to_f32(h, wide, N * K);
            size_t bytes = (bs_packed_bytes(N, K, (bs_pack_kind)kind) + 63) & ~(size_t)63;
            bs_packed *a = aligned_alloc(64, bytes), *b = aligned_alloc(64, bytes);
            memset(a, 0, bytes);
            memset(b, 0, bytes);
            bs_pack_weights(wide, N, K, (bs_pack_kind)kind, a);
            assert_int_equal(bs_pack_weights_h16(h, bf, N, K, (bs_pack_kind)kind, b), 0);
            assert_memory_equal(a, b, bs_packed_bytes(N, K, (bs_pack_kind)kind));
            free(a), free(b);
        }
}

/* int8: the quantized GEMM against sums the test computes itself from the
 * same quantization rule (per-channel symmetric +-127 weights, u8 rows with a
 * zero point, up to each kernel's largest code), every kernel variant the CPU
 * runs equal on the integer part to the portable one fed the same codes, and
 * the dequantized result near the f32 product. Row 0 of A quantizes to all
 * largest codes and weight rows 0/1 to all +127/-127: the pairs that would
 * saturate vpmaddubsw's 16-bit sums first. */
static void test_int8_gemm(void **state)
{
    (void)state;
    unsigned s = 11;
    const int Ms[] = {1, 5, 8, 9, 13, 40}, Ns[] = {1, 17, 37, 70}, Ks[] = {1, 3, 31, 300, 1027};
    double worst_deq = 0, worst_f32 = 0;
    int variants = 0;
    for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
        for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
            for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++) {
                int M = Ms[a], N = Ns[b], K = Ks[c], ld = bs_i8_row_ld(K);
                float *A = malloc((size_t)M * K * 4), *W = malloc((size_t)N * K * 4),
                      *bias = malloc((size_t)N * 4), *out = malloc((size_t)M * N * 4);
                for (int i = 0; i < M * K; i++) A[i] = i < K ? 1.0f : frand(&s, -1, 3);
                for (int i = 0; i < N * K; i++)
                    W[i] = i < K ? 0.5f : i < 2 * K ? -0.5f : frand(&s, -1, 1);
                for (int i = 0; i < N; i++) bias[i] = frand(&s, -1, 1);
                size_t bytes = (bs_packed_bytes(N, K, BS_PACK_I8) + 63) & ~(size_t)63;
                bs_packed *P = aligned_alloc(64, bytes);
                bs_pack_weights(W, N, K, BS_PACK_I8, P);
                uint8_t *q = aligned_alloc(64, (size_t)M * ld);
                float *sa = malloc((size_t)M * 4);
                int32_t *zp = malloc((size_t)M * 4), *s32 = malloc((size_t)M * N * 4),
                        *ref32 = malloc((size_t)M * N * 4);
                /* the weights' quantization, redone here */
                int32_t *qw = malloc((size_t)N * K * 4);
                float *sw = malloc((size_t)N * 4);
                for (int n = 0; n < N; n++) {
                    float amax = 0;
                    for (int k = 0; k < K; k++) amax = fmaxf(amax, fabsf(W[(size_t)n * K + k]));
                    sw[n] = amax / 127.0f;
                    for (int k = 0; k < K; k++)
                        qw[(size_t)n * K + k] = (int32_t)nearbyintf(W[(size_t)n * K + k] / sw[n]);
                }
                for (int impl = BS_I8_PORTABLE; impl < BS_I8_IMPLS; impl++) {
                    if (!bs_i8_available((bs_i8_impl)impl)) continue;
                    int top = bs_i8_act_max((bs_i8_impl)impl);
                    bs_i8_quantize_rows_for((bs_i8_impl)impl, A, K, 0, M, q, ld, sa, zp);
                    if (K > 1) {
                        assert_int_equal(q[0], top);
                        assert_int_equal(zp[0], 0);
                    }
                    for (int m = 0; m < M; m++)
                        for (int k = 0; k < ld; k++) assert_true(q[(size_t)m * ld + k] <= top);
                    for (int m = 0; m < M; m++)
                        for (int n = 0; n < N; n++) {
                            int64_t acc = 0;
                            for (int k = 0; k < K; k++)
                                acc += (int64_t)q[(size_t)m * ld + k] * qw[(size_t)n * K + k];
                            ref32[(size_t)m * N + n] = (int32_t)acc;
                        }
                    /* this kernel and the portable reference on the same codes */
                    for (int k = 0; k < 2; k++) {
                        bs_i8_impl run = k ? BS_I8_PORTABLE : (bs_i8_impl)impl;
                        memset(s32, 0x55, (size_t)M * N * 4);
                        bs_i8_gemm_s32(run, M, q, ld, P, s32, N, 0, N);
                        assert_memory_equal(s32, ref32, (size_t)M * N * 4);
                    }
                    variants |= 1 << impl;
                }
                /* the path in use: its codes, dequantized, bias and GELU, in
                 * two column blocks */
                bs_i8_quantize_rows(A, K, 0, M, q, ld, sa, zp);
                for (int m = 0; m < M; m++)
                    for (int n = 0; n < N; n++) {
                        int64_t acc = 0;
                        for (int k = 0; k < K; k++)
                            acc += (int64_t)q[(size_t)m * ld + k] * qw[(size_t)n * K + k];
                        ref32[(size_t)m * N + n] = (int32_t)acc;
                    }
                int half = N > 16 ? 16 : N;
                bs_i8_gemm_cols(M, q, ld, sa, zp, P, bias, out, N, 0, half, BS_ACT_GELU);
                if (half < N)
                    bs_i8_gemm_cols(M, q, ld, sa, zp, P, bias, out, N, half, N, BS_ACT_GELU);
                for (int m = 0; m < M; m++)
                    for (int n = 0; n < N; n++) {
                        int64_t cs = 0;
                        double exact = bias[n];
                        for (int k = 0; k < K; k++) {
                            cs += qw[(size_t)n * K + k];
                            exact += (double)A[(size_t)m * K + k] * W[(size_t)n * K + k];
                        }
                        double deq = (double)sa[m] * sw[n] *
                                         (double)(ref32[(size_t)m * N + n] - (int64_t)zp[m] * cs) +
                                     bias[n];
                        deq = 0.5 * deq * (1 + erf(deq / sqrt(2.0)));
                        exact = 0.5 * exact * (1 + erf(exact / sqrt(2.0)));
                        double got = out[(size_t)m * N + n], scale = fmax(1.0, sqrt((double)K));
                        worst_deq = fmax(worst_deq, fabs(got - deq) / scale);
                        worst_f32 = fmax(worst_f32, fabs(got - exact) / scale);
                    }
                free(A), free(W), free(bias), free(out), free(P), free(q), free(sa), free(zp);
                free(s32), free(ref32), free(qw), free(sw);
            }
    for (int impl = BS_I8_PORTABLE; impl < BS_I8_IMPLS; impl++)
        if (variants & (1 << impl))
            printf("  int8 GEMM: %s equal to the portable kernel on the integer part\n",
                   bs_i8_impl_name((bs_i8_impl)impl));
        else
            printf("  int8 GEMM: %s not run: this CPU lacks %s\n",
                   bs_i8_impl_name((bs_i8_impl)impl),
                   impl == BS_I8_AVX2           ? "AVX2+FMA3"
                   : impl == BS_I8_VNNI         ? "AVX-512 F/DQ/BW/VL or AVX512_VNNI"
                   : impl == BS_I8_AVXVNNI      ? "AVX-VNNI (its VEX encoding)"
                   : impl == BS_I8_AVXVNNI_EVEX ? "AVX512_VNNI or AVX512VL"
                                                : "?");
    printf("  int8 GEMM: vs the dequantized sums %.2g, vs f32 %.2g (scaled), kernel in use: %s\n",
           worst_deq, worst_f32, bs_i8_impl_name(bs_i8_impl_in_use()));
    assert_true(variants & 1);
    assert_true(worst_deq < 1e-5);
    /* the rounding error grows with the activations' step: 2x with 128 codes */
    assert_true(worst_f32 < 2e-2 * 255 / bs_i8_act_max(bs_i8_impl_in_use()));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_tables),
        cmocka_unit_test(test_portable_values),
        cmocka_unit_test(test_half),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_linear_and_attention),
        cmocka_unit_test(test_linear_layernorm),
        cmocka_unit_test(test_attention_blocks),
        cmocka_unit_test(test_pack_strided),
        cmocka_unit_test(test_packed_gemm),
        cmocka_unit_test(test_pack_from_half),
        cmocka_unit_test(test_int8_gemm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
