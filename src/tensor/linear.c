/* Dense layers and row-wise layernorm over the thread pool. Work is split in
 * blocks of output columns (each thread reads its slice of the weights once)
 * or, when activations outweigh weights, in blocks of rows (tokens). */
#include "tensor/tensor.h"

#include <math.h>
#include <string.h>

/* One output of a dense job and its split into blocks. */
struct plan {
    bs_dense d;
    int by_rows, block, n_blocks, first_task;
    /* column blocks with a small residual + LayerNorm: the task that
     * finishes the last block applies it, instead of one more pool job */
    int ln_by_last, done;
};

struct linear_job {
    const float *x;
    const void *xp; /* x laid out once for the packed kernel (bs_gemm_prepare_rows), or NULL */
    int ldp;
    /* int8 weights: x quantized once per job (bs_i8_quantize_rows) */
    const uint8_t *xq;
    const float *xq_scale;
    const int32_t *xq_zp;
    int i8;
    int M, K;
    struct plan p[BS_DENSE_MAX];
    int n;
    const bs_gemm_backend *g;
    const bs_kernels *k;
};

/* int8 when the job's buffer could not be had: the task quantizes its rows
 * in its own thread's scratch, or (out of memory) leaves NaN, never stale data. */
static void i8_fallback(const struct linear_job *j, const bs_dense *d, int m0, int m1, int n0,
                        int n1)
{
    int ld = bs_i8_row_ld(j->K), M = m1 - m0;
    char *buf = bs_thread_scratch(BS_SCRATCH_GEMM_A, (size_t)M * ld + (size_t)M * 8);
    if (!buf) {
        for (int m = m0; m < m1; m++)
            for (int c = n0; c < n1; c++) d->y[(size_t)m * d->ldy + c] = NAN;
        return;
    }
    float *sc = (float *)(buf + (size_t)M * ld);
    int32_t *zp = (int32_t *)(sc + M);
    bs_i8_quantize_rows(j->x + (size_t)m0 * j->K, j->K, 0, M, (uint8_t *)buf, ld, sc, zp);
    bs_i8_gemm_cols(M, (const uint8_t *)buf, ld, sc, zp, d->packed, d->b,
                    d->y + (size_t)m0 * d->ldy, d->ldy, n0, n1, d->act);
}

static void col_block(const struct linear_job *j, const bs_dense *d, int n0, int n1)
{
    if (d->packed && j->xq) {
        bs_i8_gemm_cols(j->M, j->xq, j->ldp, j->xq_scale, j->xq_zp, d->packed, d->b, d->y, d->ldy,
                        n0, n1, d->act);
        return;
    }
    if (j->i8) {
        i8_fallback(j, d, 0, j->M, n0, n1);
        return;
    }
    if (d->packed && j->xp) {
        bs_gemm_prepared_cols(j->M, j->xp, j->ldp, d->packed, d->b, d->y, d->ldy, n0, n1, d->act);
        return;
    }
    if (d->packed) {
        bs_gemm_packed_cols(j->M, j->x, j->K, d->packed, d->b, d->y, d->ldy, n0, n1, d->act);
        return;
    }
    j->g->sgemm_nt(j->M, n1 - n0, j->K, j->x, j->K, d->w + (size_t)n0 * j->K, j->K, d->y + n0,
                   d->ldy, 0.0f);
    for (int m = 0; m < j->M; m++)
        j->k->bias_act(d->y + (size_t)m * d->ldy + n0, d->b ? d->b + n0 : NULL, n1 - n0, d->act);
}

static void linear_task(void *ctxp, int t, int worker)
{
    struct linear_job *j = ctxp;
    (void)worker;
    int i = j->n - 1;
    while (t < j->p[i].first_task) i--;
    struct plan *p = &j->p[i];
    const bs_dense *d = &p->d;
    int b = t - p->first_task;
    if (p->by_rows) {
        int m0 = b * p->block, m1 = m0 + p->block < j->M ? m0 + p->block : j->M;
        if (d->packed && j->xq) {
            bs_i8_gemm_cols(m1 - m0, j->xq + (size_t)m0 * j->ldp, j->ldp, j->xq_scale + m0,
                            j->xq_zp + m0, d->packed, d->b, d->y + (size_t)m0 * d->ldy, d->ldy, 0,
                            d->N, d->act);
        } else if (j->i8) {
            i8_fallback(j, d, m0, m1, 0, d->N);
        } else if (d->packed && j->xp) {
            /* 4-byte elements: floats, or pairs of bf16 */
            bs_gemm_prepared_cols(m1 - m0, (const char *)j->xp + (size_t)m0 * j->ldp * 4, j->ldp,
                                  d->packed, d->b, d->y + (size_t)m0 * d->ldy, d->ldy, 0, d->N,
                                  d->act);
        } else if (d->packed) {
            bs_gemm_packed_cols(m1 - m0, j->x + (size_t)m0 * j->K, j->K, d->packed, d->b,
                                d->y + (size_t)m0 * d->ldy, d->ldy, 0, d->N, d->act);
        } else {
            j->g->sgemm_nt(m1 - m0, d->N, j->K, j->x + (size_t)m0 * j->K, j->K, d->w, j->K,
                           d->y + (size_t)m0 * d->ldy, d->ldy, 0.0f);
            for (int m = m0; m < m1; m++)
                j->k->bias_act(d->y + (size_t)m * d->ldy, d->b, d->N, d->act);
        }
        if (d->ln_x) /* whole rows are here: residual + LayerNorm while they are in cache */
            for (int m = m0; m < m1; m++)
                j->k->add_layernorm(d->ln_x + (size_t)m * d->N, d->y + (size_t)m * d->ldy, d->ln_g,
                                    d->ln_b, d->N, d->ln_eps);
    } else {
        int n0 = b * p->block, n1 = n0 + p->block < d->N ? n0 + p->block : d->N;
        col_block(j, d, n0, n1);
        /* the last block done (acquire: every other block's columns are
         * written) completes the rows */
        if (p->ln_by_last && __atomic_add_fetch(&p->done, 1, __ATOMIC_ACQ_REL) == p->n_blocks)
            for (int m = 0; m < j->M; m++)
                j->k->add_layernorm(d->ln_x + (size_t)m * d->N, d->y + (size_t)m * d->ldy, d->ln_g,
                                    d->ln_b, d->N, d->ln_eps);
    }
}

struct prep_job {
    bs_pack_kind kind;
    const float *x;
    void *xp;
    int M, K, ldp, block;
};

static void prep_task(void *ctxp, int t, int worker)
{
    struct prep_job *r = ctxp;
    (void)worker;
    int r0 = t * r->block, r1 = r0 + r->block < r->M ? r0 + r->block : r->M;
    bs_gemm_prepare_rows(r->kind, r->x, r->K, r0, r1, r->xp, r->ldp);
}

struct quant_job {
    const float *x;
    uint8_t *q;
    float *scale;
    int32_t *zp;
    int M, K, ld, block;
};

static void quant_task(void *ctxp, int t, int worker)
{
    struct quant_job *r = ctxp;
    (void)worker;
    int r0 = t * r->block, r1 = r0 + r->block < r->M ? r0 + r->block : r->M;
    bs_i8_quantize_rows(r->x, r->K, r0, r1, r->q, r->ld, r->scale, r->zp);
}

/* int8 weights: x quantized row by row once for every output and task. -1
 * when out of memory. */
static int quantize_input(bs_pool *pool, struct linear_job *j)
{
    int ld = bs_i8_row_ld(j->K);
    size_t data = (size_t)j->M * (size_t)ld;
    /* the calling thread's buffer: the pool's tasks only read it */
    char *buf = bs_thread_scratch(BS_SCRATCH_LINEAR_INPUT, data + (size_t)j->M * 8);
    if (!buf) return -1;
    struct quant_job r = {j->x,
                          (uint8_t *)buf,
                          (float *)(buf + data),
                          (int32_t *)(buf + data + (size_t)j->M * 4),
                          j->M,
                          j->K,
                          ld,
                          0};
    int nt = bs_pool_size(pool);
    r.block = (size_t)j->M * j->K >= 16384 && nt > 1 ? (j->M + nt - 1) / nt : j->M;
    bs_pool_run(pool, (j->M + r.block - 1) / r.block, quant_task, &r);
    j->xq = r.q;
    j->xq_scale = r.scale;
    j->xq_zp = r.zp;
    j->ldp = ld;
    return 0;
}

/* Lays x out once for every task instead of once per task and output (a
 * column-split q/k/v job would otherwise copy or round it 6-12 times). NULL
 * (each task packs its own block) when memory is short. */
static const void *prepare_input(bs_pool *pool, bs_pack_kind kind, const float *x, int M, int K,
                                 int *ldp)
{
    int rows = (M + BS_GEMM_ROWS - 1) / BS_GEMM_ROWS * BS_GEMM_ROWS;
    *ldp = bs_gemm_prepared_ld(K, kind);
    /* the calling thread's buffer: the pool's tasks only read it */
    char *xp = bs_thread_scratch(BS_SCRATCH_LINEAR_INPUT, (size_t)rows * (size_t)*ldp * 4);
    if (!xp) return NULL;
    memset(xp + (size_t)M * *ldp * 4, 0, (size_t)(rows - M) * (size_t)*ldp * 4);
    int nt = bs_pool_size(pool);
    struct prep_job r = {kind, x, xp, M, K, *ldp, (M + nt - 1) / nt};
    bs_pool_run(pool, (M + r.block - 1) / r.block, prep_task, &r);
    return xp;
}

void bs_linear_multi(bs_pool *pool, const float *x, int M, int K, const bs_dense *outs, int n)
{
    struct linear_job j = {
        .x = x, .M = M, .K = K, .n = n, .g = bs_gemm_default(), .k = bs_kernels_best()};
    int nt = bs_pool_size(pool), tasks = 0;
    for (int i = 0; i < n; i++) {
        struct plan *p = &j.p[i];
        p->d = outs[i];
        if (p->d.ldy == 0) p->d.ldy = p->d.N;
        int N = p->d.N;
        p->first_task = tasks;
        /* Column blocks by default: each thread streams only its share of the
         * weights, which dominate memory traffic up to a few hundred tokens.
         * From 64 rows, about eight blocks per thread, taken from the pool's
         * shared counter, so that a thread the OS or another tenant delays
         * leaves its remaining blocks to the others (with two, the job waited
         * for a delayed block). Below 64 rows, two: each block restarts the
         * weight stream from DRAM, and eight ran 5-10% slower at b1 s16.
         * docs/engine.md gives the A/B figures.
         * Row blocks when the activations outweigh the weights. */
        if (nt == 1 || (double)M * N * K < 64.0 * 1024) {
            p->by_rows = 1;
            p->block = M;
            p->n_blocks = 1;
        } else if (N >= 64 * nt && M < 4 * N) {
            int blocks = N < 128 * nt ? nt : M < 64 ? 2 * nt : 8 * nt;
            p->block = ((N + blocks - 1) / blocks + 31) & ~31; /* whole packed panels */
            p->n_blocks = (N + p->block - 1) / p->block;
        } else {
            p->by_rows = 1;
            p->block = ((M + 4 * nt - 1) / (4 * nt) + 11) / 12 * 12; /* whole micro-tiles */
            p->n_blocks = (M + p->block - 1) / p->block;
        }
        /* a few rows' LayerNorm costs less than waking the pool once more */
        p->ln_by_last = !p->by_rows && p->d.ln_x && (size_t)M * N <= 32768;
        p->done = 0;
        tasks += p->n_blocks;
    }
    /* every output of one job has the same kind of packing (or none) */
    if (outs[0].packed && outs[0].packed->kind == BS_PACK_I8)
        j.i8 = 1, quantize_input(pool, &j); /* else each task quantizes its own rows */
    else if (outs[0].packed && tasks > 1 && bs_gemm_wants_prepared(outs[0].packed))
        j.xp = prepare_input(pool, (bs_pack_kind)outs[0].packed->kind, x, M, K, &j.ldp);
    bs_pool_run(pool, tasks, linear_task, &j);
    for (int i = 0; i < n; i++) /* column blocks: the rows are whole only now */
        if (j.p[i].d.ln_x && !j.p[i].by_rows && !j.p[i].ln_by_last) {
            const bs_dense *d = &j.p[i].d;
            bs_add_layernorm_rows(pool, d->ln_x, d->y, M, d->N, d->ln_g, d->ln_b, d->ln_eps);
        }
}

void bs_linear(bs_pool *pool, const float *x, int M, int K, const float *w, const float *b, int N,
               float *y, bs_act act)
{
    bs_dense d = {.w = w, .b = b, .N = N, .y = y, .act = act};
    bs_linear_multi(pool, x, M, K, &d, 1);
}

struct ln_job {
    float *x;
    const float *res, *gamma, *beta;
    int M, N, block;
    float eps;
    const bs_kernels *k;
};

static void ln_task(void *ctxp, int t, int worker)
{
    struct ln_job *j = ctxp;
    (void)worker;
    int m0 = t * j->block, m1 = m0 + j->block < j->M ? m0 + j->block : j->M;
    for (int m = m0; m < m1; m++)
        j->k->add_layernorm(j->x + (size_t)m * j->N, j->res ? j->res + (size_t)m * j->N : NULL,
                            j->gamma, j->beta, j->N, j->eps);
}

void bs_add_layernorm_rows(bs_pool *pool, float *x, const float *res, int M, int N,
                           const float *gamma, const float *beta, float eps)
{
    struct ln_job j = {x, res, gamma, beta, M, N, M, eps, bs_kernels_best()};
    int nt = bs_pool_size(pool);
    if (nt > 1 && (size_t)M * N >= 16384) j.block = (M + nt - 1) / nt;
    bs_pool_run(pool, (M + j.block - 1) / j.block, ln_task, &j);
}
