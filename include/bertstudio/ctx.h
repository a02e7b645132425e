/*
 * The engine context: the compute threads every loaded model runs on. A
 * model (bs_model) is immutable weights; a bs_ctx is the threads that
 * compute with them and the scratch those threads keep, as llama.cpp keeps
 * llama_model apart from llama_context. One context serves any number of
 * models: loading a third model starts no thread, so a process with several
 * models loaded still runs one compute thread per core.
 *
 * Thread safety: any number of threads may run forward passes of models
 * sharing one context at once. One call at a time fans out over the
 * context's threads; a call that finds them busy runs on its caller's
 * thread alone, so concurrent calls never wait on each other's work and the
 * process never runs more compute threads than the context has.
 */
#ifndef BERTSTUDIO_CTX_H
#define BERTSTUDIO_CTX_H

#include "bertstudio/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bs_ctx bs_ctx;

typedef struct bs_ctx_opts {
    int n_threads; /* compute threads, the calling thread included; <= 0 = number of cores */
} bs_ctx_opts;

/* Starts a context: n_threads - 1 worker threads (the thread that calls a
 * forward pass is the n-th), each with the scratch memory the kernels grow
 * on first use and keep until the context is freed. opts may be NULL
 * (defaults). *out is owned by the caller (bs_ctx_free). Errors: BS_ENOMEM
 * (no memory, or the threads could not be started). */
BS_API int bs_ctx_new(const bs_ctx_opts *opts, bs_ctx **out, bs_err *err);
/* Stops the threads and frees the context (NULL is fine). Every model
 * loaded on it must have been freed first. */
BS_API void bs_ctx_free(bs_ctx *ctx);
/* Compute threads of the context, the calling thread included. */
BS_API int bs_ctx_n_threads(const bs_ctx *ctx);
/* Models currently loaded on the context. */
BS_API int bs_ctx_n_models(const bs_ctx *ctx);

/* The kernels this process computes with, as each model load logs them.
 * Chosen once per process from the CPU (or BS_CPU in the environment); the
 * strings are static. */
typedef struct bs_kernels_info {
    const char *path;   /* "portable C", "avx2+fma3", "avx2+fma3, int8 avx-vnni", "avx512" */
    const char *reason; /* why: "no avx512f", "BS_CPU=avx2; this CPU also runs avx512", ... */
    const char *int8;   /* the int8 GEMM's kernel: "avx2", "avx512-vnni", ... */
} bs_kernels_info;
/* Fills *out; 0, or BS_EUNSUPPORTED (out still filled with the path in use)
 * when BS_CPU names a path this CPU cannot run, which every model load then
 * refuses with the same message. */
BS_API int bs_kernels_get(bs_kernels_info *out, bs_err *err);

#ifdef __cplusplus
}
#endif
#endif
