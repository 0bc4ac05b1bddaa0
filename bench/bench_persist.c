/* SPDX-License-Identifier: MIT */
/*
 * What checkpoints, snapshots and recovery cost in memory and in waiting (issues 25 and 28),
 * through the public API only. One table row per run; every figure a median of REPS runs.
 *
 *   bench_persist ckpt N LISTABLE     a 60 s window on a fake clock holding N transactions
 *                                     (amounts uniform in 0.01..100,000.00), journaled; then
 *                                     txstats_checkpoint(), txstats_save_bin(), txstats_save():
 *                                     the window's bytes and each one's extra peak, counted
 *                                     through cfg.alloc, and its wall time.
 *   bench_persist wait N [SECONDS]    2 threads calling txstats_add() flat out on a window that
 *                                     holds N, while the main thread checkpoints back to back,
 *                                     against the same without checkpoints (alternating phases of
 *                                     SECONDS, default 3): the longest add and its p99.99.
 *   bench_persist rss N SECONDS       the same 2 adding threads, in a child process each run,
 *                                     with background checkpoints every second against none:
 *                                     VmRSS once the window holds N, sampled for SECONDS.
 *   bench_persist recover N LISTABLE  fill (in a child), checkpoint, txstats_destroy(); then
 *                                     txstats_open_dir() the directory in a fresh child: its
 *                                     time and VmHWM against the filler's VmRSS after the fill.
 *
 * LISTABLE is max_retained; 0 means the default (TXSTATS_DEFAULT_MAX_RETAINED). The window slides
 * on a clock driven by the adds (60 s of clock per N adds), so it holds about N throughout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <txstats/txstats.h>

#include "bench_util.h"

#define REPS      3
#define WINDOW_MS 60000
#define BASE_MS   INT64_C(1700000000000)
#define MIB       1048576.0

/* ---- A counting allocator: live bytes and their peak ------------------------------------------
 */

/* The size in a 64-byte header: the caller's pointer stays 64-byte aligned (the instance's
 * structure asks for a cache line). */
#define HEADER 64

static atomic_size_t live, peak;

static void *count_alloc(size_t n, void *ud)
{
    (void)ud;
    size_t *p = aligned_alloc(HEADER, (n + 2 * HEADER - 1) / HEADER * HEADER);
    if (!p)
        return NULL;
    *p = n;
    size_t now = atomic_fetch_add(&live, n) + n;
    size_t pk = atomic_load(&peak);
    while (now > pk && !atomic_compare_exchange_weak(&peak, &pk, now))
        ;
    return (char *)p + HEADER;
}

static void count_free(void *q, void *ud)
{
    (void)ud;
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - HEADER);
    atomic_fetch_sub(&live, *p);
    free(p);
}

/* ---- A fake clock, advanced by the adds ---------------------------------------------------------
 */

static _Atomic int64_t fake_now = BASE_MS;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&fake_now);
}

static void clock_at_least(int64_t ms)
{
    int64_t cur = atomic_load(&fake_now);
    while (ms > cur && !atomic_compare_exchange_weak(&fake_now, &cur, ms))
        ;
}

static uint64_t splitmix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* Uniform in 0.01..100,000.00 (micro-units, whole cents). */
static txstats_amount_t amount_of(uint64_t i)
{
    return (txstats_amount_t)(1 + splitmix(i) % UINT64_C(10000000)) * 10000;
}

/* ---- Misc ---------------------------------------------------------------------------------------
 */

static long status_kib(const char *field)
{
    char line[256];
    long kib = -1;
    size_t len = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, len) && line[len] == ':') {
            kib = atol(line + len + 1);
            break;
        }
    if (f)
        fclose(f);
    return kib;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_persist: %s: %s (errno %s)\n", what, txstats_strerror(rc),
            strerror(errno));
    exit(1);
}

static char *make_dir(void)
{
    static char dir[64];
    strcpy(dir, "/tmp/txstats-persist-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    return dir;
}

static void remove_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_persist: could not remove %s\n", dir);
}

static long long file_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static txstats_t *make_instance(size_t listable, bool counting)
{
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.window_ms = WINDOW_MS;
    cfg.clock_ms = fake_clock;
    if (listable)
        cfg.max_retained = listable;
    if (counting) {
        cfg.alloc = count_alloc;
        cfg.free = count_free;
    }
    txstats_t *t;
    int rc = txstats_create(&t, &cfg);
    if (rc != TXSTATS_OK)
        die("txstats_create", rc);
    return t;
}

static void open_dir(txstats_t *t, const char *dir, int64_t checkpoint_interval_ms)
{
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.checkpoint_interval_ms = checkpoint_interval_ms;
    int rc = txstats_open_dir(t, dir, &d, NULL);
    if (rc != TXSTATS_OK)
        die("txstats_open_dir", rc);
}

/* ---- Filling a window: N transactions spread over it, clock at BASE_MS --------------------------
 */

#define BATCH 10000

struct fill {
    txstats_t *t;
    long n;
    int part, parts;
    atomic_long stored;
};

static void *fill_main(void *arg)
{
    struct fill *f = arg;
    txstats_tx_t *tx = malloc(BATCH * sizeof(*tx));
    if (!tx)
        exit(1);
    long batches = (f->n + BATCH - 1) / BATCH;
    for (long b = f->part; b < batches; b += f->parts) {
        size_t k = 0, stored = 0;
        for (long i = b * BATCH; i < f->n && i < (b + 1) * BATCH; i++, k++) {
            tx[k].amount = amount_of((uint64_t)i);
            tx[k].timestamp_ms = BASE_MS - (WINDOW_MS - 1) + (int64_t)i * WINDOW_MS / f->n;
        }
        int rc = txstats_add_batch(f->t, tx, k, NULL, &stored);
        if (rc != TXSTATS_OK)
            die("txstats_add_batch", rc);
        atomic_fetch_add(&f->stored, (long)stored);
    }
    free(tx);
    return NULL;
}

/* Batches alternate between 2 threads, so that both shards hold every millisecond. */
static void fill(txstats_t *t, long n)
{
    atomic_store(&fake_now, BASE_MS);
    struct fill parts[2];
    pthread_t th[2];
    atomic_long stored = 0;
    for (int i = 0; i < 2; i++) {
        parts[i].t = t;
        parts[i].n = n;
        parts[i].part = i;
        parts[i].parts = 2;
        atomic_init(&parts[i].stored, 0);
        pthread_create(&th[i], NULL, fill_main, &parts[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        stored += atomic_load(&parts[i].stored);
    }
    if (stored != n) {
        fprintf(stderr, "bench_persist: %ld of %ld stored\n", (long)stored, n);
        exit(1);
    }
}

/* ---- ckpt ---------------------------------------------------------------------------------------
 */

enum { OP_CHECKPOINT, OP_SAVE_BIN, OP_SAVE };

/* Extra peak bytes and wall ms of one operation, medians of REPS. */
static void measure_op(txstats_t *t, int op, const char *path, double *extra_mib, double *ms)
{
    double ex[REPS], w[REPS];
    for (int r = 0; r < REPS; r++) {
        size_t before = atomic_load(&live);
        atomic_store(&peak, before);
        double t0 = now_ns();
        int rc = op == OP_CHECKPOINT ? txstats_checkpoint(t)
                 : op == OP_SAVE_BIN ? txstats_save_bin(t, path)
                                     : txstats_save(t, path);
        w[r] = (now_ns() - t0) / 1e6;
        if (rc != TXSTATS_OK)
            die("checkpoint/save", rc);
        ex[r] = (double)(atomic_load(&peak) - before) / MIB;
    }
    *extra_mib = median(ex, REPS);
    *ms = median(w, REPS);
}

static int cmd_ckpt(long n, size_t listable)
{
    char *dir = make_dir();
    char path[128];
    txstats_t *t = make_instance(listable, true);
    open_dir(t, dir, 0);
    fill(t, n);
    double window = (double)atomic_load(&live) / MIB;
    double cx, cms, bx, bms, sx, sms;
    measure_op(t, OP_CHECKPOINT, NULL, &cx, &cms);
    snprintf(path, sizeof(path), "%s/checkpoint.bin", dir);
    long long cbytes = file_bytes(path);
    snprintf(path, sizeof(path), "%s/snap.bin", dir);
    measure_op(t, OP_SAVE_BIN, path, &bx, &bms);
    snprintf(path, sizeof(path), "%s/snap.json", dir);
    measure_op(t, OP_SAVE, path, &sx, &sms);
    long long jbytes = file_bytes(path);
    char lst[32];
    snprintf(lst, sizeof(lst), "%zu", listable);
    printf("ckpt %10ld tx  max_retained %-9s window %7.1f MiB | checkpoint +%6.1f MiB (%4.2fx) "
           "%6.0f ms, %6.1f MiB file | save_bin +%6.1f MiB %6.0f ms | save (JSON) +%6.1f MiB "
           "%6.0f ms, %6.1f MiB file\n",
           n, listable ? lst : "default", window, cx, cx / window, cms, (double)cbytes / MIB, bx,
           bms, sx, sms, (double)jbytes / MIB);
    fflush(stdout);
    txstats_destroy(t);
    remove_dir(dir);
    return 0;
}

/* ---- Adding threads on a clock that moves 60 s per N adds ---------------------------------------
 */

/* Latency histogram in ns: exact below 64, then 32 buckets per power of two (3 %). */
#define HBUCKETS (64 + 40 * 32)

static int hbucket(uint64_t ns)
{
    if (ns < 64)
        return (int)ns;
    int e = 63 - __builtin_clzll(ns); /* >= 6 */
    if (e > 45)
        return HBUCKETS - 1;
    return 64 + (e - 6) * 32 + (int)((ns >> (e - 5)) & 31);
}

static uint64_t hbucket_top(int b) /* the largest ns in bucket b */
{
    if (b < 64)
        return (uint64_t)b;
    int e = (b - 64) / 32 + 6, sub = (b - 64) % 32;
    return ((uint64_t)(32 + sub + 1) << (e - 5)) - 1;
}

#define PHASES (2 * REPS)

struct hist {
    uint64_t count[HBUCKETS];
    uint64_t n, max_ns;
};

struct adder {
    txstats_t *t;
    long window_n;      /* the clock moves 60 s per window_n adds */
    struct hist *hists; /* PHASES of them, or NULL: no timing */
    pthread_t th;
    uint64_t seed;
};

static atomic_bool adding;
static atomic_int phase = -1; /* where adds are recorded; -1: nowhere */
static atomic_long added;     /* since the clock started moving */
static atomic_long refused;

static void *adder_main(void *arg)
{
    struct adder *a = arg;
    uint64_t i = a->seed;
    while (atomic_load_explicit(&adding, memory_order_relaxed)) {
        for (int k = 0; k < 256; k++) {
            int p = atomic_load_explicit(&phase, memory_order_relaxed);
            int64_t ts = atomic_load_explicit(&fake_now, memory_order_relaxed);
            txstats_amount_t amount = amount_of(i++);
            if (a->hists && p >= 0) {
                double t0 = now_ns();
                int rc = txstats_add(a->t, amount, ts);
                uint64_t ns = (uint64_t)(now_ns() - t0);
                struct hist *h = &a->hists[p];
                h->count[hbucket(ns)]++;
                h->n++;
                if (ns > h->max_ns)
                    h->max_ns = ns;
                if (rc != TXSTATS_OK)
                    atomic_fetch_add(&refused, 1);
            } else if (txstats_add(a->t, amount, ts) != TXSTATS_OK) {
                atomic_fetch_add(&refused, 1);
            }
        }
        long c = atomic_fetch_add(&added, 256) + 256;
        clock_at_least(BASE_MS + (int64_t)c * WINDOW_MS / a->window_n);
    }
    return NULL;
}

static void start_adders(struct adder *a, txstats_t *t, long window_n, struct hist *h0,
                         struct hist *h1)
{
    atomic_store(&adding, true);
    for (int i = 0; i < 2; i++) {
        a[i].t = t;
        a[i].window_n = window_n;
        a[i].hists = i ? h1 : h0;
        a[i].seed = (uint64_t)(i + 1) << 40;
        pthread_create(&a[i].th, NULL, adder_main, &a[i]);
    }
}

static void stop_adders(struct adder *a)
{
    atomic_store(&adding, false);
    for (int i = 0; i < 2; i++)
        pthread_join(a[i].th, NULL);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- wait
 * -----------------------------------------------------------------------------------------
 */

static int cmd_wait(long n, double seconds)
{
    char *dir = make_dir();
    txstats_t *t = make_instance(0, false);
    open_dir(t, dir, 0);
    fill(t, n);
    atomic_store(&added, 0); /* the clock is at BASE_MS: it moves on from there */
    struct hist *h = calloc(2 * PHASES, sizeof(*h));
    if (!h)
        return 1;
    struct adder a[2];
    start_adders(a, t, n, h, h + PHASES);
    sleep_ms(500);
    double ckpt_ms[PHASES * 64];
    int nckpt = 0;
    long adds0[PHASES];
    double secs[PHASES];
    /* ABBA ABBA...: phase 2r+0 and 2r+1 are one with checkpoints (even) and one without (odd). */
    for (int r = 0; r < REPS; r++)
        for (int k = 0; k < 2; k++) {
            int with = (r % 2) ? !k : k == 0; /* order alternates between repetitions */
            int p = 2 * r + (with ? 0 : 1);
            long a0 = atomic_load(&added);
            double t0 = now_ns(), end = t0 + seconds * 1e9;
            atomic_store(&phase, p);
            if (with) {
                while (now_ns() < end) {
                    double c0 = now_ns();
                    int rc = txstats_checkpoint(t);
                    if (rc != TXSTATS_OK)
                        die("txstats_checkpoint", rc);
                    if (nckpt < PHASES * 64)
                        ckpt_ms[nckpt++] = (now_ns() - c0) / 1e6;
                }
            } else {
                while (now_ns() < end)
                    sleep_ms(10);
            }
            atomic_store(&phase, -1);
            adds0[p] = atomic_load(&added) - a0;
            secs[p] = (now_ns() - t0) / 1e9;
            sleep_ms(200);
        }
    stop_adders(a);
    /* Per phase: both threads' histograms merged. */
    double mx[2][REPS], p9999[2][REPS], rate[2][REPS];
    for (int p = 0; p < PHASES; p++) {
        struct hist m = {{0}, 0, 0};
        for (int th = 0; th < 2; th++) {
            struct hist *s = &h[th * PHASES + p];
            for (int b = 0; b < HBUCKETS; b++)
                m.count[b] += s->count[b];
            m.n += s->n;
            if (s->max_ns > m.max_ns)
                m.max_ns = s->max_ns;
        }
        uint64_t rank = (m.n * 9999 + 9999) / 10000, seen = 0;
        int b = 0;
        for (; b < HBUCKETS - 1; b++)
            if ((seen += m.count[b]) >= rank)
                break;
        int with = p % 2 == 0;
        mx[!with][p / 2] = (double)m.max_ns / 1e3;
        p9999[!with][p / 2] = (double)hbucket_top(b) / 1e3;
        rate[!with][p / 2] = (double)adds0[p] / secs[p] / 1e6;
    }
    double ck = nckpt ? median(ckpt_ms, nckpt) : 0;
    for (int w = 0; w < 2; w++)
        printf("wait %10ld tx  %-19s longest add %9.1f us  p99.99 %7.1f us  adds %5.2f M/s\n", n,
               w ? "without checkpoints" : "with checkpoints", median(mx[w], REPS),
               median(p9999[w], REPS), median(rate[w], REPS));
    printf("     (%d checkpoints back to back, median %.0f ms; medians of %d phases of %.0f s "
           "each, alternating; %ld adds refused)\n",
           nckpt, ck, REPS, seconds, (long)atomic_load(&refused));
    /* the longest of all phases, too */
    double all[2] = {0, 0};
    for (int w = 0; w < 2; w++)
        for (int r = 0; r < REPS; r++)
            if (mx[w][r] > all[w])
                all[w] = mx[w][r];
    printf("     longest add of all phases: with %.1f us, without %.1f us\n", all[0], all[1]);
    fflush(stdout);
    free(h);
    txstats_destroy(t);
    remove_dir(dir);
    return 0;
}

/* ---- rss ----------------------------------------------------------------------------------------
 */

struct rss_result {
    double median_mib, max_mib, hwm_mib, adds_per_s;
    long checkpoints;
};

static atomic_long checkpoints_done;

static void on_checkpoint(int status, int error, void *ctx)
{
    (void)error;
    (void)ctx;
    if (status == TXSTATS_OK)
        atomic_fetch_add(&checkpoints_done, 1);
}

/* In a child process: fill the window to N with 2 adding threads, then sample VmRSS. */
static struct rss_result rss_child(long n, double seconds, bool checkpoints)
{
    char *dir = make_dir();
    txstats_t *t = make_instance(0, false);
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.checkpoint_interval_ms = checkpoints ? 1000 : 0;
    d.on_checkpoint = on_checkpoint;
    int rc = txstats_open_dir(t, dir, &d, NULL);
    if (rc != TXSTATS_OK)
        die("txstats_open_dir", rc);
    struct adder a[2];
    start_adders(a, t, n, NULL, NULL);
    while (atomic_load(&added) < n)
        sleep_ms(20);
    long a0 = atomic_load(&added);
    double t0 = now_ns(), end = t0 + seconds * 1e9;
    double samples[4096];
    int ns = 0;
    while (now_ns() < end && ns < 4096) {
        sleep_ms(50);
        samples[ns++] = (double)status_kib("VmRSS") / 1024.0;
    }
    struct rss_result res;
    res.adds_per_s = (double)(atomic_load(&added) - a0) / ((now_ns() - t0) / 1e9);
    stop_adders(a);
    res.max_mib = 0;
    for (int i = 0; i < ns; i++)
        if (samples[i] > res.max_mib)
            res.max_mib = samples[i];
    res.median_mib = median(samples, ns);
    res.hwm_mib = (double)status_kib("VmHWM") / 1024.0;
    res.checkpoints = atomic_load(&checkpoints_done);
    txstats_destroy(t);
    remove_dir(dir);
    return res;
}

/* Runs fn in a child process; its result comes back through a pipe. */
static int in_child(void *out, size_t len, void (*fn)(void *out, void *arg), void *arg)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        fn(out, arg);
        ssize_t w = write(fds[1], out, len);
        _exit(w == (ssize_t)len ? 0 : 1);
    }
    close(fds[1]);
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fds[0], (char *)out + got, len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return got == len && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

struct rss_arg {
    long n;
    double seconds;
    bool checkpoints;
};

static void rss_fn(void *out, void *arg)
{
    struct rss_arg *a = arg;
    *(struct rss_result *)out = rss_child(a->n, a->seconds, a->checkpoints);
}

static int cmd_rss(long n, double seconds)
{
    double med[2][REPS], mx[2][REPS], hwm[2][REPS], rate[2][REPS], ratio[REPS];
    long ck[REPS];
    for (int r = 0; r < REPS; r++)
        for (int k = 0; k < 2; k++) {
            int with = (r % 2) ? !k : k == 0;
            struct rss_arg arg = {n, seconds, with};
            struct rss_result res;
            if (in_child(&res, sizeof(res), rss_fn, &arg) != 0) {
                fprintf(stderr, "bench_persist: rss child failed\n");
                return 1;
            }
            med[!with][r] = res.median_mib;
            mx[!with][r] = res.max_mib;
            hwm[!with][r] = res.hwm_mib;
            rate[!with][r] = res.adds_per_s / 1e6;
            if (with)
                ck[r] = res.checkpoints;
        }
    for (int r = 0; r < REPS; r++)
        ratio[r] = med[0][r] / med[1][r];
    double mw = median(med[0], REPS), mo = median(med[1], REPS);
    double xw = median(mx[0], REPS), xo = median(mx[1], REPS);
    double hw = median(hwm[0], REPS), ho = median(hwm[1], REPS);
    printf("rss  %10ld tx  VmRSS with checkpoints every 1 s / off: median %6.1f / %6.1f MiB = "
           "%.2fx (per-run %.2fx) | max %6.1f / %6.1f MiB = %.2fx | VmHWM %6.1f / %6.1f MiB = "
           "%.2fx, %+.1f MiB; target <= 1.15x + 8 MiB\n",
           n, mw, mo, mw / mo, median(ratio, REPS), xw, xo, xw / xo, hw, ho, hw / ho, hw - ho);
    long ckm = ck[0];
    for (int r = 1; r < REPS; r++)
        ckm = ck[r] < ckm ? ck[r] : ckm;
    printf("     (adds %.2f M/s with, %.2f M/s without; at least %ld background checkpoints per "
           "run; %d runs each, child processes, alternating; sampled every 50 ms for %.0f s "
           "once the window held N)\n",
           median(rate[0], REPS), median(rate[1], REPS), ckm, REPS, seconds);
    fflush(stdout);
    return 0;
}

/* ---- recover ------------------------------------------------------------------------------------
 */

struct recover_arg {
    const char *dir;
    long n;
    size_t listable;
};

struct fill_result {
    double rss_mib, rss_after_ckpt_mib, ckpt_ms;
};

struct recover_result {
    double open_ms, report_ms, hwm_mib, rss_mib;
    uint64_t count;
};

static void filler_fn(void *out, void *arg)
{
    struct recover_arg *a = arg;
    struct fill_result *res = out;
    txstats_t *t = make_instance(a->listable, false);
    open_dir(t, a->dir, 0);
    fill(t, a->n);
    res->rss_mib = (double)status_kib("VmRSS") / 1024.0;
    double t0 = now_ns();
    int rc = txstats_checkpoint(t);
    if (rc != TXSTATS_OK)
        die("txstats_checkpoint", rc);
    res->ckpt_ms = (now_ns() - t0) / 1e6;
    res->rss_after_ckpt_mib = (double)status_kib("VmRSS") / 1024.0;
    txstats_destroy(t);
}

static void recoverer_fn(void *out, void *arg)
{
    struct recover_arg *a = arg;
    struct recover_result *res = out;
    atomic_store(&fake_now, BASE_MS);
    txstats_t *t = make_instance(a->listable, false);
    txstats_recovery_t report;
    double t0 = now_ns();
    int rc = txstats_open_dir(t, a->dir, NULL, &report);
    res->open_ms = (now_ns() - t0) / 1e6;
    if (rc != TXSTATS_OK)
        die("txstats_open_dir (recovery)", rc);
    res->report_ms = (double)report.duration_ms;
    res->hwm_mib = (double)status_kib("VmHWM") / 1024.0;
    res->rss_mib = (double)status_kib("VmRSS") / 1024.0;
    txstats_summary_t s;
    txstats_stats(t, &s);
    res->count = s.count;
    txstats_destroy(t);
}

static int cmd_recover(long n, size_t listable)
{
    char *dir = make_dir();
    struct recover_arg arg = {dir, n, listable};
    struct fill_result f;
    if (in_child(&f, sizeof(f), filler_fn, &arg) != 0) {
        fprintf(stderr, "bench_persist: filling child failed\n");
        return 1;
    }
    double open_ms[REPS], rep_ms[REPS], hwm[REPS], rss[REPS];
    for (int r = 0; r < REPS; r++) {
        struct recover_result res;
        if (in_child(&res, sizeof(res), recoverer_fn, &arg) != 0) {
            fprintf(stderr, "bench_persist: recovering child failed\n");
            return 1;
        }
        if (res.count != (uint64_t)n) {
            fprintf(stderr, "bench_persist: recovered %llu of %ld\n", (unsigned long long)res.count,
                    n);
            return 1;
        }
        open_ms[r] = res.open_ms;
        rep_ms[r] = res.report_ms;
        hwm[r] = res.hwm_mib;
        rss[r] = res.rss_mib;
    }
    double h = median(hwm, REPS);
    char lst[32];
    snprintf(lst, sizeof(lst), "%zu", listable);
    printf("recover %7ld tx  max_retained %-9s RSS before the stop %7.1f MiB | txstats_open_dir "
           "%6.0f ms (report %5.0f ms), peak RSS (VmHWM) %7.1f MiB = %.2fx, RSS after %7.1f MiB; "
           "target <= 1.15x + 8 MiB = %.1f MiB\n",
           n, listable ? lst : "default", f.rss_mib, median(open_ms, REPS), median(rep_ms, REPS), h,
           h / f.rss_mib, median(rss, REPS), 1.15 * f.rss_mib + 8);
    printf("     (filler: RSS %.1f MiB after its checkpoint of %.0f ms; %d recoveries, each in a "
           "fresh child process)\n",
           f.rss_after_ckpt_mib, f.ckpt_ms, REPS);
    fflush(stdout);
    remove_dir(dir);
    return 0;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s ckpt N LISTABLE | wait N [SECONDS] | rss N SECONDS | recover N LISTABLE\n"
            "       (LISTABLE: max_retained, 0 for the default)\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage(argv[0]);
    long n = atol(argv[2]);
    if (n < 1)
        return usage(argv[0]);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "ckpt") && argc == 4)
        return cmd_ckpt(n, (size_t)atol(argv[3]));
    if (!strcmp(cmd, "wait") && argc <= 4)
        return cmd_wait(n, argc == 4 ? atof(argv[3]) : 3.0);
    if (!strcmp(cmd, "rss") && argc == 4)
        return cmd_rss(n, atof(argv[3]));
    if (!strcmp(cmd, "recover") && argc == 4)
        return cmd_recover(n, (size_t)atol(argv[3]));
    return usage(argv[0]);
}
