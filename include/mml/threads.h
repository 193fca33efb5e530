/* mml/threads.h: the persistent thread pool used by GEMM, convolution and
 * large element-wise/reduction kernels.
 *
 * Thread count: mml_threads_set(n), else MML_THREADS, else the cores available
 * to the process (sched_getaffinity). mml_parallel_for may be called from one
 * thread at a time; nested calls run serially on the calling thread. */
#ifndef MML_THREADS_H
#define MML_THREADS_H

#include <stdint.h>

typedef void (*mml_range_fn)(void *arg, int64_t begin, int64_t end, int thread);

void mml_threads_set(int n);
int mml_threads_get(void);

/* The threads a parallel loop started here would run on: 1 inside a loop's
 * task (nested loops run serially), mml_threads_get() elsewhere. */
int mml_threads_usable(void);

/* Splits [0, n) into at most mml_threads_get() contiguous ranges of at least
 * `grain` items and runs fn on each; returns when all are done. Deterministic:
 * the split depends only on n, grain and the thread count. */
void mml_parallel_for(int64_t n, int64_t grain, mml_range_fn fn, void *arg);

#endif
