/* Private interface of the tensor module: the compute kernels the model
 * module builds its forward passes from (GEMM backend, fused epilogues,
 * layernorm, softmax, attention), dtype conversion and the thread pool. */
#ifndef BS_TENSOR_TENSOR_H
#define BS_TENSOR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "bertstudio/common.h"

/* ── kernel paths (cpu.c) ── */
/* The f32 kernel paths (GEMM, element-wise tables). */
typedef enum bs_cpu_path { BS_CPU_PORTABLE = 0, BS_CPU_AVX2 = 1, BS_CPU_AVX512 = 2 } bs_cpu_path;
/* Whether this CPU can execute a path. */
int bs_cpu_can(bs_cpu_path p);
/* The path this process runs, chosen once: the best the CPU has, or the
 * lower one BS_CPU=portable|avx2|avxvnni|avx512 names (avxvnni: the avx2
 * path, its int8 dense layers on 256-bit vpdpbusd). A BS_CPU this CPU cannot
 * run (or an unknown name) leaves the best path in use and makes
 * bs_cpu_check fail. */
bs_cpu_path bs_cpu_path_get(void);
/* "portable C", "avx2+fma3", "avx512" */
const char *bs_cpu_path_name(bs_cpu_path p);
/* The path in use as the load log names it: bs_cpu_path_name, or
 * "avx2+fma3, int8 avx-vnni" on the avxvnni path. */
const char *bs_cpu_in_use_name(void);
/* 0, with *why saying why the path was chosen ("no avx512f", "BS_CPU=avx2;
 * ..."; on avxvnni first the encoding: "evex encoding; BS_CPU=avxvnni; ...";
 * in a build for another CPU "built for aarch64; the other paths are
 * x86-64's"), or BS_EUNSUPPORTED naming what BS_CPU asked for and what is
 * missing. */
int bs_cpu_check(const char **why, bs_err *err);
/* Whether this CPU can run the path BS_CPU=name selects: 1 or 0, -1 for a
 * name that is no path. */
int bs_cpu_can_name(const char *name);
/* 256-bit vpdpbusd (4 u8 x s8 products summed into each int32) in the two
 * encodings of one operation: VEX is AVX-VNNI (Intel Alder Lake and later,
 * AMD Zen 5: AVX2 CPUs without AVX-512), EVEX is AVX512_VNNI + AVX512VL
 * (AVX-512 CPUs, which thus run and test the avxvnni path too). */
typedef enum bs_vnni256 { BS_VNNI256_NONE = 0, BS_VNNI256_VEX = 1, BS_VNNI256_EVEX = 2 } bs_vnni256;
/* Whether this CPU executes an encoding. */
int bs_cpu_can_vnni256(bs_vnni256 enc);
/* The encoding the path in use runs its int8 kernel in: NONE but on the
 * avxvnni path, where it is VEX when the CPU has AVX-VNNI, else EVEX. */
bs_vnni256 bs_cpu_vnni256_get(void);

/* ── dtype conversion (weights stored as F16/BF16 are upcast once at load) ── */
void bs_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void bs_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
/* f32 to IEEE half, rounded to nearest even (overflow to infinity). */
uint16_t bs_f32_to_f16(float f);
/* f32 to bfloat16, rounded to nearest even (NaN kept quiet). */
uint16_t bs_f32_to_bf16(float f);

/* ── activations, by transformers' ACT2FN names ── */
typedef enum bs_act {
    BS_ACT_NONE = 0,
    BS_ACT_GELU,      /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    BS_ACT_GELU_TANH, /* gelu_new / gelu_pytorch_tanh */
    BS_ACT_RELU,
    BS_ACT_SILU,
    BS_ACT_TANH,
} bs_act;

/* Maps "gelu", "gelu_new", ... to an activation; -1 when unknown. */
int bs_act_from_name(const char *name);

/* ── element-wise kernels, one table per instruction set ── */
typedef struct bs_kernels {
    const char *name; /* "reference", "portable", "avx2", "avx512" */
    /* y[i] = act(y[i] + bias[i]) for i < n (bias may be NULL) */
    void (*bias_act)(float *y, const float *bias, int n, bs_act act);
    /* x = LayerNorm(x + res) over n values (res may be NULL) */
    void (*add_layernorm)(float *x, const float *res, const float *gamma, const float *beta, int n,
                          float eps);
    /* in-place softmax of x[0..n) after multiplying by scale */
    void (*softmax)(float *x, int n, float scale);
} bs_kernels;

const bs_kernels *bs_kernels_portable(void);
/* Scalar libm (erff, tanhf, expf): the table the others are tested against. */
const bs_kernels *bs_kernels_reference(void);
/* The AVX2+FMA3 table, or NULL when this CPU (or compiler) lacks them. */
const bs_kernels *bs_kernels_avx2(void);
/* The AVX-512 table, or NULL when this CPU (or compiler) lacks AVX-512F/DQ. */
const bs_kernels *bs_kernels_avx512(void);
/* The table of the path in use (bs_cpu_path_get). */
const bs_kernels *bs_kernels_best(void);

/* ── thread pool: a fixed set of workers running indexed tasks ── */
typedef struct bs_pool bs_pool;

/* fn(ctx, task, worker): worker in [0, bs_pool_size) identifies per-thread scratch. */
typedef void (*bs_task_fn)(void *ctx, int task, int worker);

/* n_threads <= 0 = number of cores. NULL when threads cannot be started. */
bs_pool *bs_pool_new(int n_threads);
void bs_pool_free(bs_pool *pool);
int bs_pool_size(const bs_pool *pool);
/* Runs fn for task 0..n_tasks-1 on the pool and the caller, returns when all
 * are done. When another call holds the pool, runs the tasks in the caller
 * alone (as worker 0), so concurrent callers never wait on each other's work
 * and never share a worker index. pool may be NULL (serial). */
void bs_pool_run(bs_pool *pool, int n_tasks, bs_task_fn fn, void *ctx);

/* ── per-thread scratch ── */
typedef enum bs_scratch_slot {
    BS_SCRATCH_GEMM_A,       /* the packed GEMM's block of A */
    BS_SCRATCH_LINEAR_INPUT, /* a dense job's input, laid out once for all its tasks */
    BS_SCRATCH_ATTN,         /* an attention task's keys and values, packed */
    BS_SCRATCH_SLOTS
} bs_scratch_slot;
/* At least `bytes` of 64-byte aligned memory owned by the calling thread for
 * this slot (contents not kept when it grows), or NULL when out of memory.
 * Grows only, freed when the thread exits. */
void *bs_thread_scratch(bs_scratch_slot slot, size_t bytes);

/* ── streamed memory ── */
#define BS_HUGE_PAGE ((size_t)2 << 20)
/* 64-byte aligned memory (free() releases it) for data every forward pass
 * reads whole, such as packed weights: from BS_HUGE_PAGE bytes on, whole
 * 2 MB-aligned huge pages advised to the kernel (streamed.c says why).
 * NULL when out of memory. */
void *bs_streamed_alloc(size_t bytes);

/* ── GEMM backend ── */
typedef struct bs_gemm_backend {
    const char *name;
    /* C[M][N] = A[M][K] * B[N][K]^T (+ beta * C), row-major with leading dims */
    void (*sgemm_nt)(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     float *C, int ldc, float beta);
    /* C[M][N] = A[M][K] * B[K][N] (+ beta * C) */
    void (*sgemm_nn)(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     float *C, int ldc, float beta);
} bs_gemm_backend;

/* The backend in use (OpenBLAS, single-threaded: parallelism is ours). */
const bs_gemm_backend *bs_gemm_default(void);

/* Packed-weight GEMM (gemm_packed.c): weights re-laid once at load as
 * panels of output columns in the layout of the kernel path in use (32
 * columns for AVX-512, 16 for AVX2+FMA3 and portable C), so no call repacks
 * them; the micro-kernels read A in place, bias and activation applied while
 * a tile is in registers. F32 panels exist on every path. BF16 panels
 * (bs_model_opts.precision) hold half the bytes and run on AVX512_BF16 dot
 * products at twice the F32 rate: activations are rounded to bf16 on their
 * way into the kernel, sums stay F32. */
/* F16 panels: the F32 layout in IEEE half floats, half the bytes, widened
 * to F32 as the kernel loads them (F16C / AVX-512F, or shifts in portable
 * C); activations and sums stay F32, so the only error is the weights'
 * rounding to 11 significant bits. Every path runs them. */
/* BF16W panels: the same with bfloat16 weights widened by a shift, for
 * bf16 on CPUs (or paths) without AVX512_BF16's dot products. In each step
 * of a panel the 32-bit word i holds columns i (low half) and i + NR/2
 * (high half): a shift and an AND widen them. */
typedef enum bs_pack_kind {
    BS_PACK_F32 = 0,
    BS_PACK_BF16 = 1,
    BS_PACK_F16 = 2,
    BS_PACK_BF16W = 3,
    BS_PACK_I8 = 4 /* int8: the bs_i8_* functions below */
} bs_pack_kind;
/* A packed weight: this header, then the panels from byte BS_PACKED_HEADER. */
typedef struct bs_packed {
    int kind, N, K, nr; /* nr: columns per panel */
} bs_packed;
#define BS_PACKED_HEADER 64
int bs_gemm_packed_available(bs_pack_kind kind);
/* Bytes of a packed N x K weight, header included. */
size_t bs_packed_bytes(int N, int K, bs_pack_kind kind);
/* Packs w[N][K] into p (bs_packed_bytes long, 64-byte aligned) for the path
 * in use. BF16 only where bs_gemm_packed_available(BS_PACK_BF16). */
void bs_pack_weights(const float *w, int N, int K, bs_pack_kind kind, bs_packed *p);
/* The same from F16 (bf = 0) or BF16 (bf = 1) weights as a file holds them,
 * with no F32 copy of the whole matrix (one row at a time; the bf16 dot
 * product layout alone widens the matrix first). -1 when out of memory. */
int bs_pack_weights_h16(const uint16_t *w, int bf, int N, int K, bs_pack_kind kind, bs_packed *p);
/* The same for an F32 operand built per call (attention's keys and values):
 * W[n][k] = w[n * ldw + k], or with transposed w[k * ldw + n]. */
void bs_pack_f32_strided(const float *w, int ldw, int N, int K, int transposed, bs_packed *p);
/* Columns [n0, n1) (n0 a multiple of 32) of C[M][p->N] = act(A W^T + bias). */
void bs_gemm_packed_cols(int M, const float *A, int lda, const bs_packed *p, const float *bias,
                         float *C, int ldc, int n0, int n1, bs_act act);
/* For several GEMMs over one input (q, k and v; the column blocks of the
 * pool's threads), A is laid out once the way the kernel reads it instead of
 * once per call: rows [r0, r1) of x[.][K] become rows of K floats (F32
 * weights) or of (K + 1) / 2 bf16 pairs in 32 bits (BF16), ld elements of 4
 * bytes apart (bs_gemm_prepared_ld). bs_gemm_prepared_cols reads them; its A
 * holds M rounded up to BS_GEMM_ROWS rows, those past M zero. */
#define BS_GEMM_ROWS 12
/* Whether the kernel p was packed for reads A prepared (AVX-512) rather than in place. */
int bs_gemm_wants_prepared(const bs_packed *p);
int bs_gemm_prepared_ld(int K, bs_pack_kind kind);
void bs_gemm_prepare_rows(bs_pack_kind kind, const float *x, int K, int r0, int r1, void *out,
                          int ld);
void bs_gemm_prepared_cols(int M, const void *A, int lda, const bs_packed *p, const float *bias,
                           float *C, int ldc, int n0, int n1, bs_act act);

/* I8 panels: dynamic quantization as ONNX Runtime's quantize_dynamic does
 * it. bs_pack_weights(.., BS_PACK_I8, ..) quantizes each output channel
 * symmetrically (+-127, scale max|w| / 127) and keeps its scale and the sum
 * of its quantized weights. Activations are quantized per row at run time to
 * u8 with a zero point (bs_i8_quantize_rows: the range [min(x, 0), max(x, 0)]
 * over bs_i8_act_max steps): unsigned, as vpdpbusd and vpmaddubsw multiply u8
 * by s8 and asymmetric ranges (GELU's outputs) keep all the codes. Sums are
 * int32; then y = sa * sw[n] * (sum qa qw - zp * sum qw) + bias, then the
 * activation. */
typedef enum bs_i8_impl {
    BS_I8_PORTABLE = 0,
    BS_I8_AVX2 = 1,         /* vpmaddubsw + vpmaddwd, activations 0..128 */
    BS_I8_VNNI = 2,         /* AVX512-VNNI: zmm vpdpbusd */
    BS_I8_AVXVNNI = 3,      /* AVX-VNNI: ymm vpdpbusd, VEX encoding */
    BS_I8_AVXVNNI_EVEX = 4, /* the same kernel in the EVEX encoding (AVX512_VNNI + VL) */
    BS_I8_IMPLS
} bs_i8_impl;
int bs_i8_available(bs_i8_impl impl);
/* The kernel the path in use runs: VNNI on the AVX-512 path when the CPU has
 * AVX512_VNNI, AVX-VNNI (in bs_cpu_vnni256_get's encoding) on the avxvnni
 * path, AVX2 on the AVX2 path, else portable C. */
bs_i8_impl bs_i8_impl_in_use(void);
/* "portable C", "avx2", "avx512-vnni", "avx-vnni (vex encoding)", "avx-vnni (evex encoding)" */
const char *bs_i8_impl_name(bs_i8_impl impl);
/* Bytes per quantized row of K values (K rounded up to whole cache lines). */
int bs_i8_row_ld(int K);
/* The largest activation code kernel impl takes: 255 (8 bits) for portable C
 * and every VNNI kernel, 128 for AVX2, whose vpmaddubsw would saturate its
 * 16-bit pair sums on larger codes times 8-bit weights (docs/engine.md). */
int bs_i8_act_max(bs_i8_impl impl);
/* Rows [r0, r1) of x[.][K] into q (ld bytes a row, zero past K), with each
 * row's scale and zero point, in the codes of the kernel in use (_for: of
 * kernel impl). */
void bs_i8_quantize_rows(const float *x, int K, int r0, int r1, uint8_t *q, int ld, float *scale,
                         int32_t *zp);
void bs_i8_quantize_rows_for(bs_i8_impl impl, const float *x, int K, int r0, int r1, uint8_t *q,
                             int ld, float *scale, int32_t *zp);
/* Columns [n0, n1) (n0 a multiple of 16) of C[M][p->N] = act(dequantized
 * A W^T + bias), A quantized by bs_i8_quantize_rows. */
void bs_i8_gemm_cols(int M, const uint8_t *A, int lda, const float *a_scale, const int32_t *a_zp,
                     const bs_packed *p, const float *bias, float *C, int ldc, int n0, int n1,
                     bs_act act);
/* The integer part alone on a given kernel (tests): C[m][n] = sum_k A W for
 * columns [n0, n1). impl must be available. */
void bs_i8_gemm_s32(bs_i8_impl impl, int M, const uint8_t *A, int lda, const bs_packed *p,
                    int32_t *C, int ldc, int n0, int n1);

/* A dense layer y[M][N] = act(x[M][K] * w[N][K]^T + b[N]) split over the pool
 * in row or column blocks, the bias/activation applied to each block while it
 * is still in cache. */
void bs_linear(bs_pool *pool, const float *x, int M, int K, const float *w, const float *b, int N,
               float *y, bs_act act);

/* Several dense layers reading the same input (e.g. attention's q, k, v) in
 * one pool job: y[M][ldy] = act(x w^T + b), ldy 0 = N. */
#define BS_DENSE_MAX 4
typedef struct bs_dense {
    const float *w, *b;
    int N;
    float *y;
    int ldy;
    bs_act act;
    const bs_packed *packed; /* optional bs_pack_weights() copy of w */
    /* Optional residual + LayerNorm after the layer (y with ldy = N): ln_x[M][N]
     * = LayerNorm(ln_x + y) (ln_g, ln_b over N, ln_eps). Done inside each row
     * block's task while y is in cache; for column blocks by the task that
     * finishes the last one (few rows) or in one more job after them. */
    float *ln_x;
    const float *ln_g, *ln_b;
    float ln_eps;
} bs_dense;
void bs_linear_multi(bs_pool *pool, const float *x, int M, int K, const bs_dense *outs, int n);

/* x[M][N] = LayerNorm(x + res) row by row, split over the pool. */
void bs_add_layernorm_rows(bs_pool *pool, float *x, const float *res, int M, int N,
                           const float *gamma, const float *beta, float eps);

/* Multi-head attention for a packed batch. Q, K, V rows are tokens (row
 * strides ldq/ldk/ldv floats), heads are contiguous slices of head_dim
 * columns. Sequence s has queries q_off[s]..q_off[s+1] and keys
 * k_start[s]..k_start[s]+k_len[s] (a KV cache keeps each row's keys at its
 * own base). causal: query i (of n_q) sees keys j <= n_k - n_q + i.
 * out[q][h*head_dim..] receives softmax(q.k * scale) v, row stride ldo.
 * scratch: per worker, max_keys floats each (bs_attention_scratch). */
typedef struct bs_attn_args {
    const float *q, *k, *v;
    int ldq, ldk, ldv;
    float *out;
    int ldo;
    const int32_t *q_off, *k_start, *k_len;
    int n_seqs, n_heads, head_dim;
    float scale;
    int causal;
} bs_attn_args;
size_t bs_attention_scratch_floats(int max_q, int max_k);
void bs_attention(bs_pool *pool, const bs_attn_args *a, float *scratch);

#endif
