/* Scaled dot-product attention on a packed, padding-free batch: one task per
 * (sequence, head), so a short sequence costs only its own tokens. Scores
 * (Q K^T) and the weighted sum (P V) run on the packed GEMM of the kernel
 * path in use: the head's keys and values are laid out as panels in the
 * task's own scratch (a copy of nk x head_dim floats each), the queries and
 * probabilities read in place. The BLAS backend is only the fallback when
 * that scratch cannot be had. */
#include "tensor/tensor.h"

/* Scores per block of query rows: 192 KB, which stay in L2 with the head's
 * packed keys and values from QK^T through softmax to P V. */
#define ATTN_BLOCK 49152

/* Query rows per block: all of them when their scores fit, else equal
 * blocks in whole row tiles (12 rows: two of AVX2's, one of AVX-512's). */
static int block_rows(int nq, int nk)
{
    size_t all = (size_t)nq * (size_t)nk;
    if (all <= ATTN_BLOCK) return nq;
    int blocks = (int)((all + ATTN_BLOCK - 1) / ATTN_BLOCK);
    int r = (nq + blocks - 1) / blocks;
    return (r + 11) / 12 * 12;
}

size_t bs_attention_scratch_floats(int max_q, int max_k)
{
    return (size_t)max_q * (size_t)max_k;
}

struct attn_job {
    const bs_attn_args *a;
    float *scratch;
    size_t per_worker;
    const bs_gemm_backend *g;
    const bs_kernels *k;
};

/* Rows [r0, r0 + n) of the nq queries' scores, stored from S. */
static void softmax_rows(const bs_kernels *k, const bs_attn_args *a, float *S, int r0, int n,
                         int nq, int nk)
{
    for (int i = 0; i < n; i++) {
        float *row = S + (size_t)i * nk;
        int visible = a->causal ? nk - nq + r0 + i + 1 : nk;
        k->softmax(row, visible, a->scale);
        for (int c = visible; c < nk; c++) row[c] = 0.0f;
    }
}

static void attn_task(void *ctxp, int t, int worker)
{
    struct attn_job *j = ctxp;
    const bs_attn_args *a = j->a;
    int s = t / a->n_heads, h = t % a->n_heads;
    int q0 = a->q_off[s], nq = a->q_off[s + 1] - q0;
    int k0 = a->k_start[s], nk = a->k_len[s];
    if (nq <= 0 || nk <= 0) return;
    float *S = j->scratch + j->per_worker * (size_t)worker;
    size_t col = (size_t)h * a->head_dim;
    size_t kb = (bs_packed_bytes(nk, a->head_dim, BS_PACK_F32) + 63) & ~(size_t)63;
    char *pk =
        bs_thread_scratch(BS_SCRATCH_ATTN, kb + bs_packed_bytes(a->head_dim, nk, BS_PACK_F32));
    if (pk) {
        bs_packed *K = (bs_packed *)pk, *V = (bs_packed *)(pk + kb);
        bs_pack_f32_strided(a->k + (size_t)k0 * a->ldk + col, a->ldk, nk, a->head_dim, 0, K);
        bs_pack_f32_strided(a->v + (size_t)k0 * a->ldv + col, a->ldv, a->head_dim, nk, 1, V);
        /* in blocks of query rows, so that a block's scores stay in L2
         * from QK^T through softmax to P V however long the sequence */
        int rows = block_rows(nq, nk);
        for (int r0 = 0; r0 < nq; r0 += rows) {
            int r = nq - r0 < rows ? nq - r0 : rows;
            bs_gemm_packed_cols(r, a->q + (size_t)(q0 + r0) * a->ldq + col, a->ldq, K, NULL, S, nk,
                                0, nk, BS_ACT_NONE);
            softmax_rows(j->k, a, S, r0, r, nq, nk);
            bs_gemm_packed_cols(r, S, nk, V, NULL, a->out + (size_t)(q0 + r0) * a->ldo + col,
                                a->ldo, 0, a->head_dim, BS_ACT_NONE);
        }
        return;
    }
    j->g->sgemm_nt(nq, nk, a->head_dim, a->q + (size_t)q0 * a->ldq + col, a->ldq,
                   a->k + (size_t)k0 * a->ldk + col, a->ldk, S, nk, 0.0f);
    softmax_rows(j->k, a, S, 0, nq, nq, nk);
    j->g->sgemm_nn(nq, a->head_dim, nk, S, nk, a->v + (size_t)k0 * a->ldv + col, a->ldv,
                   a->out + (size_t)q0 * a->ldo + col, a->ldo, 0.0f);
}

void bs_attention(bs_pool *pool, const bs_attn_args *a, float *scratch)
{
    int max_q = 0, max_k = 0;
    for (int s = 0; s < a->n_seqs; s++) {
        int nq = a->q_off[s + 1] - a->q_off[s], nk = a->k_len[s];
        if (nq > max_q) max_q = nq;
        if (nk > max_k) max_k = nk;
    }
    struct attn_job j = {a, scratch, bs_attention_scratch_floats(max_q, max_k), bs_gemm_default(),
                         bs_kernels_best()};
    bs_pool_run(pool, a->n_seqs * a->n_heads, attn_task, &j);
}
