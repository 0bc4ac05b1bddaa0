/* SPDX-License-Identifier: MIT */
/*
 * Internal: the image, format 2 of checkpoints and binary snapshots, written and read in bounded
 * pieces (leaf: it calls only the allocator and the CRC; it knows no window, lock or journal).
 *
 * A file is "TXCKPT02" and then blocks. A block is the u32 length of its payload (at most
 * TXSTATS__IMG_BLOCK_MAX), the u32 CRC32C of the payload, and the payload: whole records, each a
 * sequence of little-endian u64 words, the first being the record's type:
 *
 *   'H' window_ms saved_at_ms sections flags   first; flags bit 0: a journal checkpoint
 *   'P' key0 key1 n word[n]       entity placement, second when present: an entity's section is
 *                                 section[h >> 52], h the SipHash-2-4 of its key under (key0,
 *                                 key1); n = 512: 4096 sections, a byte each, 8 to a word (0.3)
 *   'S' section                   the cells that follow belong to this section (a shard)
 *   'A' ts n amount[n]            retained amounts of the open cell `ts`, oldest first; a large
 *                                 cell has several 'A' records, written at different moments
 *   'B' ts n word[(n + 3) / 4]    buckets (distribution.h) of n amounts of the open cell that it
 *                                 does not retain, one each, 4 to a word (u16 little-endian,
 *                                 unused slots zero): the buckets that hold one such amount
 *   'C' ts count sum_lo sum_hi min max n hist[n]
 *                                 closes cell `ts` with its aggregates; hist[i] = (how many << 16)
 *                                 | bucket, for the buckets that hold two or more of the amounts
 *                                 it does not retain
 *   'N' index len n word[n]       names entity `index` of the section: its key, `len` bytes packed
 *                                 8 to a word (n = (len + 7) / 8); indexes count from 0 in each
 *                                 section, one more with each 'N' (0.3)
 *   'T' ts n pair[n]              tags of the open cell: pair = (entity index, amount), one per
 *                                 transaction of the cell that counts for an entity (0.3)
 *   'X' ts                        the open cell left the window before it could be closed: drop it
 *   'K' n key[n]                  idempotency keys, 5 words each: digest (2), fingerprint,
 *                                 expiry ms, status
 *   'J' stream bound n cut[n]     journal stream `stream`: its segments below `bound` are covered;
 *                                 cut[i] = (ts_hi, seq), 2 words: see below
 *   'E' cells count kept keys     last; the totals of what came before, checked by the reader
 *
 * Cells of a section come in increasing timestamp order. An entity lives in one section: every
 * tag naming it is in the section its placement gives. Records marked (0.3) are written since
 * libtxstats 0.3; 0.2 refuses them as unknown. The cut rule of a journal checkpoint,
 * which lets it be written shard by shard in short holds of each shard's lock: a record of stream
 * s in a segment at or above its bound, with timestamp ts and sequence number seq, is already in
 * the image exactly when seq <= cut.seq for the first cut of s with ts < cut.ts_hi (cuts in
 * increasing ts_hi; the last one's is INT64_MAX). Recovery replays every other record.
 */
#ifndef TXSTATS_IMAGE_H
#define TXSTATS_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "txstats/txstats.h"

#define TXSTATS__IMG_MAGIC     "TXCKPT02"
#define TXSTATS__IMG_BLOCK_MAX ((size_t)2 << 20)
#define TXSTATS__IMG_FRAME     8 /* length and CRC before each payload */

enum {
    TXSTATS__IMG_HEADER = 'H',
    TXSTATS__IMG_SECTION = 'S',
    TXSTATS__IMG_AMOUNTS = 'A',
    TXSTATS__IMG_BUCKETS = 'B',
    TXSTATS__IMG_CELL = 'C',
    TXSTATS__IMG_VANISH = 'X',
    TXSTATS__IMG_KEYS = 'K',
    TXSTATS__IMG_JOURNAL = 'J',
    TXSTATS__IMG_END = 'E',
    TXSTATS__IMG_PLACE = 'P',
    TXSTATS__IMG_NAME = 'N',
    TXSTATS__IMG_TAGS = 'T',
};

#define TXSTATS__IMG_JOURNAL_CKPT  1    /* 'H' flags */
#define TXSTATS__IMG_PLACE_BUCKETS 4096 /* 'P': entity placement buckets, a byte each */
#define TXSTATS__IMG_KEY_WORDS     5
#define TXSTATS__IMG_CUT_WORDS     2

/* A cut of a journal stream ('J' records): records of timestamps below ts_hi (and at or above the
 * previous cut's) with sequence numbers up to seq are in the image. */
struct txstats__img_cut {
    int64_t hi;
    uint64_t seq;
};

/* A block being built: words appended after the frame's room, sealed before it is written. */
struct txstats__img_out {
    uint8_t *buf; /* TXSTATS__IMG_FRAME + TXSTATS__IMG_BLOCK_MAX bytes */
    size_t n;     /* payload bytes so far */
};

/* TXSTATS_OK or TXSTATS_ENOMEM. */
int txstats__img_out_init(struct txstats__img_out *o, const struct txstats__mem *mem);
void txstats__img_out_fini(struct txstats__img_out *o, const struct txstats__mem *mem);
/* Payload bytes still free in the block. */
static inline size_t txstats__img_room(const struct txstats__img_out *o)
{
    return TXSTATS__IMG_BLOCK_MAX - o->n;
}
/* Append a word; the caller checked the room. */
void txstats__img_put(struct txstats__img_out *o, uint64_t v);
/* Overwrite the payload word at byte offset `at`. */
void txstats__img_patch(struct txstats__img_out *o, size_t at, uint64_t v);
/* Write the frame; the block is buf[0 .. returned size). The caller then sets n = 0. */
size_t txstats__img_seal(struct txstats__img_out *o);

/* An image built in memory (older files and JSON turned into images): blocks appended as they
 * fill. Calls after a failure do nothing; _finish reports it. */
struct txstats__img_mem {
    const struct txstats__mem *mem;
    struct txstats__img_out out;
    uint8_t *data;
    size_t len, cap;
    int rc;
};

void txstats__img_mem_init(struct txstats__img_mem *m, const struct txstats__mem *mem);
/* Room for `bytes` more in the current block (a record is never split): seals it when short. */
void txstats__img_mem_need(struct txstats__img_mem *m, size_t bytes);
void txstats__img_mem_put(struct txstats__img_mem *m, uint64_t v);
/* Overwrite the word at payload offset `at` of the current block. */
void txstats__img_mem_patch(struct txstats__img_mem *m, size_t at, uint64_t v);
/* The image (to free with the allocator): TXSTATS_OK or TXSTATS_ENOMEM (nothing to free). */
int txstats__img_mem_finish(struct txstats__img_mem *m, uint8_t **data, size_t *len);

/* One decoded record. Fixed fields in f[] (in the order above, after the type); the array
 * (amounts, buckets, hist, keys or cuts: `n` items) at `arr`, read with txstats__img_word() or,
 * for buckets, txstats__img_bucket(). */
struct txstats__img_rec {
    int type;
    uint64_t f[7];
    uint64_t n;
    const uint8_t *arr;
};

/* The next record of a payload at *pos (advanced past it): 1, 0 at the payload's end, or -1 when
 * the record is malformed (an unknown type, or cut short). */
int txstats__img_next(const uint8_t **pos, const uint8_t *end, struct txstats__img_rec *rec);
/* Word i of an array. */
uint64_t txstats__img_word(const uint8_t *arr, uint64_t i);
/* Bucket i of a 'B' record's array. */
static inline uint32_t txstats__img_bucket(const uint8_t *arr, uint64_t i)
{
    return (uint32_t)arr[2 * i] | (uint32_t)arr[2 * i + 1] << 8;
}

/* Blocks from a file descriptor or from memory, each checked against its CRC. */
struct txstats__img_in {
    const struct txstats__mem *mem;
    int fd;              /* -1: from memory */
    const uint8_t *data; /* memory input */
    size_t len, pos;
    uint8_t *buf; /* a block read from fd */
    size_t cap;   /* its size */
};

/* TXSTATS_OK, TXSTATS_EFORMAT (not an image), TXSTATS_EIO (errno), TXSTATS_ENOMEM. The reader
 * does not own `fd` or `data`. */
int txstats__img_in_fd(struct txstats__img_in *in, const struct txstats__mem *mem, int fd);
int txstats__img_in_mem(struct txstats__img_in *in, const uint8_t *data, size_t len);
/* Back to the first block. TXSTATS_OK or TXSTATS_EIO. */
int txstats__img_rewind(struct txstats__img_in *in);
/* The next block's payload: 1, 0 at the end of the input, or a negative TXSTATS_EFORMAT (cut
 * short, too long, bad CRC), TXSTATS_EIO (errno) or TXSTATS_ENOMEM. */
int txstats__img_block(struct txstats__img_in *in, const uint8_t **payload, size_t *len);
void txstats__img_in_fini(struct txstats__img_in *in);
/* Whether `data` starts like an image. */
bool txstats__img_is(const void *data, size_t len);

#endif
