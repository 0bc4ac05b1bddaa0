/* SPDX-License-Identifier: MIT */
/*
 * The distribution's costs (issue 15), medians of 7 repetitions:
 *   add       ns per add, 1 and 2 threads, fixed clock (built also against an older library with
 *             -DBENCH_NO_DIST, for a before/after in one run: bench/dist_ab.sh)
 *   quantile  ns per txstats_quantiles() call (1 level, and 3 levels) with 10 ... 2,000,000
 *             transactions in the window
 *   memory    bytes the library allocates (a counting allocator): per shard, and per
 *             transaction at 1, 3 and 17 transactions per millisecond
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <txstats/txstats.h>

#include "bench_util.h"

#define REPS 7

static int64_t fixed_ms;
static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return fixed_ms;
}

static size_t allocated; /* bytes live through the counting allocator */
static void *count_alloc(size_t size, void *ud)
{
    (void)ud;
    size_t *p = malloc(size + 16);
    if (!p)
        return NULL;
    *p = size;
    __atomic_fetch_add(&allocated, size, __ATOMIC_RELAXED);
    return (char *)p + 16;
}
static void count_free(void *ptr, void *ud)
{
    (void)ud;
    if (!ptr)
        return;
    size_t *p = (size_t *)((char *)ptr - 16);
    __atomic_fetch_sub(&allocated, *p, __ATOMIC_RELAXED);
    free(p);
}

static long force_retained = -1; /* >= 0: max_retained for the memory runs */

static txstats_t *make(unsigned shards, int counting)
{
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    cfg.clock_ms = fixed_clock;
    cfg.shards = shards;
    if (getenv("BENCH_MAX_RETAINED")) /* e.g. 0: no amount retained for listing */
        cfg.max_retained = (size_t)atoll(getenv("BENCH_MAX_RETAINED"));
    if (force_retained >= 0)
        cfg.max_retained = (size_t)force_retained;
    if (counting) {
        cfg.alloc = count_alloc;
        cfg.free = count_free;
    }
    if (txstats_create(&t, &cfg) != TXSTATS_OK)
        exit(1);
    return t;
}

/* Amounts from 1.00 to about 1,000,000.00, spread over many buckets. */
static txstats_amount_t amount_of(long i)
{
    return 1000000 + (txstats_amount_t)((uint64_t)i * 2654435761u % 1000000000000u);
}

struct job {
    txstats_t *t;
    long n;
};

static void *adder(void *arg)
{
    struct job *j = arg;
    for (long i = 0; i < j->n; i++)
        txstats_add(j->t, amount_of(i), fixed_ms - i % 50000);
    return NULL;
}

static double add_run(int threads, long per)
{
    txstats_t *t = make(0, 0);
    struct job j = {t, per};
    double ns = run_threads(threads, adder, &j, per);
    txstats_destroy(t);
    return ns;
}

static void bench_add(void)
{
    double one[REPS], two[REPS];
    for (int r = 0; r < REPS; r++) {
        one[r] = add_run(1, 2000000);
        two[r] = add_run(2, 2000000);
    }
    double m1 = median(one, REPS), m2 = median(two, REPS);
    printf("add, 1 thread  (ns/add)       median %6.1f\n", m1);
    printf("add, 2 threads (wall ns/add)  median %6.1f   speed-up %.2fx\n", m2, m1 / m2);
}

#ifndef BENCH_NO_DIST
static void bench_quantile(void)
{
    static const long sizes[] = {10, 10000, 1000000, 2000000};
    static const uint32_t q[3] = {500000000, 900000000, 990000000};
    for (int k = 0; k < 4; k++) {
        txstats_t *t = make(0, 0);
        for (long i = 0; i < sizes[k]; i++)
            txstats_add(t, amount_of(i), fixed_ms - i % 59999);
        double v1[REPS], v3[REPS];
        txstats_amount_t out[3];
        for (int r = 0; r < REPS; r++) {
            double t0 = now_ns();
            for (int i = 0; i < 20000; i++)
                txstats_quantiles(t, q + (i % 3), 1, out, NULL);
            v1[r] = (now_ns() - t0) / 20000;
            t0 = now_ns();
            for (int i = 0; i < 20000; i++)
                txstats_quantiles(t, q, 3, out, NULL);
            v3[r] = (now_ns() - t0) / 20000;
        }
        printf("quantile, %7ld in window: 1 level %6.0f ns, 3 levels %6.0f ns (median)\n", sizes[k],
               median(v1, REPS), median(v3, REPS));
        txstats_destroy(t);
    }
}
#endif

static void bench_memory(void)
{
    allocated = 0;
    txstats_t *t = make(1, 1);
    size_t shard = allocated;
    txstats_destroy(t);
    t = make(2, 1);
    printf("memory: instance with 1 shard %zu B; each further shard %zu B\n", shard,
           allocated - shard);
    txstats_destroy(t);
    static const long per_ms[] = {1, 3, 17, 17};
    for (int k = 0; k < 4; k++) {
        force_retained = k == 3 ? 0 : -1;
        t = make(1, 1);
        size_t base = allocated;
        long n = 59999 * per_ms[k];
        for (long i = 0; i < n; i++)
            txstats_add(t, amount_of(i), fixed_ms - i % 59999);
        printf("memory: %ld per ms (%ld transactions), %s: %.1f B per transaction\n", per_ms[k], n,
               k == 3 ? "max_retained 0" : "listing retained",
               (double)(allocated - base) / (double)n);
        txstats_destroy(t);
    }
    force_retained = -1;
}

int main(int argc, char **argv)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fixed_ms = (int64_t)ts.tv_sec * 1000;
    if (argc < 2 || strstr(argv[1], "mem"))
        bench_memory();
    if (argc < 2 || strstr(argv[1], "add"))
        bench_add();
#ifndef BENCH_NO_DIST
    if (argc < 2 || strstr(argv[1], "quantile"))
        bench_quantile();
#endif
    return 0;
}
