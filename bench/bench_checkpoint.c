/* SPDX-License-Identifier: MIT */
/*
 * What a checkpoint costs: an instance with `shards` shards and a journal in a temporary
 * directory, `n` transactions spread over the last 59 s, then 7 checkpoints. Prints RSS after
 * create and after the checkpoints, the median wall and CPU time of one checkpoint (the CPU of
 * the checkpointing thread alone), and the checkpoint's size. With "load", a second thread adds
 * transactions as fast as it can during the checkpoints (saturating adds, as under load).
 *
 * usage: bench_checkpoint SHARDS N [load]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <txstats/txstats.h>

#include "bench_util.h"
#include <unistd.h>

static double cpu_s(void) /* this thread's */
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static atomic_bool loading;
static atomic_long loaded;

static void *load_main(void *arg)
{
    txstats_t *t = arg;
    while (atomic_load(&loading)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        for (int i = 0; i < 1000; i++)
            txstats_add(t, 1000000 + i, now - i % 59000);
        atomic_fetch_add(&loaded, 1000);
    }
    return NULL;
}

static long rss_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SHARDS N [load]\n", argv[0]);
        return 2;
    }
    bool load = argc > 3 && !strcmp(argv[3], "load");
    char dir[] = "/tmp/txstats-ckpt-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.shards = (unsigned)atoi(argv[1]);
    long n = atol(argv[2]);
    txstats_t *t;
    if (txstats_create(&t, &cfg) != TXSTATS_OK)
        return 1;
    long rss_create = rss_kib();
    if (txstats_open_dir(t, dir, NULL, NULL) != TXSTATS_OK)
        return 1;
    int64_t now = now_ms();
    for (long i = 0; i < n; i++)
        txstats_add(t, 1000000 + i, now - (i % 59000));
    enum { RUNS = 7 };
    double wall[RUNS], cpu[RUNS], w_all = (now_ns() / 1e9);
    pthread_t th;
    atomic_store(&loading, load);
    if (load)
        pthread_create(&th, NULL, load_main, t);
    for (int r = 0; r < RUNS; r++) {
        double w0 = (now_ns() / 1e9), c0 = cpu_s();
        if (txstats_checkpoint(t) != TXSTATS_OK)
            return 1;
        wall[r] = (now_ns() / 1e9) - w0;
        cpu[r] = cpu_s() - c0;
    }
    w_all = (now_ns() / 1e9) - w_all;
    atomic_store(&loading, false);
    if (load)
        pthread_join(th, NULL);
    qsort(wall, RUNS, sizeof(double), cmp_double);
    qsort(cpu, RUNS, sizeof(double), cmp_double);
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/checkpoint.bin", dir);
    long long bytes = stat(path, &st) == 0 ? (long long)st.st_size : -1;
    printf("shards %s  transactions %ld%s  rss after create %ld KiB  after checkpoints %ld KiB  "
           "checkpoint median %.2f ms wall, %.2f ms cpu  checkpoint %lld bytes",
           argv[1], n, load ? " + saturating adds" : "", rss_create, rss_kib(),
           wall[RUNS / 2] * 1e3, cpu[RUNS / 2] * 1e3, bytes);
    if (load)
        printf("  adds meanwhile %.1f M/s", (double)atomic_load(&loaded) / w_all / 1e6);
    printf("\n");
    txstats_destroy(t);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
