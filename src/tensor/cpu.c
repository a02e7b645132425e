/* Which kernel path this process runs: the best the CPU has (AVX-512,
 * AVX2+FMA3 with AVX-VNNI's int8 kernel or without, or portable C), or a
 * lower one forced with BS_CPU=portable|avx2|avxvnni|avx512 so that one
 * machine tests and benchmarks every path it can execute. Chosen once; a
 * BS_CPU the CPU cannot run is refused at model load. */
#include "tensor/tensor.h"

#include <pthread.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What BS_CPU names, lowest first: avxvnni is the avx2 path (its f32
 * kernels) with the 256-bit VNNI int8 kernel in place of vpmaddubsw's. */
enum { L_PORTABLE, L_AVX2, L_AVXVNNI, L_AVX512, L_COUNT };
static const char *const names[L_COUNT] = {"portable", "avx2", "avxvnni", "avx512"};
static const bs_cpu_path level_path[L_COUNT] = {BS_CPU_PORTABLE, BS_CPU_AVX2, BS_CPU_AVX2,
                                                BS_CPU_AVX512};

static struct {
    pthread_once_t once;
    int level;
    bs_vnni256 vnni256;
    char why[200];
    char refused[240]; /* set when BS_CPU names a path that cannot run here */
} sel = {.once = PTHREAD_ONCE_INIT};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* probe() once, then its answer: in a VM each cpuid traps to the
 * hypervisor, and the int8 GEMM asks on every call. */
static int cached(int *answer, int (*probe)(void))
{
    int has = __atomic_load_n(answer, __ATOMIC_RELAXED);
    if (has < 0) {
        has = probe();
        __atomic_store_n(answer, has, __ATOMIC_RELAXED);
    }
    return has;
}

/* CPUID.1:ECX.F16C; clang's __builtin_cpu_supports does not know "f16c". */
static int probe_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* AVX-VNNI is CPUID leaf 7 subleaf 1, EAX bit 4 (clang 14's
 * __builtin_cpu_supports does not know it); its ymm state is the one the
 * avx2 check found the OS saving. */
static int probe_avxvnni(void)
{
    unsigned a, b, c, d;
    if (!__builtin_cpu_supports("avx2") || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1)
        return 0;
    __cpuid_count(7, 1, a, b, c, d);
    return (a >> 4) & 1;
}

static int f16c_answer = -1, avxvnni_answer = -1;
static const char *const foreign = NULL;
#else
/* Built for another CPU (aarch64...): the portable path is all there is, and
 * the others are named as x86-64's rather than as features this CPU lacks. */
#if defined(__aarch64__)
static const char *const foreign = "aarch64";
#elif defined(__arm__)
static const char *const foreign = "32-bit ARM";
#else
static const char *const foreign = "a CPU other than x86-64";
#endif
#endif

/* The features a path needs that this CPU lacks, "+"-joined into out ("" = none). */
static void missing(bs_cpu_path p, char *out, size_t cap)
{
    out[0] = '\0';
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static const struct {
        bs_cpu_path path;
        const char *feature;
    } need[] = {
        {BS_CPU_AVX2, "avx2"},       {BS_CPU_AVX2, "fma"},        {BS_CPU_AVX2, "f16c"},
        {BS_CPU_AVX512, "avx512f"},  {BS_CPU_AVX512, "avx512dq"}, {BS_CPU_AVX512, "avx512bw"},
        {BS_CPU_AVX512, "avx512vl"},
    };
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
            has = cached(&f16c_answer, probe_f16c); /* a -march=x86-64 build may meet AVX2 without it (a VM's CPU model) */
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

int bs_cpu_can_vnni256(bs_vnni256 enc)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (enc == BS_VNNI256_EVEX)
        return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
    if (enc == BS_VNNI256_VEX) return cached(&avxvnni_answer, probe_avxvnni);
#else
    (void)enc;
#endif
    return 0;
}

/* What a level needs that this CPU lacks, "+"-joined into out ("" = none). */
static void level_missing(int l, char *out, size_t cap)
{
    missing(level_path[l], out, cap);
    if (l == L_AVXVNNI && !bs_cpu_can_vnni256(BS_VNNI256_VEX) &&
        !bs_cpu_can_vnni256(BS_VNNI256_EVEX)) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%savxvnni (or avx512vnni+avx512vl)", n ? "+" : "");
    }
}

static void choose(void)
{
    int best = L_PORTABLE;
    char lack[128] = "", m[128];
    for (int l = L_AVX512; l > L_PORTABLE; l--) {
        if (l == L_AVXVNNI) continue; /* the avx2 path with VEX's VNNI, below */
        level_missing(l, m, sizeof m);
        if (!m[0]) {
            best = l;
            break;
        }
        if (!lack[0]) snprintf(lack, sizeof lack, "%s", m); /* what the best path lacks */
    }
    /* an AVX-512 CPU's own int8 kernel is the zmm one; avxvnni's EVEX
     * encoding is only there to be forced */
    if (best == L_AVX2 && bs_cpu_can_vnni256(BS_VNNI256_VEX)) best = L_AVXVNNI;
    sel.level = best;
    if (best == L_AVX512)
        snprintf(sel.why, sizeof sel.why, "the best this CPU has");
    else if (foreign)
        snprintf(sel.why, sizeof sel.why, "built for %s; the other paths are x86-64's", foreign);
    else
        snprintf(sel.why, sizeof sel.why, "no %s", lack);
    const char *env = getenv("BS_CPU");
    int want = -1;
    for (int l = 0; env && l < L_COUNT; l++)
        if (!strcmp(env, names[l])) want = l;
    if (env && *env && want < 0)
        snprintf(sel.refused, sizeof sel.refused,
                 "BS_CPU=%.40s: unknown kernel path; use portable, avx2, avxvnni or avx512", env);
    if (want >= 0) level_missing(want, m, sizeof m);
    if (want >= 0 && m[0] && foreign) {
        snprintf(sel.refused, sizeof sel.refused,
                 "BS_CPU=%s: an x86-64 kernel path, and this build is for %s; it can run portable",
                 env, foreign);
    } else if (want >= 0 && m[0]) {
        int runs[L_COUNT], left = 0; /* the names this CPU runs: "a, b or c" */
        for (int l = 0; l < L_COUNT; l++) {
            char m2[128];
            level_missing(l, m2, sizeof m2);
            left += runs[l] = !m2[0];
        }
        char can[64] = "";
        for (int l = 0, n = 0; l < L_COUNT; l++) {
            if (!runs[l]) continue;
            size_t len = strlen(can);
            left--;
            snprintf(can + len, sizeof can - len, "%s%s", n++ ? (left ? ", " : " or ") : "",
                     names[l]);
        }
        snprintf(sel.refused, sizeof sel.refused, "BS_CPU=%s: this CPU lacks %s; it can run %s",
                 env, m, can);
    } else if (want >= 0) {
        if (want != best)
            snprintf(sel.why, sizeof sel.why, "BS_CPU=%s; this CPU also runs %s", env, names[best]);
        sel.level = want;
    }
    if (sel.level == L_AVXVNNI) {
        sel.vnni256 = bs_cpu_can_vnni256(BS_VNNI256_VEX) ? BS_VNNI256_VEX : BS_VNNI256_EVEX;
        char w[sizeof sel.why];
        snprintf(w, sizeof w, "%s", sel.why);
        snprintf(sel.why, sizeof sel.why, "%s encoding; %.180s",
                 sel.vnni256 == BS_VNNI256_VEX ? "vex" : "evex", w);
    }
}

bs_cpu_path bs_cpu_path_get(void)
{
    pthread_once(&sel.once, choose);
    return level_path[sel.level];
}

bs_vnni256 bs_cpu_vnni256_get(void)
{
    pthread_once(&sel.once, choose);
    return sel.vnni256;
}

const char *bs_cpu_path_name(bs_cpu_path p)
{
    static const char *const shown[] = {"portable C", "avx2+fma3", "avx512"};
    return p >= BS_CPU_PORTABLE && p <= BS_CPU_AVX512 ? shown[p] : "?";
}

const char *bs_cpu_in_use_name(void)
{
    pthread_once(&sel.once, choose);
    return sel.level == L_AVXVNNI ? "avx2+fma3, int8 avx-vnni"
                                  : bs_cpu_path_name(level_path[sel.level]);
}

int bs_cpu_can_name(const char *name)
{
    for (int l = 0; name && l < L_COUNT; l++)
        if (!strcmp(name, names[l])) {
            char m[128];
            level_missing(l, m, sizeof m);
            return m[0] == '\0';
        }
    return -1;
}

int bs_cpu_check(const char **why, bs_err *err)
{
    pthread_once(&sel.once, choose);
    if (why) *why = sel.why;
    if (sel.refused[0]) return bs_err_set(err, BS_EUNSUPPORTED, "%s", sel.refused);
    return 0;
}
