/* bertstudio-sandbox: the warm parent of custom-task runs. It imports
 * CPython and the shims once, then for each control message (limits + a
 * socket) forks a child that jails itself and runs the code, kills that
 * child at its wall time, and tells the server how it ended. It trusts the
 * server (its parent, over fd 3) and nothing its children do. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Python.h>

#include "sandbox/sandbox.h"
#include "sandbox/worker/worker.h"
#include "util/time.h"

#define MAX_RUNS 256

typedef struct run {
    pid_t pid;
    int fd;
    int64_t deadline_ns;
    int timed_out;
} run;

static run runs[MAX_RUNS];
static size_t n_runs;

static void usage(void)
{
    fprintf(stderr,
            "usage: bertstudio-sandbox --control-fd N [--py-dir DIR]\n"
            "Started by `bertstudio serve` for custom tasks; not meant to be run by hand.\n");
}

static void finish(size_t i, int status)
{
    char body[128];
    int n =
        snprintf(body, sizeof body, "{\"op\":\"exit\",\"code\":%d,\"signal\":%d,\"timeout\":%s}",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0, runs[i].timed_out ? "true" : "false");
    unsigned char frame[132] = {(unsigned char)n, 0, 0, 0};
    memcpy(frame + 4, body, (size_t)n);
    /* Never blocking: the child may have filled the socket's buffer with
     * frames the server no longer reads. Lost, the server still times out. */
    if (send(runs[i].fd, frame, (size_t)n + 4, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
    }
    close(runs[i].fd);
    runs[i] = runs[--n_runs];
}

static void reap_children(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < n_runs; i++) {
            if (runs[i].pid == pid) {
                finish(i, status);
                break;
            }
        }
    }
}

/* One control message: {"wall_ms","memory_mb","cpu_s"} and a socket. */
static int take_run(int ctl)
{
    char buf[1024];
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t n = recvmsg(ctl, &m, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) return 0;
    if (n <= 0) return -1; /* the server is gone */
    buf[n] = 0;
    int fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
    if (fd < 0) return 0;
    json_t *h = json_loads(buf, 0, NULL);
    bs_worker_limits lim = {
        .wall_ms = (int)json_integer_value(json_object_get(h, "wall_ms")),
        .memory_mb = (int)json_integer_value(json_object_get(h, "memory_mb")),
        .cpu_s = (int)json_integer_value(json_object_get(h, "cpu_s")),
    };
    json_decref(h);
    if (lim.wall_ms <= 0) lim.wall_ms = 10000;
    if (n_runs == MAX_RUNS) {
        bs_err err = {0};
        const char *busy =
            "{\"op\":\"result\",\"ok\":false,\"kind\":\"limit\",\"error\":\"too many "
            "custom tasks are running at once\"}";
        bs_sandbox_frame_write_raw(fd, busy, strlen(busy), &err);
        const char *ex = "{\"op\":\"exit\",\"code\":0,\"signal\":0,\"timeout\":false}";
        bs_sandbox_frame_write_raw(fd, ex, strlen(ex), &err);
        close(fd);
        return 0;
    }
    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        PyOS_AfterFork_Child();
        close(ctl);
        bs_worker_child(fd, &lim);
    }
    PyOS_AfterFork_Parent();
    if (pid < 0) {
        bs_err err = {0};
        const char *ex = "{\"op\":\"exit\",\"code\":-1,\"signal\":0,\"timeout\":false}";
        bs_sandbox_frame_write_raw(fd, ex, strlen(ex), &err);
        close(fd);
        return 0;
    }
    runs[n_runs++] = (run){.pid = pid,
                           .fd = fd,
                           .deadline_ns = bs_time_mono_ns() + (int64_t)lim.wall_ms * 1000000,
                           .timed_out = 0};
    return 0;
}

int main(int argc, char **argv)
{
    int ctl = -1;
    const char *py_dir = BS_SANDBOX_PY_DIR;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--control-fd") && i + 1 < argc)
            ctl = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--py-dir") && i + 1 < argc)
            py_dir = argv[++i];
        else if (!strcmp(argv[i], "--help")) {
            usage();
            return 0;
        } else {
            usage();
            return 2;
        }
    }
    if (ctl < 3) {
        usage();
        return 2;
    }
    /* Nothing of the server but the control socket and stderr stays open. */
    for (int fd = 3; fd < ctl; fd++) close(fd);
    close_range((unsigned)ctl + 1, ~0u, 0); /* the server may hold thousands */
    /* No PR_SET_PDEATHSIG here: it fires when the server *thread* that
     * spawned us ends. The control socket's end of file says the server
     * is gone. */
    signal(SIGPIPE, SIG_IGN);
    /* One compute thread in numpy: a child may not start threads. */
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    if (bs_worker_jail_prepare()) {
        fprintf(stderr, "bertstudio-sandbox: cannot build the seccomp filter\n");
        return 1;
    }
    /* Installed: the shims are in ../share/bertstudio/sandbox beside bin/. */
    char installed[4096];
    if (access(py_dir, F_OK)) {
        ssize_t n = readlink("/proc/self/exe", installed, sizeof installed - 64);
        char *slash = n > 0 ? (installed[n] = 0, strrchr(installed, '/')) : NULL;
        if (slash) {
            snprintf(slash, sizeof installed - (size_t)(slash - installed),
                     "/../share/bertstudio/sandbox");
            py_dir = installed;
        }
    }
    if (bs_worker_py_init(py_dir)) return 1;

    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        perror("bertstudio-sandbox: signalfd");
        return 1;
    }
    if (send(ctl, "ready", 5, MSG_NOSIGNAL) != 5) return 1;
    for (;;) {
        int64_t now = bs_time_mono_ns(), next = -1;
        for (size_t i = 0; i < n_runs; i++) {
            if (runs[i].timed_out) continue;
            if (runs[i].deadline_ns <= now) {
                kill(runs[i].pid, SIGKILL);
                runs[i].timed_out = 1;
            } else if (next < 0 || runs[i].deadline_ns < next) {
                next = runs[i].deadline_ns;
            }
        }
        int timeout = next < 0 ? -1 : (int)((next - now) / 1000000) + 1;
        struct pollfd p[2] = {{.fd = ctl, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        int pr = poll(p, 2, timeout);
        if (pr < 0 && errno != EINTR) break;
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == sizeof si) {
            }
            reap_children();
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (take_run(ctl)) break;
        }
    }
    /* The server went: its runs go too. */
    for (size_t i = 0; i < n_runs; i++) kill(runs[i].pid, SIGKILL);
    return 0;
}
