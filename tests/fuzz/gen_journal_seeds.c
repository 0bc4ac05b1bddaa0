/* SPDX-License-Identifier: MIT */
/*
 * Writes the seeds of fuzz_journal_entities: each a journal segment the library wrote after the
 * checkpoint of an empty directory (the checkpoint the target puts next to every input), with
 * keyed adds (entities, idempotency keys, both), plain ones, batches, a clear.
 * usage: gen_journal_seeds OUT-DIR   (tests/fuzz/corpus/journal_entities)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal_entities_fuzz.h"

static char dir[64];

static void ok(int rc)
{
    if (rc != TXSTATS_OK && rc != TXSTATS_ELIMIT) {
        fprintf(stderr, "gen_journal_seeds: %s\n", txstats_strerror(rc));
        exit(1);
    }
}

static void entities(txstats_t *t, int n, int stride)
{
    unsigned char e[TXSTATS_MAX_ENTITY_BYTES];
    for (int i = 0; i < n; i++) {
        size_t len = 1 + (size_t)(i * stride) % TXSTATS_MAX_ENTITY_BYTES;
        memset(e, 'a' + i % 5, len);
        e[0] = (unsigned char)(i % 3); /* 0x00 too */
        ok(txstats_add_entity(t, e, len, (i % 7 - 3) * 1000001LL, JEF_T0 - (i * 37) % 1000));
    }
}

static void mixed(txstats_t *t)
{
    char idem[16];
    txstats_input_t b[4];
    for (int i = 0; i < 12; i++) {
        txstats_input_t in = {i * 250000 - 1000000, JEF_T0 - i * 80 + 50, "card", 4, NULL, 0};
        if (i % 2) {
            in.idem_key = idem;
            in.idem_key_len = (size_t)snprintf(idem, 16, "idem-%d", i);
        }
        if (i % 3 == 2) {
            in.entity = "merchant-7";
            in.entity_len = 10;
        }
        ok(txstats_add_ex(t, &in, NULL));
    }
    ok(txstats_add_keyed(t, 5, JEF_T0, "plain-key", 9, NULL));
    ok(txstats_add(t, -5, JEF_T0 - 1));
    for (int i = 0; i < 4; i++)
        b[i] = (txstats_input_t){i + 1,          JEF_T0 - i, i % 2 ? "card" : "ip:10.0.0.1",
                                 i % 2 ? 4 : 11, NULL,       0};
    size_t stored;
    int res[4];
    ok(txstats_add_batch_ex(t, b, 4, res, NULL, &stored));
}

static void cleared(txstats_t *t)
{
    entities(t, 5, 13);
    ok(txstats_clear_ex(t));
    entities(t, 3, 40);
}

static void seed(const char *out, const char *name, void (*fill)(txstats_t *))
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        exit(1);
    txstats_t *t = jef_make();
    ok(txstats_open_dir(t, dir, NULL, NULL));
    fill(t);
    txstats_destroy(t);
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "journal-", 8)) {
            snprintf(cmd, sizeof(cmd), "cp '%s/%s' '%s/%s'", dir, e->d_name, out, name);
            found += system(cmd) == 0;
        }
    closedir(d);
    if (found != 1)
        exit(1);
}

static void many(txstats_t *t)
{
    entities(t, 20, 29); /* past the cap of 8: the refused are not journaled */
}

static void few(txstats_t *t)
{
    entities(t, 6, 61);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT-DIR\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof(dir), "/tmp/txstats-gen-seeds-%d", (int)getpid());
    mkdir(argv[1], 0755);
    seed(argv[1], "entities", few);
    seed(argv[1], "cap", many);
    seed(argv[1], "mixed", mixed);
    seed(argv[1], "cleared", cleared);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
