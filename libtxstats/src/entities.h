/* SPDX-License-Identifier: MIT */
/*
 * Internal: the entities of one shard, each the statistics of one key's window (leaf: no window,
 * no lock, no journal; it calls the allocator and the amount multiset).
 *
 * An entity is an 88-byte slot in pages of TXSTATS__ENT_PAGE slots: per span, its count and exact
 * sum over the transactions it has there (active ones), and the multiset of their amounts (min
 * and max in O(1)); its key (in the slot up to 24 bytes: one cache miss fewer per add); how many
 * of its transactions are reserved or ahead of the clock
 * (pending: room for them is reserved in the multiset, so that counting them never allocates).
 * A slot is found by key through an open-addressing index of linear probing (8 bytes an entry,
 * load at most 3/4, deletion by backward shift: no tombstones). A slot is freed, and its index
 * entry removed, when it has no active and no pending transaction. A freed slot is reused, its
 * `gen` advanced, so that an image writer can tell a reused slot from the one it named.
 *
 * Where a transaction's window cell lists (slot, amount) tags, the orchestrator calls
 * txstats__ent_count / _uncount / _drop as the cell becomes active, expires, or leaves unseen.
 */
#ifndef TXSTATS_ENTITIES_H
#define TXSTATS_ENTITIES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "amountset.h"
#include "txstats/txstats.h"

#define TXSTATS__ENT_PAGE_BITS 10
#define TXSTATS__ENT_PAGE      (1u << TXSTATS__ENT_PAGE_BITS)

#define TXSTATS__ENT_INLINE 24 /* keys up to this long live in the slot */

/* An entity in one span: its active transactions' count, exact sum (two's complement 128 bits)
 * and amounts. */
struct txstats__ent_span {
    uint64_t count;
    uint64_t sum_lo;
    int64_t sum_hi;
    struct txstats__aset set;
};

struct txstats__entity {
    struct txstats__ent_span s0; /* the first span */
    uint8_t key_len;             /* 0: a free slot */
    uint8_t unused[3];
    uint32_t pending;
    union {
        uint8_t bytes[TXSTATS__ENT_INLINE]; /* key_len <= TXSTATS__ENT_INLINE */
        uint8_t *ptr;                       /* longer keys, allocated */
    } key;
    struct txstats__ent_span *more; /* the other spans (NULL with one) */
    uint32_t gen;
    uint32_t next_free; /* a free slot: the next free slot + 1 (0: none) */
};

static inline const uint8_t *txstats__ent_key(const struct txstats__entity *en)
{
    return en->key_len <= TXSTATS__ENT_INLINE ? en->key.bytes : en->key.ptr;
}

static inline const struct txstats__ent_span *txstats__ent_span(const struct txstats__entity *en,
                                                                unsigned span)
{
    return span ? &en->more[span - 1] : &en->s0;
}

/* What entities of all shards share. */
struct txstats__ent_shared {
    /* SipHash-2-4 key, random per instance; a load adopts the image's (every shard lock held,
     * then `epoch` advanced), so that its entities stay where its placement put them. A hash
     * computed without the home shard's lock is good once that lock is held only if `epoch`
     * has not moved meanwhile. */
    _Atomic uint64_t hash_key[2];
    _Atomic uint64_t epoch;
    unsigned nspans;          /* the window's spans */
    unsigned longest;         /* the index of the longest: an entity is freed when empty there */
    uint64_t cap;             /* max_entities */
    _Atomic uint64_t active;  /* slots in use over all shards */
    _Atomic uint64_t refused; /* TXSTATS_ELIMIT answers */
};

struct txstats__entities {
    const struct txstats__mem *mem;
    struct txstats__ent_shared *shared;
    struct txstats__entity **pages;
    uint32_t npages, pages_cap;
    uint32_t free_head; /* free slot + 1, 0: none */
    uint32_t used;      /* slots in use */
    uint64_t *index;    /* hash high 32 bits << 32 | (slot + 1); 0: empty */
    uint64_t index_cap; /* power of two, or 0 */
    uint64_t bytes;     /* keys and multisets, for the memory gauge */
};

/* SipHash-2-4 of the key under the instance's hash key. */
uint64_t txstats__ent_hash(const struct txstats__ent_shared *sh, const void *key, size_t len);
/* The same under a given key (an image's). */
uint64_t txstats__ent_hash_with(const uint64_t hash_key[2], const void *key, size_t len);
void txstats__ent_init(struct txstats__entities *e, const struct txstats__mem *mem,
                       struct txstats__ent_shared *shared);
/* Free everything (txstats__ent_reset, then the pages and index). */
void txstats__ent_fini(struct txstats__entities *e);
/* Forget every entity; `active` of the shared counters drops by as many. */
void txstats__ent_reset(struct txstats__entities *e);

/* The slot of a key, or false. */
bool txstats__ent_find(const struct txstats__entities *e, const void *key, size_t len,
                       uint64_t hash, uint32_t *slot);
/* The slot of a key, made when new: TXSTATS_OK, TXSTATS_ELIMIT (max_entities active, as the
 * shards last advanced: the caller may advance them and ask again) or TXSTATS_ENOMEM. A new slot is
 * freed again by txstats__ent_cancel() when no reservation follows. */
int txstats__ent_acquire(struct txstats__entities *e, const void *key, size_t len, uint64_t hash,
                         uint32_t *slot);
/* Reserve one transaction of the slot (pending + 1, room in its multiset): TXSTATS_OK or
 * TXSTATS_ENOMEM (nothing reserved; the slot freed when that leaves it empty). */
int txstats__ent_reserve(struct txstats__entities *e, uint32_t slot);
/* Undo a reservation (or, with `reserved` false, only free the slot if nothing holds it). */
void txstats__ent_cancel(struct txstats__entities *e, uint32_t slot, bool reserved);
/* A reserved transaction becomes active: counted in every span. */
void txstats__ent_count(struct txstats__entities *e, uint32_t slot, txstats_amount_t amount);
/* An active transaction left a span: uncounted there; the slot freed when nothing is left in the
 * longest span and nothing is pending. */
void txstats__ent_uncount(struct txstats__entities *e, uint32_t slot, txstats_amount_t amount,
                          unsigned span);
/* A reserved transaction leaves without having been counted. */
void txstats__ent_drop(struct txstats__entities *e, uint32_t slot);

/* The slot's entity (slot < txstats__ent_slots()); key_len 0 when free. */
static inline struct txstats__entity *txstats__ent_at(const struct txstats__entities *e,
                                                      uint32_t slot)
{
    return &e->pages[slot >> TXSTATS__ENT_PAGE_BITS][slot & (TXSTATS__ENT_PAGE - 1)];
}
/* One past the highest slot. */
static inline uint32_t txstats__ent_slots(const struct txstats__entities *e)
{
    return e->npages * TXSTATS__ENT_PAGE;
}
/* Statistics of a slot in use in a span, into `out` (count, sum, min, max; other fields
 * untouched). */
void txstats__ent_summary(const struct txstats__entity *en, unsigned span, txstats_summary_t *out);

#endif
