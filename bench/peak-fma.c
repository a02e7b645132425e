/* The CPU's arithmetic ceiling per kernel path, to read engine GFLOP/s
 * against: T threads each run 12 independent chains of FMAs on registers
 * only, no memory traffic. Each kernel is compiled for its own instruction
 * set (target attributes) and run only when the CPU has it, so this builds
 * and runs on any x86-64 CPU with AVX2+FMA3, with or without AVX-512.
 *   cc -O2 bench/peak-fma.c -o /tmp/peak-fma -pthread
 *   /tmp/peak-fma 2              # every path this CPU has, 2 threads, one JSON line each
 *   /tmp/peak-fma 2 avx2         # one path: avx2 (8-lane FMA3), avx512 (16-lane),
 *                                # bf16 (AVX512_BF16 dot products, 2 multiply-adds a lane)
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ITERS 20000000L
#define CHAINS 12

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx2,fma"))) static void *run_avx2(void *out)
{
    __m256 a[CHAINS], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-8f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    }
    __m256 s = a[0];
    for (int i = 1; i < CHAINS; i++) s = _mm256_add_ps(s, a[i]);
    float v[8];
    _mm256_storeu_ps(v, s);
    *(float *)out = v[0] + v[7]; /* keeps the chains alive */
    return NULL;
}

__attribute__((target("avx512f"))) static void *run_avx512(void *out)
{
    __m512 a[CHAINS], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-8f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    }
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(a[i]);
    *(float *)out = s;
    return NULL;
}

__attribute__((target("avx512f,avx512bf16"))) static void *run_bf16(void *out)
{
    __m512 a[CHAINS];
    __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80), c = (__m512bh)_mm512_set1_epi16(0x3f80);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_dpbf16_ps(a[i], b, c);
    }
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(a[i]);
    *(float *)out = s;
    return NULL;
}

static const struct {
    const char *name;
    void *(*fn)(void *);
    double flops_per_op; /* one instruction: lanes x 2 (x 2 for a bf16 pair) */
} kinds[] = {{"avx2", run_avx2, 8 * 2}, {"avx512", run_avx512, 16 * 2}, {"bf16", run_bf16, 16 * 2 * 2}};

static int has(int k)
{
    __builtin_cpu_init();
    if (k == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (k == 1) return __builtin_cpu_supports("avx512f");
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}

static void run(int k, int threads)
{
    pthread_t th[64];
    float sink[64];
    double t0 = now();
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, kinds[k].fn, &sink[i]);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    double dt = now() - t0;
    double flops = (double)threads * ITERS * CHAINS * kinds[k].flops_per_op;
    printf("{\"kind\":\"%s\",\"threads\":%d,\"gflops\":%.1f}\n", kinds[k].name, threads,
           flops / dt / 1e9);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1, only = -1;
    if (argc > 2) {
        for (int k = 0; k < 3; k++)
            if (!strcmp(argv[2], kinds[k].name)) only = k;
        if (only < 0 && !strcmp(argv[2], "f32")) only = has(1) ? 1 : 0; /* the old spelling */
    }
    if (threads < 1 || threads > 64 || (argc > 2 && only < 0) || argc > 3) {
        fprintf(stderr, "usage: peak-fma [THREADS 1-64] [avx2|avx512|bf16]\n");
        return 2;
    }
    if (only >= 0 && !has(only)) {
        fprintf(stderr, "peak-fma: this CPU lacks the instructions of %s\n", kinds[only].name);
        return 1;
    }
    for (int k = 0; k < 3; k++)
        if ((only < 0 || k == only) && has(k)) run(k, threads);
    return 0;
}
