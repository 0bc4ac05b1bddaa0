/* SPDX-License-Identifier: MIT */
/* The outbox of `--kafka-ack local` (outbox.h): segments of CRC-checked records, an acked mark. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "outbox.h"

#define HEADER     8u  /* u32 length, u32 CRC-32 */
#define FIXED      42u /* seq, ts, amount, accepted, origin: 5 x 8; kind, key length */
#define MAX_RECORD (HEADER + FIXED + TXSTATS_MAX_KEY_BYTES + 1 + TXSTATS_MAX_ENTITY_BYTES)
#define READ_BUF   (256u << 10)

struct segment {
    uint64_t first; /* seq of its first record (its name) */
    uint64_t bytes; /* whole records written */
};

struct srv_outbox {
    char dir[1024];
    int lock_fd, fd, acked_fd; /* fd: the last segment, appended to */
    pthread_mutex_t lock;
    struct segment *seg; /* oldest first; the last one is written */
    size_t nseg, capseg;
    uint64_t next_seq, acked, syncs, torn, origin, acked_saved;
    int fsync;
    int64_t interval_ms, last_sync_ms, acked_saved_ms;
    uint64_t segment_bytes; /* a segment is closed past this size */
    bool dirty;
    /* the reader's place (shipper thread) */
    int rfd;
    uint64_t rfirst, rnext, roff;
    unsigned char *rbuf;
};

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t encode(unsigned char *p, const struct srv_outbox_rec *r)
{
    bool entity = r->kind == OUTBOX_ADD && r->entity_len > 0;
    size_t len = FIXED + r->key.len + (entity ? 1 + r->entity_len : 0);
    put64(p + HEADER, r->seq);
    put64(p + HEADER + 8, (uint64_t)r->timestamp_ms);
    put64(p + HEADER + 16, (uint64_t)r->amount);
    put64(p + HEADER + 24, (uint64_t)r->accepted_ms);
    put64(p + HEADER + 32, r->origin);
    p[HEADER + 40] = (unsigned char)(entity ? OUTBOX_ADD_KEYED : r->kind);
    p[HEADER + 41] = (unsigned char)r->key.len;
    if (r->key.len)
        memcpy(p + HEADER + FIXED, r->key.key, r->key.len);
    if (entity) {
        p[HEADER + FIXED + r->key.len] = (unsigned char)r->entity_len;
        memcpy(p + HEADER + FIXED + r->key.len + 1, r->entity, r->entity_len);
    }
    put32(p, (uint32_t)len);
    put32(p + 4, (uint32_t)crc32(0L, p + HEADER, (uInt)len));
    return HEADER + len;
}

/* The lengths of a record's payload of `len` bytes agree with its kind: the entity's length (0:
 * none), or -1. */
static int entity_length(const unsigned char *p, uint32_t len)
{
    unsigned kind = p[HEADER + 40], key = p[HEADER + 41];
    if (kind > OUTBOX_ADD_KEYED || FIXED + key > len)
        return -1;
    if (kind != OUTBOX_ADD_KEYED)
        return key == len - FIXED ? 0 : -1;
    if (FIXED + key + 1 > len)
        return -1;
    unsigned ent = p[HEADER + FIXED + key];
    return ent >= 1 && ent <= TXSTATS_MAX_ENTITY_BYTES && FIXED + key + 1 + ent == len ? (int)ent
                                                                                       : -1;
}

/* The record at p (avail bytes): its size, 0 when incomplete, -1 when damaged. */
static long decode(const unsigned char *p, size_t avail, struct srv_outbox_rec *r)
{
    if (avail < HEADER)
        return 0;
    uint32_t len = get32(p);
    if (len < FIXED || len > MAX_RECORD - HEADER)
        return -1;
    if (avail < HEADER + len)
        return 0;
    int ent = get32(p + 4) == (uint32_t)crc32(0L, p + HEADER, len) ? entity_length(p, len) : -1;
    if (ent < 0)
        return -1;
    size_t key = p[HEADER + 41];
    r->seq = get64(p + HEADER);
    r->timestamp_ms = (int64_t)get64(p + HEADER + 8);
    r->amount = (txstats_amount_t)get64(p + HEADER + 16);
    r->accepted_ms = (int64_t)get64(p + HEADER + 24);
    r->origin = get64(p + HEADER + 32);
    r->kind = p[HEADER + 40] == OUTBOX_ADD_KEYED ? OUTBOX_ADD : p[HEADER + 40];
    r->key = (txstats_key_t){key ? (const char *)p + HEADER + FIXED : NULL, key};
    r->entity = ent ? p + HEADER + FIXED + key + 1 : NULL;
    r->entity_len = (size_t)ent;
    return (long)(HEADER + len);
}

static void seg_path(const struct srv_outbox *o, uint64_t first, char *buf, size_t n)
{
    snprintf(buf, n, "%s/outbox-%020" PRIu64 ".log", o->dir, first);
}

static int fail(char *err, size_t n, const char *what, const char *path)
{
    int e = errno;
    snprintf(err, n, "outbox: %s %s: %s", what, path, strerror(e));
    errno = e;
    return -1;
}

/* ---- opening ------------------------------------------------------------------------------- */

static int add_segment(struct srv_outbox *o, uint64_t first, uint64_t bytes)
{
    if (o->nseg == o->capseg) {
        size_t cap = o->capseg ? 2 * o->capseg : 16;
        struct segment *s = realloc(o->seg, cap * sizeof(*s));
        if (!s)
            return -1;
        o->seg = s;
        o->capseg = cap;
    }
    o->seg[o->nseg++] = (struct segment){first, bytes};
    return 0;
}

static int cmp_seg(const void *a, const void *b)
{
    uint64_t x = ((const struct segment *)a)->first, y = ((const struct segment *)b)->first;
    return x < y ? -1 : x > y;
}

static int list_segments(struct srv_outbox *o, char *err, size_t n)
{
    DIR *d = opendir(o->dir);
    if (!d)
        return fail(err, n, "cannot read", o->dir);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        uint64_t first;
        char tail;
        if (sscanf(e->d_name, "outbox-%" SCNu64 ".lo%c", &first, &tail) == 2 && tail == 'g' &&
            strlen(e->d_name) == 31)
            rc = add_segment(o, first, 0);
    }
    closedir(d);
    if (rc)
        snprintf(err, n, "outbox: out of memory");
    if (o->nseg > 1)
        qsort(o->seg, o->nseg, sizeof(*o->seg), cmp_seg);
    return rc;
}

/* Where the records of buf (got bytes) stop being whole and in order: their end. *last gets
 * the last seq; *damaged whether what follows is damage rather than a torn tail: a whole record
 * with a later seq starts somewhere after it (the library's journal uses the same rule). */
static uint64_t whole_records(const unsigned char *buf, uint64_t got, uint64_t *last, bool *damaged)
{
    uint64_t off = 0;
    struct srv_outbox_rec r;
    long len;
    while ((len = decode(buf + off, got - off, &r)) > 0 && r.seq > *last) {
        off += (uint64_t)len;
        *last = r.seq;
    }
    *damaged = false;
    for (uint64_t at = off + 1; at + HEADER + FIXED <= got && !*damaged; at++)
        *damaged = decode(buf + at, got - at, &r) > 0 && r.seq > *last;
    return off;
}

/* Check segment i record by record: sequences increase (they may skip: records numbered after an
 * `acked` mark that was ahead of a lost tail); the last segment's torn tail is cut; damage before
 * the end of a segment refuses to open (records after it would be lost). */
static int scan_segment(struct srv_outbox *o, size_t i, char *err, size_t n)
{
    char path[1100];
    seg_path(o, o->seg[i].first, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return fail(err, n, "cannot open", path);
    struct stat st;
    unsigned char *buf = fstat(fd, &st) == 0 ? malloc((size_t)st.st_size + 1) : NULL;
    ssize_t got = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
    uint64_t last = o->next_seq - 1, off = 0;
    bool damaged = false;
    if (got >= 0)
        off = whole_records(buf, (uint64_t)got, &last, &damaged);
    int rc = got < 0 ? fail(err, n, "cannot read", path) : 0;
    if (rc == 0 && off < (uint64_t)got) {
        if (damaged || i + 1 < o->nseg) {
            snprintf(err, n,
                     "outbox: %s is damaged at byte %" PRIu64 " of %zd (records after it would be "
                     "lost: restore the file, or move it away to drop them)",
                     path, off, got);
            rc = -1;
        } else if (ftruncate(fd, (off_t)off) != 0) {
            rc = fail(err, n, "cannot cut the torn tail of", path);
        }
        o->torn += (uint64_t)got - off;
    }
    o->seg[i].bytes = off;
    o->next_seq = last + 1;
    free(buf);
    close(fd);
    return rc;
}

/* This run's origin: a fresh random identity, so that two processes started from copies of one
 * directory never share one, and records kept from earlier runs keep theirs. */
static int new_origin(struct srv_outbox *o, char *err, size_t n)
{
    while (!o->origin)
        if (getrandom(&o->origin, sizeof(o->origin), 0) != sizeof(o->origin))
            return fail(err, n, "no random bytes for the origin of", o->dir);
    return 0;
}

static int read_acked(struct srv_outbox *o, char *err, size_t n)
{
    char path[1100], text[32] = "";
    snprintf(path, sizeof(path), "%s/acked", o->dir);
    o->acked_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (o->acked_fd < 0)
        return fail(err, n, "cannot open", path);
    ssize_t got = pread(o->acked_fd, text, sizeof(text) - 1, 0);
    if (got > 0)
        o->acked = strtoull(text, NULL, 10);
    o->acked_saved = o->acked;
    return 0;
}

static int open_tail(struct srv_outbox *o, char *err, size_t n)
{
    if (o->next_seq <= o->acked)
        o->next_seq = o->acked + 1; /* everything was shipped and its segments deleted */
    if (o->nseg == 0 && add_segment(o, o->next_seq, 0) != 0) {
        snprintf(err, n, "outbox: out of memory");
        return -1;
    }
    char path[1100];
    seg_path(o, o->seg[o->nseg - 1].first, path, sizeof(path));
    o->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    return o->fd < 0 ? fail(err, n, "cannot open", path) : 0;
}

static int lock_dir(struct srv_outbox *o, char *err, size_t n)
{
    char path[1100];
    if (mkdir(o->dir, 0700) != 0 && errno != EEXIST)
        return fail(err, n, "cannot create", o->dir);
    snprintf(path, sizeof(path), "%s/lock", o->dir);
    o->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (o->lock_fd < 0)
        return fail(err, n, "cannot open", path);
    if (flock(o->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, n, "outbox: %s is in use by another process", o->dir);
        errno = EBUSY;
        return -1;
    }
    return 0;
}

int srv_outbox_open(struct srv_outbox **out, const char *dir, const struct srv_outbox_config *c,
                    char *err, size_t n)
{
    struct srv_outbox *o = calloc(1, sizeof(*o));
    if (!o || strlen(dir) >= sizeof(o->dir)) {
        snprintf(err, n, "outbox: %s", o ? "directory name too long" : "out of memory");
        free(o);
        return -1;
    }
    snprintf(o->dir, sizeof(o->dir), "%s", dir);
    o->lock_fd = o->fd = o->acked_fd = o->rfd = -1;
    o->fsync = c->fsync;
    o->interval_ms = c->fsync_interval_ms;
    o->segment_bytes = c->segment_bytes ? c->segment_bytes : 64u << 20;
    o->next_seq = 1;
    pthread_mutex_init(&o->lock, NULL);
    int rc = lock_dir(o, err, n);
    rc = rc ? rc : new_origin(o, err, n);
    rc = rc ? rc : list_segments(o, err, n);
    for (size_t i = 0; rc == 0 && i < o->nseg; i++)
        rc = scan_segment(o, i, err, n);
    rc = rc ? rc : read_acked(o, err, n);
    rc = rc ? rc : open_tail(o, err, n);
    o->rbuf = rc ? NULL : malloc(READ_BUF);
    if (rc == 0 && !o->rbuf) {
        snprintf(err, n, "outbox: out of memory");
        rc = -1;
    }
    if (rc != 0) {
        srv_outbox_close(o);
        return -1;
    }
    o->last_sync_ms = o->acked_saved_ms = now_ms();
    *out = o;
    return 0;
}

static void save_acked(struct srv_outbox *o)
{
    char text[32];
    int len = snprintf(text, sizeof(text), "%020" PRIu64 "\n", o->acked);
    if (o->acked != o->acked_saved && pwrite(o->acked_fd, text, (size_t)len, 0) == len)
        o->acked_saved = o->acked;
    o->acked_saved_ms = now_ms();
}

void srv_outbox_close(struct srv_outbox *o)
{
    if (!o)
        return;
    if (o->acked_fd >= 0) {
        save_acked(o);
        close(o->acked_fd);
    }
    if (o->fd >= 0) {
        if (o->fsync != TXSTATS_FSYNC_NEVER)
            fdatasync(o->fd);
        close(o->fd);
    }
    if (o->rfd >= 0)
        close(o->rfd);
    if (o->lock_fd >= 0)
        close(o->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&o->lock);
    free(o->seg);
    free(o->rbuf);
    free(o);
}

/* ---- appending ----------------------------------------------------------------------------- */

/* Close the full last segment and start the next one (lock held). */
static int rotate(struct srv_outbox *o)
{
    char path[1100];
    seg_path(o, o->next_seq, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || add_segment(o, o->next_seq, 0) != 0) {
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        return -1;
    }
    if (o->fsync != TXSTATS_FSYNC_NEVER)
        fdatasync(o->fd); /* the closed segment is on disk before the next one grows */
    close(o->fd);
    o->fd = fd;
    return 0;
}

/* Write all of buf, or cut what was written and fail (lock held). */
static int write_all(struct srv_outbox *o, const unsigned char *buf, size_t len)
{
    struct segment *last = &o->seg[o->nseg - 1];
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(o->fd, buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            if (ftruncate(o->fd, (off_t)last->bytes) != 0) { /* no partial record stays */
            }
            errno = e;
            return -1;
        }
        done += (size_t)w;
    }
    last->bytes += len;
    return 0;
}

int srv_outbox_append(struct srv_outbox *o, struct srv_outbox_rec *r, size_t n, uint64_t *first_seq)
{
    unsigned char small[4 * MAX_RECORD];
    unsigned char *buf = n <= 4 ? small : malloc(n * MAX_RECORD);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    pthread_mutex_lock(&o->lock);
    int rc = 0;
    if (o->seg[o->nseg - 1].bytes >= o->segment_bytes)
        rc = rotate(o);
    size_t len = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        r[i].seq = o->next_seq + i;
        r[i].origin = o->origin;
        len += encode(buf + len, &r[i]);
    }
    rc = rc ? rc : write_all(o, buf, len);
    if (rc == 0) {
        *first_seq = o->next_seq;
        o->next_seq += n;
        o->dirty = true;
        if (o->fsync == TXSTATS_FSYNC_ALWAYS) /* written, and shipped whatever the sync says */
            rc = fdatasync(o->fd) == 0 ? (o->syncs++, o->dirty = false, 0) : -1;
    }
    pthread_mutex_unlock(&o->lock);
    if (buf != small)
        free(buf);
    return rc;
}

void srv_outbox_sync(struct srv_outbox *o)
{
    if (o->fsync != TXSTATS_FSYNC_INTERVAL || now_ms() - o->last_sync_ms < o->interval_ms)
        return;
    pthread_mutex_lock(&o->lock);
    if (o->dirty && fdatasync(o->fd) == 0) {
        o->dirty = false;
        o->syncs++;
    }
    o->last_sync_ms = now_ms();
    pthread_mutex_unlock(&o->lock);
}

void srv_outbox_wait(struct srv_outbox *o, uint64_t from, int ms)
{
    pthread_mutex_lock(&o->lock);
    bool none = o->next_seq <= from;
    pthread_mutex_unlock(&o->lock);
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
    if (none) /* a sleep, not a wake-up per append: under load the shipper takes them in bulk */
        nanosleep(&t, NULL);
}

/* ---- reading and acknowledging (shipper thread) -------------------------------------------- */

/* Point the reader at the segment holding `from`, at its start. */
static int seek_reader(struct srv_outbox *o, uint64_t from)
{
    pthread_mutex_lock(&o->lock);
    size_t i = 0;
    while (i + 1 < o->nseg && o->seg[i + 1].first <= from)
        i++;
    uint64_t first = o->seg[i].first;
    pthread_mutex_unlock(&o->lock);
    char path[1100];
    seg_path(o, first, path, sizeof(path));
    if (o->rfd >= 0)
        close(o->rfd);
    o->rfd = open(path, O_RDONLY | O_CLOEXEC);
    o->rfirst = o->rnext = first;
    o->roff = 0;
    return o->rfd < 0 ? -1 : 0;
}

/* Bytes of the reader's segment that hold whole records, and whether a later segment exists. A
 * segment acknowledged and deleted under the reader counts as read to its end. */
static uint64_t readable(struct srv_outbox *o, bool *later)
{
    pthread_mutex_lock(&o->lock);
    uint64_t bytes = o->roff;
    *later = true;
    for (size_t i = 0; i < o->nseg; i++)
        if (o->seg[i].first == o->rfirst) {
            bytes = o->seg[i].bytes;
            *later = i + 1 < o->nseg;
        }
    pthread_mutex_unlock(&o->lock);
    return bytes;
}

size_t srv_outbox_read(struct srv_outbox *o, uint64_t from, struct srv_outbox_rec *r, size_t max)
{
    if ((o->rfd < 0 || from < o->rnext || from < o->rfirst) && seek_reader(o, from) != 0)
        return 0;
    bool later;
    uint64_t end = readable(o, &later);
    if (o->roff >= end && later && seek_reader(o, o->rnext) == 0)
        end = readable(o, &later);
    size_t want = end - o->roff < READ_BUF ? (size_t)(end - o->roff) : READ_BUF;
    ssize_t got = want ? pread(o->rfd, o->rbuf, want, (off_t)o->roff) : 0;
    size_t off = 0, k = 0;
    long len;
    while (got > 0 && k < max && (len = decode(o->rbuf + off, (size_t)got - off, &r[k])) > 0) {
        off += (size_t)len;
        o->rnext = r[k].seq + 1;
        k += r[k].seq >= from; /* records before `from` (after a seek) are passed over */
    }
    o->roff += off;
    return k;
}

void srv_outbox_acked(struct srv_outbox *o, uint64_t seq)
{
    if (seq <= o->acked)
        return;
    pthread_mutex_lock(&o->lock);
    o->acked = seq;
    pthread_mutex_unlock(&o->lock);
    if (now_ms() - o->acked_saved_ms >= (o->interval_ms > 0 ? o->interval_ms : 100))
        save_acked(o);
    pthread_mutex_lock(&o->lock);
    while (o->nseg > 1 && o->seg[1].first - 1 <= seq) { /* every record of seg[0] is acked */
        char path[1100];
        seg_path(o, o->seg[0].first, path, sizeof(path));
        unlink(path);
        memmove(o->seg, o->seg + 1, (o->nseg - 1) * sizeof(*o->seg));
        o->nseg--;
    }
    pthread_mutex_unlock(&o->lock);
}

void srv_outbox_stats(struct srv_outbox *o, struct srv_outbox_stats *s)
{
    pthread_mutex_lock(&o->lock);
    *s = (struct srv_outbox_stats){o->next_seq, o->acked, o->nseg, 0, o->syncs, o->torn, o->origin};
    for (size_t i = 0; i < o->nseg; i++)
        s->bytes += o->seg[i].bytes;
    pthread_mutex_unlock(&o->lock);
}
