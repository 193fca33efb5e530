/* Persistent pool: workers wait on a generation counter, spinning briefly
 * before sleeping on a condition variable, so back-to-back small kernels do
 * not pay a wake-up each. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "mml/threads.h"

#define MML_MAX_THREADS 64
/* A worker spins this long (a few tenths of a millisecond) for the next job
 * before it sleeps: between a model's ops the caller runs serial work of
 * about that length, and waking a sleeping thread costs tens of microseconds
 * on a VM, more than a batch-1 op takes (20,000 was too short: a second
 * thread slowed batch-1 inference down). libgomp's default spin is similar. */
#define SPIN_ITERS 200000

typedef struct pool {
    pthread_t tids[MML_MAX_THREADS];
    int n_workers;               /* threads besides the caller */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint generation;
    atomic_int pending;
    atomic_int stop;
    unsigned start_gen; /* generation when the workers were started */
    /* current job */
    mml_range_fn fn;
    void *arg;
    int64_t n, chunk;
    int parts;
} pool;

static pool g_pool = { .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };
static int g_threads;               /* 0: not yet decided */
static _Thread_local int t_in_pool; /* nested calls run serially */

static int default_threads(void)
{
    const char *e = getenv("MML_THREADS");
    if (e && atoi(e) > 0) return atoi(e);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    return 1;
}

static void run_part(pool *p, int part)
{
    int64_t b = part * p->chunk, e = b + p->chunk;
    if (e > p->n) e = p->n;
    if (b < e) p->fn(p->arg, b, e, part);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg; /* 1..n_workers */
    pool *p = &g_pool;
    unsigned seen = p->start_gen; /* jobs before this one belong to an old pool */
    t_in_pool = 1;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load(&p->stop) && spins < SPIN_ITERS)
            spins++;
        if (gen == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while ((gen = atomic_load(&p->generation)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = gen;
        if (id < p->parts) run_part(p, id);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
    }
}

static void pool_stop(void)
{
    pool *p = &g_pool;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->tids[i], NULL);
    p->n_workers = 0;
    atomic_store(&p->stop, 0);
}

static void pool_start(int workers)
{
    pool *p = &g_pool;
    p->start_gen = atomic_load(&p->generation);
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&p->tids[i], NULL, worker, (void *)(intptr_t)(i + 1)) != 0) break;
        p->n_workers++;
    }
}

static void at_exit_stop(void) { pool_stop(); }

void mml_threads_set(int n)
{
    if (n < 1) n = default_threads();
    if (n > MML_MAX_THREADS) n = MML_MAX_THREADS;
    if (n == g_threads) return;
    static int registered;
    if (!registered) {
        atexit(at_exit_stop);
        registered = 1;
    }
    pool_stop();
    g_threads = n;
    pool_start(n - 1);
}

int mml_threads_get(void)
{
    if (!g_threads) mml_threads_set(default_threads());
    return g_threads;
}

int mml_threads_usable(void) { return t_in_pool ? 1 : mml_threads_get(); }

void mml_parallel_for(int64_t n, int64_t grain, mml_range_fn fn, void *arg)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int threads = mml_threads_get();
    int64_t parts = (n + grain - 1) / grain;
    if (parts > threads) parts = threads;
    if (parts <= 1 || t_in_pool || g_pool.n_workers == 0) {
        fn(arg, 0, n, 0);
        return;
    }
    pool *p = &g_pool;
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->parts = (int)parts;
    p->chunk = (n + parts - 1) / parts;
    atomic_store(&p->pending, p->n_workers);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    t_in_pool = 1;
    run_part(p, 0);
    t_in_pool = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) sched_yield();
}
