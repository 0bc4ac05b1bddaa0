/* SPDX-License-Identifier: MIT */
/* txstats_load on arbitrary bytes: no crash, no leak; a failed load leaves the instance as it
 * was; an accepted snapshot saves and loads again to identical statistics. */
#define _GNU_SOURCE
#include <stdio.h>
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

static txstats_t *make(void)
{
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    cfg.window_ms = 1000; /* a small ring: fast executions; seeds sit within it */
    cfg.max_retained = 4096;
    cfg.shards = 2;
    cfg.clock_ms = fixed_clock;
    if (txstats_create(&t, &cfg) != TXSTATS_OK)
        abort();
    return t;
}

static void same(txstats_t *a, txstats_t *b)
{
    txstats_summary_t x, y;
    txstats_stats(a, &x);
    txstats_stats(b, &y);
    if (x.count != y.count || x.sum_hi != y.sum_hi || x.sum_lo != y.sum_lo || x.min != y.min ||
        x.max != y.max)
        abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static char path[64], path2[64];
    if (!path[0]) {
        snprintf(path, sizeof(path), "/dev/shm/txstats-fuzz-%d.json", (int)getpid());
        snprintf(path2, sizeof(path2), "/dev/shm/txstats-fuzz-%d-2.json", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    txstats_t *t = make(), *ref = make();
    txstats_add(t, 4200000, T0 - 5);
    txstats_add(ref, 4200000, T0 - 5);
    if (txstats_load(t, path) != TXSTATS_OK) {
        same(t, ref); /* all or nothing */
    } else {
        txstats_t *u = make();
        if (txstats_save(t, path2) != TXSTATS_OK || txstats_load(u, path2) != TXSTATS_OK)
            abort();
        same(t, u);
        txstats_destroy(u);
    }
    txstats_destroy(t);
    txstats_destroy(ref);
    return 0;
}
