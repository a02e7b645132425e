/* The server's side of custom tasks: starts the bertstudio-sandbox worker,
 * gives each run a fresh socket (passed to the worker, inherited by the
 * child that runs the code), answers the child's engine calls, and turns
 * how the child ended into one sentence. The child is hostile: nothing it
 * sends is trusted beyond its size bound, and a run never waits past its
 * wall time plus a margin, whatever the child or the worker do. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/time.h"

/* A worker that does not answer within this long after the child's wall
 * time is considered dead. */
#define MARGIN_MS 3000

struct bs_sandbox {
    char *worker_path;
    char *py_dir;
    pthread_mutex_t mu; /* guards pid, ctl, the sending of control messages */
    pid_t pid;
    int ctl; /* SOCK_SEQPACKET to the worker's control loop; -1 when dead */
    atomic_ulong next_id;
};

void bs_sandbox_limits_default(bs_sandbox_limits *lim)
{
    lim->wall_ms = 10000;
    lim->memory_mb = 512;
    lim->cpu_seconds = 0;
    lim->max_output = 1u << 20;
}

void bs_sandbox_result_clear(bs_sandbox_result *r)
{
    if (!r) return;
    json_decref(r->result);
    r->result = NULL;
}

static void reap(bs_sandbox *sb)
{
    if (sb->ctl >= 0) close(sb->ctl);
    sb->ctl = -1;
    if (sb->pid > 0) {
        kill(sb->pid, SIGKILL);
        waitpid(sb->pid, NULL, 0);
    }
    sb->pid = 0;
}

/* Starts the worker; called with mu held. */
static int spawn_worker(bs_sandbox *sb, bs_err *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
        return bs_err_set(err, BS_EIO, "sandbox: socketpair: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    char *argv[] = {
        sb->worker_path, "--control-fd", "3", sb->py_dir ? "--py-dir" : NULL, sb->py_dir, NULL};
    char *envp[] = {NULL}; /* nothing of the server's environment reaches user code */
    pid_t pid;
    int rc = posix_spawn(&pid, sb->worker_path, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return bs_err_set(err, BS_EIO, "sandbox: cannot start %s: %s", sb->worker_path,
                          strerror(rc));
    }
    sb->pid = pid;
    sb->ctl = sv[0];
    /* The worker imports Python and the shims, then says it is ready. */
    char buf[256];
    ssize_t n = -1;
    int64_t deadline = bs_time_mono_ns() + 30 * 1000000000LL;
    while (bs_time_mono_ns() < deadline) {
        struct timeval tv = {.tv_sec = 1};
        setsockopt(sb->ctl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        n = recv(sb->ctl, buf, sizeof buf - 1, 0);
        if (n >= 0 || (errno != EAGAIN && errno != EINTR)) break;
    }
    struct timeval none = {0};
    setsockopt(sb->ctl, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    if (n <= 0) {
        int st = 0;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) sb->pid = 0; /* reaped: its number may be reused */
        reap(sb);
        if (w == pid && WIFEXITED(st))
            return bs_err_set(err, BS_EIO,
                              "sandbox: %s exited with status %d while starting (its message is in "
                              "the server's log)",
                              sb->worker_path, WEXITSTATUS(st));
        return bs_err_set(err, BS_EIO, "sandbox: %s did not become ready", sb->worker_path);
    }
    return 0;
}

int bs_sandbox_open(const char *worker_path, const char *py_dir, bs_sandbox **out, bs_err *err)
{
    *out = NULL;
    struct stat st;
    if (stat(worker_path, &st) || !S_ISREG(st.st_mode) || access(worker_path, X_OK))
        return bs_err_set(err, BS_ENOTFOUND,
                          "custom tasks need the sandbox worker %s, which is not there (build it "
                          "with `make build`)",
                          worker_path);
    bs_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) return bs_err_set(err, BS_ENOMEM, "sandbox: out of memory");
    sb->worker_path = strdup(worker_path);
    sb->py_dir = py_dir ? strdup(py_dir) : NULL;
    sb->ctl = -1;
    pthread_mutex_init(&sb->mu, NULL);
    if (!sb->worker_path || (py_dir && !sb->py_dir)) {
        bs_sandbox_close(sb);
        return bs_err_set(err, BS_ENOMEM, "sandbox: out of memory");
    }
    int rc = spawn_worker(sb, err);
    if (rc) {
        bs_sandbox_close(sb);
        return rc;
    }
    *out = sb;
    return 0;
}

void bs_sandbox_close(bs_sandbox *sb)
{
    if (!sb) return;
    pthread_mutex_lock(&sb->mu);
    reap(sb);
    pthread_mutex_unlock(&sb->mu);
    pthread_mutex_destroy(&sb->mu);
    free(sb->worker_path);
    free(sb->py_dir);
    free(sb);
}

/* Sends the control message of one run with its socket; restarts a dead
 * worker once. */
static int send_run(bs_sandbox *sb, const char *hdr, int fd, bs_err *err)
{
    pthread_mutex_lock(&sb->mu);
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (sb->ctl < 0) {
            reap(sb);
            if ((rc = spawn_worker(sb, err))) break;
        }
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {.iov_base = (void *)hdr, .iov_len = strlen(hdr)};
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
        if (sendmsg(sb->ctl, &m, MSG_NOSIGNAL) >= 0) {
            rc = 0;
            break;
        }
        rc = bs_err_set(err, BS_EIO, "sandbox: the worker stopped (%s)", strerror(errno));
        close(sb->ctl);
        sb->ctl = -1;
    }
    pthread_mutex_unlock(&sb->mu);
    return rc;
}

static void set_error(bs_sandbox_result *out, bs_sandbox_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(bs_sandbox_result *out, bs_sandbox_status st, const char *fmt, ...)
{
    out->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
}

/* What the jail refused, from the system call the child was killed for. */
static const char *refusal(const char *name)
{
    static const struct {
        const char *sys, *what;
    } map[] = {
        {"socket", "tried to open a network connection"},
        {"connect", "tried to open a network connection"},
        {"socketpair", "tried to open a network connection"},
        {"bind", "tried to open a network connection"},
        {"execve", "tried to run a program"},
        {"execveat", "tried to run a program"},
        {"fork", "tried to start a process"},
        {"vfork", "tried to start a process"},
        {"clone", "tried to start a process"},
        {"clone3", "tried to start a process"},
        {"open", "tried to open a file for writing"},
        {"openat", "tried to open a file for writing"},
        {"creat", "tried to open a file for writing"},
        {"ptrace", "tried to trace a process"},
        {"mount", "tried to mount a file system"},
        {"kill", "tried to signal a process"},
        {"tgkill", "tried to signal a process"},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(map[i].sys, name)) return map[i].what;
    return NULL;
}

static void describe_timeout(const bs_sandbox_limits *lim, bs_sandbox_result *out)
{
    if (lim->wall_ms % 1000)
        set_error(out, BS_SANDBOX_LIMIT, "custom task exceeded %.1f s wall time",
                  lim->wall_ms / 1000.0);
    else
        set_error(out, BS_SANDBOX_LIMIT, "custom task exceeded %d s wall time",
                  lim->wall_ms / 1000);
}

/* 1 when the worker process has died (then the next run restarts it). */
static int worker_gone(bs_sandbox *sb)
{
    pthread_mutex_lock(&sb->mu);
    /* The channel's end without an exit message: a live worker sends one
     * unless the child flooded the socket, a dying one is a zombie in
     * moments (SIGKILL is not instant). */
    int gone = sb->pid <= 0;
    for (int i = 0; i < 40 && !gone; i++) {
        gone = waitpid(sb->pid, NULL, WNOHANG) == sb->pid;
        if (!gone) {
            struct timespec ts = {.tv_nsec = 5000000};
            nanosleep(&ts, NULL);
        }
    }
    if (gone) {
        if (sb->ctl >= 0) close(sb->ctl);
        sb->ctl = -1;
        sb->pid = 0;
    }
    pthread_mutex_unlock(&sb->mu);
    return gone;
}

/* The child's end, from the worker's "exit" message. */
static void describe_exit(const json_t *ex, const bs_sandbox_limits *lim, bs_sandbox_result *out)
{
    int sig = (int)json_integer_value(json_object_get(ex, "signal"));
    int code = (int)json_integer_value(json_object_get(ex, "code"));
    if (json_is_true(json_object_get(ex, "timeout"))) {
        describe_timeout(lim, out);
    } else if (sig == SIGXCPU || sig == SIGKILL) {
        set_error(out, BS_SANDBOX_LIMIT, "custom task exceeded %d s CPU time",
                  lim->cpu_seconds > 0 ? lim->cpu_seconds : (lim->wall_ms + 999) / 1000 + 1);
    } else if (sig == SIGSYS) {
        /* Killed by the filter while signals were blocked (so it could not
         * say which call): glibc's spawn paths do that. */
        set_error(out, BS_SANDBOX_REFUSED,
                  "custom task made a system call the sandbox does not allow (such as starting a "
                  "process) and was stopped");
    } else if (sig == SIGSEGV || sig == SIGBUS) {
        set_error(out, BS_SANDBOX_LIMIT,
                  "custom task crashed (signal %d): its stack or memory limit (%d MB) was "
                  "exceeded, e.g. by too deep recursion",
                  sig, lim->memory_mb);
    } else if (sig) {
        set_error(out, BS_SANDBOX_ERROR, "custom task was killed by signal %d", sig);
    } else {
        set_error(out, BS_SANDBOX_ERROR, "custom task ended (status %d) without a result", code);
    }
}

static int run_once(bs_sandbox *sb, json_t *job, const bs_sandbox_limits *lim, int *heard,
                    bs_sandbox_call_fn call, void *ud, bs_sandbox_result *out, bs_err *err)
{
    memset(out, 0, sizeof *out);
    int64_t t0 = bs_time_mono_ns();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return bs_err_set(err, BS_EIO, "sandbox: socketpair: %s", strerror(errno));
    int cpu = lim->cpu_seconds > 0 ? lim->cpu_seconds : (lim->wall_ms + 999) / 1000 + 1;
    char hdr[256];
    snprintf(hdr, sizeof hdr, "{\"id\":%lu,\"wall_ms\":%d,\"memory_mb\":%d,\"cpu_s\":%d}",
             (unsigned long)atomic_fetch_add(&sb->next_id, 1), lim->wall_ms, lim->memory_mb, cpu);
    int rc = send_run(sb, hdr, sv[1], err);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return rc;
    }
    int fd = sv[0];
    /* The child's socket is shared with the worker, which never reads it:
     * a write to a child that died with a full buffer must not block. */
    struct timeval snd = {.tv_sec = (lim->wall_ms + MARGIN_MS) / 1000,
                          .tv_usec = (lim->wall_ms + MARGIN_MS) % 1000 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
    rc = bs_sandbox_frame_write(fd, job, err);
    /* A child that died at once (refused, out of memory) closed its end:
     * its exit message still tells why. */
    int64_t deadline = t0 + ((int64_t)lim->wall_ms + MARGIN_MS) * 1000000;
    size_t max = lim->max_output + 65536;
    int have_result = 0;
    for (;;) {
        int left = (int)((deadline - bs_time_mono_ns()) / 1000000);
        json_t *msg = NULL;
        bs_err ferr = {0};
        if (left <= 0 || (rc = bs_sandbox_frame_read(fd, max, left, &msg, &ferr))) {
            rc = 0;
            if (have_result) {
                /* the worker went before telling how the child ended */
            } else if (left > 0 && ferr.code == BS_ELIMIT) {
                set_error(out, BS_SANDBOX_LIMIT,
                          "custom task output exceeded the %zu byte limit (custom_task_max_output_"
                          "bytes)",
                          lim->max_output);
            } else if (left > 0 && ferr.code == BS_EFORMAT) {
                /* Only the child's code can write garbage on its socket. */
                set_error(out, BS_SANDBOX_REFUSED,
                          "custom task wrote on the sandbox's channel (a malformed message)");
            } else if (left <= 0 || ferr.code == BS_EBUSY) {
                /* The worker kills at the wall time; this is when the server
                 * was still busy with the code's calls, or the worker hangs. */
                describe_timeout(lim, out);
            } else if (worker_gone(sb)) {
                rc = bs_err_set(err, BS_EIO, "sandbox: the worker stopped (%s)", ferr.msg);
            } else if (bs_time_mono_ns() - t0 >= (int64_t)lim->wall_ms * 1000000) {
                /* The exit message was dropped: the child had filled its
                 * socket with messages, and was killed at its wall time. */
                describe_timeout(lim, out);
            } else {
                set_error(out, BS_SANDBOX_ERROR, "custom task ended without a result");
            }
            break;
        }
        *heard = 1;
        const char *op = json_string_value(json_object_get(msg, "op"));
        op = op ? op : "";
        if (!strcmp(op, "call") && !have_result) {
            json_t *reply = NULL;
            bs_err cerr = {0};
            json_t *args = json_object_get(msg, "call");
            int crc = call ? call(ud, args, &reply, &cerr)
                           : bs_err_set(&cerr, BS_EUNSUPPORTED, "no engine in this sandbox");
            json_t *ans =
                crc ? json_pack("{s:b,s:s}", "ok", 0, "error", cerr.msg)
                    : json_pack("{s:b,s:o}", "ok", 1, "value", reply ? reply : json_null());
            bs_err werr = {0};
            int64_t ms = (deadline - bs_time_mono_ns()) / 1000000;
            struct timeval snd = {.tv_sec = ms > 0 ? ms / 1000 : 0,
                                  .tv_usec = ms > 0 ? ms % 1000 * 1000 : 1000};
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
            if (!ans || bs_sandbox_frame_write(fd, ans, &werr)) {
                /* The child is gone; its exit message follows. */
            }
            json_decref(ans);
        } else if (!strcmp(op, "result") && !have_result) {
            have_result = 1;
            if (json_is_true(json_object_get(msg, "ok"))) {
                out->status = BS_SANDBOX_OK;
                out->result = json_incref(json_object_get(msg, "result"));
                if (!out->result) out->result = json_null();
            } else {
                const char *kind = json_string_value(json_object_get(msg, "kind"));
                const char *e = json_string_value(json_object_get(msg, "error"));
                bs_sandbox_status st = BS_SANDBOX_ERROR;
                if (kind && !strcmp(kind, "limit")) st = BS_SANDBOX_LIMIT;
                if (kind && !strcmp(kind, "refused")) st = BS_SANDBOX_REFUSED;
                set_error(out, st, "%s", e ? e : "custom task failed");
            }
        } else if (!strcmp(op, "violation") && !have_result) {
            have_result = 1;
            const char *name = json_string_value(json_object_get(msg, "syscall"));
            const char *what = refusal(name ? name : "");
            if (what)
                set_error(out, BS_SANDBOX_REFUSED, "custom task %s (%s is not allowed)", what,
                          name);
            else
                set_error(out, BS_SANDBOX_REFUSED,
                          "custom task made a system call the sandbox does not allow (%s)",
                          name ? name : "unknown");
        } else if (!strcmp(op, "exit")) {
            if (!have_result) describe_exit(msg, lim, out);
            json_decref(msg);
            rc = 0;
            break;
        }
        json_decref(msg);
        /* The child _exits right after its result or its violation: the
         * run is decided, and waiting for the worker to reap it would add
         * the child's teardown to every run. (Code that forged a result
         * and kept going is still killed at its wall time.) */
        if (have_result) {
            rc = 0;
            break;
        }
    }
    close(fd);
    out->seconds = (double)(bs_time_mono_ns() - t0) / 1e9;
    if (rc) bs_sandbox_result_clear(out);
    return rc;
}

/* A worker that died between taking a run and forking its child (killed,
 * or crashed) costs nothing of the run: it is tried once more on the
 * restarted worker. A run that was heard from is never repeated. */
static int run_job(bs_sandbox *sb, json_t *job, const bs_sandbox_limits *lim,
                   bs_sandbox_call_fn call, void *ud, bs_sandbox_result *out, bs_err *err)
{
    int heard = 0;
    int rc = run_once(sb, job, lim, &heard, call, ud, out, err);
    if (rc == BS_EIO && !heard) rc = run_once(sb, job, lim, &heard, call, ud, out, err);
    return rc;
}

int bs_sandbox_run(bs_sandbox *sb, const bs_sandbox_job *job, const bs_sandbox_limits *lim,
                   bs_sandbox_call_fn call, void *ud, bs_sandbox_result *out, bs_err *err)
{
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:O,s:b,s:I,s:i,s:b}", "mode", "run", "tokenizer_code",
                  job->tokenizer_code ? job->tokenizer_code : "", "model_code",
                  job->model_code ? job->model_code : "", "function_code",
                  job->function_code ? job->function_code : "", "model_id",
                  job->model_id ? job->model_id : "", "input",
                  job->input ? job->input : json_null(), "batch", job->batch, "max_output",
                  (json_int_t)lim->max_output, "memory_mb", lim->memory_mb, "strict", job->strict);
    if (!j) return bs_err_set(err, BS_EINVAL, "sandbox: the task's code is not valid UTF-8");
    int rc = run_job(sb, j, lim, call, ud, out, err);
    json_decref(j);
    return rc;
}

int bs_sandbox_check(bs_sandbox *sb, const char *tokenizer_code, const char *model_code,
                     const char *function_code, json_t **report, bs_err *err)
{
    *report = NULL;
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s}", "mode", "check", "tokenizer_code",
                  tokenizer_code ? tokenizer_code : "", "model_code", model_code ? model_code : "",
                  "function_code", function_code ? function_code : "");
    if (!j) return bs_err_set(err, BS_EINVAL, "sandbox: the task's code is not valid UTF-8");
    bs_sandbox_limits lim;
    bs_sandbox_limits_default(&lim);
    lim.wall_ms = 5000;
    bs_sandbox_result r;
    int rc = run_job(sb, j, &lim, NULL, NULL, &r, err);
    json_decref(j);
    if (rc) return rc;
    if (r.status != BS_SANDBOX_OK || !json_is_object(r.result)) {
        rc = bs_err_set(err, BS_EIO, "sandbox: checking the code failed: %s",
                        r.status == BS_SANDBOX_OK ? "no report" : r.error);
        bs_sandbox_result_clear(&r);
        return rc;
    }
    *report = r.result;
    return 0;
}
