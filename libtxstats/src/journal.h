/* SPDX-License-Identifier: MIT */
/*
 * Internal: the write-ahead journal (leaf: it knows no shard and no window; it calls only the
 * allocator, the CRC and the file layer).
 *
 * A journal is a directory of streams; each stream is a sequence of segment files,
 * `journal-<stream>-<segment>.log`, appended to by one writer at a time (the caller serialises
 * appends to one stream). Segment numbers come from one counter for the whole directory.
 *
 * Record, 32 to 224 bytes (a multiple of 32), little-endian, always at a multiple of 32 in its
 * segment:
 *   0  crc32c of bytes 4..length-1   4  type (1 add, 2 clear, 3 keyed add, 4 add for an entity,
 *      5 keyed add for an entity)   5  length
 *   6  listing (adds): 1 retained for listing, 2 not, 0 not said (libtxstats 0.1)   7  zero
 *   8  timestamp ms (adds)   16  amount (adds) or clear id   24  sequence
 *   32 (types 3 and 5) the idempotency key's 128-bit digest, then 16 zero bytes
 *   32 (type 4) or 64 (type 5): the entity's length (1..128), its bytes, zeros to the end
 * Types 4 and 5 are written since libtxstats 0.3; 0.2 refuses them as damage.
 */
#ifndef TXSTATS_JOURNAL_H
#define TXSTATS_JOURNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "txstats/txstats.h"

#define TXSTATS__REC_SIZE      32  /* a record without a key; every length is a multiple */
#define TXSTATS__REC_MAX       224 /* a keyed add for an entity of 128 bytes */
#define TXSTATS__REC_ADD       1
#define TXSTATS__REC_CLEAR     2
#define TXSTATS__REC_ADD_KEYED 3
#define TXSTATS__REC_ADD_ENT   4
#define TXSTATS__REC_KEYED_ENT 5
#define TXSTATS__MAX_STREAMS   256

struct txstats__jrec {
    int type;
    int64_t ts, value;
    uint64_t key[2];    /* TXSTATS__REC_ADD_KEYED, TXSTATS__REC_KEYED_ENT */
    int keep;           /* adds: TXSTATS__KEEP_YES or _NO when the window decided, else 0 */
    uint64_t seq;       /* decoded: its sequence number in its stream */
    uint32_t ent_len;   /* TXSTATS__REC_ADD_ENT, TXSTATS__REC_KEYED_ENT: 1..128 */
    const uint8_t *ent; /* its bytes (decoded: inside the record decoded; not owned) */
};

/* Whether an add was retained for listing, journaled so that a replay decides as the live
 * window did (window.h: a reservation's hint). */
#define TXSTATS__KEEP_ASK 0 /* decide by the retention budget */
#define TXSTATS__KEEP_YES 1
#define TXSTATS__KEEP_NO  2

/* Record codec. encode: the length written (TXSTATS__REC_SIZE or TXSTATS__REC_MAX). decode, from
 * `avail` bytes: the length read, or 0 for a damaged or cut record or an impossible value. */
size_t txstats__jrec_encode(uint8_t *r, const struct txstats__jrec *rec, uint64_t seq);
size_t txstats__jrec_decode(const uint8_t *r, size_t avail, struct txstats__jrec *out);
void txstats__segment_name(char *buf, size_t n, unsigned stream, uint64_t seg);
/* Only names this library writes. */
bool txstats__parse_segment_name(const char *name, unsigned *stream, uint64_t *seg);

/* One stream. Appends are serialised by the caller; `io` serialises fdatasync and the segment's
 * lifetime (a rotation in an append takes `io` inside the caller's serialisation). */
struct txstats__jstream {
    unsigned id;
    int fd;                   /* -1 before the first segment */
    uint64_t seg;             /* current segment number */
    uint64_t off;             /* bytes in the segment */
    uint64_t seq;             /* records written */
    _Atomic uint64_t seq_pub; /* seq, readable without the caller's serialisation */
    uint64_t records, bytes, errors;
    pthread_mutex_t io;
    uint64_t synced; /* records known to be on stable storage (under io) */
    uint64_t syncs;  /* fdatasync calls (under io) */
} __attribute__((aligned(64)));

struct txstats__journal {
    txstats_durability_t cfg;
    const txstats_io_t *io;
    const struct txstats__mem *mem;
    int dirfd, lockfd;
    _Atomic uint64_t next_seg;
    struct txstats__jstream *streams; /* nstreams, 64-byte aligned inside streams_mem */
    void *streams_mem;
    unsigned nstreams;
    pthread_t flusher;
    bool flusher_running, stop;
    pthread_mutex_t fl_lock;
    pthread_cond_t fl_cond;
};

/* A journal for directory `dir` (created if missing, then locked against other processes):
 * TXSTATS_OK, TXSTATS_EBUSY (locked elsewhere), TXSTATS_EIO (errno), TXSTATS_ENOMEM. No stream
 * is open yet: read what the directory holds, then txstats__journal_start(). */
int txstats__journal_open(struct txstats__journal **out, const struct txstats__mem *mem,
                          const txstats_io_t *io, const char *dir, const txstats_durability_t *d);
/* Open `n` streams on fresh segments numbered from `next_seg` (above every segment number a file
 * or a checkpoint of the directory names), and start the flusher (TXSTATS_FSYNC_INTERVAL). Each
 * stream's sequence numbers start after next_seg << 32, so they grow across runs. TXSTATS_OK,
 * TXSTATS_EIO, TXSTATS_ENOMEM. */
int txstats__journal_start(struct txstats__journal *j, unsigned n, uint64_t next_seg);
/* Stop the flusher, flush and close every segment, release the directory. NULL ok. */
void txstats__journal_close(struct txstats__journal *j);

/* Append one record; on success *seq is its sequence number in the stream. Nothing is left
 * behind on failure (TXSTATS_EIO, errno set). Rotates past segment_bytes. */
int txstats__jstream_append(struct txstats__journal *j, struct txstats__jstream *st,
                            const struct txstats__jrec *rec, uint64_t *seq);
/* Append `n` records in one write (scratch: n * TXSTATS__REC_MAX bytes); all or none. On
 * success *seq is the last one's sequence number. TXSTATS_OK or TXSTATS_EIO (errno set). */
int txstats__jstream_append_batch(struct txstats__journal *j, struct txstats__jstream *st,
                                  const struct txstats__jrec *recs, size_t n, uint8_t *scratch,
                                  uint64_t *seq);
/* Close the current segment and start a new one: TXSTATS_OK or TXSTATS_EIO. */
int txstats__jstream_rotate(struct txstats__journal *j, struct txstats__jstream *st);
/* TXSTATS_FSYNC_ALWAYS: wait until record `seq` is on stable storage (concurrent callers share
 * one fdatasync). Otherwise TXSTATS_OK at once. */
int txstats__jstream_commit(struct txstats__journal *j, struct txstats__jstream *st, uint64_t seq);

/* Delete the segments below bound[stream] of streams < nbound; returns how many are left. */
uint64_t txstats__journal_delete_covered(struct txstats__journal *j, const uint64_t *bound,
                                         unsigned nbound);

#endif
