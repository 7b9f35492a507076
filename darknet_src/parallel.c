/*
 * parallel.c -- a per-call thread runner: the caller and up to threads-1
 * helpers take tasks from a shared counter until none is left.  Threads are
 * started and joined inside each call (no pool outlives a call, no globals);
 * for the work the forward passes hand it (milliseconds per task) starting a
 * thread costs a few tens of microseconds.
 *
 * Tasks must write disjoint memory: the layers give each task one image (and
 * anchor) and keep every sum that crosses images for the caller to add up
 * afterwards, in upstream's order.
 */
#define _POSIX_C_SOURCE 200112L
#include "dn_fast.h"

#define MAX_THREADS 64

#if defined(_WIN32)

void dn_parallel_for(int n_tasks, int threads, void (*fn)(void *ctx, int task), void *ctx)
{
    int t;
    (void)threads;
    for (t = 0; t < n_tasks; ++t) fn(ctx, t);
}

#else
#include <pthread.h>

typedef struct runner {
    pthread_mutex_t lock;
    int next, n_tasks;
    void (*fn)(void *ctx, int task);
    void *ctx;
} runner;

static void *work(void *arg)
{
    runner *r = (runner *)arg;
    for (;;) {
        int task;
        pthread_mutex_lock(&r->lock);
        task = r->next < r->n_tasks ? r->next++ : -1;
        pthread_mutex_unlock(&r->lock);
        if (task < 0) return NULL;
        r->fn(r->ctx, task);
    }
}

void dn_parallel_for(int n_tasks, int threads, void (*fn)(void *ctx, int task), void *ctx)
{
    pthread_t helpers[MAX_THREADS];
    int started = 0, t;
    runner r;
    if (threads > n_tasks) threads = n_tasks;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads <= 1 || pthread_mutex_init(&r.lock, NULL) != 0) {
        for (t = 0; t < n_tasks; ++t) fn(ctx, t);
        return;
    }
    r.next = 0;
    r.n_tasks = n_tasks;
    r.fn = fn;
    r.ctx = ctx;
    /* A helper that cannot be started is simply not there: the others (and
     * the caller) take its tasks. */
    while (started < threads - 1 && pthread_create(&helpers[started], NULL, work, &r) == 0) ++started;
    work(&r);
    for (t = 0; t < started; ++t) pthread_join(helpers[t], NULL);
    pthread_mutex_destroy(&r.lock);
}

#endif
