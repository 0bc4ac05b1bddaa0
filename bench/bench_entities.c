/* SPDX-License-Identifier: MIT */
/*
 * Entities (per-key windows, issue 20) on a simulated clock: memory, add speed, query latency.
 *
 *   bench_entities mem [N_TX]     N_TX (10,000,000) transactions spread over the 60 s window,
 * without entities, over 1,000 and over 1,000,000 entities: one child process per case, one at a
 * time; bytes counted through the allocator hooks (malloc_usable_size) and VmRSS growth
 *   bench_entities add [ROUNDS]   keyed vs unkeyed txstats_add on 1 and 2 threads, alternated
 *                                 (ABAB, then BABA) in ROUNDS (11) rounds; medians and ratios
 *   bench_entities query [N_ENT]  N_ENT (1,000,000) entities of 10 transactions each plus one of
 *                                 100,000: txstats_entity_stats latency (each call timed) and
 *                                 txstats_top K=100 by sum and by count; medians and p99
 *
 * Keys are "card-%011ld": 16 bytes.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <txstats/txstats.h>

#include "bench_util.h"

#define KEY_LEN 16
#define WINDOW  60000
#define TOP_K   100

static const int64_t now_ms = INT64_C(1700000000000);
static size_t live, peak;

static int64_t sim_clock(void *ctx)
{
    (void)ctx;
    return now_ms;
}

/* Counts what malloc hands out (usable size), so no header skews the RSS of the same process. */
static void *count_alloc(size_t n, void *ud)
{
    (void)ud;
    void *p = malloc(n);
    if (p) {
        size_t now = __atomic_add_fetch(&live, malloc_usable_size(p), __ATOMIC_RELAXED);
        if (now > peak)
            peak = now;
    }
    return p;
}

static void count_free(void *p, void *ud)
{
    (void)ud;
    if (p)
        __atomic_sub_fetch(&live, malloc_usable_size(p), __ATOMIC_RELAXED);
    free(p);
}

static txstats_t *make(int counting)
{
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    cfg.clock_ms = sim_clock;
    cfg.max_entities = 2000000;
    if (counting) {
        cfg.alloc = count_alloc;
        cfg.free = count_free;
    }
    if (txstats_create(&t, &cfg) != TXSTATS_OK) {
        fprintf(stderr, "txstats_create failed\n");
        exit(1);
    }
    return t;
}

/* The i-th of n transactions: timestamps spread evenly over the window (now - 60000, now]. */
static int64_t ts_of(long i, long n)
{
    return now_ms - (WINDOW - 1) + (int64_t)((i * (long)WINDOW) / n);
}

static txstats_amount_t amount_of(long i)
{
    return 1000000 + (i * 7919) % 100000;
}

static void key_of(char *buf, long i)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "card-%011ld", i);
    memcpy(buf, tmp, KEY_LEN);
}

static void check(int rc, const char *what)
{
    if (rc != TXSTATS_OK) {
        fprintf(stderr, "%s: %s\n", what, txstats_strerror(rc));
        exit(1);
    }
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

/* ---- mem ---- */

struct mem_result {
    long n_tx, n_ent;
    size_t empty, bytes, peak;
    long rss_kib;
    uint64_t active;
    double seconds;
};

/* One case, in this (child) process: n transactions over n_ent entities (0: none). */
static struct mem_result mem_case(long n, long n_ent)
{
    struct mem_result r = {n, n_ent, 0, 0, 0, 0, 0, 0};
    long rss0 = rss_kib();
    char key[KEY_LEN];
    txstats_t *t = make(1);
    r.empty = live;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (n_ent)
            key_of(key, i % n_ent);
        check(n_ent ? txstats_add_entity(t, key, KEY_LEN, amount_of(i), ts_of(i, n))
                    : txstats_add(t, amount_of(i), ts_of(i, n)),
              "add");
    }
    r.seconds = (now_ns() - t0) / 1e9;
    txstats_entity_info_t info;
    check(txstats_entity_info(t, &info), "entity_info");
    r.active = info.active;
    r.bytes = live;
    r.peak = peak;
    r.rss_kib = rss_kib() - rss0;
    return r; /* the child exits without freeing: nothing more to measure */
}

static struct mem_result mem_child(long n, long n_ent)
{
    int fd[2];
    struct mem_result r;
    if (pipe(fd) != 0)
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        r = mem_case(n, n_ent);
        ssize_t w = write(fd[1], &r, sizeof(r));
        _exit(w == (ssize_t)sizeof(r) ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], &r, sizeof(r));
    int status = 0;
    waitpid(pid, &status, 0);
    close(fd[0]);
    if (got != (ssize_t)sizeof(r) || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "memory case %ld/%ld failed\n", n, n_ent);
        exit(1);
    }
    printf("%10ld tx, %9ld entities (%9llu active): allocator %8.1f MiB (empty instance %.1f, "
           "peak %.1f), RSS +%8.1f MiB, %.1f s to add\n",
           n, n_ent, (unsigned long long)r.active, (double)r.bytes / 1048576.0,
           (double)r.empty / 1048576.0, (double)r.peak / 1048576.0, (double)r.rss_kib / 1024.0,
           r.seconds);
    fflush(stdout);
    return r;
}

static void mem_line(const char *what, double alloc_b, double rss_b, double per)
{
    printf("%-58s allocator %7.1f B, RSS %7.1f B\n", what, alloc_b / per, rss_b / per);
}

static int run_mem(long n)
{
    printf("memory: %ld transactions over 60 s, keys of %d bytes, default config (max_retained "
           "%zu), simulated clock; one process per case\n",
           n, KEY_LEN, TXSTATS_DEFAULT_MAX_RETAINED);
    fflush(stdout);
    struct mem_result u = mem_child(n, 0), few = mem_child(n, 1000), many = mem_child(n, 1000000);
    double ub = (double)u.bytes, ur = (double)u.rss_kib * 1024;
    double fb = (double)few.bytes, fr = (double)few.rss_kib * 1024;
    double mb = (double)many.bytes, mr = (double)many.rss_kib * 1024;
    mem_line("unkeyed, per transaction (allocator: beyond the empty instance):",
             ub - (double)u.empty, ur, (double)n);
    mem_line("1,000,000 entities: per active entity beyond unkeyed:", mb - ub, mr - ur, 1e6);
    mem_line("1,000 entities: per transaction beyond unkeyed:", fb - ub, fr - ur, (double)n);
    mem_line("entity count alone (1,000,000 vs 1,000), per entity:", mb - fb, mr - fr, 999000.0);
    return 0;
}

/* ---- add ---- */

struct add_job {
    txstats_t *t;
    long n, n_ent, off;
    const char *keys; /* n_ent keys of KEY_LEN bytes */
};

static void *add_worker(void *arg)
{
    const struct add_job *j = arg;
    for (long i = 0; i < j->n; i++) {
        txstats_amount_t a = amount_of(i);
        int64_t ts = ts_of(i, j->n);
        if (j->n_ent)
            txstats_add_entity(j->t, j->keys + ((i + j->off) % j->n_ent) * KEY_LEN, KEY_LEN, a, ts);
        else
            txstats_add(j->t, a, ts);
    }
    return NULL;
}

/* Wall ns per add: `threads` threads adding n each to a fresh instance; thread k starts its walk
 * over the entities at k * n_ent / threads. */
static double add_run(int threads, long n, long n_ent, const char *keys)
{
    txstats_t *t = make(0);
    struct add_job j[2];
    pthread_t th[2];
    double t0 = now_ns();
    for (int k = 0; k < threads; k++) {
        j[k] = (struct add_job){t, n, n_ent, k * n_ent / threads, keys};
        pthread_create(&th[k], NULL, add_worker, &j[k]);
    }
    for (int k = 0; k < threads; k++)
        pthread_join(th[k], NULL);
    double ns = (now_ns() - t0) / ((double)n * threads);
    txstats_entity_info_t info;
    txstats_entity_info(t, &info);
    if (n_ent && info.active != (uint64_t)n_ent) {
        fprintf(stderr, "expected %ld active entities, got %llu\n", n_ent,
                (unsigned long long)info.active);
        exit(1);
    }
    txstats_destroy(t);
    return ns;
}

static char *make_keys(long n_ent)
{
    char *keys = malloc((size_t)n_ent * KEY_LEN);
    if (!keys)
        exit(1);
    for (long i = 0; i < n_ent; i++)
        key_of(keys + i * KEY_LEN, i);
    return keys;
}

/* v[0..3][r]: unkeyed 1 thread, keyed 1 thread, unkeyed 2 threads, keyed 2 threads. */
static void add_rounds(int rounds, long n, long n_ent, double v[4][64])
{
    char *keys = make_keys(n_ent);
    for (int r = 0; r < rounds; r++) {
        for (int s = 0; s < 4; s++) {
            int k = r % 2 ? 3 - s : s; /* U1 K1 U2 K2, then K2 U2 K1 U1 */
            v[k][r] = add_run(k < 2 ? 1 : 2, n, k % 2 ? n_ent : 0, keys);
        }
        printf("  round %2d: 1 thread unkeyed %6.1f, keyed %6.1f ns (speed ratio %.2f); 2 threads "
               "%6.1f, %6.1f wall ns\n",
               r + 1, v[0][r], v[1][r], v[0][r] / v[1][r], v[2][r], v[3][r]);
        fflush(stdout);
    }
    free(keys);
}

static int run_add(int rounds)
{
    static const long ents[] = {1000, 1000000};
    const long n = 4000000;
    for (int e = 0; e < 2; e++) {
        double v[4][64], speed[64], su[64], sk[64];
        printf("add: %ld adds per thread, keyed over %ld entities (16-byte keys) vs unkeyed, "
               "fresh instance per run, %d rounds alternated\n",
               n, ents[e], rounds);
        add_rounds(rounds, n, ents[e], v);
        for (int r = 0; r < rounds; r++) {
            speed[r] = v[0][r] / v[1][r];
            su[r] = v[0][r] / v[2][r];
            sk[r] = v[1][r] / v[3][r];
        }
        printf("median over %d rounds, %ld entities: 1 thread unkeyed %.1f ns, keyed %.1f ns, "
               "keyed/unkeyed speed %.2f (target >= 0.6); 2 threads unkeyed %.1f, keyed %.1f wall "
               "ns; 2-thread speed-up unkeyed %.2fx, keyed %.2fx\n",
               rounds, ents[e], median(v[0], rounds), median(v[1], rounds), median(speed, rounds),
               median(v[2], rounds), median(v[3], rounds), median(su, rounds), median(sk, rounds));
        fflush(stdout);
    }
    return 0;
}

/* ---- query ---- */

static txstats_t *load_query(long n_ent, const char *big, const char *keys)
{
    txstats_t *t = make(0);
    long n = n_ent * 10;
    for (long i = 0; i < n; i++)
        check(
            txstats_add_entity(t, keys + (i % n_ent) * KEY_LEN, KEY_LEN, amount_of(i), ts_of(i, n)),
            "add");
    for (long i = 0; i < 100000; i++)
        check(txstats_add_entity(t, big, strlen(big), 1000, ts_of(i, 100000)), "add big");
    return t;
}

static void lat_report(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    printf("%-52s median %10.0f ns   p99 %10.0f ns   max %10.0f ns (%d calls)\n", what, v[n / 2],
           v[(int)((double)n * 0.99)], v[n - 1], n);
}

/* entity_stats, alternating: a random entity of 10 transactions, the one of 100,000. */
static void stats_latency(txstats_t *t, long n_ent, const char *big, const char *keys)
{
    enum { CALLS = 200000 };
    double *small = malloc(CALLS * sizeof(double)), *large = malloc(CALLS * sizeof(double));
    double *timer = malloc(CALLS * sizeof(double));
    txstats_summary_t s;
    uint64_t x = 88172645463325252u;
    for (int c = 0; c < CALLS; c++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const char *k = keys + (long)(x % (uint64_t)n_ent) * KEY_LEN;
        double t0 = now_ns();
        txstats_entity_stats(t, k, KEY_LEN, &s);
        double t1 = now_ns();
        if (s.count != 10)
            exit(1);
        txstats_entity_stats(t, big, strlen(big), &s);
        double t2 = now_ns();
        if (s.count != 100000)
            exit(1);
        small[c] = t1 - t0;
        large[c] = t2 - t1;
        timer[c] = now_ns() - t2;
    }
    lat_report("entity_stats, random entity with 10 in window", small, CALLS);
    lat_report("entity_stats, the entity with 100,000 in window", large, CALLS);
    lat_report("(timer alone: clock_gettime pair)", timer, CALLS);
    free(small), free(large), free(timer);
}

static void top_latency(txstats_t *t, const char *big)
{
    enum { CALLS = 101 };
    double by_sum[CALLS], by_count[CALLS];
    txstats_top_entry_t *buf = malloc(TOP_K * sizeof(*buf));
    size_t n;
    for (int c = 0; c < CALLS; c++) {
        for (int b = 0; b < 2; b++) {
            int by = c % 2 ? 1 - b : b;
            double t0 = now_ns();
            check(txstats_top(t, by ? TXSTATS_TOP_COUNT : TXSTATS_TOP_SUM, buf, TOP_K, &n), "top");
            (by ? by_count : by_sum)[c] = now_ns() - t0;
            if (n != TOP_K || (by && memcmp(buf[0].entity, big, strlen(big)) != 0)) {
                fprintf(stderr, "unexpected ranking\n");
                exit(1);
            }
        }
    }
    lat_report("top K=100 by sum", by_sum, CALLS);
    lat_report("top K=100 by count", by_count, CALLS);
    free(buf);
}

static int run_query(long n_ent)
{
    const char *big = "card-big-0000000"; /* 16 bytes too */
    char *keys = make_keys(n_ent);
    double t0 = now_ns();
    txstats_t *t = load_query(n_ent, big, keys);
    txstats_entity_info_t info;
    check(txstats_entity_info(t, &info), "entity_info");
    printf("query: %ld entities x 10 transactions + 1 entity x 100,000 (%llu active), loaded in "
           "%.1f s; simulated clock\n",
           n_ent, (unsigned long long)info.active, (now_ns() - t0) / 1e9);
    fflush(stdout);
    stats_latency(t, n_ent, big, keys);
    top_latency(t, big);
    txstats_destroy(t);
    free(keys);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    long arg = argc > 2 ? atol(argv[2]) : 0;
    printf("libtxstats %s, entities benchmark\n", txstats_version());
    if (!strcmp(mode, "mem"))
        return run_mem(arg > 0 ? arg : 10000000);
    if (!strcmp(mode, "add"))
        return run_add(arg > 0 && arg <= 64 ? (int)arg : 11);
    if (!strcmp(mode, "query"))
        return run_query(arg > 0 ? arg : 1000000);
    fprintf(stderr, "usage: bench_entities mem [N_TX] | add [ROUNDS] | query [N_ENTITIES]\n");
    return 2;
}
