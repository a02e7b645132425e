/* Which kernel path this process runs: the best the CPU has (AVX-512,
 * AVX2+FMA3, or portable C), or a lower one forced with BS_CPU=portable|avx2|
 * avx512 so that one machine tests and benchmarks every path it can execute.
 * Chosen once; a BS_CPU the CPU cannot run is refused at model load. */
#include "tensor/tensor.h"

#include <pthread.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"portable", "avx2", "avx512"};

static struct {
    pthread_once_t once;
    bs_cpu_path path;
    char why[160];
    char refused[200]; /* set when BS_CPU names a path that cannot run here */
} sel = {.once = PTHREAD_ONCE_INIT};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* CPUID.1:ECX.F16C; clang's __builtin_cpu_supports does not know "f16c". */
static int f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

/* The features a path needs that this CPU lacks, "+"-joined into out ("" = none). */
static void missing(bs_cpu_path p, char *out, size_t cap)
{
    static const struct {
        bs_cpu_path path;
        const char *feature;
    } need[] = {
        {BS_CPU_AVX2, "avx2"},       {BS_CPU_AVX2, "fma"},        {BS_CPU_AVX2, "f16c"},
        {BS_CPU_AVX512, "avx512f"},  {BS_CPU_AVX512, "avx512dq"}, {BS_CPU_AVX512, "avx512bw"},
        {BS_CPU_AVX512, "avx512vl"},
    };
    out[0] = '\0';
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (need[i].path > p) continue;
        int has = 0;
        /* __builtin_cpu_supports needs a literal */
        if (!strcmp(need[i].feature, "avx2"))
            has = __builtin_cpu_supports("avx2");
        else if (!strcmp(need[i].feature, "fma"))
            has = __builtin_cpu_supports("fma");
        else if (!strcmp(need[i].feature, "f16c"))
            has = f16c(); /* a -march=x86-64 build may meet AVX2 without it (a VM's CPU model) */
        else if (!strcmp(need[i].feature, "avx512f"))
            has = __builtin_cpu_supports("avx512f");
        else if (!strcmp(need[i].feature, "avx512dq"))
            has = __builtin_cpu_supports("avx512dq");
        else if (!strcmp(need[i].feature, "avx512bw"))
            has = __builtin_cpu_supports("avx512bw");
        else if (!strcmp(need[i].feature, "avx512vl"))
            has = __builtin_cpu_supports("avx512vl");
        if (!has) {
            size_t l = strlen(out);
            snprintf(out + l, cap - l, "%s%s", l ? "+" : "", need[i].feature);
        }
    }
#else
    if (p != BS_CPU_PORTABLE) snprintf(out, cap, "%s", "x86-64");
#endif
}

int bs_cpu_can(bs_cpu_path p)
{
    char m[96];
    missing(p, m, sizeof m);
    return m[0] == '\0';
}

static void choose(void)
{
    bs_cpu_path best = BS_CPU_PORTABLE;
    char lack[96] = "", lack2[96];
    for (int p = BS_CPU_AVX512; p > BS_CPU_PORTABLE; p--) {
        missing((bs_cpu_path)p, lack2, sizeof lack2);
        if (!lack2[0]) {
            best = (bs_cpu_path)p;
            break;
        }
        if (!lack[0]) snprintf(lack, sizeof lack, "%s", lack2); /* what the best path lacks */
    }
    sel.path = best;
    if (best == BS_CPU_AVX512)
        snprintf(sel.why, sizeof sel.why, "the best this CPU has");
    else
        snprintf(sel.why, sizeof sel.why, "no %s", lack);
    const char *env = getenv("BS_CPU");
    if (!env || !*env) return;
    int want = -1;
    for (int p = 0; p < 3; p++)
        if (!strcmp(env, names[p])) want = p;
    if (want < 0) {
        snprintf(sel.refused, sizeof sel.refused,
                 "BS_CPU=%.40s: unknown kernel path; use portable, avx2 or avx512", env);
        return;
    }
    if (want > (int)best) {
        missing((bs_cpu_path)want, lack2, sizeof lack2);
        snprintf(sel.refused, sizeof sel.refused, "BS_CPU=%s: this CPU lacks %s; it can run %s%s",
                 env, lack2, best == BS_CPU_AVX2 ? "avx2 or " : "", "portable");
        return;
    }
    if (want < (int)best)
        snprintf(sel.why, sizeof sel.why, "BS_CPU=%s; this CPU also runs %s", env, names[best]);
    sel.path = (bs_cpu_path)want;
}

bs_cpu_path bs_cpu_path_get(void)
{
    pthread_once(&sel.once, choose);
    return sel.path;
}

const char *bs_cpu_path_name(bs_cpu_path p)
{
    static const char *const shown[] = {"portable C", "avx2+fma3", "avx512"};
    return p >= BS_CPU_PORTABLE && p <= BS_CPU_AVX512 ? shown[p] : "?";
}

int bs_cpu_check(const char **why, bs_err *err)
{
    pthread_once(&sel.once, choose);
    if (why) *why = sel.why;
    if (sel.refused[0]) return bs_err_set(err, BS_EUNSUPPORTED, "%s", sel.refused);
    return 0;
}
