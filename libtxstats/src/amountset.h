/* SPDX-License-Identifier: MIT */
/*
 * Internal: a multiset of amounts, ordered, with how many of each (leaf: only the allocator).
 * An entity's window keeps one, so that its exact min and max are at hand in O(1) whatever
 * leaves the window.
 *
 * Up to TXSTATS__ASET_SMALL distinct amounts it is one sorted array of (amount, how many); past
 * it, blocks of up to TXSTATS__ASET_BLOCK such pairs and a sorted directory of the blocks (a
 * two-level B-tree: an insert or a removal is a binary search and a move of at most one block's
 * pairs, or of the directory's pointers at a split). Inserts never allocate: a caller first
 * reserves room for the inserts it may make (allocation happens there, and may fail), then
 * inserts; a removal only frees.
 */
#ifndef TXSTATS_AMOUNTSET_H
#define TXSTATS_AMOUNTSET_H

#include <stdint.h>

#include "alloc.h"
#include "txstats/txstats.h"

#define TXSTATS__ASET_SMALL 32
#define TXSTATS__ASET_BLOCK 64

struct txstats__aset_pair {
    txstats_amount_t amount;
    uint64_t n;
};

struct txstats__aset_block;

#define TXSTATS__ASET_LARGE 0x80000000u /* in `cap` */

struct txstats__aset_large; /* amountset.c: the directory, with its counts and spare blocks */

/* Empty: all zero (16 bytes). Small: `v` holds `len` pairs (room for `cap`); large (the
 * TXSTATS__ASET_LARGE bit of `cap`): `lg` holds `len` blocks (room for the rest of `cap`). */
struct txstats__aset {
    union {
        struct txstats__aset_pair *v;
        struct txstats__aset_large *lg;
    } u;
    uint32_t len, cap;
};

/* Room for `k` inserts (without allocating): in a large set, one spare block for each block
 * that is full now plus one for every half block of inserts (no insert sequence splits more).
 * TXSTATS_OK or TXSTATS_ENOMEM (the set unchanged in content). O(1) amortized. */
int txstats__aset_reserve(struct txstats__aset *s, const struct txstats__mem *mem, uint32_t k);
/* One more of `amount`; room was reserved. */
void txstats__aset_insert(struct txstats__aset *s, txstats_amount_t amount);
/* One fewer of `amount`, which is in the set. May free. */
void txstats__aset_remove(struct txstats__aset *s, const struct txstats__mem *mem,
                          txstats_amount_t amount);
/* Smallest and largest; the set is not empty. O(1). */
txstats_amount_t txstats__aset_min(const struct txstats__aset *s);
txstats_amount_t txstats__aset_max(const struct txstats__aset *s);
/* Give back spare room beyond what `k` more inserts need (after reservations were used or
 * cancelled). */
void txstats__aset_trim(struct txstats__aset *s, const struct txstats__mem *mem, uint32_t k);
/* Free everything; the set is empty afterwards. */
void txstats__aset_free(struct txstats__aset *s, const struct txstats__mem *mem);
/* Bytes allocated. */
uint64_t txstats__aset_bytes(const struct txstats__aset *s);

#endif
