/* Dense layers and row-wise layernorm over the thread pool. Work is split in
 * blocks of rows (tokens) when there are enough, else in blocks of output
 * columns, so that small batches still use every core. */
#include "tensor/tensor.h"

struct linear_job {
    const float *x, *w, *b;
    float *y;
    int M, K, N;
    int by_rows, block, n_blocks;
    bs_act act;
    const bs_gemm_backend *g;
    const bs_kernels *k;
};

static void linear_task(void *ctxp, int t, int worker)
{
    struct linear_job *j = ctxp;
    (void)worker;
    if (j->by_rows) {
        int m0 = t * j->block, m1 = m0 + j->block < j->M ? m0 + j->block : j->M;
        j->g->sgemm_nt(m1 - m0, j->N, j->K, j->x + (size_t)m0 * j->K, j->K, j->w, j->K,
                       j->y + (size_t)m0 * j->N, j->N, 0.0f);
        for (int m = m0; m < m1; m++) j->k->bias_act(j->y + (size_t)m * j->N, j->b, j->N, j->act);
    } else {
        int n0 = t * j->block, n1 = n0 + j->block < j->N ? n0 + j->block : j->N;
        j->g->sgemm_nt(j->M, n1 - n0, j->K, j->x, j->K, j->w + (size_t)n0 * j->K, j->K, j->y + n0,
                       j->N, 0.0f);
        for (int m = 0; m < j->M; m++)
            j->k->bias_act(j->y + (size_t)m * j->N + n0, j->b ? j->b + n0 : NULL, n1 - n0, j->act);
    }
}

void bs_linear(bs_pool *pool, const float *x, int M, int K, const float *w, const float *b, int N,
               float *y, bs_act act)
{
    struct linear_job j = {x, w, b, y, M, K, N, 0, 0, 0, act, bs_gemm_default(), bs_kernels_best()};
    int nt = bs_pool_size(pool);
    /* Tiny products are not worth waking threads for. */
    if (nt == 1 || (double)M * N * K < 64.0 * 1024) {
        j.by_rows = 1;
        j.block = M;
        j.n_blocks = 1;
    } else if (M >= 16 * nt) {
        /* Row blocks: several per thread for balance, multiples of 8 rows. */
        int blocks = nt * 2;
        j.by_rows = 1;
        j.block = ((M + blocks - 1) / blocks + 7) & ~7;
        j.n_blocks = (M + j.block - 1) / j.block;
    } else {
        int blocks = nt;
        j.block = ((N + blocks - 1) / blocks + 15) & ~15;
        j.n_blocks = (N + j.block - 1) / j.block;
    }
    bs_pool_run(pool, j.n_blocks, linear_task, &j);
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
