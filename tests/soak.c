/* SPDX-License-Identifier: MIT */
/*
 * Soak: saturating POSTs for longer than the window, with periodic GET and DELETE. Samples the
 * server's RSS every 5 s. Fails on any connection error or 5xx, or when RSS keeps growing once
 * the window is full (the last sample more than 10 % + 16 MiB above the one when it filled).
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

#define POSTERS 3

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
    const char *args[] = {"--window-ms", argv[3], NULL};
    if (server_start(&s, args) != 0) {
        fprintf(stderr, "the server did not start\n");
        return 1;
    }
    port = s.port;
    pthread_t th[POSTERS + 1];
    for (uintptr_t i = 0; i < POSTERS; i++)
        pthread_create(&th[i], NULL, poster, (void *)(i + 1));
    pthread_create(&th[POSTERS], NULL, reader, NULL);
    long filled_rss = -1, last_rss = 0, last_posts = 0;
    int64_t t0 = now_ms();
    printf("soak: %d s, window %lld ms, %d posting connections\n", seconds, (long long)window_ms,
           POSTERS);
    printf("   t(s)   POST/s   RSS(MiB)  errors  5xx\n");
    for (int t = 5; t <= seconds; t += 5) {
        while (now_ms() - t0 < t * 1000LL)
            usleep(50000);
        long p = atomic_load(&posts);
        last_rss = rss_kib(s.pid);
        printf("%7d %8ld %10.1f %7ld %4ld\n", t, (p - last_posts) / 5, (double)last_rss / 1024,
               atomic_load(&errors), atomic_load(&server_errors));
        fflush(stdout);
        last_posts = p;
        if (filled_rss < 0 && t * 1000LL >= 2 * window_ms)
            filled_rss = last_rss;
    }
    atomic_store(&stop, true);
    for (int i = 0; i <= POSTERS; i++)
        pthread_join(th[i], NULL);
    int status = server_stop(&s, SIGTERM);
    server_cleanup(&s);
    bool grew = filled_rss > 0 && last_rss > filled_rss + filled_rss / 10 + 16 * 1024;
    long errs = atomic_load(&errors), fives = atomic_load(&server_errors);
    printf("soak: %ld requests answered; RSS when the window filled %.1f MiB, at the end %.1f MiB; "
           "%ld connection errors, %ld 5xx; exit status %d\n",
           atomic_load(&posts), (double)filled_rss / 1024, (double)last_rss / 1024, errs, fives,
           status);
    int ok = !grew && errs == 0 && fives == 0 && status == 0;
    printf("%d passed, %d failed\n", ok, !ok);
    return ok ? 0 : 1;
}
