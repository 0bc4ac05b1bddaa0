/* SPDX-License-Identifier: MIT */
/*
 * txstats_open_dir(): lock the directory, read the checkpoint and every journal segment it does
 * not cover, rebuild the window, then attach a fresh journal and checkpoint. Nothing on disk
 * changes until the rebuilt state has been written as a new checkpoint. The top of the library:
 * it replays through txstats_add() and checkpoints through the persistence layer.
 *
 * A damaged record followed by a good one in the same segment is corruption, and so is a record
 * whose sequence number does not follow its stream's last (a duplicated record or segment):
 * recovery stops (TXSTATS_EFORMAT) unless skip_corrupt. Damaged or partial records at the end of a
 * segment are a torn tail from a crash mid-write, and are cut.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "install.h"
#include "persist.h"

struct segfile {
    unsigned stream;
    uint64_t seg;
    char name[64];
};

struct stream {
    struct txstats__jrec *recs;
    size_t n, cap;
    bool present;
    uint64_t last_clear; /* largest clear id seen in this stream */
};

/* Segments whose records name entities stay read until the replay (their records point in). */
struct kept_raw {
    struct kept_raw *next;
    char *raw;
};

struct recovery {
    const struct txstats__mem *mem;
    struct kept_raw *raws;
    struct segfile *files;
    size_t nfiles, cap;
    struct stream streams[TXSTATS__MAX_STREAMS];
    unsigned nstreams;
    uint64_t max_seg;
};

static int cmp_segfile(const void *a, const void *b)
{
    const struct segfile *x = a, *y = b;
    if (x->stream != y->stream)
        return x->stream < y->stream ? -1 : 1;
    return x->seg < y->seg ? -1 : x->seg > y->seg;
}

static int list_segments(int dirfd, struct recovery *r)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return TXSTATS_EIO;
    }
    rewinddir(d); /* a dup shares the directory offset with the last scan */
    while ((e = readdir(d))) {
        struct segfile f;
        if (!txstats__parse_segment_name(e->d_name, &f.stream, &f.seg))
            continue;
        txstats__segment_name(f.name, sizeof(f.name), f.stream, f.seg);
        if (txstats__reserve(r->mem, (void **)&r->files, &r->cap, r->nfiles + 1, sizeof(f)) != 0) {
            closedir(d);
            return TXSTATS_ENOMEM;
        }
        r->files[r->nfiles++] = f;
        r->max_seg = f.seg > r->max_seg ? f.seg : r->max_seg;
        r->nstreams = f.stream + 1 > r->nstreams ? f.stream + 1 : r->nstreams;
    }
    closedir(d);
    if (r->nfiles > 1)
        qsort(r->files, r->nfiles, sizeof(*r->files), cmp_segfile);
    return TXSTATS_OK;
}

static int push(const struct txstats__mem *mem, struct stream *st, const struct txstats__jrec *rec)
{
    if (txstats__reserve(mem, (void **)&st->recs, &st->cap, st->n + 1, sizeof(*rec)) != 0)
        return TXSTATS_ENOMEM;
    st->recs[st->n++] = *rec;
    if (rec->type == TXSTATS__REC_CLEAR && (uint64_t)rec->value > st->last_clear)
        st->last_clear = (uint64_t)rec->value;
    return TXSTATS_OK;
}

/* Where the last record that decodes ends, trying every 32-byte position: what follows it is a
 * torn tail (a crash mid-write), not damage. */
static size_t good_end(const uint8_t *data, size_t len)
{
    size_t end = 0;
    struct txstats__jrec rec;
    for (size_t off = 0; off + TXSTATS__REC_SIZE <= len; off += TXSTATS__REC_SIZE) {
        size_t n = txstats__jrec_decode(data + off, len - off, &rec);
        end = n && off + n > end ? off + n : end;
    }
    return end;
}

/* Records of one segment into its stream: good ones kept, a torn tail cut, damage counted (by
 * 32-byte slot). */
/* A segment's bytes, freed now or, when its records name entities, after the replay. */
static int keep_or_free(struct recovery *r, char *raw, bool keep)
{
    struct kept_raw *k = keep ? txstats__alloc(r->mem, sizeof(*k)) : NULL;
    if (!k) {
        txstats__free(r->mem, raw);
        return keep ? TXSTATS_ENOMEM : TXSTATS_OK;
    }
    *k = (struct kept_raw){r->raws, raw};
    r->raws = k;
    return TXSTATS_OK;
}

static int read_segment(struct recovery *r, int dirfd, const struct segfile *f, struct stream *st,
                        int skip_corrupt, txstats_recovery_t *rep)
{
    char *raw;
    size_t len;
    int rc = txstats__read_all(r->mem, dirfd, f->name, UINT64_MAX, &raw, &len);
    if (rc != TXSTATS_OK)
        return rc;
    const uint8_t *data = (const uint8_t *)raw;
    size_t end = good_end(data, len);
    bool named = false;
    rep->torn_bytes += len - end;
    for (size_t off = 0; off < end && rc == TXSTATS_OK;) {
        struct txstats__jrec rec;
        size_t n = txstats__jrec_decode(data + off, end - off, &rec);
        /* A stream's sequence numbers only grow (across its segments and runs): a record that
         * does not follow the one before is a copy (a segment or record duplicated), damage. */
        bool in_order = n && (st->n == 0 || rec.seq > st->recs[st->n - 1].seq);
        if (in_order) {
            rc = push(r->mem, st, &rec);
            named |= rec.ent_len > 0;
            off += n;
        } else if (skip_corrupt) {
            rep->corrupt_records++;
            off += n ? n : TXSTATS__REC_SIZE;
        } else {
            rc = TXSTATS_EFORMAT;
        }
    }
    int kept = keep_or_free(r, raw, named && rc == TXSTATS_OK);
    rc = rc == TXSTATS_OK ? kept : rc;
    st->present = true;
    rep->segments++;
    return rc;
}

/* The newest clear that reached every stream, or 0. */
static uint64_t complete_clear(const struct recovery *r)
{
    uint64_t best = UINT64_MAX;
    bool any = false;
    for (unsigned i = 0; i < r->nstreams; i++) {
        if (!r->streams[i].present)
            continue;
        any = true;
        best = r->streams[i].last_clear < best ? r->streams[i].last_clear : best;
    }
    if (!any || best == 0)
        return 0;
    /* `best` may be a clear some stream never wrote (ids are not all in every stream): walk
     * down to an id that every stream holds. */
    for (uint64_t id = best; id > 0; id--) {
        bool everywhere = true;
        for (unsigned i = 0; i < r->nstreams && everywhere; i++) {
            const struct stream *st = &r->streams[i];
            bool found = !st->present;
            for (size_t k = 0; k < st->n && !found; k++)
                found = st->recs[k].type == TXSTATS__REC_CLEAR && (uint64_t)st->recs[k].value == id;
            everywhere = found;
        }
        if (everywhere)
            return id;
    }
    return 0;
}

/* Apply the records of every stream after the clear `cleared` (0: all of them), but those the
 * checkpoint `l` (may be NULL) holds already. */
static int replay(txstats_t *t, const struct recovery *r, uint64_t cleared,
                  const struct txstats__load *l, txstats_recovery_t *rep)
{
    for (unsigned i = 0; i < r->nstreams; i++) {
        const struct stream *st = &r->streams[i];
        size_t from = 0;
        for (size_t k = 0; cleared && k < st->n; k++)
            if (st->recs[k].type == TXSTATS__REC_CLEAR && (uint64_t)st->recs[k].value == cleared)
                from = k + 1;
        if (cleared && !st->present)
            continue;
        for (size_t k = from; k < st->n; k++) {
            const struct txstats__jrec *rec = &st->recs[k];
            if (rec->type == TXSTATS__REC_CLEAR ||
                (l && txstats__load_covers(l, i, rec->ts, rec->seq)))
                continue;
            int rc = txstats__replay(t, rec);
            if (rc == TXSTATS_OK)
                rep->replayed++;
            else if (rc == TXSTATS_EXPIRED || rc == TXSTATS_EFUTURE)
                rep->expired++;
            else
                return rc;
        }
    }
    return TXSTATS_OK;
}

static void recovery_free(struct recovery *r)
{
    for (unsigned i = 0; i < TXSTATS__MAX_STREAMS; i++)
        txstats__free(r->mem, r->streams[i].recs);
    txstats__free(r->mem, r->files);
    while (r->raws) {
        struct kept_raw *k = r->raws;
        r->raws = k->next;
        txstats__free(r->mem, k->raw);
        txstats__free(r->mem, k);
    }
}

/* Whether a journal segment holds a record. A directory's first open writes a checkpoint before
 * any add can be journaled, and segments are deleted only once a checkpoint covers them, so
 * records without a checkpoint mean it was removed (or lost with its copy): what it held would be
 * missing without a word. */
static bool journal_has_records(const struct recovery *r)
{
    for (unsigned i = 0; i < r->nstreams; i++)
        if (r->streams[i].n)
            return true;
    return false;
}

/* The checkpoint into the window (unless a complete clear supersedes it). */
static int restore_checkpoint(struct txstats__load *l, const struct txstats__source *src,
                              txstats_recovery_t *rep)
{
    uint64_t loaded = 0, dropped = 0, by_bucket = 0;
    int rc = txstats__load_commit(l, &loaded, &dropped, &by_bucket);
    rep->snapshot_transactions = loaded;
    rep->expired += dropped;
    rep->approximate = src->approximate ? by_bucket : 0; /* an older file's buckets are means */
    return rc;
}

/* The checkpoint, if any: opened and checked (its first pass), so that its bounds and cuts are
 * known before the journal is read. */
static int open_checkpoint(txstats_t *t, int dirfd, struct txstats__source *src,
                           struct txstats__load **l)
{
    int rc = txstats__source_open(t, dirfd, TXSTATS__CHECKPOINT_NAME, src);
    if (rc == TXSTATS_EIO && errno == ENOENT)
        rc = txstats__source_open(t, dirfd, TXSTATS__LEGACY_SNAPSHOT, src);
    if (rc == TXSTATS_EIO && errno == ENOENT)
        return TXSTATS_OK; /* none */
    if (rc == TXSTATS_OK)
        rc = txstats__load_check(t, &src->in, l);
    return rc;
}

/* Read everything and rebuild the window (no journal attached yet). */
static int rebuild(txstats_t *t, int dirfd, const txstats_durability_t *d, struct recovery *r,
                   txstats_recovery_t *rep)
{
    struct txstats__source src = {.fd = -1};
    struct txstats__load *l = NULL;
    int rc = open_checkpoint(t, dirfd, &src, &l);
    if (rc == TXSTATS_OK)
        rc = list_segments(dirfd, r);
    for (size_t i = 0; i < r->nfiles && rc == TXSTATS_OK; i++) {
        const struct segfile *f = &r->files[i];
        uint64_t bound;
        if (!l || !txstats__load_bound(l, f->stream, &bound) || f->seg >= bound)
            rc = read_segment(r, dirfd, f, &r->streams[f->stream], d->skip_corrupt, rep);
    }
    for (unsigned s = 0; l && s < TXSTATS__MAX_STREAMS; s++) { /* numbers never go back */
        uint64_t bound;
        if (txstats__load_bound(l, s, &bound) && bound > r->max_seg)
            r->max_seg = bound;
    }
    if (rc == TXSTATS_OK && !l && journal_has_records(r)) {
        rep->missing_checkpoint = 1; /* the checkpoint these records follow is gone */
        if (!d->skip_corrupt)
            rc = (errno = ENOENT, TXSTATS_EFORMAT);
    }
    uint64_t cleared = rc == TXSTATS_OK ? complete_clear(r) : 0;
    rep->cleared = cleared != 0;
    txstats_clear(t); /* no journal yet: memory only */
    if (rc == TXSTATS_OK && l && !cleared)
        rc = restore_checkpoint(l, &src, rep);
    if (rc == TXSTATS_OK)
        rc = replay(t, r, cleared, cleared ? NULL : l, rep);
    int e = errno;
    txstats__load_free(l);
    txstats__source_close(t, &src);
    if (rc != TXSTATS_OK)
        txstats_clear(t);
    errno = e;
    return rc;
}

static int check_durability(const txstats_durability_t *d)
{
    if (d->fsync != TXSTATS_FSYNC_INTERVAL && d->fsync != TXSTATS_FSYNC_ALWAYS &&
        d->fsync != TXSTATS_FSYNC_NEVER)
        return TXSTATS_EINVAL;
    if (d->fsync_interval_ms < 1 || d->segment_bytes < TXSTATS__REC_SIZE ||
        d->checkpoint_interval_ms < 0)
        return TXSTATS_EINVAL;
    return TXSTATS_OK;
}

/* Recover into `t` and attach the journal; on failure everything is released. */
static int open_journal(txstats_t *t, struct txstats__journal *j, const txstats_durability_t *d,
                        struct recovery *r, txstats_recovery_t *rep)
{
    int rc = rebuild(t, j->dirfd, d, r, rep);
    unsigned known = r->nstreams > t->nshards ? r->nstreams : t->nshards;
    if (rc == TXSTATS_OK)
        rc = txstats__journal_start(j, t->nshards, r->max_seg + 1);
    if (rc == TXSTATS_OK)
        return txstats__attach(t, j, known);
    int e = errno;
    txstats__journal_close(j);
    errno = e;
    return rc;
}

int txstats_open_dir(txstats_t *t, const char *dir, const txstats_durability_t *d,
                     txstats_recovery_t *report)
{
    txstats_durability_t defaults;
    txstats_recovery_t rep;
    struct recovery r;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&rep, 0, sizeof(rep));
    memset(&r, 0, sizeof(r));
    if (!d) {
        txstats_durability_init(&defaults);
        d = &defaults;
    }
    if (!t || !dir || !*dir || t->journal || check_durability(d) != TXSTATS_OK)
        return TXSTATS_EINVAL;
    r.mem = &t->mem;
    struct txstats__journal *j;
    int rc = txstats__journal_open(&j, &t->mem, t->cfg.io, dir, d);
    if (rc == TXSTATS_OK)
        rc = open_journal(t, j, d, &r, &rep);
    int e = errno;
    recovery_free(&r);
    if (rc != TXSTATS_OK) {
        if (t->detach)
            t->detach(t); /* stops what started, closes the journal, releases the lock */
        errno = e;
        return rc;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    rep.duration_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (report)
        *report = rep;
    return TXSTATS_OK;
}

void txstats_durability_init(txstats_durability_t *d)
{
    if (!d)
        return;
    memset(d, 0, sizeof(*d));
    d->fsync = TXSTATS_FSYNC_INTERVAL;
    d->fsync_interval_ms = 100;
    d->segment_bytes = 64u << 20;
}
