/*
 * parallel.c -- a per-call thread runner: the caller and up to threads-1
 * helpers take tasks from a shared counter until none is left.  Helpers are
 * started for each call (no pool outlives a call, no globals); one that
 * starts after the work is done finds nothing to do and ends.  For the work
 * the forward passes hand it (milliseconds per task) starting a thread costs
 * a few tens of microseconds.
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
#include <stdlib.h>

/* Shared by the caller and its helpers; freed by whichever leaves last, so
 * that the caller returns as soon as every task is done, without waiting
 * for a helper the scheduler has not started yet (on a busy machine that
 * can take milliseconds).  A helper that starts late finds no task left and
 * touches nothing but this struct. */
typedef struct runner {
    pthread_mutex_t lock;
    pthread_cond_t all_done;
    int next, done, n_tasks, refs;
    void (*fn)(void *ctx, int task);
    void *ctx;
} runner;

/* Takes tasks until none is left; returns with r->lock held. */
static void take_tasks(runner *r)
{
    pthread_mutex_lock(&r->lock);
    while (r->next < r->n_tasks) {
        int task = r->next++;
        pthread_mutex_unlock(&r->lock);
        r->fn(r->ctx, task);
        pthread_mutex_lock(&r->lock);
        if (++r->done == r->n_tasks) pthread_cond_signal(&r->all_done);
    }
}

static void leave(runner *r)
{
    int last = --r->refs == 0;
    pthread_mutex_unlock(&r->lock);
    if (last) {
        pthread_cond_destroy(&r->all_done);
        pthread_mutex_destroy(&r->lock);
        free(r);
    }
}

static void *helper(void *arg)
{
    runner *r = (runner *)arg;
    take_tasks(r);
    leave(r);
    return NULL;
}

void dn_parallel_for(int n_tasks, int threads, void (*fn)(void *ctx, int task), void *ctx)
{
    pthread_attr_t attr;
    runner *r = NULL;
    int t, failed = 0;
    if (threads > n_tasks) threads = n_tasks;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > 1) r = malloc(sizeof *r);
    if (r && pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        r = NULL;
    }
    if (r && pthread_cond_init(&r->all_done, NULL) != 0) {
        pthread_mutex_destroy(&r->lock);
        free(r);
        r = NULL;
    }
    if (!r || pthread_attr_init(&attr) != 0) {
        if (r) {
            pthread_cond_destroy(&r->all_done);
            pthread_mutex_destroy(&r->lock);
            free(r);
        }
        for (t = 0; t < n_tasks; ++t) fn(ctx, t);
        return;
    }
    r->next = r->done = 0;
    r->n_tasks = n_tasks;
    r->refs = threads;  /* the caller and threads-1 helpers */
    r->fn = fn;
    r->ctx = ctx;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (t = 0; t < threads - 1; ++t) {
        pthread_t id;
        /* A helper that cannot be started is simply not there: the others
         * (and the caller) take its tasks. */
        if (pthread_create(&id, &attr, helper, r) != 0) ++failed;
    }
    pthread_attr_destroy(&attr);
    if (failed) {
        pthread_mutex_lock(&r->lock);
        r->refs -= failed;
        pthread_mutex_unlock(&r->lock);
    }
    take_tasks(r);
    while (r->done < r->n_tasks) pthread_cond_wait(&r->all_done, &r->lock);
    leave(r);
}

#endif
