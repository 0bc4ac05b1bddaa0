/* SPDX-License-Identifier: MIT */
/*
 * Write-ahead journal. Each shard appends to its own stream of segment files,
 * `journal-<stream>-<segment>.log`, under the shard lock it already holds, so adds stay parallel
 * and a stream's order is the order in which its shard applied them. A record is written (2)
 * before the window changes: when the write fails, nothing is counted.
 *
 * Record, 32 bytes, little-endian:
 *   0  crc32c of bytes 4..31      4  type (1 add, 2 clear)   5  length (32)   6  zero (2 bytes)
 *   8  timestamp ms (add)        16  amount (add) or clear id (clear)         24  sequence
 *
 * A checkpoint rotates every shard to a fresh segment while copying it under the same lock, so
 * the snapshot covers exactly the older segments, which are then deleted. A clear writes a clear
 * record to every stream under all shard locks; recovery honours it only if every stream holds it
 * (an interrupted clear was never acknowledged).
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

#define REC_SIZE  TXSTATS__REC_SIZE
#define REC_ADD   TXSTATS__REC_ADD
#define REC_CLEAR TXSTATS__REC_CLEAR

/* ---- CRC32C (Castagnoli) -------------------------------------------------------------------- */

static uint32_t crc32c_sw(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(const uint8_t *p, size_t n)
{
    uint64_t c = 0xFFFFFFFFu;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

static uint32_t crc32c(const uint8_t *p, size_t n)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_hw(p, n);
#endif
    return crc32c_sw(p, n);
}

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

static void encode(uint8_t *r, int type, int64_t ts, int64_t value, uint64_t seq)
{
    memset(r, 0, REC_SIZE);
    r[4] = (uint8_t)type;
    r[5] = REC_SIZE;
    put64(r + 8, (uint64_t)ts);
    put64(r + 16, (uint64_t)value);
    put64(r + 24, seq);
    uint32_t c = crc32c(r + 4, REC_SIZE - 4);
    for (int i = 0; i < 4; i++)
        r[i] = (uint8_t)(c >> (8 * i));
}

bool txstats__decode(const uint8_t *r, struct jrec *out)
{
    uint32_t c = (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
    if (c != crc32c(r + 4, REC_SIZE - 4) || r[5] != REC_SIZE || r[6] || r[7] ||
        (r[4] != REC_ADD && r[4] != REC_CLEAR))
        return false;
    out->type = r[4];
    out->ts = (int64_t)get64(r + 8);
    out->value = (int64_t)get64(r + 16);
    return out->type == REC_CLEAR ||
           (out->value > -TXSTATS_AMOUNT_LIMIT && out->value < TXSTATS_AMOUNT_LIMIT);
}

/* ---- writing -------------------------------------------------------------------------------- */

static int write_record(txstats_t *t, struct txstats__shard *s, int type, int64_t ts, int64_t v)
{
    uint8_t r[REC_SIZE];
    encode(r, type, ts, v, s->jseq + 1);
    ssize_t w;
    do
        w = write(s->jfd, r, REC_SIZE);
    while (w < 0 && errno == EINTR);
    if (w != REC_SIZE) {
        int e = w < 0 ? errno : ENOSPC;
        if (w > 0 && ftruncate(s->jfd, (off_t)s->joff) != 0) /* no half record stays behind */
            e = errno;
        s->jerrors++;
        errno = e;
        return TXSTATS_EIO;
    }
    s->jseq++;
    atomic_store_explicit(&s->jseq_pub, s->jseq, memory_order_release);
    s->joff += REC_SIZE;
    s->jrecords++;
    s->jbytes += REC_SIZE;
    if (s->joff >= t->journal->cfg.segment_bytes)
        (void)txstats__journal_rotate(t, s); /* on failure, the current segment just grows */
    return TXSTATS_OK;
}

int txstats__journal_add(txstats_t *t, struct txstats__shard *s, txstats_amount_t a, int64_t ts)
{
    return write_record(t, s, REC_ADD, ts, a);
}

void txstats__segment_name(char *buf, size_t n, unsigned stream, uint64_t seg)
{
    snprintf(buf, n, "journal-%u-%016llu.log", stream, (unsigned long long)seg);
}

/* Flush what the segment holds (unless fsync is never) and close it; `io` held. */
static void close_segment(txstats_t *t, struct txstats__shard *s)
{
    if (s->jfd < 0)
        return;
    if (t->journal->cfg.fsync != TXSTATS_FSYNC_NEVER && fdatasync(s->jfd) == 0)
        s->jsyncs++;
    s->jsynced = s->jseq;
    close(s->jfd);
    s->jfd = -1;
}

int txstats__journal_rotate(txstats_t *t, struct txstats__shard *s)
{
    struct txstats__journal *j = t->journal;
    char name[64];
    uint64_t seg = atomic_fetch_add(&j->next_seg, 1);
    txstats__segment_name(name, sizeof(name), (unsigned)(s - t->shards), seg);
    int fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return TXSTATS_EIO;
    if (fsync(j->dirfd) != 0) { /* the new name must survive a crash */
        int e = errno;
        close(fd);
        unlinkat(j->dirfd, name, 0);
        errno = e;
        return TXSTATS_EIO;
    }
    pthread_mutex_lock(&s->io);
    close_segment(t, s);
    s->jfd = fd;
    s->jseg = seg;
    s->joff = 0;
    pthread_mutex_unlock(&s->io);
    return TXSTATS_OK;
}

/* Make records up to `seq` durable; concurrent callers share one fdatasync. */
static int sync_upto(struct txstats__shard *s, uint64_t seq)
{
    int rc = TXSTATS_OK;
    pthread_mutex_lock(&s->io);
    if (s->jsynced < seq) {
        uint64_t target = atomic_load_explicit(&s->jseq_pub, memory_order_acquire);
        if (fdatasync(s->jfd) == 0) {
            s->jsynced = target;
            s->jsyncs++;
        } else {
            rc = TXSTATS_EIO;
        }
    }
    pthread_mutex_unlock(&s->io);
    return rc;
}

int txstats__journal_commit(txstats_t *t, struct txstats__shard *s, uint64_t seq)
{
    if (t->journal->cfg.fsync != TXSTATS_FSYNC_ALWAYS)
        return TXSTATS_OK;
    return sync_upto(s, seq);
}

void *txstats__flusher_main(void *arg)
{
    txstats_t *t = arg;
    struct txstats__journal *j = t->journal;
    pthread_mutex_lock(&j->fl_lock);
    while (!j->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (j->cfg.fsync_interval_ms % 1000) * 1000000;
        until.tv_sec += (time_t)(j->cfg.fsync_interval_ms / 1000 + ns / 1000000000);
        until.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&j->fl_cond, &j->fl_lock, &until);
        for (unsigned i = 0; i < t->nshards && !j->stop; i++)
            sync_upto(&t->shards[i], atomic_load(&t->shards[i].jseq_pub));
    }
    pthread_mutex_unlock(&j->fl_lock);
    return NULL;
}

int txstats_clear_ex(txstats_t *t)
{
    if (!t)
        return TXSTATS_EINVAL;
    uint64_t seqs[TXSTATS__MAX_SHARDS];
    int rc = TXSTATS_OK;
    txstats__lock_all(t);
    if (t->journal) {
        uint64_t id = ++t->journal->clear_id;
        for (unsigned i = 0; i < t->nshards && rc == TXSTATS_OK; i++) {
            rc = write_record(t, &t->shards[i], REC_CLEAR, 0, (int64_t)id);
            seqs[i] = t->shards[i].jseq;
        }
    }
    for (unsigned i = 0; i < t->nshards && rc == TXSTATS_OK; i++)
        txstats__shard_reset(t, &t->shards[i]);
    txstats__unlock_all(t);
    for (unsigned i = 0; t->journal && i < t->nshards && rc == TXSTATS_OK; i++)
        rc = txstats__journal_commit(t, &t->shards[i], seqs[i]);
    return rc;
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

/* Parse "journal-<stream>-<segment>.log". */
bool txstats__parse_segment_name(const char *name, unsigned *stream, uint64_t *seg)
{
    unsigned long long g;
    int n = 0;
    char canonical[64];
    if (sscanf(name, "journal-%u-%llu.log%n", stream, &g, &n) != 2 || name[n] != '\0' ||
        *stream >= TXSTATS__MAX_SHARDS)
        return false;
    *seg = g;
    txstats__segment_name(canonical, sizeof(canonical), *stream, g);
    return strcmp(canonical, name) == 0; /* only names this library writes */
}

/* Delete covered segments; count the ones left. */
static void delete_covered(struct txstats__journal *j, const uint64_t *bound)
{
    uint64_t left = 0;
    int fd = dup(j->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    rewinddir(d); /* a dup shares the directory offset with the last scan */
    while ((e = readdir(d))) {
        unsigned stream;
        uint64_t seg;
        if (!txstats__parse_segment_name(e->d_name, &stream, &seg))
            continue;
        if (stream < j->streams && seg < bound[stream] && unlinkat(j->dirfd, e->d_name, 0) == 0)
            continue;
        left++;
    }
    closedir(d);
    j->live_segments = left;
}

int txstats_checkpoint(txstats_t *t)
{
    if (!t || !t->journal)
        return TXSTATS_EINVAL;
    struct txstats__journal *j = t->journal;
    uint64_t bound[TXSTATS__MAX_SHARDS];
    pthread_mutex_lock(&j->ckpt);
    /* Streams beyond the current shards come from an earlier run with more shards: everything
     * they hold was replayed at open, so every one of their segments is covered. */
    uint64_t all = atomic_load(&j->next_seg);
    for (unsigned i = t->nshards; i < j->streams; i++)
        bound[i] = all;
    int rc = txstats__snapshot_write(t, j->snapshot_path, bound);
    if (rc == TXSTATS_OK) {
        delete_covered(j, bound);
        j->checkpoints++;
    }
    pthread_mutex_unlock(&j->ckpt);
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
        out->records += s->jrecords;
        out->bytes += s->jbytes;
        out->write_errors += s->jerrors;
        pthread_mutex_unlock(&s->lock);
        pthread_mutex_lock(&s->io);
        out->syncs += s->jsyncs;
        pthread_mutex_unlock(&s->io);
    }
    pthread_mutex_lock(&t->journal->ckpt);
    out->checkpoints = t->journal->checkpoints;
    out->segments = t->journal->live_segments;
    pthread_mutex_unlock(&t->journal->ckpt);
    return TXSTATS_OK;
}

void txstats__journal_close(txstats_t *t)
{
    struct txstats__journal *j = t->journal;
    if (!j)
        return;
    if (j->flusher_running) {
        pthread_mutex_lock(&j->fl_lock);
        j->stop = true;
        pthread_cond_signal(&j->fl_cond);
        pthread_mutex_unlock(&j->fl_lock);
        pthread_join(j->flusher, NULL);
    }
    for (unsigned i = 0; i < t->nshards; i++) {
        pthread_mutex_lock(&t->shards[i].io);
        close_segment(t, &t->shards[i]);
        pthread_mutex_unlock(&t->shards[i].io);
    }
    if (j->dirfd >= 0)
        close(j->dirfd);
    if (j->lockfd >= 0)
        close(j->lockfd); /* releases the directory lock */
    free(j->snapshot_path);
    pthread_mutex_destroy(&j->ckpt);
    pthread_mutex_destroy(&j->fl_lock);
    pthread_cond_destroy(&j->fl_cond);
    free(j);
    t->journal = NULL;
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
