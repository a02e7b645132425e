/* The CPU's arithmetic ceiling per kernel path, to read engine GFLOP/s
 * against: T threads each run 12 independent chains of FMAs (or of the int8
 * kernels' multiply-adds) on registers only, no memory traffic. Each kernel is compiled for its own instruction
 * set (target attributes) and run only when the CPU has it, so this builds
 * and runs on any x86-64 CPU with AVX2+FMA3, with or without AVX-512.
 *   cc -O2 bench/peak-fma.c -o /tmp/peak-fma -pthread
 *   /tmp/peak-fma 2              # every path this CPU has, 2 threads, one JSON line each
 *   /tmp/peak-fma 2 avx2         # one path: avx2 (8-lane FMA3), avx512 (16-lane),
 *                                # bf16 (AVX512_BF16 dot products, 2 multiply-adds a lane),
 *                                # i8-avx2 (vpmaddubsw, vpmaddwd, vpaddd: the AVX2 int8
 *                                # kernel's 3 instructions per 32 multiply-adds),
 *                                # i8-avxvnni (VEX vpdpbusd, 32 a ymm), i8-vnni512 (64 a zmm)
 * Every multiply-add counts 2 operations, as `bertstudio bench`'s gflops does
 * for every precision, so an int8 run reads against an i8 kind directly.
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

/* The weights change each step (one vpaddb for 12 chains), so the products
 * can't be hoisted out of the loop. */
__attribute__((target("avx2"))) static void *run_i8_avx2(void *out)
{
    __m256i a[CHAINS], w = _mm256_set1_epi8(3), one8 = _mm256_set1_epi8(1),
                       ones = _mm256_set1_epi16(1), x = _mm256_set1_epi8(5);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_epi32(i);
    for (long n = 0; n < ITERS; n++) {
        w = _mm256_add_epi8(w, one8);
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), ones));
    }
    __m256i s = a[0];
    for (int i = 1; i < CHAINS; i++) s = _mm256_add_epi32(s, a[i]);
    *(float *)out = (float)_mm256_extract_epi32(s, 0);
    return NULL;
}

__attribute__((target("avx2,avxvnni"))) static void *run_i8_avxvnni(void *out)
{
    __m256i a[CHAINS], w = _mm256_set1_epi8(3), x = _mm256_set1_epi8(5);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_epi32(i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = _mm256_dpbusd_avx_epi32(a[i], x, w);
    }
    __m256i s = a[0];
    for (int i = 1; i < CHAINS; i++) s = _mm256_add_epi32(s, a[i]);
    *(float *)out = (float)_mm256_extract_epi32(s, 0);
    return NULL;
}

__attribute__((target("avx512f,avx512vnni"))) static void *run_i8_vnni512(void *out)
{
    __m512i a[CHAINS], w = _mm512_set1_epi8(3), x = _mm512_set1_epi8(5);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_epi32(i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_dpbusd_epi32(a[i], x, w);
    }
    long s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_epi32(a[i]);
    *(float *)out = (float)s;
    return NULL;
}

static const struct {
    const char *name;
    void *(*fn)(void *);
    double flops_per_op; /* one instruction: lanes x 2 (x 2 for a bf16 pair) */
} kinds[] = {{"avx2", run_avx2, 8 * 2},
               {"avx512", run_avx512, 16 * 2},
               {"bf16", run_bf16, 16 * 2 * 2},
               {"i8-avx2", run_i8_avx2, 32 * 2},
               {"i8-avxvnni", run_i8_avxvnni, 32 * 2},
               {"i8-vnni512", run_i8_vnni512, 64 * 2}};
#define N_KINDS (int)(sizeof kinds / sizeof kinds[0])

static int has(int k)
{
    __builtin_cpu_init();
    switch (k) {
    case 0: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case 1: return __builtin_cpu_supports("avx512f");
    case 2: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
    case 3: return __builtin_cpu_supports("avx2");
    case 4: return __builtin_cpu_supports("avxvnni");
    default: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
    }
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
        for (int k = 0; k < N_KINDS; k++)
            if (!strcmp(argv[2], kinds[k].name)) only = k;
        if (only < 0 && !strcmp(argv[2], "f32")) only = has(1) ? 1 : 0; /* the old spelling */
    }
    if (threads < 1 || threads > 64 || (argc > 2 && only < 0) || argc > 3) {
        fprintf(stderr, "usage: peak-fma [THREADS 1-64] "
                        "[avx2|avx512|bf16|i8-avx2|i8-avxvnni|i8-vnni512]\n");
        return 2;
    }
    if (only >= 0 && !has(only)) {
        fprintf(stderr, "peak-fma: this CPU lacks the instructions of %s\n", kinds[only].name);
        return 1;
    }
    for (int k = 0; k < N_KINDS; k++)
        if ((only < 0 || k == only) && has(k)) run(k, threads);
    return 0;
}
