/* SPDX-License-Identifier: MIT */
/*
 * What a checkpoint costs: an instance with `shards` shards and a journal in a temporary
 * directory, `n` transactions spread over the last 59 s, then 7 checkpoints. Prints RSS after
 * create and after the checkpoints, the median wall and CPU time of one checkpoint, and the
 * snapshot's size.
 *
 * usage: bench_checkpoint SHARDS N
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <txstats/txstats.h>
#include <unistd.h>

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SHARDS N\n", argv[0]);
        return 2;
    }
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
    double wall[RUNS], cpu[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double w0 = mono_s(), c0 = cpu_s();
        if (txstats_checkpoint(t) != TXSTATS_OK)
            return 1;
        wall[r] = mono_s() - w0;
        cpu[r] = cpu_s() - c0;
    }
    qsort(wall, RUNS, sizeof(double), cmp_double);
    qsort(cpu, RUNS, sizeof(double), cmp_double);
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/checkpoint.bin", dir);
    long long bytes = stat(path, &st) == 0 ? (long long)st.st_size : -1;
    printf("shards %s  transactions %ld  rss after create %ld KiB  after checkpoints %ld KiB  "
           "checkpoint median %.2f ms wall, %.2f ms cpu  snapshot %lld bytes\n",
           argv[1], n, rss_create, rss_kib(), wall[RUNS / 2] * 1e3, cpu[RUNS / 2] * 1e3, bytes);
    txstats_destroy(t);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
