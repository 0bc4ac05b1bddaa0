/* SPDX-License-Identifier: MIT */
/*
 * Internal: the distribution of amounts (leaf: it calls only the allocator). Two parts:
 *
 * - Buckets. An amount maps to one of TXSTATS__DIST_BUCKETS log-linear buckets, ordered like the
 *   amounts: |a| < 1024 micro-units has a bucket of its own (exact); above, each power of two is
 *   split in 512 equal buckets (relative width < 1/512), whose midpoint lies within 1/1024
 *   (0.098 %) of every amount in it. Negative amounts mirror positive ones; zero is exact.
 * - Counts. Per bucket, in three levels (buckets, groups of 64, supers of 4096), so that the
 *   bucket of a rank is found in at most 13 + 64 + 64 steps, whatever the count.
 *
 * A window keeps, per millisecond cell, the buckets of the transactions whose amounts it does not
 * retain for listing (2 bytes each, in chunks of 26); the retained amounts give their own buckets.
 * So expiry subtracts exactly what the adds added. The caller serialises every call on one
 * `struct txstats__dist`.
 */
#ifndef TXSTATS_DISTRIBUTION_H
#define TXSTATS_DISTRIBUTION_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "txstats/txstats.h"

#define TXSTATS__DIST_HALF    26624 /* buckets of |amount| (1024 exact + 50 octaves x 512) */
#define TXSTATS__DIST_BUCKETS (2 * TXSTATS__DIST_HALF - 1)
#define TXSTATS__DIST_L0      53248 /* buckets, padded to a multiple of 4096 */
#define TXSTATS__DIST_L1      (TXSTATS__DIST_L0 / 64)
#define TXSTATS__DIST_L2      (TXSTATS__DIST_L0 / 4096)

/* Bucket counts in three levels, in one allocation. */
struct txstats__dcounts {
    uint64_t *c0, *c1, *c2;
    uint64_t total;
};

/* Buckets of one cell's transactions; a cell points at its newest chunk. */
#define TXSTATS__DCHUNK_CAP 26
struct txstats__dchunk {
    struct txstats__dchunk *next;
    uint32_t n;
    uint16_t b[TXSTATS__DCHUNK_CAP];
};

struct txstats__dslab;

/* A window's bucket lists: their free chunks (the counts are the window's, one per span). */
struct txstats__dist {
    const struct txstats__mem *mem;
    struct txstats__dchunk *free_chunks;
    struct txstats__dslab *slabs; /* every chunk belongs to one of them */
};

static inline uint32_t txstats__dist_bucket(txstats_amount_t a)
{
    /* v < 1024: i = v. Else, with v in [2^e, 2^(e+1)) and s = e - 9: the top 10 bits of v
     * (512 to 1023) after s * 512 earlier buckets, i.e. 1024 + (e - 10) * 512 + (v >> s) - 512.
     * v | 512 makes s = 0 below 1024 without a comparison. */
    uint64_t v = a < 0 ? -(uint64_t)a : (uint64_t)a;
    unsigned s = (unsigned)(63 - __builtin_clzll(v | 512)) - 9;
    uint32_t i = (s << 9) + (uint32_t)(v >> s);
    return a < 0 ? TXSTATS__DIST_HALF - 1 - i : TXSTATS__DIST_HALF - 1 + i;
}

/* The bucket's representative: its amount when exact, else its midpoint. */
txstats_amount_t txstats__dist_value(uint32_t bucket);
/* Smallest and largest amount of a bucket. */
void txstats__dist_bounds(uint32_t bucket, txstats_amount_t *lo, txstats_amount_t *hi);

/* TXSTATS_OK or TXSTATS_ENOMEM. */
int txstats__dcounts_init(struct txstats__dcounts *k, const struct txstats__mem *mem);
void txstats__dcounts_fini(struct txstats__dcounts *k, const struct txstats__mem *mem);
/* Zero; O(occupied groups). */
void txstats__dcounts_zero(struct txstats__dcounts *k);
/* acc += part; O(occupied groups of part). */
void txstats__dcounts_merge(struct txstats__dcounts *acc, const struct txstats__dcounts *part);
/* The bucket holding rank `r` (1-based, <= the parts' total) of the union of `n` parts. */
uint32_t txstats__dcounts_rank(const struct txstats__dcounts *const *parts, unsigned n, uint64_t r);
/* How many amounts of the parts lie in le's bucket or below. */
uint64_t txstats__dcounts_le(const struct txstats__dcounts *const *parts, unsigned n,
                             txstats_amount_t le);

int txstats__dist_init(struct txstats__dist *d, const struct txstats__mem *mem);
void txstats__dist_fini(struct txstats__dist *d); /* frees every chunk: lists need no release */

/*
 * A cell's amounts, for the distribution, are its retained amounts (the window's chain: their
 * buckets follow from them) plus a list of the buckets of those not retained.
 */
/* A chunk for the bucket of one more amount not retained (`keep` false) in the list at `tail`,
 * with `pending` such amounts reserved before it and not yet pushed, when the list must grow:
 * *fresh, or NULL when none is needed. TXSTATS_OK or TXSTATS_ENOMEM. */
int txstats__dist_reserve(struct txstats__dist *d, const struct txstats__dchunk *tail, bool keep,
                          uint32_t pending, struct txstats__dchunk **fresh);
void txstats__dist_cancel(struct txstats__dist *d, struct txstats__dchunk *fresh);
/* Record an amount in the list unless retained, with the reserved chunk (not counted). */
void txstats__dist_push(struct txstats__dist *d, struct txstats__dchunk **tail,
                        struct txstats__dchunk *fresh, txstats_amount_t amount, bool keep);
/* Count (add) or uncount an amount, retained amounts, or a list's buckets in `k`. */
void txstats__dcounts_amount(struct txstats__dcounts *k, txstats_amount_t a, bool add);
void txstats__dcounts_amounts(struct txstats__dcounts *k, const txstats_amount_t *a, uint32_t n,
                              bool add);
void txstats__dcounts_list(struct txstats__dcounts *k, const struct txstats__dchunk *tail,
                           bool add);
/* Give a list's chunks back to the free list; *tail becomes NULL. */
void txstats__dist_release(struct txstats__dist *d, struct txstats__dchunk **tail);

/* Loads: a block of `n` chunks allocated up front (a load must not fail half-way), given to the
 * window whose cells will use them. TXSTATS_OK or TXSTATS_ENOMEM; n == 0 gives NULL. */
int txstats__dslab_alloc(const struct txstats__mem *mem, uint64_t n, struct txstats__dslab **out);
void txstats__dslab_free(const struct txstats__mem *mem, struct txstats__dslab *s);
void txstats__dist_adopt(struct txstats__dist *d, struct txstats__dslab *s); /* NULL ok */

/* Images (image.h): a list's buckets as counts. Adds each bucket's amounts to hist[bucket] and
 * lists every bucket whose count was 0 before in touched[*ntouched ...] (TXSTATS__DIST_BUCKETS
 * entries suffice). O(chunks in the list). */
void txstats__dist_tally(const struct txstats__dchunk *tail, uint64_t *hist, uint16_t *touched,
                         size_t *ntouched);
/* A loaded cell's list gets `n` more amounts of `bucket`, not counted yet: one run chunk when n
 * fills a chunk or more, else one entry each. Chunks come from the free list, or are allocated:
 * TXSTATS_OK or TXSTATS_ENOMEM (some entries may have been added: the caller drops the list). */
int txstats__dist_stage(struct txstats__dist *d, struct txstats__dchunk **tail, uint32_t bucket,
                        uint64_t n);

/* Quantiles of the union of `nparts` count sets whose exact extremes are min and max (see
 * txstats_dist_quantiles()). TXSTATS_OK or TXSTATS_EINVAL (a q above TXSTATS_Q_SCALE). */
int txstats__quantiles(const struct txstats__dcounts *const *parts, unsigned nparts,
                       txstats_amount_t min, txstats_amount_t max, const uint32_t *q_ppb, size_t n,
                       txstats_amount_t *out);

/* The public txstats_dist_t: counts of any number of windows, with their exact extremes. */
struct txstats_dist {
    struct txstats__dcounts k;
    struct txstats__mem mem;
    txstats_amount_t min, max;
};

#endif
