/* SPDX-License-Identifier: MIT */
/* Journal replay on arbitrary segment bytes, strict and skip-corrupt: no crash, no leak; strict
 * recovery either refuses or succeeds; skip-corrupt never refuses a damaged record. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <txstats/txstats.h>

#define T0 INT64_C(1531821591312)

static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return T0;
}

static char dir[64];

/* Empty the directory (no process spawned: this runs twice per input). */
static void clean(void)
{
    mkdir(dir, 0700);
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        abort();
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

static int recover(const unsigned char *data, size_t size, int skip)
{
    clean();
    char seg[128];
    snprintf(seg, sizeof(seg), "%s/journal-0-0000000000000001.log", dir);
    FILE *f = fopen(seg, "wb");
    fwrite(data, 1, size, f);
    fclose(f);
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    cfg.shards = 1;
    cfg.window_ms = 1000; /* a small ring: fast executions */
    cfg.clock_ms = fixed_clock;
    txstats_create(&t, &cfg);
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.fsync = TXSTATS_FSYNC_NEVER;
    d.skip_corrupt = skip;
    txstats_recovery_t rep;
    int rc = txstats_open_dir(t, dir, &d, &rep);
    if (rc == TXSTATS_OK) {
        txstats_summary_t s;
        txstats_stats(t, &s);
        if (s.count > rep.replayed)
            abort();
    }
    txstats_destroy(t);
    return rc;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!dir[0])
        snprintf(dir, sizeof(dir), "/dev/shm/txstats-fuzz-journal-%d", (int)getpid());
    int strict = recover(data, size, 0);
    int lenient = recover(data, size, 1);
    if ((strict != TXSTATS_OK && strict != TXSTATS_EFORMAT) || lenient != TXSTATS_OK)
        abort();
    return 0;
}
