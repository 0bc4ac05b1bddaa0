/* SPDX-License-Identifier: MIT */
/*
 * Crash test: POST transactions with unique amounts from several threads, kill -9 the server at a
 * random moment, restart it on the same data directory, and check that every transaction that got
 * a 201 is there, exactly once, and that nothing appears that was never sent.
 *
 * With "keys": every transaction carries an Idempotency-Key, and after each restart every request
 * that got no answer is retried (same key, same body) until it gets one, as a careful client
 * would. Then every transaction ever sent must be there exactly once: nothing lost, nothing twice.
 *
 * usage: crash_test PATH-TO-txstats-server [CYCLES] [SEED (0: from the clock)] [keys]
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

#define THREADS   4
#define MAX_IDS   (4 * 1000 * 1000)
#define PER_CYCLE 3000 /* posts per thread per cycle, at most */

static atomic_int next_id = 1;       /* amount of transaction n is n micro-units */
static unsigned char acked[MAX_IDS]; /* 1: got a 201; 2: sent, no answer (keys mode) */
static int64_t sent_ts[MAX_IDS];     /* keys mode: the timestamp a retry must repeat */
static bool keys;
static long retries, replayed;
static atomic_bool stop;

/* One POST of transaction `id` on an open connection: 0 and r filled, or -1 (connection lost). */
static int post_id(int fd, int id, struct resp *r)
{
    char a[32], ts[32], body[128], hdr[64];
    txstats_amount_format(id, a, sizeof(a));
    txstats_timestamp_format(sent_ts[id], ts, sizeof(ts));
    int n = snprintf(body, sizeof(body), "{\"amount\":\"%s\",\"timestamp\":\"%s\"}", a, ts);
    snprintf(hdr, sizeof(hdr), "Idempotency-Key: \"crash-%d\"\r\n", id);
    return http_request(fd, "POST", "/transactions", keys ? hdr : NULL, body, (size_t)n, r);
}

struct poster {
    int port;
};

static void *poster_main(void *arg)
{
    struct poster *p = arg;
    int fd = http_connect(p->port);
    for (int i = 0; i < PER_CYCLE && !atomic_load(&stop) && fd >= 0; i++) {
        int id = atomic_fetch_add(&next_id, 1);
        if (id >= MAX_IDS)
            break;
        sent_ts[id] = now_ms();
        acked[id] = 2;
        struct resp r;
        if (post_id(fd, id, &r) != 0) {
            resp_free(&r);
            break; /* the server died: this one's fate is unknown */
        }
        acked[id] = r.status == 201 ? 1 : 0;
        resp_free(&r);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Keys mode: every request that got no answer, again, until it gets one. */
static int retry_unanswered(struct server *s, int cycle, long *total)
{
    int fd = -1, sent = atomic_load(&next_id);
    for (int id = 1; id < sent && id < MAX_IDS; id++) {
        for (int attempt = 0; acked[id] == 2 && attempt < 20; attempt++) {
            struct resp r;
            if (fd < 0)
                fd = http_connect(s->port);
            int rc = fd < 0 ? -1 : post_id(fd, id, &r);
            if (rc != 0) {
                if (fd >= 0)
                    close(fd);
                fd = -1;
                continue;
            }
            retries++;
            replayed += resp_header(&r, "Idempotent-Replayed") != NULL;
            if (r.status == 201) {
                acked[id] = 1;
                ++*total;
            }
            resp_free(&r);
        }
        if (acked[id] == 2) {
            fprintf(stderr, "cycle %d: transaction %d got no answer in 20 retries\n", cycle, id);
            return 1;
        }
    }
    if (fd >= 0)
        close(fd);
    return 0;
}

/* Check the listing against what was acknowledged and sent. */
static int verify(struct server *s, int cycle, long *total)
{
    struct resp r;
    if (http(s->port, "GET", "/transactions", NULL, &r) != 0 || r.status != 200) {
        fprintf(stderr, "cycle %d: listing failed\n", cycle);
        return 1;
    }
    int sent = atomic_load(&next_id);
    unsigned char *seen = calloc((size_t)sent + 1, 1);
    long listed = 0, dup = 0, unknown = 0, lost = 0;
    for (const char *p = strstr(r.body, "\"amount\":\""); p; p = strstr(p + 1, "\"amount\":\"")) {
        const char *v = p + 10, *e = strchr(v, '"');
        txstats_amount_t id;
        if (!e || txstats_amount_parse(v, (size_t)(e - v), &id) != TXSTATS_OK || id <= 0 ||
            id >= sent) {
            unknown++;
            continue;
        }
        dup += seen[id]++ > 0;
        listed++;
    }
    for (int id = 1; id < sent; id++)
        lost += acked[id] == 1 && !seen[id]; /* 2: no answer, either way is right */
    int incomplete = strstr(r.body, "\"truncated\":false") == NULL;
    printf("cycle %3d: sent %d, acknowledged %ld, listed %ld, lost %ld, duplicated %ld, "
           "unknown %ld%s",
           cycle, sent - 1, *total, listed, lost, dup, unknown,
           incomplete ? ", LISTING INCOMPLETE" : "");
    if (keys) /* every one sent was answered: all must be there */
        printf(", retried %ld (%ld replayed)", retries, replayed);
    printf("\n");
    for (int id = 1; keys && id < sent; id++)
        lost += !acked[id]; /* in keys mode every request ends with a 201 */
    free(seen);
    resp_free(&r);
    return lost || dup || unknown || incomplete;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-txstats-server [CYCLES] [SEED]\n", argv[0]);
        return 2;
    }
    server_bin = argv[1];
    int cycles = argc > 2 ? atoi(argv[2]) : 20;
    unsigned seed = argc > 3 && atoi(argv[3]) ? (unsigned)atoi(argv[3]) : (unsigned)time(NULL);
    keys = argc > 4 && !strcmp(argv[4], "keys");
    printf("crash test: %d cycles, seed %u%s\n", cycles, seed,
           keys ? ", idempotency keys, unanswered requests retried" : "");
    signal(SIGPIPE, SIG_IGN);
    struct server s;
    server_init(&s);
    /* Nothing may expire during the run: the window outlasts it (about 1 s per cycle). Every
     * acknowledged transaction must be listed: up to 4 x PER_CYCLE per cycle (2.4 million in 200
     * cycles) are retained and listed, past the defaults of --max-retained and --max-list
     * (1,048,576 each), which would report the unlisted as lost. */
    char window[32], most[32];
    long w = (long)cycles * 2000;
    snprintf(window, sizeof(window), "%ld", w < 120000 ? 120000 : w > 3600000 ? 3600000 : w);
    snprintf(most, sizeof(most), "%d", MAX_IDS);
    const char *args[] = {"--window-ms", window, "--max-retained", most, "--max-list", most, NULL};
    int failures = 0;
    long acked_total = 0;
    for (int c = 1; c <= cycles && !failures; c++) {
        if (server_start(&s, args) != 0) {
            fprintf(stderr, "cycle %d: the server did not start\n", c);
            failures++;
            break;
        }
        atomic_store(&stop, false);
        int before = atomic_load(&next_id);
        pthread_t th[THREADS];
        struct poster p = {s.port};
        for (int i = 0; i < THREADS; i++)
            pthread_create(&th[i], NULL, poster_main, &p);
        struct timespec wait = {0, (long)(20 + rand_r(&seed) % 280) * 1000000L};
        nanosleep(&wait, NULL);
        server_stop(&s, SIGKILL);
        atomic_store(&stop, true);
        for (int i = 0; i < THREADS; i++)
            pthread_join(th[i], NULL);
        int after = atomic_load(&next_id);
        for (int id = before; id < after && id < MAX_IDS; id++)
            acked_total += acked[id] == 1;
        if (server_start(&s, args) != 0) {
            fprintf(stderr, "cycle %d: the server did not restart after kill -9\n", c);
            failures++;
            break;
        }
        if (keys)
            failures += retry_unanswered(&s, c, &acked_total);
        failures += verify(&s, c, &acked_total);
        server_stop(&s, SIGKILL); /* the next cycle starts from a crash too */
    }
    server_cleanup(&s);
    printf("%d passed, %d failed\n", failures ? 0 : cycles, failures);
    return failures ? 1 : 0;
}
