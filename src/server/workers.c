/* The handler thread pool (workers.h): a queue of jobs under one mutex,
 * threads started on demand and detached; an idle thread leaves after
 * BS_WORKERS_IDLE_MS, keeping BS_WORKERS_KEEP of them for the next burst. */
#include "server/workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define BS_WORKERS_IDLE_MS 30000
#define BS_WORKERS_KEEP    4

struct bs_workers {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was queued, or stopping */
    pthread_cond_t gone; /* a thread left */
    bs_workers_job *head, *tail;
    size_t queued;
    unsigned max, threads, idle;
    size_t stack;
    int stopping;
};

static void *worker_main(void *arg)
{
    bs_workers *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stopping) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += BS_WORKERS_IDLE_MS / 1000;
            w->idle++;
            int rc = pthread_cond_timedwait(&w->work, &w->mu, &until);
            w->idle--;
            if (rc == ETIMEDOUT && !w->head && w->threads > BS_WORKERS_KEEP) goto leave;
        }
        bs_workers_job *job = w->head;
        if (!job) break; /* stopping, and nothing left to run */
        w->head = job->next;
        if (!w->head) w->tail = NULL;
        w->queued--;
        pthread_mutex_unlock(&w->mu);
        job->fn(job);
        pthread_mutex_lock(&w->mu);
    }
leave:
    w->threads--;
    pthread_cond_broadcast(&w->gone);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

bs_workers *bs_workers_new(unsigned max, size_t stack_bytes)
{
    bs_workers *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->gone, NULL);
    w->max = max ? max : 1;
    w->stack = stack_bytes;
    return w;
}

/* Called with w->mu held: 0 when a thread started. */
static int spawn(bs_workers *w)
{
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (w->stack) pthread_attr_setstacksize(&attr, w->stack);
    int rc = pthread_create(&t, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (rc) return -1;
    w->threads++;
    return 0;
}

void bs_workers_run(bs_workers *w, bs_workers_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    w->queued++;
    /* Every queued job beyond the idle threads gets a thread of its own
     * while the maximum allows: a handler waiting in a batch queue must
     * not hold back the requests that would have joined its batch. */
    if (w->queued > w->idle && w->threads < w->max && spawn(w) && w->threads == 0) {
        /* No thread at all and none can start: run it here rather than
         * leave it queued forever. */
        w->head = job->next;
        if (!w->head) w->tail = NULL;
        w->queued--;
        pthread_mutex_unlock(&w->mu);
        job->fn(job);
        return;
    }
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
}

unsigned bs_workers_threads(bs_workers *w)
{
    pthread_mutex_lock(&w->mu);
    unsigned n = w->threads;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void bs_workers_free(bs_workers *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->work);
    while (w->threads > 0) pthread_cond_wait(&w->gone, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->gone);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
