/* One run, in a fresh child of the warm worker: silence the standard
 * streams, jail, read the job, hand it to _bs_runner.run (Python), send its
 * answer. The child exits with _exit: nothing of the parent's Python state
 * (atexit handlers, buffers) may run twice. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <Python.h>

#include "sandbox/sandbox.h"
#include "sandbox/worker/worker.h"

/* The socket of this run, for _bs_channel (pyhost.c). */
int bs_worker_run_fd = -1;

static void send_error(int fd, const char *kind, const char *msg)
{
    json_t *r = json_pack("{s:s,s:b,s:s,s:s}", "op", "result", "ok", 0, "kind", kind, "error", msg);
    bs_err err = {0};
    if (r) bs_sandbox_frame_write(fd, r, &err);
    json_decref(r);
}

void bs_worker_child(int fd, const bs_worker_limits *lim)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2) close(null);
    }
    /* Only the run's socket stays open. */
    if (fd != 3) {
        if (dup2(fd, 3) < 0) _exit(120);
        close(fd);
        fd = 3;
    }
    close_range(4, ~0u, 0);
    bs_worker_run_fd = fd;
    if (bs_worker_jail_enter(lim)) {
        send_error(fd, "error", "sandbox: could not set the limits of the run");
        _exit(0);
    }
    json_t *job = NULL;
    bs_err err = {0};
    if (bs_sandbox_frame_read(fd, BS_SANDBOX_MAX_FRAME, lim->wall_ms, &job, &err)) _exit(0);
    char *text = json_dumps(job, JSON_COMPACT);
    json_decref(job);
    if (!text) _exit(0);
    if (bs_worker_jail_lock(fd)) {
        send_error(fd, "error", "sandbox: could not load the seccomp filter");
        _exit(0);
    }
    /* From here on, the jail holds. */
    PyObject *runner = PyImport_ImportModule("_bs_runner");
    PyObject *ans = runner ? PyObject_CallMethod(runner, "main", "s", text) : NULL;
    free(text);
    Py_ssize_t len = 0;
    const char *bytes = ans ? PyUnicode_AsUTF8AndSize(ans, &len) : NULL;
    if (!bytes) {
        PyErr_Clear();
        send_error(fd, "error", "sandbox: the runner failed");
        _exit(0);
    }
    bs_sandbox_frame_write_raw(fd, bytes, (size_t)len, &err);
    _exit(0);
}
