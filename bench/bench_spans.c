/* SPDX-License-Identifier: MIT */
/*
 * Several spans and long windows (issue 21): memory by span and traffic, the add with several
 * spans, and the statistics of each span. Everything runs on a simulated clock.
 *
 *   bench_spans mem SPANS RATE SECONDS count|rss [SHARDS]
 *     One instance (SHARDS, default 1) with SPANS (e.g. 60s or 60s,5m,1h,24h), then RATE
 *     transactions a second, evenly spread (RATE >= 1000: RATE/1000 in every millisecond; below:
 *     one in every 1000/RATE ms), the clock at each one's timestamp, for SECONDS simulated
 *     seconds (RATE 0: idle). "count": bytes held, counted through cfg.alloc; "rss": VmRSS and
 *     VmHWM with malloc, the add's time, and each span's txstats_stats_span latency. Then the
 *     clock goes one longest span further, with no traffic, and what is held then ("drained").
 *   bench_spans add ROUNDS fixed|moving|moving1 SPANS_A SPANS_B...
 *     ns per txstats_add, one thread, 1 shard, a fresh instance per run, the configurations run
 *     in turn (each round starts with the next), medians of the per-round ratios to SPANS_A.
 *     fixed: the clock stands; 2,000,000 adds at the last 50,000 ms (bench_lib's timestamps).
 *     moving: 50 adds a millisecond at the clock; 3,000,000 adds (60 s) untimed, then 2,000,000
 *     timed, so that every span up to 60 s expires all the while it is timed. moving1: the same
 *     at 1 add a millisecond (3,000 s untimed, 2,000 s timed: spans up to 50 min expire all the
 *     while, 1 h from 600 s into it).
 *   Amounts: independent (splitmix64) from 1.00 to 1,000,000.00; BENCH_AMOUNTS=weyl: bench_dist's.
 *
 * Built against a library without spans (libtxstats before issue 21), SPANS must be one span.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <txstats/txstats.h>

#include "bench_util.h"

#define HEADER   16 /* keeps the caller's pointer 16-byte aligned */
#define MAXSP    8
#define SAMPLES  20000
#define FIXED_N  2000000L
#define WARM_N   3000000L
#define MAX_RNDS 99

static const int64_t T0 = INT64_C(1700000000000);
static int64_t now_ms;
static size_t live;

static int64_t sim_clock(void *ctx)
{
    (void)ctx;
    return now_ms;
}

static void *count_alloc(size_t n, void *ud)
{
    (void)ud;
    size_t *p = malloc(n + HEADER);
    if (!p)
        return NULL;
    *p = n;
    live += n;
    return (char *)p + HEADER;
}

static void count_free(void *q, void *ud)
{
    (void)ud;
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - HEADER);
    live -= *p;
    free(p);
}

static int weyl; /* BENCH_AMOUNTS=weyl: bench_dist.c's amounts instead */

/* Amounts from 1.00 to 1,000,000.00: splitmix64 of i (independent from one to the next), or
 * bench_dist.c's i * 2654435761 (a Weyl sequence: the oldest amounts of a page are often its
 * extremes, see bench/RESULTS.md). */
static txstats_amount_t amount_of(long i)
{
    uint64_t z = (uint64_t)i * 2654435761u;
    if (!weyl) {
        z = (uint64_t)i + UINT64_C(0x9e3779b97f4a7c15);
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        z ^= z >> 31;
    }
    return 1000000 + (txstats_amount_t)(z % 1000000000000u);
}

struct spans {
    unsigned n;
    int64_t ms[MAXSP];
    const char *text;
};

/* "60s,5m,1h,24h" (units ms, s, m, h; none: ms). 0 on success. */
static int parse_spans(const char *text, struct spans *sp)
{
    const char *p = text;
    sp->n = 0;
    sp->text = text;
    while (*p && sp->n < MAXSP) {
        char *end;
        long long v = strtoll(p, &end, 10);
        int64_t unit = 1;
        if (end[0] == 's')
            unit = 1000;
        else if (end[0] == 'm' && end[1] != 's')
            unit = 60000;
        else if (end[0] == 'h')
            unit = 3600000;
        end += unit != 1 ? 1 : (end[0] == 'm' && end[1] == 's') ? 2 : 0;
        if (end == p || v < 1 || (*end && *end != ','))
            return -1;
        sp->ms[sp->n++] = v * unit;
        p = *end ? end + 1 : end;
    }
    return *p || sp->n == 0 ? -1 : 0;
}

static int64_t longest(const struct spans *sp)
{
    int64_t l = 0;
    for (unsigned i = 0; i < sp->n; i++)
        l = sp->ms[i] > l ? sp->ms[i] : l;
    return l;
}

/* A fresh instance on the simulated clock; NULL (and a message) when refused. */
static txstats_t *make(const struct spans *sp, unsigned shards, int counted)
{
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    cfg.clock_ms = sim_clock;
    cfg.shards = shards;
    if (counted) {
        cfg.alloc = count_alloc;
        cfg.free = count_free;
    }
    cfg.window_ms = sp->ms[0];
#ifdef TXSTATS_MAX_SPANS
    if (sp->n > 1) {
        cfg.spans_ms = sp->ms;
        cfg.nspans = sp->n;
    }
#else
    if (sp->n > 1) {
        fprintf(stderr, "this library keeps one span\n");
        return NULL;
    }
#endif
    int rc = txstats_create(&t, &cfg);
    if (rc != TXSTATS_OK) {
        printf("spans=%s refused: %s\n", sp->text, txstats_strerror(rc));
        return NULL;
    }
    return t;
}

/* Statistics of span s now (span 0 only without spans). */
static int stats_of(txstats_t *t, unsigned s, txstats_summary_t *out)
{
#ifdef TXSTATS_MAX_SPANS
    return txstats_stats_span(t, s, out);
#else
    return s == 0 ? txstats_stats(t, out) : TXSTATS_EINVAL;
#endif
}

static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, key, n) == 0) {
            kib = atol(line + n);
            break;
        }
    if (f)
        fclose(f);
    return kib;
}

/* Timestamp of transaction j at `rate` a second. */
static int64_t ts_of(long j, long rate)
{
    return T0 + (int64_t)j * 1000 / rate;
}

/* The simulated traffic; wall ns per add, or -1 when an add fails. */
static double fill(txstats_t *t, long rate, long n)
{
    double t0 = now_ns();
    for (long j = 0; j < n; j++) {
        now_ms = ts_of(j, rate);
        int rc = txstats_add(t, amount_of(j), now_ms);
        if (rc != TXSTATS_OK) {
            fprintf(stderr, "add %ld: %s\n", j, txstats_strerror(rc));
            return -1;
        }
    }
    return n ? (now_ns() - t0) / (double)n : 0;
}

/* Distinct milliseconds holding a transaction in the last `span` ms (the clock at the last). */
static long used_ms(long rate, long n, int64_t span)
{
    long used = 0;
    int64_t prev = INT64_MIN;
    for (long j = n - 1; j >= 0 && ts_of(j, rate) > now_ms - span; j--) {
        used += ts_of(j, rate) != prev;
        prev = ts_of(j, rate);
    }
    return used;
}

/* Per span: the transactions it holds, then the median and p99 of single stats calls (the
 * spans in turn, SAMPLES each; the timer's own cost is printed apart). */
static void stats_latency(txstats_t *t, const struct spans *sp)
{
    static double v[MAXSP][SAMPLES], empty[SAMPLES];
    txstats_summary_t s;
    for (int i = 0; i < SAMPLES; i++) {
        for (unsigned k = 0; k < sp->n; k++) {
            double a = now_ns();
            stats_of(t, k, &s);
            v[k][i] = now_ns() - a;
        }
        double a = now_ns();
        empty[i] = now_ns() - a;
    }
    for (unsigned k = 0; k < sp->n; k++) {
        stats_of(t, k, &s);
        qsort(v[k], SAMPLES, sizeof(double), cmp_double);
        printf("  stats span=%lldms count=%llu median_ns=%.0f p99_ns=%.0f max_ns=%.0f\n",
               (long long)sp->ms[k], (unsigned long long)s.count, v[k][SAMPLES / 2],
               v[k][SAMPLES * 99 / 100], v[k][SAMPLES - 1]);
    }
    printf("  timer alone: median_ns=%.0f\n", median(empty, SAMPLES));
}

struct mem_case {
    struct spans sp;
    long rate, seconds;
    unsigned shards;
    int counted;
};

/* Held now: counted bytes, or VmRSS above `rss0` in bytes. */
static long long held(const struct mem_case *c, long rss0)
{
    return c->counted ? (long long)live : (status_kib("VmRSS:") - rss0) * 1024LL;
}

static void print_mem(const struct mem_case *c, txstats_t *t, long n, long long idle,
                      long long full, double ns)
{
    txstats_summary_t s = {0};
    stats_of(t, 0, &s);
    uint64_t in_longest = 0;
    for (unsigned k = 0; k < c->sp.n; k++)
        if (c->sp.ms[k] == longest(&c->sp) && stats_of(t, k, &s) == TXSTATS_OK)
            in_longest = s.count;
    long used = n ? used_ms(c->rate, n, longest(&c->sp)) : 0;
    printf("spans=%s rate=%ld seconds=%ld shards=%u mode=%s adds=%ld held_tx=%llu used_ms=%ld "
           "idle_B=%lld full_B=%lld B_per_tx=%.1f B_per_used_ms=%.1f",
           c->sp.text, c->rate, c->seconds, c->shards, c->counted ? "count" : "rss", n,
           (unsigned long long)in_longest, used, idle, full,
           in_longest ? (double)(full - idle) / (double)in_longest : 0.0,
           used ? (double)(full - idle) / (double)used : 0.0);
    if (!c->counted)
        printf(" hwm_B=%lld ns_per_add=%.1f", status_kib("VmHWM:") * 1024LL, ns);
    printf("\n");
}

static int run_mem(const struct mem_case *c)
{
    long rss0 = status_kib("VmRSS:");
    now_ms = T0;
    live = 0;
    txstats_t *t = make(&c->sp, c->shards, c->counted);
    if (!t)
        return 1;
    txstats_summary_t s;
    stats_of(t, 0, &s);
    long long idle = held(c, rss0);
    long n = c->rate * c->seconds;
    double ns = fill(t, c->rate, n);
    if (ns < 0)
        return 1;
    long long full = held(c, rss0);
    print_mem(c, t, n, idle, full, ns);
    if (!c->counted && n)
        stats_latency(t, &c->sp);
    now_ms += longest(&c->sp);
    stats_of(t, 0, &s);
    printf("  drained (clock one longest span on, no traffic): held_B=%lld count=%llu\n",
           held(c, rss0), (unsigned long long)s.count);
    txstats_destroy(t);
    return 0;
}

/* ---- add: configurations in turn ---------------------------------------------------------- */

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One run: wall and CPU ns per timed add; per_ms 0: the fixed clock, else adds a millisecond. */
static int add_run(const struct spans *sp, long per_ms, double *wall, double *cpu)
{
    now_ms = T0;
    txstats_t *t = make(sp, 1, 0);
    if (!t)
        return -1;
    long warm = per_ms ? WARM_N : 0, i = 0;
    for (; i < warm; i++) {
        now_ms = T0 + i / per_ms;
        txstats_add(t, amount_of(i), now_ms);
    }
    double w0 = now_ns(), c0 = cpu_ns();
    for (; i < warm + FIXED_N; i++) {
        if (per_ms)
            now_ms = T0 + i / per_ms;
        txstats_add(t, amount_of(i), per_ms ? now_ms : T0 - i % 50000);
    }
    *wall = (now_ns() - w0) / FIXED_N;
    *cpu = (cpu_ns() - c0) / FIXED_N;
    txstats_destroy(t);
    return 0;
}

struct add_table {
    unsigned n;
    struct spans sp[MAXSP];
    double wall[MAXSP][MAX_RNDS], cpu[MAXSP][MAX_RNDS];
    double ratio[MAXSP][MAX_RNDS], cratio[MAXSP][MAX_RNDS];
};

static void add_summary(struct add_table *a, int rounds, const char *wl)
{
    printf("median over %d rounds (%s clock):\n", rounds, wl);
    for (unsigned k = 0; k < a->n; k++) {
        printf("  %-16s %6.1f ns/add (CPU %6.1f)", a->sp[k].text, median(a->wall[k], rounds),
               median(a->cpu[k], rounds));
        if (k > 0)
            printf("  ratio to %s: %.3f (CPU time %.3f)", a->sp[0].text,
                   median(a->ratio[k], rounds), median(a->cratio[k], rounds));
        printf("\n");
    }
}

static int run_add(int rounds, const char *wl, char **texts, unsigned n)
{
    static struct add_table a;
    long per_ms = strcmp(wl, "moving") == 0 ? 50 : strcmp(wl, "moving1") == 0 ? 1 : 0;
    a.n = n;
    for (unsigned k = 0; k < n; k++)
        if (parse_spans(texts[k], &a.sp[k]))
            return 2;
    for (int r = 0; r < rounds; r++) {
        for (unsigned j = 0; j < n; j++) {
            unsigned k = (j + (unsigned)r) % n;
            if (add_run(&a.sp[k], per_ms, &a.wall[k][r], &a.cpu[k][r]))
                return 1;
        }
        printf("round %2d:", r + 1);
        for (unsigned k = 0; k < n; k++) {
            a.ratio[k][r] = a.wall[k][r] / a.wall[0][r];
            a.cratio[k][r] = a.cpu[k][r] / a.cpu[0][r];
            printf(" %s %.1f ns (x%.3f, CPU x%.3f);", a.sp[k].text, a.wall[k][r], a.ratio[k][r],
                   a.cratio[k][r]);
        }
        printf("\n");
        fflush(stdout);
    }
    add_summary(&a, rounds, wl);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_spans mem SPANS RATE SECONDS count|rss [SHARDS]\n"
                    "       bench_spans add ROUNDS fixed|moving|moving1 SPANS_A SPANS_B...\n");
    return 2;
}

int main(int argc, char **argv)
{
    weyl = getenv("BENCH_AMOUNTS") && strcmp(getenv("BENCH_AMOUNTS"), "weyl") == 0;
    if (argc >= 6 && strcmp(argv[1], "mem") == 0) {
        struct mem_case c = {.rate = atol(argv[3]), .seconds = atol(argv[4])};
        c.counted = strcmp(argv[5], "count") == 0;
        c.shards = argc > 6 ? (unsigned)atoi(argv[6]) : 1;
        if (parse_spans(argv[2], &c.sp) || c.rate < 0 || c.seconds < 0)
            return usage();
        return run_mem(&c);
    }
    if (argc >= 5 && strcmp(argv[1], "add") == 0) {
        int rounds = atoi(argv[2]);
        if (rounds < 1 || rounds > MAX_RNDS || argc - 4 > MAXSP)
            return usage();
        return run_add(rounds, argv[3], argv + 4, (unsigned)(argc - 4));
    }
    return usage();
}
