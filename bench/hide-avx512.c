/* An LD_PRELOAD library that makes this CPU look like one without AVX-512 to
 * the program it is loaded into, so that both engines of a benchmark take
 * the path an AVX2-only CPU (AMD Zen 2/3, most laptops) gives them:
 * BS_CPU=avx2 forces our path only, and ONNX Runtime's MLAS has no switch;
 * it reads cpuid.
 *
 * How: arch_prctl(ARCH_SET_CPUID, 0) makes every cpuid instruction of the
 * process (and of the threads it starts) fault, where the CPU and kernel
 * support cpuid faulting (/proc/cpuinfo's "cpuid_fault"). The SIGSEGV
 * handler runs the real cpuid with faulting briefly off, clears the
 * AVX-512 (and AVX512_BF16) bits of leaf 7 and steps over the instruction.
 * The program's own SIGSEGV handler (node installs one) is kept and called
 * for every other fault, by taking the program's sigaction(SIGSEGV) calls.
 * glibc has read cpuid before this library loads: bench/hide-avx512.sh also
 * sets GLIBC_TUNABLES so that its string functions drop AVX-512 too.
 *
 * A bench and test tool, not part of the product. Built and used by
 * bench/hide-avx512.sh; without cpuid faulting, loading it exits with 77. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#if !defined(__x86_64__) || !defined(__linux__)
#error "hide-avx512.c: for x86-64 Linux only"
#endif

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;
static struct sigaction program_segv; /* what the program asked for SIGSEGV */

/* Leaf 7 subleaf 0: EBX avx512f, dq, ifma, pf, er, cd, bw, vl; ECX vbmi,
 * vbmi2, vnni, bitalg, vpopcntdq; EDX 4vnniw, 4fmaps, vp2intersect, fp16.
 * Subleaf 1: EAX avx512_bf16. */
#define HIDE_7_0_EBX                                                                               \
    ((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) |   \
     (1u << 31))
#define HIDE_7_0_ECX ((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14))
#define HIDE_7_0_EDX ((1u << 2) | (1u << 3) | (1u << 8) | (1u << 23))
#define HIDE_7_1_EAX (1u << 5)

static int cpuid_faulting(int on)
{
    return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1);
}

static void pass_on(int sig, siginfo_t *si, void *ctx)
{
    if (program_segv.sa_flags & SA_SIGINFO) {
        program_segv.sa_sigaction(sig, si, ctx);
    } else if (program_segv.sa_handler == SIG_DFL || program_segv.sa_handler == SIG_IGN) {
        /* returning re-runs the faulting instruction, which now kills (as
         * the kernel does for an ignored SIGSEGV from a fault) */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        real_sigaction(sig, &dfl, NULL);
    } else {
        program_segv.sa_handler(sig);
    }
}

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    /* a cpuid fault is a general protection fault at the instruction */
    if (si->si_code != SI_KERNEL || ip[0] != 0x0f || ip[1] != 0xa2) {
        pass_on(sig, si, ctx);
        return;
    }
    unsigned leaf = (unsigned)g[REG_RAX], sub = (unsigned)g[REG_RCX], a, b, c, d;
    cpuid_faulting(0);
    __cpuid_count(leaf, sub, a, b, c, d);
    cpuid_faulting(1);
    if (leaf == 7 && sub == 0) {
        b &= ~HIDE_7_0_EBX;
        c &= ~HIDE_7_0_ECX;
        d &= ~HIDE_7_0_EDX;
    } else if (leaf == 7 && sub == 1) {
        a &= ~HIDE_7_1_EAX;
    }
    g[REG_RAX] = a;
    g[REG_RBX] = b;
    g[REG_RCX] = c;
    g[REG_RDX] = d;
    g[REG_RIP] += 2;
}

/* The program's SIGSEGV handler is remembered, not installed: ours stays
 * first and passes every other fault on to it. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (sig != SIGSEGV) return real_sigaction(sig, act, old);
    if (old) *old = program_segv;
    if (act) program_segv = *act;
    return 0;
}

__attribute__((constructor)) static void hide_avx512(void)
{
    real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    program_segv.sa_handler = SIG_DFL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    if (!real_sigaction || real_sigaction(SIGSEGV, &sa, NULL) || cpuid_faulting(1)) {
        static const char msg[] = "hide-avx512: this CPU or kernel has no cpuid faulting "
                                  "(arch_prctl ARCH_SET_CPUID); cannot hide AVX-512\n";
        if (write(2, msg, sizeof msg - 1) < 0) _exit(77);
        _exit(77);
    }
}
