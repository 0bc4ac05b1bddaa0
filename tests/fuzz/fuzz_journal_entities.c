/* SPDX-License-Identifier: MIT */
/*
 * Journal replay of arbitrary segment bytes after a real (empty) checkpoint, so that strict
 * recovery runs too, with entities (issue 20: keyed add records, type 4): no crash, no leak;
 * strict recovery refuses (TXSTATS_EFORMAT) or succeeds, skip-corrupt always succeeds; what is
 * recovered is consistent: the ranking is ordered and each entry's statistics are its entity's,
 * the entities' counts add up to at most the global count, within its min and max; and the
 * checkpoint recovery wrote opens again to the same entities. The seeds (corpus/journal_entities)
 * are segments written by the library itself after such a checkpoint (gen_journal_seeds.c).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <txstats/txstats.h>

#include "journal_entities_fuzz.h"

#define TOP 64

static char dir[64];
static unsigned char *checkpoint;
static size_t checkpoint_len;
static char segment[128]; /* the name of the segment the checkpoint's run had open */

/* Empty the directory (no process spawned: this runs several times per input). */
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

static void write_file(const char *name, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len)
        abort();
    fclose(f);
}

/* Once: the checkpoint of an empty run and the name of the segment its first add opens, as the
 * seeds' runs had. */
static void make_template(void)
{
    txstats_t *t = jef_make();
    clean();
    if (txstats_open_dir(t, dir, NULL, NULL) != TXSTATS_OK || txstats_add(t, 1, JEF_T0) != 0)
        abort();
    txstats_destroy(t);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "journal-", 8))
            snprintf(segment, sizeof(segment), "%s", e->d_name);
    closedir(d);
    char path[256];
    snprintf(path, sizeof(path), "%s/checkpoint.bin", dir);
    FILE *f = fopen(path, "rb");
    checkpoint = malloc(1 << 20);
    if (!f || !segment[0] || !checkpoint)
        abort();
    checkpoint_len = fread(checkpoint, 1, 1 << 20, f);
    fclose(f);
}

struct view {
    txstats_summary_t global;
    txstats_top_entry_t top[TOP];
    size_t n;
};

static void same_summary(const txstats_summary_t *a, const txstats_summary_t *b)
{
    if (a->count != b->count || a->sum_hi != b->sum_hi || a->sum_lo != b->sum_lo ||
        a->min != b->min || a->max != b->max)
        abort();
}

/* Whether b may follow a in a ranking by count: fewer, or as many with larger bytes. */
static int ranked_after(const txstats_top_entry_t *b, const txstats_top_entry_t *a)
{
    if (b->stats.count != a->stats.count)
        return b->stats.count < a->stats.count;
    size_t n = a->entity_len < b->entity_len ? a->entity_len : b->entity_len;
    int c = memcmp(a->entity, b->entity, n);
    return c < 0 || (c == 0 && a->entity_len < b->entity_len);
}

/* Each ranked entity's statistics are its own; counts within the global window. */
static void check_entries(txstats_t *t, const struct view *v)
{
    uint64_t counted = 0;
    for (size_t i = 0; i < v->n; i++) {
        const txstats_top_entry_t *e = &v->top[i];
        txstats_summary_t s;
        if (e->entity_len < 1 || e->entity_len > TXSTATS_MAX_ENTITY_BYTES || e->stats.count == 0)
            abort();
        if (txstats_entity_stats(t, e->entity, e->entity_len, &s) != TXSTATS_OK)
            abort();
        same_summary(&s, &e->stats);
        if (i > 0 && !ranked_after(e, &v->top[i - 1]))
            abort();
        if (e->stats.min < v->global.min || e->stats.max > v->global.max)
            abort();
        counted += e->stats.count;
    }
    if (counted > v->global.count)
        abort();
}

static void look(txstats_t *t, struct view *v)
{
    txstats_entity_info_t info;
    memset(v, 0, sizeof(*v));
    if (txstats_stats(t, &v->global) != TXSTATS_OK ||
        txstats_top(t, TXSTATS_TOP_COUNT, v->top, TOP, &v->n) != TXSTATS_OK ||
        txstats_entity_info(t, &info) != TXSTATS_OK || v->n > TOP || info.active < v->n)
        abort();
    check_entries(t, v);
}

static void same_view(const struct view *a, const struct view *b)
{
    same_summary(&a->global, &b->global);
    if (a->n != b->n)
        abort();
    for (size_t i = 0; i < a->n; i++) {
        if (a->top[i].entity_len != b->top[i].entity_len ||
            memcmp(a->top[i].entity, b->top[i].entity, a->top[i].entity_len))
            abort();
        same_summary(&a->top[i].stats, &b->top[i].stats);
    }
}

static int recover(const unsigned char *data, size_t size, int skip)
{
    clean();
    write_file("checkpoint.bin", checkpoint, checkpoint_len);
    write_file(segment, data, size);
    txstats_t *t = jef_make();
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.fsync = TXSTATS_FSYNC_NEVER;
    d.skip_corrupt = skip;
    txstats_recovery_t rep;
    int rc = txstats_open_dir(t, dir, &d, &rep);
    if (rc == TXSTATS_OK) {
        struct view before, after;
        look(t, &before);
        if (before.global.count > rep.replayed)
            abort();
        txstats_destroy(t); /* the checkpoint recovery wrote holds it all */
        t = jef_make();
        d.skip_corrupt = 0;
        if (txstats_open_dir(t, dir, &d, &rep) != TXSTATS_OK)
            abort();
        look(t, &after);
        same_view(&before, &after);
    }
    txstats_destroy(t);
    return rc;
}

static void remove_dir(void)
{
    clean();
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/dev/shm/txstats-fuzz-jent-%d", (int)getpid());
        make_template();
        atexit(remove_dir);
    }
    int strict = recover(data, size, 0);
    int lenient = recover(data, size, 1);
    if ((strict != TXSTATS_OK && strict != TXSTATS_EFORMAT) || lenient != TXSTATS_OK)
        abort();
    return 0;
}
