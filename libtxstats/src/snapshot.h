/* SPDX-License-Identifier: MIT */
/*
 * Internal: the older formats, read only (leaf: it knows no window, no lock and no file; it reads
 * from bytes and turns what it read into an image, image.h, which is what every load installs).
 * Files of libtxstats 0.1:
 *
 * - JSON version 1, what txstats_save() wrote (version 2 is image_json.h):
 *   {"format":"libtxstats-snapshot","version":1,"window_ms":60000,"saved_at_ms":T,
 *    "count":N,"sum":"S","journal":[[stream,segment],...],
 *    "cells":[[ts,count,"sum","min","max",["amount",...]],...],
 *    "keys":[["<32 hex digits of the key digest>","<16 hex fingerprint>",expires_ms,status],...]}
 * - binary "TXCKPT01" (checkpoint.bin and txstats_save_bin()), then little-endian u64 fields:
 *   window_ms, saved_at_ms, nbound, bound[nbound], ncells, and per cell ts, count, sum (lo, hi),
 *   min, max, nkept, amounts[nkept]; nkeys, and per key its digest (2 words), fingerprint,
 *   expiry, status; last the CRC32C of everything before it (u32).
 *
 * Cells are in increasing timestamp order, one per millisecond. Both decoders check every
 * invariant (sums, counts, min <= kept <= max, order) before anything is used. Neither format
 * kept the buckets of the amounts it did not retain: those count at their cell's mean.
 */
#ifndef TXSTATS_SNAPSHOT_H
#define TXSTATS_SNAPSHOT_H

#include "fileio.h"
#include "image.h"
#include "window.h" /* the cell type only: the codec calls nothing of the window */

#define TXSTATS__MAX_BOUNDS 256

struct txstats__snap_cell {
    int64_t ts;
    struct txstats__cell agg; /* count, sum, min, max (chain unused) */
    size_t off;               /* first amount in snap.amounts */
    uint64_t nkept;
};

/* A remembered idempotency key. */
struct txstats__snap_key {
    uint64_t h[2], fp;
    int64_t expires;
    int status; /* TXSTATS_OK, TXSTATS_EXPIRED, TXSTATS_EFUTURE or TXSTATS_ERANGE */
};

struct txstats__snap {
    const struct txstats__mem *mem;
    struct txstats__snap_key *keys;
    size_t nkeys, cap_keys;
    struct txstats__snap_cell *cells;
    size_t ncells, cap_cells;
    txstats_amount_t *amounts;
    size_t namounts, cap_amounts;
    int64_t window_ms, saved_at_ms;
    unsigned nbound;                     /* journal streams covered (0: not a checkpoint) */
    uint64_t bound[TXSTATS__MAX_BOUNDS]; /* per stream: first segment not covered */
};

void txstats__snap_init(struct txstats__snap *sn, const struct txstats__mem *mem);
void txstats__snap_free(struct txstats__snap *sn);
/* Append a cell (any order; txstats__snap_sort() orders and merges): its aggregates from `agg`
 * and room for agg->kept amounts, returned for the caller to fill; NULL when out of memory. */
txstats_amount_t *txstats__snap_push(struct txstats__snap *sn, int64_t ts,
                                     const struct txstats__cell *agg);
/* Whether a remembered key can be one this library wrote: a digest, a status of those above,
 * an expiry within the clock's range. */
bool txstats__snap_key_valid(const struct txstats__snap_key *k);
/* Append a key: TXSTATS_OK or TXSTATS_ENOMEM. */
int txstats__snap_push_key(struct txstats__snap *sn, const struct txstats__snap_key *key);

/* Decoders into an initialised, empty `sn`: TXSTATS_OK, TXSTATS_EFORMAT, TXSTATS_ENOMEM. */
int txstats__snap_decode_json(struct txstats__snap *sn, const char *data, size_t len);
int txstats__snap_decode_bin(struct txstats__snap *sn, const char *data, size_t len);
/* The snapshot as an image (image.h) in memory, its cells dealt round-robin into `sections`
 * (cell i into section i mod sections): the amounts it did not retain become one bucket entry
 * each at their cell's mean, and *approximate counts them (all cells, whether a load will keep
 * them or not). A checkpoint's bounds become 'J'
 * records without cuts. TXSTATS_OK or TXSTATS_ENOMEM; *data is freed with the snapshot's
 * allocator. */
int txstats__snap_to_image(const struct txstats__snap *sn, unsigned sections, uint8_t **data,
                           size_t *len, uint64_t *approximate);

/* Whether `data` starts as the binary format does (then decode it with _decode_bin). */
bool txstats__snap_is_bin(const char *data, size_t len);

#endif
