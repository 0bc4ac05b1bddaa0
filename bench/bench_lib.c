/* SPDX-License-Identifier: MIT */
/* Library micro-benchmark: ns per add (1 and 2 threads), per stats at several window sizes,
 * per listed transaction, and memory. Medians of several repetitions. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <txstats/txstats.h>

#include "bench_util.h"

#define REPS 7

static void report(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    printf("%-44s median %9.1f ns   min %9.1f   max %9.1f\n", what, v[n / 2], v[0], v[n - 1]);
}

static int64_t fixed_ms;
static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return fixed_ms;
}

static txstats_t *make(int fake, unsigned shards)
{
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    if (fake) {
        cfg.clock_ms = fixed_clock;
    }
    cfg.shards = shards;
    if (txstats_create(&t, &cfg) != TXSTATS_OK)
        exit(1);
    return t;
}

struct job {
    txstats_t *t;
    long n;
    int64_t base;
};

static void *adder(void *arg)
{
    struct job *j = arg;
    for (long i = 0; i < j->n; i++)
        txstats_add(j->t, 1000000 + i % 977, j->base - i % 50000);
    return NULL;
}

/* Wall ns per add, `threads` threads adding `per` each. */
static double add_run(int threads, long per, int fake)
{
    txstats_t *t = make(fake, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t base = fake ? fixed_ms : (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    struct job j = {t, per, base};
    double ns = run_threads(threads, adder, &j, per);
    txstats_destroy(t);
    return ns;
}

static void bench_add(void)
{
    double v[REPS];
    const char *names[4] = {
        "add, 1 thread, fixed clock (ns/add)", "add, 2 threads, fixed clock (wall ns/add)",
        "add, 1 thread, real clock (ns/add)", "add, 2 threads, real clock (wall ns/add)"};
    for (int k = 0; k < 4; k++) {
        for (int r = 0; r < REPS; r++)
            v[r] = add_run(k % 2 ? 2 : 1, 2000000, k < 2);
        report(names[k], v, REPS);
    }
}

/* One thread, fixed clock: ns per transaction of batch adds of `per_call`, or (per_call 0) of
 * keyed adds with fresh keys. */
static double variant_run(long n, int per_call)
{
    txstats_t *t = make(1, 0);
    txstats_tx_t *tx = malloc(1000 * sizeof(*tx));
    char key[32];
    for (int i = 0; i < 1000; i++)
        tx[i] = (txstats_tx_t){1000000 + i % 977, fixed_ms - i % 50000};
    double t0 = now_ns();
    for (long i = 0; i < n; i += per_call ? per_call : 1) {
        if (per_call) {
            txstats_add_batch(t, tx, (size_t)per_call, NULL, NULL);
            continue;
        }
        int len = snprintf(key, sizeof(key), "key-%ld", i);
        txstats_add_keyed(t, 1000000 + i % 977, fixed_ms - i % 50000, key, (size_t)len, NULL);
    }
    double ns = (now_ns() - t0) / (double)n;
    free(tx);
    txstats_destroy(t);
    return ns;
}

static void bench_variants(void)
{
    double v[REPS];
    for (int r = 0; r < REPS; r++)
        v[r] = variant_run(2000000, 1000);
    report("add_batch of 1000, 1 thread, fixed clock (ns/tx)", v, REPS);
    for (int r = 0; r < REPS; r++)
        v[r] = variant_run(1000000, 0);
    report("add_keyed, fresh keys, 1 thread, fixed (ns/add)", v, REPS);
}

static void bench_stats(void)
{
    static const long sizes[] = {10, 10000, 1000000, 2000000};
    double med[4];
    for (int k = 0; k < 4; k++) {
        txstats_t *t = make(1, 0);
        for (long i = 0; i < sizes[k]; i++)
            txstats_add(t, 1000000 + i % 977, fixed_ms - i % 59999);
        double v[REPS];
        txstats_summary_t s;
        for (int r = 0; r < REPS; r++) {
            double t0 = now_ns();
            for (int i = 0; i < 100000; i++)
                txstats_stats(t, &s);
            v[r] = (now_ns() - t0) / 100000;
        }
        char name[64];
        snprintf(name, sizeof(name), "stats, %ld in window (ns/call)", sizes[k]);
        report(name, v, REPS);
        med[k] = v[REPS / 2];
        if (sizes[k] == 1000000) {
            txstats_tx_t *buf = malloc(sizeof(*buf) * (size_t)sizes[k]);
            size_t n;
            for (int r = 0; r < REPS; r++) {
                double t0 = now_ns();
                txstats_get(t, buf, (size_t)sizes[k], &n);
                v[r] = (now_ns() - t0) / (double)n;
            }
            report("get, 1000000 in window (ns/transaction)", v, REPS);
            free(buf);
        }
        txstats_destroy(t);
    }
    printf("stats ratio 2,000,000 vs 10 transactions: %.2f\n", med[3] / med[0]);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static void bench_memory(void)
{
    txstats_config_t cfg;
    txstats_t *t;
    txstats_summary_t s;
    txstats_config_init(&cfg);
    cfg.clock_ms = fixed_clock;
    cfg.shards = 1;
    cfg.max_retained = 0; /* the window structure alone */
    long before = rss_kib();
    txstats_create(&t, &cfg);
    for (long i = 0; i < 2 * 65536; i++) /* touch every cell */
        txstats_add(t, 1, fixed_ms - i % 60000);
    long window = rss_kib() - before;
    txstats_destroy(t);
    cfg.max_retained = TXSTATS_DEFAULT_MAX_RETAINED;
    txstats_create(&t, &cfg);
    txstats_stats(t, &s);
    before = rss_kib();
    for (long i = 0; i < 1000000; i++)
        txstats_add(t, 1000000, fixed_ms - i % 59999);
    long full = rss_kib();
    printf("memory: window structure per shard (60 s, all cells touched) %ld KiB; "
           "retained listing %.1f B per transaction (1,000,000 over 59,999 ms)\n",
           window, (double)(full - before - window) * 1024 / 1e6);
    txstats_destroy(t);
}

int main(int argc, char **argv)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fixed_ms = (int64_t)ts.tv_sec * 1000;
    printf("libtxstats %s micro-benchmark, %d repetitions each\n", txstats_version(), REPS);
    /* Memory first: freed memory of earlier runs stays resident and would hide the growth. */
    if (argc < 2 || strstr(argv[1], "mem"))
        bench_memory();
    if (argc < 2 || strstr(argv[1], "add"))
        bench_add();
    if (argc < 2 || strstr(argv[1], "variants"))
        bench_variants();
    if (argc < 2 || strstr(argv[1], "stats"))
        bench_stats();
    return 0;
}
