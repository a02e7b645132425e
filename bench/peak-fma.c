/* The CPU's arithmetic ceiling, to read engine GFLOP/s against: T threads
 * each run 12 independent chains of AVX-512 FMAs (f32) or AVX512_BF16 dot
 * products (bf16) on registers only, no memory traffic.
 *   cc -O2 -march=native bench/peak-fma.c -o /tmp/peak-fma -pthread
 *   /tmp/peak-fma 2        # f32, 2 threads
 *   /tmp/peak-fma 2 bf16   # bf16 dot products (counted as 2 multiply-adds a lane)
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

static void *run_f32(void *out)
{
    __m512 a[CHAINS], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-8f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    }
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(a[i]);
    *(float *)out = s; /* keeps the chains alive */
    return NULL;
}

static void *run_bf16(void *out)
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

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1, bf16 = argc > 2 && !strcmp(argv[2], "bf16");
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "usage: peak-fma [THREADS 1-64] [bf16]\n");
        return 2;
    }
    pthread_t th[64];
    float sink[64];
    double t0 = now();
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, bf16 ? run_bf16 : run_f32, &sink[i]);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    double dt = now() - t0;
    /* 16 lanes x 2 flops per FMA; a bf16 dot product is 2 multiply-adds a lane */
    double flops = (double)threads * ITERS * CHAINS * 16 * 2 * (bf16 ? 2 : 1);
    printf("{\"kind\":\"%s\",\"threads\":%d,\"gflops\":%.1f}\n", bf16 ? "bf16" : "f32", threads,
           flops / dt / 1e9);
    return 0;
}
