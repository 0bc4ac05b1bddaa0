/* SPDX-License-Identifier: MIT */
/*
 * txstats_open_dir(): lock the directory, read the snapshot and every journal segment it does not
 * cover, rebuild the window, then attach a fresh journal and checkpoint. Nothing on disk changes
 * until the rebuilt state has been written as a new snapshot.
 *
 * A damaged record followed by a good one in the same segment is corruption: recovery stops
 * (TXSTATS_EFORMAT) unless skip_corrupt. Damaged or partial records at the end of a segment are a
 * torn tail from a crash mid-write, and are cut.
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

#include "journal.h"

struct segfile {
    unsigned stream;
    uint64_t seg;
    char name[64];
};

struct stream {
    struct jrec *recs;
    size_t n, cap;
    bool present;
    uint64_t last_clear; /* largest clear id seen in this stream */
};

struct recovery {
    struct segfile *files;
    size_t nfiles;
    struct stream streams[TXSTATS__MAX_SHARDS];
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
    size_t cap = 0;
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
        if (r->nfiles == cap) {
            cap = cap ? cap * 2 : 16;
            struct segfile *nf = realloc(r->files, cap * sizeof(*nf));
            if (!nf) {
                closedir(d);
                return TXSTATS_ENOMEM;
            }
            r->files = nf;
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

static int push(struct stream *st, const struct jrec *rec)
{
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 1024;
        struct jrec *nr = realloc(st->recs, st->cap * sizeof(*nr));
        if (!nr)
            return TXSTATS_ENOMEM;
        st->recs = nr;
    }
    st->recs[st->n++] = *rec;
    if (rec->type == TXSTATS__REC_CLEAR && (uint64_t)rec->value > st->last_clear)
        st->last_clear = (uint64_t)rec->value;
    return TXSTATS_OK;
}

/* Records of one segment into its stream: good ones kept, a torn tail cut, damage counted. */
static int read_segment(int dirfd, const struct segfile *f, struct stream *st, int skip_corrupt,
                        txstats_recovery_t *rep)
{
    char *raw;
    size_t len;
    int rc = txstats__read_all(dirfd, f->name, UINT64_MAX, &raw, &len);
    if (rc != TXSTATS_OK)
        return rc;
    const uint8_t *data = (const uint8_t *)raw;
    size_t nrec = len / TXSTATS__REC_SIZE, last_good = 0;
    struct jrec rec;
    for (size_t i = 0; i < nrec; i++)
        if (txstats__decode(data + i * TXSTATS__REC_SIZE, &rec))
            last_good = i + 1;
    rep->torn_bytes += len - last_good * TXSTATS__REC_SIZE;
    for (size_t i = 0; i < last_good && rc == TXSTATS_OK; i++) {
        if (txstats__decode(data + i * TXSTATS__REC_SIZE, &rec))
            rc = push(st, &rec);
        else if (skip_corrupt)
            rep->corrupt_records++;
        else
            rc = TXSTATS_EFORMAT;
    }
    free(raw);
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

/* Apply the records of every stream after the clear `cleared` (0: all of them). */
static int replay(txstats_t *t, const struct recovery *r, uint64_t cleared, txstats_recovery_t *rep)
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
            if (st->recs[k].type != TXSTATS__REC_ADD)
                continue;
            int rc = txstats_add(t, st->recs[k].value, st->recs[k].ts);
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
    for (unsigned i = 0; i < TXSTATS__MAX_SHARDS; i++)
        free(r->streams[i].recs);
    free(r->files);
}

/* Read everything and rebuild the window (no journal attached yet). */
static int rebuild(txstats_t *t, int dirfd, const char *snap_path, const txstats_durability_t *d,
                   struct recovery *r, txstats_recovery_t *rep)
{
    struct txstats__snap sn;
    int rc = txstats__snapshot_read(t, snap_path, &sn);
    bool have_snap = rc == TXSTATS_OK;
    if (rc == TXSTATS_EIO && errno == ENOENT)
        rc = TXSTATS_OK;
    if (rc != TXSTATS_OK)
        return rc;
    rc = list_segments(dirfd, r);
    for (size_t i = 0; i < r->nfiles && rc == TXSTATS_OK; i++) {
        const struct segfile *f = &r->files[i];
        if (!have_snap || f->seg >= sn.bound[f->stream])
            rc = read_segment(dirfd, f, &r->streams[f->stream], d->skip_corrupt, rep);
    }
    uint64_t cleared = rc == TXSTATS_OK ? complete_clear(r) : 0;
    rep->cleared = cleared != 0;
    txstats_clear(t); /* no journal yet: memory only */
    if (rc == TXSTATS_OK && have_snap && !cleared) {
        rc = txstats__snapshot_install(t, &sn);
        txstats_summary_t s;
        txstats_stats(t, &s);
        rep->snapshot_transactions = s.count;
    }
    if (have_snap)
        txstats__snap_free(t, &sn);
    if (rc == TXSTATS_OK)
        rc = replay(t, r, cleared, rep);
    if (rc != TXSTATS_OK)
        txstats_clear(t);
    return rc;
}

static int lock_dir(int dirfd, int *lockfd)
{
    *lockfd = openat(dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*lockfd < 0)
        return TXSTATS_EIO;
    if (flock(*lockfd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(*lockfd);
        *lockfd = -1;
        errno = e;
        return e == EWOULDBLOCK ? TXSTATS_EBUSY : TXSTATS_EIO;
    }
    return TXSTATS_OK;
}

/* Attach the journal: a fresh segment per shard, the flusher, then a first checkpoint. */
static int attach(txstats_t *t, struct txstats__journal *j, const struct recovery *r)
{
    atomic_init(&j->next_seg, r->max_seg + 1);
    j->streams = r->nstreams > t->nshards ? r->nstreams : t->nshards;
    t->journal = j;
    for (unsigned i = 0; i < t->nshards; i++) {
        pthread_mutex_lock(&t->shards[i].lock);
        int rc = txstats__journal_rotate(t, &t->shards[i]);
        pthread_mutex_unlock(&t->shards[i].lock);
        if (rc != TXSTATS_OK)
            return rc;
    }
    if (j->cfg.fsync == TXSTATS_FSYNC_INTERVAL) {
        if (pthread_create(&j->flusher, NULL, txstats__flusher_main, t) != 0)
            return TXSTATS_ENOMEM;
        j->flusher_running = true;
    }
    return txstats_checkpoint(t);
}

static struct txstats__journal *journal_new(const char *dir, const txstats_durability_t *d)
{
    struct txstats__journal *j = calloc(1, sizeof(*j));
    size_t n = strlen(dir) + sizeof("/snapshot.json");
    if (!j || !(j->snapshot_path = malloc(n))) {
        free(j);
        return NULL;
    }
    snprintf(j->snapshot_path, n, "%s/snapshot.json", dir);
    j->cfg = *d;
    j->dirfd = j->lockfd = -1;
    pthread_mutex_init(&j->ckpt, NULL);
    pthread_mutex_init(&j->fl_lock, NULL);
    pthread_cond_init(&j->fl_cond, NULL);
    return j;
}

static int check_durability(const txstats_durability_t *d)
{
    if (d->fsync != TXSTATS_FSYNC_INTERVAL && d->fsync != TXSTATS_FSYNC_ALWAYS &&
        d->fsync != TXSTATS_FSYNC_NEVER)
        return TXSTATS_EINVAL;
    if (d->fsync_interval_ms < 1 || d->segment_bytes < TXSTATS__REC_SIZE)
        return TXSTATS_EINVAL;
    return TXSTATS_OK;
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
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return TXSTATS_EIO;
    struct txstats__journal *j = journal_new(dir, d);
    if (!j)
        return TXSTATS_ENOMEM;
    j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = j->dirfd < 0 ? TXSTATS_EIO : lock_dir(j->dirfd, &j->lockfd);
    if (rc == TXSTATS_OK)
        rc = rebuild(t, j->dirfd, j->snapshot_path, d, &r, &rep);
    if (rc == TXSTATS_OK)
        rc = attach(t, j, &r);
    int e = errno;
    recovery_free(&r);
    if (rc != TXSTATS_OK) {
        t->journal = j; /* closes segments, stops the flusher, releases the lock */
        txstats__journal_close(t);
        errno = e;
        return rc;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    rep.duration_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (report)
        *report = rep;
    return TXSTATS_OK;
}
