/* SPDX-License-Identifier: MIT */
/*
 * Persistence: txstats_save() and txstats_load() (JSON snapshots anywhere), and the checkpoints
 * of a journaled directory. A checkpoint rotates every shard's journal stream to a fresh segment
 * while copying that shard under the same lock, so the checkpoint covers exactly the older
 * segments, which are then deleted. Its cost is proportional to what the window holds: the
 * copy grows with the cells and amounts it meets, and the binary encoding is a few words each.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
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
};

/* Copy one shard's cells (active and future, in timestamp order) into `sn`; its lock held. */
static int copy_window(const struct txstats__window *w, struct txstats__snap *sn)
{
    int64_t lo = w->now - w->g->window_ms + 1, hi = w->now + w->g->skew_ms;
    for (int64_t ts = txstats__window_next_used(w, lo, hi); ts != INT64_MAX;
         ts = txstats__window_next_used(w, ts + 1, hi)) {
        const struct txstats__cell *c = txstats__window_cell(w, ts);
        txstats_amount_t *out = txstats__snap_push(sn, ts, c);
        struct txstats__kept_iter it;
        const txstats_amount_t *a;
        uint32_t n;
        if (!out)
            return TXSTATS_ENOMEM;
        txstats__kept_begin(c, &it);
        while ((a = txstats__kept_next(&it, &n))) {
            memcpy(out, a, n * sizeof(*a));
            out += n;
        }
    }
    return TXSTATS_OK;
}

static int push_key(void *ctx, const struct txstats__key *key, const struct txstats__key_info *info)
{
    struct txstats__snap_key k = {{key->h[0], key->h[1]}, info->fp, info->expires, info->status};
    return txstats__snap_push_key(ctx, &k);
}

/* Every shard into `sn`, one lock at a time; with `bound`, each shard's journal stream moves to
 * a fresh segment under the same lock and bound[i] receives its number. */
static int collect(txstats_t *t, struct txstats__snap *sn, uint64_t *bound)
{
    int64_t now = txstats__now(t);
    int rc = TXSTATS_OK;
    sn->window_ms = t->cfg.window_ms;
    sn->saved_at_ms = now;
    for (unsigned i = 0; i < t->nshards && rc == TXSTATS_OK; i++) {
        struct txstats__shard *s = &t->shards[i];
        pthread_mutex_lock(&s->lock);
        if (bound) {
            rc = txstats__jstream_rotate(t->journal, s->js);
            bound[i] = s->js->seg;
        }
        txstats__window_advance(&s->w, now);
        if (rc == TXSTATS_OK)
            rc = copy_window(&s->w, sn);
        pthread_mutex_unlock(&s->lock);
    }
    if (rc == TXSTATS_OK) /* after the shards: a stored transaction's key is older than it */
        rc = txstats__keys_each(&t->keys, now, push_key, sn);
    return rc == TXSTATS_OK ? txstats__snap_sort(sn) : rc;
}

static int produce_json(void *ctx, txstats__emit_fn emit, void *ectx)
{
    return txstats__snap_encode_json(ctx, emit, ectx);
}

static int produce_bin(void *ctx, txstats__emit_fn emit, void *ectx)
{
    return txstats__snap_encode_bin(ctx, emit, ectx);
}

static int save_as(txstats_t *t, const char *path, txstats__produce_fn produce)
{
    if (!t || !path || !*path)
        return TXSTATS_EINVAL;
    struct txstats__snap sn;
    txstats__snap_init(&sn, &t->mem);
    int rc = collect(t, &sn, NULL);
    if (rc == TXSTATS_OK)
        rc = txstats__write_atomic_path(&t->mem, t->cfg.io, path, produce, &sn, NULL);
    int e = errno;
    txstats__snap_free(&sn);
    errno = e;
    return rc;
}

int txstats_save(txstats_t *t, const char *path)
{
    return save_as(t, path, produce_json);
}

int txstats_save_bin(txstats_t *t, const char *path)
{
    return save_as(t, path, produce_bin);
}

/* The snapshot's live keys in a private table, ready to swap in. */
static int load_keys(txstats_t *t, const struct txstats__snap *sn, struct txstats__keys *k)
{
    int64_t now = txstats__now(t);
    int rc = txstats__keys_init(k, &t->mem, t->cfg.max_keys);
    for (size_t i = 0; i < sn->nkeys && rc == TXSTATS_OK; i++) {
        const struct txstats__snap_key *e = &sn->keys[i];
        struct txstats__key key = {{e->h[0], e->h[1]}};
        struct txstats__key_info info = {e->fp, e->status, e->expires};
        if (e->expires <= now)
            continue;
        rc = txstats__keys_put(k, txstats__keys_sub(k, &key), &key, &info, now);
        rc = rc == TXSTATS_EFULL ? TXSTATS_OK : rc; /* a smaller max_keys now: keep what fits */
    }
    return rc;
}

/* Under all locks: empty every window, then put each cell inside the window into a shard (cell
 * i into shard i % nshards, whose distribution adopted the chunks those cells may need). */
static void install(txstats_t *t, const struct txstats__snap *sn, struct txstats__chunk *pool,
                    struct txstats__dslab **dslabs, uint64_t *dropped)
{
    txstats__lock_all(t);
    int64_t now = txstats__now(t);
    for (unsigned i = 0; i < t->nshards; i++) {
        txstats__window_advance(&t->shards[i].w, now);
        txstats__window_reset(&t->shards[i].w);
        txstats__dist_adopt(&t->shards[i].w.dist, dslabs[i]);
    }
    for (size_t i = 0; i < sn->ncells; i++) {
        const struct txstats__snap_cell *c = &sn->cells[i];
        if (c->ts <= now - t->cfg.window_ms || c->ts > now + t->cfg.max_skew_ms) {
            *dropped += c->agg.count;
            continue;
        }
        struct txstats__window *w = &t->shards[i % t->nshards].w;
        txstats__window_put_cell(w, c->ts, &c->agg, &sn->amounts[c->off], c->nkept, &pool);
    }
    txstats__window_adopt_chunks(&t->shards[0].w, pool);
    txstats__unlock_all(t);
}

/* Everything a load will need, allocated before anything changes: the chunks of the retained
 * amounts, and per shard the bucket chunks of its cells (cell i goes to shard i % nshards). */
static int alloc_for_load(txstats_t *t, const struct txstats__snap *sn,
                          struct txstats__chunk **pool, struct txstats__dslab **dslabs)
{
    uint64_t chunks = 0, dchunks[TXSTATS__MAX_SHARDS] = {0};
    for (size_t i = 0; i < sn->ncells; i++) {
        chunks += (sn->cells[i].nkept + TXSTATS__CHUNK_CAP - 1) / TXSTATS__CHUNK_CAP;
        dchunks[i % t->nshards] +=
            txstats__dist_chunks_for(sn->cells[i].agg.count, sn->cells[i].nkept);
    }
    int rc = txstats__chunks_alloc(&t->mem, chunks, pool);
    for (unsigned s = 0; rc == TXSTATS_OK && s < t->nshards; s++)
        rc = txstats__dslab_alloc(&t->mem, dchunks[s], &dslabs[s]);
    if (rc != TXSTATS_OK) {
        txstats__chunks_free(&t->mem, *pool);
        *pool = NULL;
        for (unsigned s = 0; s < t->nshards; s++)
            txstats__dslab_free(&t->mem, dslabs[s]);
    }
    return rc;
}

int txstats__snapshot_install(txstats_t *t, const struct txstats__snap *sn, uint64_t *dropped)
{
    struct txstats__chunk *pool = NULL;
    struct txstats__dslab *dslabs[TXSTATS__MAX_SHARDS] = {NULL};
    struct txstats__keys keys;
    uint64_t gone = 0;
    int rc = load_keys(t, sn, &keys);
    if (rc == TXSTATS_OK)
        rc = alloc_for_load(t, sn, &pool, dslabs);
    if (rc == TXSTATS_OK) {
        txstats__keys_lock_all(&t->keys); /* lock order everywhere: keys, then shards */
        install(t, sn, pool, dslabs, &gone);
        txstats__keys_swap(&t->keys, &keys);
        txstats__keys_unlock_all(&t->keys);
    }
    txstats__keys_fini(&keys);
    if (dropped)
        *dropped = gone;
    return rc;
}

int txstats_load(txstats_t *t, const char *path)
{
    if (!t || !path)
        return TXSTATS_EINVAL;
    char *data = NULL;
    size_t len = 0;
    int rc = txstats__read_all(&t->mem, AT_FDCWD, path, SNAPSHOT_MAX, &data, &len);
    if (rc != TXSTATS_OK)
        return rc;
    struct txstats__snap sn;
    txstats__snap_init(&sn, &t->mem);
    rc = txstats__snap_is_bin(data, len) ? txstats__snap_decode_bin(&sn, data, len)
                                         : txstats__snap_decode_json(&sn, data, len);
    txstats__free(&t->mem, data);
    if (rc == TXSTATS_OK)
        rc = txstats__snapshot_install(t, &sn, NULL);
    txstats__snap_free(&sn);
    return rc;
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
    struct txstats__snap sn;
    struct txstats__journal *j = t->journal;
    txstats__snap_init(&sn, &t->mem);
    /* Streams beyond the current shards come from an earlier run with more shards: everything
     * they hold was replayed at open, so every one of their segments is covered. */
    sn.nbound = d->known_streams;
    for (unsigned i = t->nshards; i < d->known_streams; i++)
        sn.bound[i] = atomic_load(&j->next_seg);
    uint64_t records = journal_records(t);
    int rc = collect(t, &sn, sn.bound);
    if (rc == TXSTATS_OK)
        rc = txstats__write_atomic(&t->mem, t->cfg.io, j->dirfd, TXSTATS__CHECKPOINT_NAME,
                                   produce_bin, &sn, NULL);
    int e = errno;
    if (rc == TXSTATS_OK) {
        unlinkat(j->dirfd, TXSTATS__LEGACY_SNAPSHOT, 0); /* superseded */
        d->live_segments = txstats__journal_delete_covered(j, sn.bound, sn.nbound);
        d->checkpoints++;
        d->records_at_ckpt = records;
    }
    txstats__snap_free(&sn);
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

int txstats__checkpoint_read(txstats_t *t, int dirfd, struct txstats__snap *sn)
{
    char *data = NULL;
    size_t len = 0;
    bool legacy = false;
    int rc = txstats__read_all(&t->mem, dirfd, TXSTATS__CHECKPOINT_NAME, SNAPSHOT_MAX, &data, &len);
    if (rc == TXSTATS_EIO && errno == ENOENT) {
        legacy = true;
        rc = txstats__read_all(&t->mem, dirfd, TXSTATS__LEGACY_SNAPSHOT, SNAPSHOT_MAX, &data, &len);
    }
    if (rc != TXSTATS_OK)
        return rc;
    rc =
        legacy ? txstats__snap_decode_json(sn, data, len) : txstats__snap_decode_bin(sn, data, len);
    txstats__free(&t->mem, data);
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
