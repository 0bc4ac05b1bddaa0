/* SPDX-License-Identifier: MIT */
/*
 * Soak: saturating POSTs for longer than the window, with periodic GET and DELETE. Fails on any
 * connection error or 5xx, or when the server's memory keeps growing once the window is full.
 *
 * Memory: VmRSS is read every 250 ms; each 5 s sample keeps the lowest reading (the floor: what
 * the server holds between checkpoints) and the highest (a checkpoint in progress). Growth is
 * judged on the floor, over the steady part (from twice the window on), two ways:
 * - the least-squares slope over the second half of the steady samples is at most
 *   MAX_SLOPE_MIB_MIN;
 * - no floor in that second half exceeds the highest floor of the first half by more than
 *   STEP_MARGIN_MIB.
 * So a bounded step (an arena, a buffer sized once) passes only when it came early enough to be
 * followed by a flat second half; a step late in the run, or a creep, fails. Before the clock
 * starts, every worker thread serves one request of each kind, so that the stacks they touch
 * (about 20 KiB each, 256 threads) are not counted as growth.
 *
 * usage: soak PATH-TO-txstats-server SECONDS WINDOW_MS
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <txstats/txstats.h>

#include "harness.h"

#define POSTERS           3
#define THREADS           256 /* the server's default --threads, given explicitly */
#define SAMPLE_S          5
#define MAX_SAMPLES       4096
#define MAX_SLOPE_MIB_MIN 2.0
#define STEP_MARGIN_MIB   4.0

static atomic_bool stop;
static atomic_long posts, errors, server_errors;
static int port;
static int64_t window_ms;

static void count(const struct resp *r, int rc)
{
    if (rc != 0)
        atomic_fetch_add(&errors, 1);
    else if (r->status >= 500)
        atomic_fetch_add(&server_errors, 1);
}

static void *poster(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    int fd = http_connect(port);
    while (!atomic_load(&stop)) {
        char a[32], ts[32], body[128];
        txstats_amount_format((txstats_amount_t)(rand_r(&seed) % 100000000), a, sizeof(a));
        txstats_timestamp_format(now_ms() - rand_r(&seed) % window_ms, ts, sizeof(ts));
        int n = snprintf(body, sizeof(body), "{\"amount\":\"%s\",\"timestamp\":\"%s\"}", a, ts);
        struct resp r;
        int rc = http_request(fd, "POST", "/transactions", NULL, body, (size_t)n, &r);
        count(&r, rc);
        if (rc == 0 && (r.status == 201 || r.status == 204))
            atomic_fetch_add(&posts, 1);
        resp_free(&r);
        if (rc != 0) {
            close(fd);
            fd = http_connect(port);
        }
    }
    close(fd);
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    for (int tick = 1; !atomic_load(&stop); tick++) {
        struct resp r;
        count(&r, http(port, "GET", "/statistics", NULL, &r));
        resp_free(&r);
        count(&r, http(port, "GET", "/transactions?limit=1000", NULL, &r));
        resp_free(&r);
        if (tick % 20 == 0) { /* a DELETE every 20 s */
            count(&r, http(port, "DELETE", "/transactions", NULL, &r));
            resp_free(&r);
        }
        sleep(1);
    }
    return NULL;
}

/* Every worker thread serves a POST, a statistics and a listing request: THREADS keep-alive
 * connections open at once each hold a thread of their own. */
static void warm_up(void)
{
    static int fd[THREADS];
    char ts[32], body[128];
    txstats_timestamp_format(now_ms(), ts, sizeof(ts));
    int n = snprintf(body, sizeof(body), "{\"amount\":\"1.00\",\"timestamp\":\"%s\"}", ts);
    for (int i = 0; i < THREADS; i++)
        fd[i] = http_connect(port);
    for (int i = 0; i < THREADS; i++) {
        struct resp r;
        count(&r, http_request(fd[i], "POST", "/transactions", NULL, body, (size_t)n, &r));
        resp_free(&r);
        count(&r, http_request(fd[i], "GET", "/statistics", NULL, NULL, 0, &r));
        resp_free(&r);
        count(&r, http_request(fd[i], "GET", "/transactions?limit=1000", NULL, NULL, 0, &r));
        resp_free(&r);
    }
    for (int i = 0; i < THREADS; i++)
        if (fd[i] >= 0)
            close(fd[i]);
}

struct sample {
    int t;
    double floor, peak; /* MiB */
};

/* Least-squares slope of the floors of s[from..to), in MiB per minute. */
static double slope(const struct sample *s, int from, int to)
{
    double n = to - from, st = 0, sf = 0, stt = 0, stf = 0;
    for (int i = from; i < to; i++) {
        st += s[i].t;
        sf += s[i].floor;
        stt += (double)s[i].t * s[i].t;
        stf += s[i].t * s[i].floor;
    }
    double d = n * stt - st * st;
    return d > 0 ? (n * stf - st * sf) / d * 60 : 0;
}

static double highest_floor(const struct sample *s, int from, int to)
{
    double m = 0;
    for (int i = from; i < to; i++)
        m = s[i].floor > m ? s[i].floor : m;
    return m;
}

/* The verdict on memory: true when it grew (see the top of the file). */
static bool judge(const struct sample *s, int n, int steady)
{
    int k = n - steady;
    if (k < 4) {
        printf("soak: only %d samples after the window filled (at least 4): run longer\n", k);
        return true;
    }
    int half = steady + k / 2;
    double sl = slope(s, half, n), before = highest_floor(s, steady, half),
           after = highest_floor(s, half, n);
    bool grew = sl > MAX_SLOPE_MIB_MIN || after > before + STEP_MARGIN_MIB;
    printf("soak: steady from t=%d s; floor slope over t=%d..%d s: %+.2f MiB/min (at most %.1f); "
           "highest floor there %.1f MiB, before it %.1f MiB (at most +%.1f): %s\n",
           s[steady].t, s[half].t, s[n - 1].t, sl, MAX_SLOPE_MIB_MIN, after, before,
           STEP_MARGIN_MIB, grew ? "GROWING" : "flat");
    return grew;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s PATH-TO-txstats-server SECONDS WINDOW_MS\n", argv[0]);
        return 2;
    }
    server_bin = argv[1];
    int seconds = atoi(argv[2]);
    window_ms = atoll(argv[3]);
    signal(SIGPIPE, SIG_IGN);
    struct server s;
    server_init(&s);
    const char *args[] = {"--window-ms", argv[3], "--threads", "256", NULL};
    if (server_start(&s, args) != 0) {
        fprintf(stderr, "the server did not start\n");
        return 1;
    }
    port = s.port;
    warm_up();
    pthread_t th[POSTERS + 1];
    for (uintptr_t i = 0; i < POSTERS; i++)
        pthread_create(&th[i], NULL, poster, (void *)(i + 1));
    pthread_create(&th[POSTERS], NULL, reader, NULL);
    static struct sample smp[MAX_SAMPLES];
    int nsmp = 0, steady = -1;
    long last_posts = 0;
    int64_t t0 = now_ms();
    printf("soak: %d s, window %lld ms, %d posting connections, %d threads warmed up\n", seconds,
           (long long)window_ms, POSTERS, THREADS);
    printf("   t(s)   POST/s  RSS floor  RSS peak (MiB)  errors  5xx\n");
    for (int t = SAMPLE_S; t <= seconds && nsmp < MAX_SAMPLES; t += SAMPLE_S) {
        long lo = -1, hi = -1;
        while (now_ms() - t0 < t * 1000LL) {
            long k = rss_kib(s.pid);
            lo = lo < 0 || k < lo ? k : lo;
            hi = k > hi ? k : hi;
            usleep(250000);
        }
        long p = atomic_load(&posts);
        smp[nsmp] = (struct sample){t, (double)lo / 1024, (double)hi / 1024};
        printf("%7d %8ld %10.1f %9.1f %15ld %4ld\n", t, (p - last_posts) / SAMPLE_S,
               smp[nsmp].floor, smp[nsmp].peak, atomic_load(&errors), atomic_load(&server_errors));
        fflush(stdout);
        last_posts = p;
        if (steady < 0 && t * 1000LL >= 2 * window_ms)
            steady = nsmp;
        nsmp++;
    }
    atomic_store(&stop, true);
    for (int i = 0; i <= POSTERS; i++)
        pthread_join(th[i], NULL);
    int status = server_stop(&s, SIGTERM);
    server_cleanup(&s);
    bool grew = steady < 0 || judge(smp, nsmp, steady);
    if (steady < 0)
        printf("soak: the window never filled twice over: run longer\n");
    long errs = atomic_load(&errors), fives = atomic_load(&server_errors);
    printf("soak: %ld requests answered; %ld connection errors, %ld 5xx; exit status %d\n",
           atomic_load(&posts), errs, fives, status);
    int ok = !grew && errs == 0 && fives == 0 && status == 0;
    printf("%d passed, %d failed\n", ok, !ok);
    return ok ? 0 : 1;
}
