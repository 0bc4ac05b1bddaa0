/* SPDX-License-Identifier: MIT */
/*
 * The generator of tests/data/v2-* (files of libtxstats 0.2 before entities, commit 36fcdd6),
 * kept for the record; not built. Compiled by hand against that commit:
 *   gcc -Ilibtxstats/include tests/data/gen_v2.c -Lbuild/libtxstats -ltxstats -o gen_v2
 *   LD_LIBRARY_PATH=build/libtxstats ./gen_v2 tests/data
 * It prints the statistics tests/test_entities.c expects (V2_SNAP, V2_DIR).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <txstats/txstats.h>

#define T0 INT64_C(1531821591312)

static int64_t fixed(void *ctx)
{
    (void)ctx;
    return T0;
}

static txstats_t *make(void)
{
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    cfg.window_ms = 60000;
    cfg.shards = 2;
    cfg.max_retained = 20;
    cfg.clock_ms = fixed;
    if (txstats_create(&t, &cfg) != TXSTATS_OK)
        exit(1);
    return t;
}

static void add(txstats_t *t, int i)
{
    txstats_amount_t a = (txstats_amount_t)((i * 37) % 200 - 50) * 10000 + i;
    int64_t ts = T0 - (i * 977) % 59000;
    char key[16];
    snprintf(key, sizeof(key), "idem-%d", i);
    int rc = i % 5 ? txstats_add(t, a, ts) : txstats_add_keyed(t, a, ts, key, strlen(key), NULL);
    if (rc != TXSTATS_OK)
        exit(2);
}

static void print(const char *name, txstats_t *t)
{
    txstats_summary_t s;
    txstats_stats(t, &s);
    printf("%s: {%" PRIu64 ", %" PRId64 ", %" PRIu64 "u, %" PRId64 ", %" PRId64 "}\n", name,
           s.count, s.sum_hi, s.sum_lo, s.min, s.max);
}

int main(int argc, char **argv)
{
    char path[512];
    txstats_t *t = make();
    for (int i = 0; i < 60; i++)
        add(t, i);
    print("V2_SNAP", t);
    snprintf(path, sizeof(path), "%s/v2-snapshot.json", argc > 1 ? argv[1] : ".");
    if (txstats_save(t, path) != TXSTATS_OK)
        return 3;
    snprintf(path, sizeof(path), "%s/v2-snapshot.bin", argc > 1 ? argv[1] : ".");
    if (txstats_save_bin(t, path) != TXSTATS_OK)
        return 3;
    txstats_destroy(t);
    t = make();
    snprintf(path, sizeof(path), "%s/v2-dir", argc > 1 ? argv[1] : ".");
    if (txstats_open_dir(t, path, NULL, NULL) != TXSTATS_OK)
        return 4;
    for (int i = 100; i < 140; i++)
        add(t, i);
    if (txstats_checkpoint(t) != TXSTATS_OK)
        return 5;
    for (int i = 140; i < 155; i++)
        add(t, i);
    print("V2_DIR", t);
    txstats_destroy(t);
    return 0;
}
