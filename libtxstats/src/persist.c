/* SPDX-License-Identifier: MIT */
/*
 * Persistence: txstats_save(), txstats_save_bin() and txstats_load() (snapshots anywhere), and
 * the checkpoints of a journaled directory. Every one is an image (image.h) written by the
 * collector in short holds of each shard's lock (collect.h) and read back in two bounded passes
 * (install.h): memory beyond the window stays within a few megabytes whatever the window holds.
 * A checkpoint moves each shard's journal stream to a fresh segment at its first hold and
 * records the cuts that say which later records it already holds; the segments below are then
 * deleted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collect.h"
#include "fileio.h"
#include "image_json.h"
#include "install.h"
#include "persist.h"

#define SNAPSHOT_MAX ((uint64_t)1 << 32) /* refuse to read more than 4 GiB */

struct txstats__durable {
    pthread_mutex_t ckpt; /* one checkpoint at a time; guards the fields below */
    uint64_t checkpoints, live_segments;
    unsigned known_streams;
    uint64_t records_at_ckpt; /* journal records covered by the last checkpoint */
    pthread_t thread;         /* the background checkpointer */
    bool running, stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* The checkpoints' writer and its buffers (2.6 MiB), made once: every checkpoint reuses the
     * same memory, so that a checkpoint a second leaves no trace in the allocator's heap. */
    struct txstats__collect *writer;
};

/* Write an image (or what `produce` makes of one) atomically, again while a clear or a load
 * voids it meanwhile. */
static int write_image(txstats_t *t, int dirfd, const char *name, txstats__produce_fn produce,
                       void *ctx)
{
    int rc;
    for (int tries = 0;; tries++) {
        errno = 0;
        rc = dirfd == AT_FDCWD
                 ? txstats__write_atomic_path(&t->mem, t->cfg.io, name, produce, ctx, NULL)
                 : txstats__write_atomic(&t->mem, t->cfg.io, dirfd, name, produce, ctx, NULL);
        if (rc != TXSTATS_EIO || errno != EAGAIN || tries >= 16)
            break;
    }
    return rc == TXSTATS_EIO && errno == ENOMEM ? TXSTATS_ENOMEM : rc;
}

/* The image as JSON text (image_json.h). */
struct json_produce {
    struct txstats__collect *c;
    struct txstats__img_json j;
};

static int produce_json(void *ctx, txstats__emit_fn emit, void *emit_ctx)
{
    struct json_produce *p = ctx;
    txstats__img_json_start(&p->j, emit, emit_ctx);
    if (txstats__collect_produce(p->c, txstats__img_json_emit, &p->j) != 0)
        return -1;
    return txstats__img_json_finish(&p->j);
}

static int save_as(txstats_t *t, const char *path, bool json)
{
    if (!t || !path || !*path)
        return TXSTATS_EINVAL;
    struct txstats__collect *c;
    int rc = txstats__collect_new(t, false, 0, &c);
    if (rc != TXSTATS_OK)
        return rc;
    struct json_produce p = {.c = c};
    rc = json ? write_image(t, AT_FDCWD, path, produce_json, &p)
              : write_image(t, AT_FDCWD, path, txstats__collect_produce, c);
    int e = errno;
    txstats__collect_free(c);
    errno = e;
    return rc;
}

int txstats_save(txstats_t *t, const char *path)
{
    return save_as(t, path, true);
}

int txstats_save_bin(txstats_t *t, const char *path)
{
    return save_as(t, path, false);
}

/* An older file (a 0.1 JSON snapshot, a TXCKPT01 checkpoint) or a JSON snapshot, read whole and
 * turned into an image in memory. */
static int open_whole(txstats_t *t, int dirfd, const char *name, struct txstats__source *src)
{
    char *data = NULL;
    size_t len = 0;
    int rc = txstats__read_all(&t->mem, dirfd, name, SNAPSHOT_MAX, &data, &len);
    if (rc != TXSTATS_OK)
        return rc;
    rc = txstats__snap_is_bin(data, len)
             ? TXSTATS_EINVAL
             : txstats__img_from_json(&t->mem, data, len, &src->mem, &src->len);
    if (rc == TXSTATS_EINVAL) { /* an older format */
        struct txstats__snap sn;
        txstats__snap_init(&sn, &t->mem);
        rc = txstats__snap_is_bin(data, len) ? txstats__snap_decode_bin(&sn, data, len)
                                             : txstats__snap_decode_json(&sn, data, len);
        if (rc == TXSTATS_OK)
            rc = txstats__snap_to_image(&sn, t->nshards, &src->mem, &src->len, &src->approximate);
        txstats__snap_free(&sn);
    }
    txstats__free(&t->mem, data);
    return rc == TXSTATS_OK ? txstats__img_in_mem(&src->in, src->mem, src->len) : rc;
}

int txstats__source_open(txstats_t *t, int dirfd, const char *name, struct txstats__source *src)
{
    char magic[8];
    memset(src, 0, sizeof(*src));
    src->fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (src->fd < 0)
        return TXSTATS_EIO;
    ssize_t n = pread(src->fd, magic, sizeof(magic), 0);
    if (n < 0) {
        int e = errno;
        txstats__source_close(t, src);
        errno = e;
        return TXSTATS_EIO;
    }
    int rc = txstats__img_is(magic, (size_t)n) ? txstats__img_in_fd(&src->in, &t->mem, src->fd)
                                               : open_whole(t, dirfd, name, src);
    if (rc != TXSTATS_OK) {
        int e = errno;
        txstats__source_close(t, src);
        errno = e;
    }
    return rc;
}

void txstats__source_close(txstats_t *t, struct txstats__source *src)
{
    txstats__img_in_fini(&src->in);
    if (src->fd >= 0)
        close(src->fd);
    src->fd = -1;
    txstats__free(&t->mem, src->mem);
    src->mem = NULL;
}

int txstats_load_ex(txstats_t *t, const char *path, txstats_load_info_t *info)
{
    if (!t || !path)
        return TXSTATS_EINVAL;
    struct txstats__source src;
    struct txstats__load *l = NULL;
    txstats_load_info_t out = {0};
    uint64_t by_bucket = 0;
    int rc = txstats__source_open(t, AT_FDCWD, path, &src);
    if (rc != TXSTATS_OK)
        return rc;
    rc = txstats__load_check(t, &src.in, &l);
    if (rc == TXSTATS_OK)
        rc = txstats__load_commit(l, &out.transactions, &out.expired, &by_bucket);
    if (rc == TXSTATS_OK && t->journal) /* durable: the journal's clear is covered at once */
        rc = txstats_checkpoint(t);
    int e = errno;
    out.approximate = src.approximate ? by_bucket : 0; /* an older file's buckets are means */
    txstats__load_free(l);
    txstats__source_close(t, &src);
    if (rc == TXSTATS_OK && info)
        *info = out;
    errno = e;
    return rc;
}

int txstats_load(txstats_t *t, const char *path)
{
    return txstats_load_ex(t, path, NULL);
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

/* Journal records written so far, over all streams. */
static uint64_t journal_records(const txstats_t *t)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < t->journal->nstreams; i++)
        n += atomic_load_explicit(&t->journal->streams[i].seq_pub, memory_order_acquire);
    return n;
}

/* Write the checkpoint; ckpt held. */
static int checkpoint_locked(txstats_t *t, struct txstats__durable *d)
{
    struct txstats__journal *j = t->journal;
    uint64_t records = journal_records(t);
    int rc = d->writer ? TXSTATS_OK : txstats__collect_new(t, true, d->known_streams, &d->writer);
    struct txstats__collect *c = d->writer;
    if (rc == TXSTATS_OK)
        rc = write_image(t, j->dirfd, TXSTATS__CHECKPOINT_NAME, txstats__collect_produce, c);
    int e = errno;
    if (rc == TXSTATS_OK) {
        uint64_t bound[TXSTATS__MAX_STREAMS];
        unsigned n = txstats__collect_bounds(c, bound);
        unlinkat(j->dirfd, TXSTATS__LEGACY_SNAPSHOT, 0); /* superseded */
        d->live_segments = txstats__journal_delete_covered(j, bound, n);
        d->checkpoints++;
        d->records_at_ckpt = records;
    }
    errno = e;
    return rc;
}

int txstats_checkpoint(txstats_t *t)
{
    if (!t || !t->journal)
        return TXSTATS_EINVAL;
    struct txstats__durable *d = t->durable;
    pthread_mutex_lock(&d->ckpt);
    int rc = checkpoint_locked(t, d);
    pthread_mutex_unlock(&d->ckpt);
    return rc;
}

/* Every checkpoint_interval_ms, a checkpoint when the journal grew since the last one. */
static void *checkpointer_main(void *arg)
{
    txstats_t *t = arg;
    struct txstats__durable *d = t->durable;
    int64_t every = t->journal->cfg.checkpoint_interval_ms;
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (every % 1000) * 1000000;
        until.tv_sec += (time_t)(every / 1000 + ns / 1000000000);
        until.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&d->cond, &d->lock, &until);
        if (d->stop)
            break;
        const txstats_durability_t *cfg = &t->journal->cfg;
        pthread_mutex_lock(&d->ckpt);
        bool due = journal_records(t) != d->records_at_ckpt;
        int rc = due ? checkpoint_locked(t, d) : TXSTATS_OK; /* a failure is retried next time */
        int e = errno;
        pthread_mutex_unlock(&d->ckpt);
        if (due && cfg->on_checkpoint)
            cfg->on_checkpoint(rc, rc == TXSTATS_OK ? 0 : e, cfg->on_checkpoint_ctx);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static void detach(txstats_t *t)
{
    struct txstats__durable *d = t->durable;
    if (d && d->running) {
        pthread_mutex_lock(&d->lock);
        d->stop = true;
        pthread_cond_signal(&d->cond);
        pthread_mutex_unlock(&d->lock);
        pthread_join(d->thread, NULL);
    }
    txstats__journal_close(t->journal);
    for (unsigned i = 0; i < t->nshards; i++)
        t->shards[i].js = NULL;
    t->journal = NULL;
    if (d) {
        txstats__collect_free(d->writer);
        pthread_mutex_destroy(&d->ckpt);
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->cond);
        txstats__free(&t->mem, d);
    }
    t->durable = NULL;
    t->detach = NULL;
}

int txstats__attach(txstats_t *t, struct txstats__journal *j, unsigned known_streams)
{
    struct txstats__durable *d = txstats__calloc(&t->mem, 1, sizeof(*d));
    t->journal = j;
    t->detach = detach;
    if (!d)
        return TXSTATS_ENOMEM;
    pthread_mutex_init(&d->ckpt, NULL);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    d->known_streams = known_streams;
    t->durable = d;
    for (unsigned i = 0; i < t->nshards; i++)
        t->shards[i].js = &j->streams[i];
    int rc = txstats_checkpoint(t);
    if (rc == TXSTATS_OK && j->cfg.checkpoint_interval_ms > 0) {
        if (pthread_create(&d->thread, NULL, checkpointer_main, t) != 0)
            return TXSTATS_ENOMEM;
        d->running = true;
    }
    return rc;
}

int txstats_journal_stats(txstats_t *t, txstats_journal_stats_t *out)
{
    if (!t || !out)
        return TXSTATS_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!t->journal)
        return TXSTATS_OK;
    for (unsigned i = 0; i < t->nshards; i++) {
        struct txstats__shard *s = &t->shards[i];
        pthread_mutex_lock(&s->lock);
        out->records += s->js->records;
        out->bytes += s->js->bytes;
        out->write_errors += s->js->errors;
        pthread_mutex_unlock(&s->lock);
        pthread_mutex_lock(&s->js->io);
        out->syncs += s->js->syncs;
        pthread_mutex_unlock(&s->js->io);
    }
    pthread_mutex_lock(&t->durable->ckpt);
    out->checkpoints = t->durable->checkpoints;
    out->segments = t->durable->live_segments;
    pthread_mutex_unlock(&t->durable->ckpt);
    return TXSTATS_OK;
}
