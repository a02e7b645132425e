/* The threads that run request handlers, apart from the network loop:
 * handlers block (a model's batch queue, a custom task's sandbox, an event
 * stream waiting for its next event), and a blocked network thread would
 * stall every connection it serves. Threads start as jobs arrive, up to a
 * maximum, and leave after a while without work. */
#ifndef BS_SERVER_WORKERS_H
#define BS_SERVER_WORKERS_H

#include <stddef.h>

/* One unit of work, embedded in the caller's record (no allocation per
 * job, so queueing cannot fail): fn(job) runs once on a worker. */
typedef struct bs_workers_job {
    struct bs_workers_job *next;
    void (*fn)(struct bs_workers_job *job);
} bs_workers_job;

typedef struct bs_workers bs_workers;

/* A pool of at most max threads (at least 1), each with a stack of
 * stack_bytes. NULL when out of memory. */
bs_workers *bs_workers_new(unsigned max, size_t stack_bytes);
/* Queues job; a thread is started for it when none is idle and fewer than
 * max run. Jobs run in arrival order. Should no thread exist and none
 * start (the system's thread limit), job runs on the caller's thread. */
void bs_workers_run(bs_workers *w, bs_workers_job *job);
/* Threads running now (for tests and /metrics-like reports). */
unsigned bs_workers_threads(bs_workers *w);
/* Runs what is queued, waits for every thread to leave, frees w. NULL is
 * accepted. */
void bs_workers_free(bs_workers *w);

#endif
