/* The compute thread pool: workers wait for a job (a task function and a task
 * count) and take task indices from a shared counter; the caller works too.
 * One job at a time; a concurrent caller runs its tasks alone instead. */
#include "tensor/tensor.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct bs_pool {
    int n;                /* workers including the caller */
    pthread_t *threads;   /* n - 1 */
    pthread_mutex_t busy; /* held by the caller that owns the current job */
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned long gen; /* job generation: workers start when it changes */
    int stop;
    bs_task_fn fn;
    void *ctx;
    int n_tasks;
    int next;   /* next task index (atomic) */
    int active; /* workers still inside the current job */
};

struct worker_arg {
    bs_pool *pool;
    int id;
};

static void run_tasks(bs_pool *p, int worker)
{
    for (;;) {
        int t = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, worker);
    }
}

/* Before sleeping, a worker (and a caller waiting for workers) spins this
 * many pause instructions: a forward pass posts a job every few hundred
 * microseconds, and a futex wake-up per job would cost more than the spin. */
#define SPIN 4000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void *worker_main(void *argp)
{
    struct worker_arg arg = *(struct worker_arg *)argp;
    free(argp);
    bs_pool *p = arg.pool;
    unsigned long seen = 0;
    for (;;) {
        for (int i = 0; i < SPIN && __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE) == seen &&
                        !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
             i++)
            cpu_relax();
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->gen == seen) pthread_cond_wait(&p->start, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        run_tasks(p, arg.id);
        if (__atomic_sub_fetch(&p->active, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

bs_pool *bs_pool_new(int n_threads)
{
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > 256) n_threads = 256;
    bs_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->busy, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        bs_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *a = malloc(sizeof *a);
        if (a) {
            a->pool = p;
            a->id = i;
        }
        if (!a || pthread_create(&p->threads[i - 1], NULL, worker_main, a) != 0) {
            free(a);
            p->n = i; /* only the started workers are joined */
            bs_pool_free(p);
            return NULL;
        }
        /* Named before bs_pool_new returns, so that ps/top -H (and the tests)
         * can count compute threads at once. */
        pthread_setname_np(p->threads[i - 1], "bs-compute");
    }
    return p;
}

void bs_pool_free(bs_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->busy);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int bs_pool_size(const bs_pool *p)
{
    return p ? p->n : 1;
}

void bs_pool_run(bs_pool *p, int n_tasks, bs_task_fn fn, void *ctx)
{
    if (n_tasks <= 0) return;
    if (!p || p->n == 1 || n_tasks == 1 || pthread_mutex_trylock(&p->busy) != 0) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    p->next = 0;
    __atomic_store_n(&p->active, p->n - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&p->gen, p->gen + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    for (int i = 0; i < SPIN && __atomic_load_n(&p->active, __ATOMIC_ACQUIRE) > 0; i++) cpu_relax();
    pthread_mutex_lock(&p->mu);
    while (__atomic_load_n(&p->active, __ATOMIC_ACQUIRE) > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->busy);
}
