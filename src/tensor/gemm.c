/* The GEMM backend: OpenBLAS sgemm behind a two-function table, so another
 * library (oneDNN, a hand-written kernel) can replace it in one place. The
 * BLAS runs single-threaded: the model splits work over its own pool. */
#include "tensor/tensor.h"

#include <cblas.h>
#include <pthread.h>

static void blas_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, float beta)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C,
                ldc);
}

static void blas_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, float beta)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C,
                ldc);
}

static const bs_gemm_backend openblas = {"openblas", blas_nt, blas_nn};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void init_blas(void)
{
    openblas_set_num_threads(1);
}

const bs_gemm_backend *bs_gemm_default(void)
{
    pthread_once(&once, init_blas);
    return &openblas;
}
