/* SPDX-License-Identifier: MIT */
/* Several producer threads add transactions while the main thread prints statistics each second. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <txstats/txstats.h>

#define PRODUCERS 4

static txstats_t *stats;
static atomic_bool stop;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *producer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    unsigned long n = 0;
    while (!atomic_load(&stop)) {
        /* 0.01 to 100.00, a cent at a time */
        txstats_amount_t cents = 1 + (txstats_amount_t)(rand_r(&seed) % 10000);
        if (txstats_add(stats, cents * (TXSTATS_AMOUNT_SCALE / 100), now_ms()) == TXSTATS_OK)
            n++;
    }
    return (void *)(uintptr_t)n;
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 3;
    pthread_t th[PRODUCERS];
    if (txstats_create(&stats, NULL) != TXSTATS_OK)
        return 1;
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        pthread_create(&th[i], NULL, producer, (void *)(i + 1));
    for (int s = 0; s < seconds; s++) {
        struct timespec one = {1, 0};
        nanosleep(&one, NULL);
        txstats_summary_t sum;
        txstats_summary_text_t text;
        txstats_stats(stats, &sum);
        txstats_summary_text(&sum, &text);
        printf("t=%ds count=%llu sum=%s avg=%s min=%s max=%s\n", s + 1,
               (unsigned long long)text.count, text.sum, text.avg, text.min, text.max);
        fflush(stdout);
    }
    atomic_store(&stop, true);
    unsigned long total = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        void *n;
        pthread_join(th[i], &n);
        total += (unsigned long)(uintptr_t)n;
    }
    txstats_summary_t fin;
    txstats_stats(stats, &fin);
    printf("added %lu, in window %llu\n", total, (unsigned long long)fin.count);
    txstats_destroy(stats);
    return 0;
}
