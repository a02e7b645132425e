/* The pieces of the bertstudio-sandbox program: the warm interpreter
 * (pyhost.c), the jail a child puts itself in (jail.c) and the child's run
 * (child.c). Only this program links libpython and libseccomp. */
#ifndef BS_SANDBOX_WORKER_H
#define BS_SANDBOX_WORKER_H

#include <stddef.h>

/* The limits a child gets from the control message. */
typedef struct bs_worker_limits {
    int wall_ms;
    int memory_mb;
    int cpu_s;
} bs_worker_limits;

/* Starts CPython (isolated: no environment, no user site), puts py_dir on
 * sys.path, registers the _bs_channel module and imports _bs_runner (which
 * imports the shims and the modules user code may use). 0, or -1 with a
 * message on stderr. */
int bs_worker_py_init(const char *py_dir);

/* Resolves the names of the system calls (the SIGSYS handler may not
 * allocate) and compiles the seccomp filter, once, before any child
 * exists. 0, or -1 when the filter cannot be built. */
int bs_worker_jail_prepare(void);

/* In a fresh child: new namespaces where allowed, rlimits, empty
 * environment. 0, or -1 (errno set) when a limit could not be set. */
int bs_worker_jail_enter(const bs_worker_limits *lim);

/* Installs the SIGSYS reporter (writes a "violation" frame on report_fd,
 * then exits) and loads the compiled seccomp filter. 0, or -1. */
int bs_worker_jail_lock(int report_fd);

/* The whole life of a child after fork: jail, read the job from fd, run it,
 * write the result frame. Never returns. */
void bs_worker_child(int fd, const bs_worker_limits *lim) __attribute__((noreturn));

#endif
