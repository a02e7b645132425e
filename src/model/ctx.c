/* The engine context: owns the one compute pool (its worker threads keep
 * their per-thread kernel scratch until the pool stops) that the models
 * loaded on it borrow. It counts its models so that freeing it under a live
 * model is caught as the programming error it is. */
#include <assert.h>
#include <stdlib.h>
#include <unistd.h>

#include "model/model_impl.h"

struct bs_ctx {
    bs_pool *pool;
    int n_threads;
    int n_models; /* atomic: models load and free from any thread */
};

int bs_ctx_new(const bs_ctx_opts *opts, bs_ctx **out, bs_err *err)
{
    *out = NULL;
    int n = opts ? opts->n_threads : 0;
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    bs_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return bs_err_set(err, BS_ENOMEM, "out of memory");
    ctx->pool = bs_pool_new(n);
    if (!ctx->pool) {
        free(ctx);
        return bs_err_set(err, BS_ENOMEM, "cannot start %d compute threads", n);
    }
    ctx->n_threads = bs_pool_size(ctx->pool);
    *out = ctx;
    return 0;
}

void bs_ctx_free(bs_ctx *ctx)
{
    if (!ctx) return;
    assert(__atomic_load_n(&ctx->n_models, __ATOMIC_ACQUIRE) == 0 &&
           "bs_ctx_free: a model loaded on this context is still alive");
    bs_pool_free(ctx->pool);
    free(ctx);
}

int bs_ctx_n_threads(const bs_ctx *ctx)
{
    return ctx->n_threads;
}

int bs_ctx_n_models(const bs_ctx *ctx)
{
    return __atomic_load_n(&ctx->n_models, __ATOMIC_ACQUIRE);
}

int bs_kernels_get(bs_kernels_info *out, bs_err *err)
{
    const char *why = NULL;
    int rc = bs_cpu_check(&why, err);
    out->path = bs_cpu_in_use_name();
    out->reason = why;
    out->int8 = bs_i8_impl_name(bs_i8_impl_in_use());
    return rc;
}

bs_pool *bs_ctx_attach(bs_ctx *ctx)
{
    __atomic_add_fetch(&ctx->n_models, 1, __ATOMIC_ACQ_REL);
    return ctx->pool;
}

void bs_ctx_detach(bs_ctx *ctx)
{
    __atomic_sub_fetch(&ctx->n_models, 1, __ATOMIC_ACQ_REL);
}
