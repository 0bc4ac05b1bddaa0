/* SPDX-License-Identifier: MIT */
/* Shared by the benchmark programs: a monotonic clock and medians. */
#ifndef TXSTATS_BENCH_UTIL_H
#define TXSTATS_BENCH_UTIL_H

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v in place; the median. */
static inline double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return v[n / 2];
}

/* Wall ns per operation: `threads` threads each running fn(arg), which does `per` operations. */
static inline double run_threads(int threads, void *(*fn)(void *), void *arg, long per)
{
    pthread_t th[8];
    double t0 = now_ns();
    for (int i = 0; i < threads && i < 8; i++)
        pthread_create(&th[i], NULL, fn, arg);
    for (int i = 0; i < threads && i < 8; i++)
        pthread_join(th[i], NULL);
    return (now_ns() - t0) / ((double)per * threads);
}

#endif
