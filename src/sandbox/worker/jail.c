/* The jail of one custom-task child, entered before any user code runs:
 * namespaces where the kernel allows them, rlimits, an empty environment,
 * then a seccomp-bpf allowlist. What the filter does not allow kills the
 * child through SIGSYS after it reported the system call's name, so the
 * user reads "tried to open a network connection" instead of a bare crash.
 * Reading files is answered EACCES rather than killed: Python may probe. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sandbox/worker/worker.h"

#define MAX_NR 512
static char syscall_names[MAX_NR][24];
static int report_fd = -1;

static int compile_filter(void);

int bs_worker_jail_prepare(void)
{
    for (int nr = 0; nr < MAX_NR; nr++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        snprintf(syscall_names[nr], sizeof syscall_names[nr], "%s", name ? name : "unknown");
        free(name);
    }
    return compile_filter();
}

int bs_worker_jail_enter(const bs_worker_limits *lim)
{
    /* Each namespace on its own: a kernel (or container) may allow some. */
    static const int ns[] = {CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWIPC};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) (void)unshare(ns[i]);
    clearenv();
    /* Below the server's own threads: spinning tasks must not starve the
     * requests that other clients are waiting for. */
    if (setpriority(PRIO_PROCESS, 0, 10)) {
    }
    struct rlimit r;
    r.rlim_cur = r.rlim_max = (rlim_t)lim->memory_mb << 20;
    if (setrlimit(RLIMIT_AS, &r)) return -1;
    r.rlim_cur = (rlim_t)lim->cpu_s;
    r.rlim_max = (rlim_t)lim->cpu_s + 1; /* SIGXCPU first, then SIGKILL */
    if (setrlimit(RLIMIT_CPU, &r)) return -1;
    r.rlim_cur = r.rlim_max = 0;
    setrlimit(RLIMIT_FSIZE, &r);
    setrlimit(RLIMIT_CORE, &r);
    r.rlim_cur = r.rlim_max = 16;
    if (setrlimit(RLIMIT_NOFILE, &r)) return -1;
    return 0;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    int nr = si->si_syscall;
    const char *name = nr >= 0 && nr < MAX_NR ? syscall_names[nr] : "unknown";
    char body[96];
    size_t n = 0;
    const char *a = "{\"op\":\"violation\",\"syscall\":\"";
    for (const char *p = a; *p && n < sizeof body; p++) body[n++] = *p;
    for (const char *p = name; *p && n < sizeof body - 3; p++) body[n++] = *p;
    body[n++] = '"';
    body[n++] = '}';
    unsigned char frame[100] = {(unsigned char)n, 0, 0, 0};
    memcpy(frame + 4, body, n);
    if (write(report_fd, frame, n + 4) < 0) {
    }
    _exit(111);
}

/* The filter as BPF, compiled once in the warm parent: a child only loads it. */
static struct sock_filter *filter;
static unsigned short filter_len;

static int build_filter(scmp_filter_ctx ctx)
{
    /* What CPython and numpy need to compute and to talk over the run's
     * socket; nothing that names a path, a process or the network. */
    static const int allow[] = {
        SCMP_SYS(read),
        SCMP_SYS(write),
        SCMP_SYS(readv),
        SCMP_SYS(writev),
        SCMP_SYS(pread64),
        SCMP_SYS(close),
        SCMP_SYS(fstat),
        SCMP_SYS(lseek),
        SCMP_SYS(mmap),
        SCMP_SYS(munmap),
        SCMP_SYS(mprotect),
        SCMP_SYS(mremap),
        SCMP_SYS(brk),
        SCMP_SYS(madvise),
        SCMP_SYS(futex),
        SCMP_SYS(rt_sigaction),
        SCMP_SYS(rt_sigprocmask),
        SCMP_SYS(rt_sigreturn),
        SCMP_SYS(sigaltstack),
        SCMP_SYS(getrandom),
        SCMP_SYS(clock_gettime),
        SCMP_SYS(clock_getres),
        SCMP_SYS(clock_nanosleep),
        SCMP_SYS(nanosleep),
        SCMP_SYS(gettimeofday),
        SCMP_SYS(time),
        SCMP_SYS(exit),
        SCMP_SYS(exit_group),
        SCMP_SYS(getpid),
        SCMP_SYS(gettid),
        SCMP_SYS(getppid),
        SCMP_SYS(getuid),
        SCMP_SYS(geteuid),
        SCMP_SYS(getgid),
        SCMP_SYS(getegid),
        SCMP_SYS(poll),
        SCMP_SYS(ppoll),
        SCMP_SYS(select),
        SCMP_SYS(pselect6),
        SCMP_SYS(sched_yield),
        SCMP_SYS(sched_getaffinity),
        SCMP_SYS(uname),
        SCMP_SYS(sysinfo),
        SCMP_SYS(getrusage),
        SCMP_SYS(times),
        SCMP_SYS(getcwd),
        SCMP_SYS(fcntl),
        SCMP_SYS(restart_syscall),
        SCMP_SYS(membarrier),
        SCMP_SYS(rseq),
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof allow / sizeof *allow && !rc; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allow[i], 0);
    /* send() on the run's socket is sendto() without an address. */
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sendto), 1, SCMP_A4(SCMP_CMP_EQ, 0, 0));
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(recvfrom), 1,
                              SCMP_A4(SCMP_CMP_EQ, 0, 0));
    /* fstat() is newfstatat(fd, "", AT_EMPTY_PATH) in glibc; a path is not. */
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                              SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(newfstatat), 1,
                              SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, 0));
    /* Reading a file: refused, the code sees PermissionError. Writing one
     * (or creating): the child is killed and the server says so. */
    const scmp_datum_t wmask = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND;
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, wmask, O_RDONLY));
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, wmask, O_RDONLY));
    static const int refuse[] = {SCMP_SYS(stat),       SCMP_SYS(lstat),      SCMP_SYS(access),
                                 SCMP_SYS(faccessat),  SCMP_SYS(faccessat2), SCMP_SYS(readlink),
                                 SCMP_SYS(readlinkat), SCMP_SYS(getdents64), SCMP_SYS(statx)};
    for (size_t i = 0; i < sizeof refuse / sizeof *refuse && !rc; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), refuse[i], 0);
    /* isatty() and friends: not a terminal. */
    if (!rc) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 0);
    /* Reading a limit is fine; raising one is not. */
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
                              SCMP_A2(SCMP_CMP_EQ, 0, 0));
    if (!rc) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getrlimit), 0);
    return rc;
}

/* Compiles the filter and reads its BPF back through a pipe (libseccomp
 * 2.5 exports to a file descriptor only). */
static int compile_filter(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx) return -1;
    int p[2] = {-1, -1};
    int rc = build_filter(ctx);
    if (!rc) rc = pipe(p);
    if (!rc) rc = seccomp_export_bpf(ctx, p[1]);
    seccomp_release(ctx);
    if (p[1] >= 0) close(p[1]);
    static char buf[1 << 16];
    size_t n = 0;
    ssize_t r;
    while (!rc && p[0] >= 0 && n < sizeof buf && (r = read(p[0], buf + n, sizeof buf - n)) > 0)
        n += (size_t)r;
    if (p[0] >= 0) close(p[0]);
    if (rc || n == 0 || n % sizeof(struct sock_filter) || n == sizeof buf) return -1;
    filter = malloc(n);
    if (!filter) return -1;
    memcpy(filter, buf, n);
    filter_len = (unsigned short)(n / sizeof(struct sock_filter));
    return 0;
}

int bs_worker_jail_lock(int fd)
{
    report_fd = fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL)) return -1;
    /* A blocked SIGSYS would turn the trap into a silent kill. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGSYS);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    if (!filter) return -1;
    struct sock_fprog prog = {.len = filter_len, .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) ? -1 : 0;
}
