/*
 * Custom tasks: users' Python code run in a jailed child of the
 * bertstudio-sandbox worker (src/sandbox/worker/). The worker embeds
 * CPython with the transformers/torch shims already imported and forks one
 * child per run; the child jails itself (seccomp, namespaces, rlimits, empty
 * environment) before the user's code runs, and its parent kills it at the
 * wall-time limit. This side (the server's) starts the worker, hands each
 * run its own socket, and answers the child's engine calls through a
 * callback, so the sandbox knows nothing of models or HTTP.
 *
 * Wire format (both sockets): frames of a 4-byte little-endian length and
 * that many bytes of JSON (docs/custom-tasks.md lists the messages).
 *
 * Thread safety: bs_sandbox_run and bs_sandbox_check may be called from any
 * number of threads at once; each run has its own socket and child.
 */
#ifndef BS_SANDBOX_SANDBOX_H
#define BS_SANDBOX_SANDBOX_H

#include <jansson.h>
#include <stddef.h>

#include "bertstudio/common.h"

typedef struct bs_sandbox bs_sandbox;

/* The limits of one run (the settings custom_task_*). */
typedef struct bs_sandbox_limits {
    int wall_ms;       /* killed with SIGKILL after this long; > 0 */
    int memory_mb;     /* address space of the child (RLIMIT_AS) */
    int cpu_seconds;   /* RLIMIT_CPU; 0 = from wall_ms */
    size_t max_output; /* bytes of the result's JSON */
} bs_sandbox_limits;

/* Sets the defaults: 10 s, 512 MB, CPU from wall time, 1 MiB of output. */
void bs_sandbox_limits_default(bs_sandbox_limits *lim);

/* One execution: the three parts of the task (NULL = empty), the model name
 * the code sees as `model_id`, and the input: a string (custom_function(text))
 * or, with batch set, an array of strings (custom_function(texts) must return
 * a list of as many results). */
typedef struct bs_sandbox_job {
    const char *tokenizer_code;
    const char *model_code;
    const char *function_code;
    const char *model_id;
    const json_t *input;
    int batch;
    /* The original product's rule: tokenizer_code must bind `tokenizer` and
     * model_code `model` even when empty (otherwise only when given). */
    int strict;
} bs_sandbox_job;

/* Answers one engine call of the task's code (call: {"op": ...}, borrowed;
 * docs/custom-tasks.md). 0 and *reply (a JSON object, stolen), or a
 * negative BS_E* with err's message, which the code sees as an exception. */
typedef int (*bs_sandbox_call_fn)(void *ud, const json_t *call, json_t **reply, bs_err *err);

/* How a run ended. */
typedef enum bs_sandbox_status {
    BS_SANDBOX_OK = 0,      /* result holds custom_function's return value */
    BS_SANDBOX_ERROR = 1,   /* the code raised or returned something unusable */
    BS_SANDBOX_LIMIT = 2,   /* a limit was hit (time, memory, output) */
    BS_SANDBOX_REFUSED = 3, /* the jail refused a system call; the child was killed */
} bs_sandbox_status;

typedef struct bs_sandbox_result {
    bs_sandbox_status status;
    json_t *result;   /* BS_SANDBOX_OK: the value (owned; bs_sandbox_result_clear) */
    char error[1024]; /* otherwise: one sentence ("custom task exceeded 10 s wall time") */
    double seconds;   /* from sending the job to the end */
} bs_sandbox_result;

void bs_sandbox_result_clear(bs_sandbox_result *r);

/* Starts the worker program at worker_path (its Python shims in py_dir,
 * NULL = the worker's default) and waits until it is ready. *out is freed
 * with bs_sandbox_close. Errors: BS_ENOTFOUND when the program does not
 * exist (the message names the path), BS_EIO when it could not start or
 * died while starting (the message holds its first words on stderr). */
int bs_sandbox_open(const char *worker_path, const char *py_dir, bs_sandbox **out, bs_err *err);

/* Runs job under lim, answering the code's engine calls with call(ud, ...).
 * Returns 0 with *out filled whenever the task ran, whatever its own
 * outcome (see out->status); a negative BS_E* only when the sandbox itself
 * failed: BS_EIO (the worker died; the next call restarts it), BS_ENOMEM. */
int bs_sandbox_run(bs_sandbox *sb, const bs_sandbox_job *job, const bs_sandbox_limits *lim,
                   bs_sandbox_call_fn call, void *ud, bs_sandbox_result *out, bs_err *err);

/* Compiles the three parts in a jailed child (nothing runs) and reports in
 * *report (owned by the caller): {"valid": bool, "errors": [{"part":
 * "function_code", "line": N, "message": "..."}], "defines_custom_function":
 * bool, "models": ["name", ...]} where models are the string arguments of
 * from_pretrained(...) and pipeline(model=...) calls. Errors as
 * bs_sandbox_run. */
int bs_sandbox_check(bs_sandbox *sb, const char *tokenizer_code, const char *model_code,
                     const char *function_code, json_t **report, bs_err *err);

/* Stops the worker (its running children die with it) and frees. Runs in
 * progress must have ended. NULL is fine. */
void bs_sandbox_close(bs_sandbox *sb);

/* ── frames (frame.c; shared with the worker) ── */

/* Most bytes of one frame either side accepts (64 MiB). */
#define BS_SANDBOX_MAX_FRAME (64u << 20)

/* Writes one frame holding the compact JSON of v. 0, or BS_EIO. */
int bs_sandbox_frame_write(int fd, const json_t *v, bs_err *err);
/* Writes one frame of len raw bytes (already JSON). */
int bs_sandbox_frame_write_raw(int fd, const char *bytes, size_t len, bs_err *err);
/* Reads one frame of at most max bytes into *out (parsed). timeout_ms < 0
 * waits forever. BS_EIO on end of file or error (message says which),
 * BS_ELIMIT when the frame is larger than max, BS_EFORMAT when it is not
 * JSON, BS_EBUSY on timeout. */
int bs_sandbox_frame_read(int fd, size_t max, int timeout_ms, json_t **out, bs_err *err);

#endif
