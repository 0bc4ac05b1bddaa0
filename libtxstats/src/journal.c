/* SPDX-License-Identifier: MIT */
/*
 * The write-ahead journal: record codec, segment files of one stream, the directory lock, the
 * flusher thread of TXSTATS_FSYNC_INTERVAL. The caller decides what a stream is (the library
 * gives each shard one, so adds stay parallel) and what a record means.
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

#include "crc32c.h"
#include "fileio.h"
#include "journal.h"

#define REC_SIZE TXSTATS__REC_SIZE

/* ---- records -------------------------------------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static bool has_key(int type)
{
    return type == TXSTATS__REC_ADD_KEYED || type == TXSTATS__REC_KEYED_ENT;
}

static bool has_entity(int type)
{
    return type == TXSTATS__REC_ADD_ENT || type == TXSTATS__REC_KEYED_ENT;
}

/* Where the entity starts, and the record's length. */
static size_t entity_at(int type)
{
    return type == TXSTATS__REC_KEYED_ENT ? 64 : REC_SIZE;
}

static size_t rec_len(int type, uint32_t ent_len)
{
    if (has_entity(type))
        return (entity_at(type) + 1 + ent_len + REC_SIZE - 1) / REC_SIZE * REC_SIZE;
    return type == TXSTATS__REC_ADD_KEYED ? 64 : REC_SIZE;
}

size_t txstats__jrec_encode(uint8_t *r, const struct txstats__jrec *rec, uint64_t seq)
{
    size_t len = rec_len(rec->type, rec->ent_len);
    memset(r, 0, len);
    r[4] = (uint8_t)rec->type;
    r[5] = (uint8_t)len;
    r[6] = (uint8_t)(rec->type == TXSTATS__REC_CLEAR ? 0 : rec->keep);
    put64(r + 8, (uint64_t)rec->ts);
    put64(r + 16, (uint64_t)rec->value);
    put64(r + 24, seq);
    if (has_key(rec->type)) {
        put64(r + 32, rec->key[0]);
        put64(r + 40, rec->key[1]);
    }
    if (has_entity(rec->type)) {
        r[entity_at(rec->type)] = (uint8_t)rec->ent_len;
        memcpy(r + entity_at(rec->type) + 1, rec->ent, rec->ent_len);
    }
    uint32_t c = txstats__crc32c(r + 4, len - 4);
    for (int i = 0; i < 4; i++)
        r[i] = (uint8_t)(c >> (8 * i));
    return len;
}

/* The header's fields are possible for its type: the length the record must have, or 0. */
static size_t check_head(const uint8_t *r, size_t avail)
{
    int type = r[4];
    if (type < TXSTATS__REC_ADD || type > TXSTATS__REC_KEYED_ENT || r[6] > TXSTATS__KEEP_NO ||
        r[7] || (type == TXSTATS__REC_CLEAR && r[6]))
        return 0;
    uint32_t ent_len = 0;
    if (has_entity(type)) {
        if (avail < entity_at(type) + 1)
            return 0;
        ent_len = r[entity_at(type)];
        if (ent_len < 1 || ent_len > TXSTATS_MAX_ENTITY_BYTES)
            return 0;
    }
    size_t len = rec_len(type, ent_len);
    return len == r[5] && len <= avail ? len : 0;
}

size_t txstats__jrec_decode(const uint8_t *r, size_t avail, struct txstats__jrec *out)
{
    if (avail < REC_SIZE)
        return 0;
    size_t len = check_head(r, avail);
    if (!len)
        return 0;
    uint32_t c = (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
    if (c != txstats__crc32c(r + 4, len - 4))
        return 0;
    out->type = r[4];
    out->ts = (int64_t)get64(r + 8);
    out->value = (int64_t)get64(r + 16);
    out->key[0] = has_key(out->type) ? get64(r + 32) : 0;
    out->key[1] = has_key(out->type) ? get64(r + 40) : 0;
    out->seq = get64(r + 24);
    out->keep = r[6];
    out->ent_len = has_entity(out->type) ? r[entity_at(out->type)] : 0;
    out->ent = out->ent_len ? r + entity_at(out->type) + 1 : NULL;
    if (out->type == TXSTATS__REC_CLEAR)
        return len;
    return out->value > -TXSTATS_AMOUNT_LIMIT && out->value < TXSTATS_AMOUNT_LIMIT ? len : 0;
}

void txstats__segment_name(char *buf, size_t n, unsigned stream, uint64_t seg)
{
    snprintf(buf, n, "journal-%u-%016llu.log", stream, (unsigned long long)seg);
}

bool txstats__parse_segment_name(const char *name, unsigned *stream, uint64_t *seg)
{
    unsigned long long g;
    int n = 0;
    char canonical[64];
    if (sscanf(name, "journal-%u-%llu.log%n", stream, &g, &n) != 2 || name[n] != '\0' ||
        *stream >= TXSTATS__MAX_STREAMS)
        return false;
    *seg = g;
    txstats__segment_name(canonical, sizeof(canonical), *stream, g);
    return strcmp(canonical, name) == 0;
}

/* ---- one stream ----------------------------------------------------------------------------- */

/* Flush what the segment holds (unless fsync is never) and close it; `io` held. A segment that
 * holds no record is removed: it carries nothing, and idle checkpoints or failed opens would
 * otherwise leave one behind each time. */
static void close_segment(struct txstats__journal *j, struct txstats__jstream *st)
{
    if (st->fd < 0)
        return;
    if (st->off > 0 && j->cfg.fsync != TXSTATS_FSYNC_NEVER && txstats__io_sync(j->io, st->fd) == 0)
        st->syncs++;
    st->synced = st->seq;
    close(st->fd);
    st->fd = -1;
    if (st->off == 0) {
        char name[64];
        txstats__segment_name(name, sizeof(name), st->id, st->seg);
        unlinkat(j->dirfd, name, 0);
    }
}

int txstats__jstream_rotate(struct txstats__journal *j, struct txstats__jstream *st)
{
    char name[64];
    uint64_t seg = atomic_fetch_add(&j->next_seg, 1);
    txstats__segment_name(name, sizeof(name), st->id, seg);
    int fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return TXSTATS_EIO;
    if (txstats__io_sync(j->io, j->dirfd) != 0) { /* the new name must survive a crash */
        int e = errno;
        close(fd);
        unlinkat(j->dirfd, name, 0);
        errno = e;
        return TXSTATS_EIO;
    }
    pthread_mutex_lock(&st->io);
    close_segment(j, st);
    st->fd = fd;
    st->seg = seg;
    st->off = 0;
    pthread_mutex_unlock(&st->io);
    return TXSTATS_OK;
}

/* Write `n` encoded records (`bytes` in all; sequence numbers st->seq + 1 ...) in one write;
 * nothing is left behind on failure. */
static int write_records(struct txstats__journal *j, struct txstats__jstream *st, const uint8_t *r,
                         size_t n, size_t bytes)
{
    if (txstats__io_write(j->io, st->fd, r, bytes) != 0) {
        int e = errno;
        struct stat sb; /* no half record stays behind */
        if (fstat(st->fd, &sb) == 0 && (uint64_t)sb.st_size > st->off &&
            ftruncate(st->fd, (off_t)st->off) != 0)
            e = errno;
        st->errors++;
        errno = e;
        return TXSTATS_EIO;
    }
    st->seq += n;
    atomic_store_explicit(&st->seq_pub, st->seq, memory_order_release);
    st->off += bytes;
    st->records += n;
    st->bytes += bytes;
    if (st->off >= j->cfg.segment_bytes)
        (void)txstats__jstream_rotate(j, st); /* on failure, the current segment just grows */
    return TXSTATS_OK;
}

int txstats__jstream_append(struct txstats__journal *j, struct txstats__jstream *st,
                            const struct txstats__jrec *rec, uint64_t *seq)
{
    uint8_t r[TXSTATS__REC_MAX];
    size_t len = txstats__jrec_encode(r, rec, st->seq + 1);
    int rc = write_records(j, st, r, 1, len);
    *seq = st->seq;
    return rc;
}

int txstats__jstream_append_batch(struct txstats__journal *j, struct txstats__jstream *st,
                                  const struct txstats__jrec *recs, size_t n, uint8_t *scratch,
                                  uint64_t *seq)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += txstats__jrec_encode(scratch + bytes, &recs[i], st->seq + 1 + i);
    int rc = n ? write_records(j, st, scratch, n, bytes) : TXSTATS_OK;
    *seq = st->seq;
    return rc;
}

/* Make records up to `seq` durable; concurrent callers share one fdatasync. */
static int sync_upto(struct txstats__journal *j, struct txstats__jstream *st, uint64_t seq)
{
    int rc = TXSTATS_OK;
    pthread_mutex_lock(&st->io);
    if (st->synced < seq && st->fd >= 0) {
        uint64_t target = atomic_load_explicit(&st->seq_pub, memory_order_acquire);
        if (txstats__io_sync(j->io, st->fd) == 0) {
            st->synced = target;
            st->syncs++;
        } else {
            rc = TXSTATS_EIO;
        }
    }
    pthread_mutex_unlock(&st->io);
    return rc;
}

int txstats__jstream_commit(struct txstats__journal *j, struct txstats__jstream *st, uint64_t seq)
{
    return j->cfg.fsync == TXSTATS_FSYNC_ALWAYS ? sync_upto(j, st, seq) : TXSTATS_OK;
}

/* ---- the directory -------------------------------------------------------------------------- */

static void *flusher_main(void *arg)
{
    struct txstats__journal *j = arg;
    pthread_mutex_lock(&j->fl_lock);
    while (!j->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (j->cfg.fsync_interval_ms % 1000) * 1000000;
        until.tv_sec += (time_t)(j->cfg.fsync_interval_ms / 1000 + ns / 1000000000);
        until.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&j->fl_cond, &j->fl_lock, &until);
        for (unsigned i = 0; i < j->nstreams && !j->stop; i++)
            sync_upto(j, &j->streams[i], atomic_load(&j->streams[i].seq_pub));
    }
    pthread_mutex_unlock(&j->fl_lock);
    return NULL;
}

static int lock_dir(struct txstats__journal *j)
{
    j->lockfd = openat(j->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->lockfd < 0)
        return TXSTATS_EIO;
    if (flock(j->lockfd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? TXSTATS_EBUSY : TXSTATS_EIO;
    return TXSTATS_OK;
}

int txstats__journal_open(struct txstats__journal **out, const struct txstats__mem *mem,
                          const txstats_io_t *io, const char *dir, const txstats_durability_t *d)
{
    struct txstats__journal *j = txstats__calloc(mem, 1, sizeof(*j));
    *out = NULL;
    if (!j)
        return TXSTATS_ENOMEM;
    j->cfg = *d;
    j->io = io;
    j->mem = mem;
    j->dirfd = j->lockfd = -1;
    pthread_mutex_init(&j->fl_lock, NULL);
    pthread_cond_init(&j->fl_cond, NULL);
    int rc = TXSTATS_OK;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        rc = TXSTATS_EIO;
    else if ((j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = TXSTATS_EIO;
    else
        rc = lock_dir(j);
    if (rc != TXSTATS_OK) {
        int e = errno;
        txstats__journal_close(j);
        errno = e;
        return rc;
    }
    *out = j;
    return TXSTATS_OK;
}

int txstats__journal_start(struct txstats__journal *j, unsigned n, uint64_t next_seg)
{
    j->streams_mem = txstats__calloc(j->mem, n, sizeof(*j->streams) + 64);
    if (!j->streams_mem)
        return TXSTATS_ENOMEM;
    j->streams = (void *)(((uintptr_t)j->streams_mem + 63) & ~(uintptr_t)63);
    atomic_init(&j->next_seg, next_seg);
    for (; j->nstreams < n; j->nstreams++) {
        struct txstats__jstream *st = &j->streams[j->nstreams];
        st->id = j->nstreams;
        st->fd = -1;
        /* Sequence numbers grow across runs too (the first segment number of a run is above
         * every earlier one): a checkpoint's cuts never cover a later run's records. */
        st->seq = st->synced = next_seg << 32;
        atomic_init(&st->seq_pub, st->seq);
        pthread_mutex_init(&st->io, NULL);
        if (txstats__jstream_rotate(j, st) != TXSTATS_OK) {
            pthread_mutex_destroy(&st->io);
            return TXSTATS_EIO;
        }
    }
    if (j->cfg.fsync == TXSTATS_FSYNC_INTERVAL) {
        if (pthread_create(&j->flusher, NULL, flusher_main, j) != 0)
            return TXSTATS_ENOMEM;
        j->flusher_running = true;
    }
    return TXSTATS_OK;
}

void txstats__journal_close(struct txstats__journal *j)
{
    if (!j)
        return;
    if (j->flusher_running) {
        pthread_mutex_lock(&j->fl_lock);
        j->stop = true;
        pthread_cond_signal(&j->fl_cond);
        pthread_mutex_unlock(&j->fl_lock);
        pthread_join(j->flusher, NULL);
    }
    for (unsigned i = 0; i < j->nstreams; i++) {
        pthread_mutex_lock(&j->streams[i].io);
        close_segment(j, &j->streams[i]);
        pthread_mutex_unlock(&j->streams[i].io);
        pthread_mutex_destroy(&j->streams[i].io);
    }
    if (j->dirfd >= 0)
        close(j->dirfd);
    if (j->lockfd >= 0)
        close(j->lockfd); /* releases the directory lock */
    pthread_mutex_destroy(&j->fl_lock);
    pthread_cond_destroy(&j->fl_cond);
    txstats__free(j->mem, j->streams_mem);
    txstats__free(j->mem, j);
}

uint64_t txstats__journal_delete_covered(struct txstats__journal *j, const uint64_t *bound,
                                         unsigned nbound)
{
    uint64_t left = 0;
    int fd = dup(j->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    rewinddir(d); /* a dup shares the directory offset with the last scan */
    while ((e = readdir(d))) {
        unsigned stream;
        uint64_t seg;
        if (!txstats__parse_segment_name(e->d_name, &stream, &seg))
            continue;
        if (stream < nbound && seg < bound[stream] && unlinkat(j->dirfd, e->d_name, 0) == 0)
            continue;
        left++;
    }
    closedir(d);
    return left;
}
