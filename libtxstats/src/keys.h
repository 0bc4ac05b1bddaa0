/* SPDX-License-Identifier: MIT */
/*
 * Internal: the idempotency-key table (leaf: no window, no journal; only the allocator).
 *
 * A key is known by a 128-bit BLAKE2b digest of its bytes (collision-resistant: a client cannot
 * make its key collide with another's), and remembered with a 64-bit fingerprint of the
 * transaction it asked for, the status it got, and the time it expires: 32 bytes an entry, in
 * open-addressing sub-tables of linear probing that grow by half as they fill (load between 1/2
 * and 3/4: 43 to 64 bytes a key). An
 * entry is dead once the clock passes its expiry: lookups do not see it, the same key reuses its
 * slot, and a sub-table that grows, or any sub-table when the table is at its cap (max_keys over
 * all sub-tables), is rebuilt without the dead (only once something in it can have expired: a
 * full table of live keys answers TXSTATS_EFULL at once).
 * No background sweep. Each sub-table has its own lock; the caller takes it (txstats__keys_lock).
 */
#ifndef TXSTATS_KEYS_H
#define TXSTATS_KEYS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "txstats/txstats.h"

#define TXSTATS__KEY_SUBTABLES 16

struct txstats__key {
    uint64_t h[2]; /* digest of the key's bytes */
};

struct txstats__key_entry {
    uint64_t h[2];   /* h[0] == 0 && h[1] == 0: an empty slot */
    uint64_t fp;     /* fingerprint of (amount, timestamp) */
    int64_t expires; /* ms + 2^54 in bits 0..55; the status + 16 in bits 56..63 (0: forgotten) */
};

struct txstats__key_sub {
    pthread_mutex_t lock;
    struct txstats__key_entry *slots;
    uint64_t nslots;    /* 0 before the first key */
    uint64_t used;      /* occupied slots, live or dead */
    int64_t min_expiry; /* no entry expires before this (a lower bound) */
    uint64_t moves;     /* changes whenever entries change slots (rebuild, clear, swap) */
} __attribute__((aligned(64)));

struct txstats__keys {
    const struct txstats__mem *mem;
    uint64_t cap;          /* max_keys over all sub-tables (0: keys off); a race of puts in
                              different sub-tables can pass it by at most one a sub-table */
    _Atomic uint64_t held; /* the sum of every sub-table's `used` */
    struct txstats__key_sub sub[TXSTATS__KEY_SUBTABLES];
};

/* What is remembered of a key. */
struct txstats__key_info {
    uint64_t fp;
    int status;
    int64_t expires;
};

void txstats__key_digest(const void *key, size_t len, struct txstats__key *out);
/* What a key remembers of its transaction: amount, timestamp and entity (none: ent_len 0, the
 * fingerprint of libtxstats 0.2). */
uint64_t txstats__key_fingerprint(txstats_amount_t amount, int64_t ts, const void *ent,
                                  size_t ent_len);

int txstats__keys_init(struct txstats__keys *k, const struct txstats__mem *mem, uint64_t max_keys);
void txstats__keys_fini(struct txstats__keys *k);
/* The sub-table of a key, locked / unlocked; every call below on that key needs it held. */
struct txstats__key_sub *txstats__keys_lock(struct txstats__keys *k,
                                            const struct txstats__key *key);
void txstats__keys_unlock(struct txstats__key_sub *s);
/* A live entry of the key at `now`: true and *out filled, or false. */
bool txstats__keys_find(const struct txstats__key_sub *s, const struct txstats__key *key,
                        int64_t now, struct txstats__key_info *out);
/* Remember the key: TXSTATS_OK, TXSTATS_EFULL (the cap holds only live keys), TXSTATS_ENOMEM. */
int txstats__keys_put(struct txstats__keys *k, struct txstats__key_sub *s,
                      const struct txstats__key *key, const struct txstats__key_info *info,
                      int64_t now);
/* Forget one key (its sub-table locked): a put whose transaction could not be stored. */
void txstats__keys_forget(struct txstats__key_sub *s, const struct txstats__key *key);
/* Forget every key; every sub-table's lock held (txstats__keys_lock_all). */
void txstats__keys_clear(struct txstats__keys *k);
/* Occupied slots over all sub-tables (live and not yet reclaimed). */
uint64_t txstats__keys_count(struct txstats__keys *k);
/* Exchange the contents of two tables (not their locks); every lock of `a` held, `b` private. */
void txstats__keys_swap(struct txstats__keys *a, struct txstats__keys *b);
/* What a visit of the keys is given (txstats__keys_each_from): 0 to go on. */
typedef int (*txstats__key_fn)(void *ctx, const struct txstats__key *key,
                               const struct txstats__key_info *info);
/* A piece of sub-table `i` (locked while it is visited): its live keys from slot *from on, at
 * most `max` of them, through `fn`, until fn returns non-zero (that key not taken); *from becomes
 * the slot to go on from (UINT64_MAX once the sub-table is done) and *moves the sub-table's move
 * count, which the caller compares between pieces (the slots of a moved sub-table must be
 * visited again from 0). Returns fn's non-zero return, else 0. */
int txstats__keys_each_from(struct txstats__keys *k, unsigned i, int64_t now, uint64_t *from,
                            size_t max, uint64_t *moves, txstats__key_fn fn, void *ctx);
/* Every sub-table's lock, in order (a batch), and the sub-table of a key without locking. */
void txstats__keys_lock_all(struct txstats__keys *k);
void txstats__keys_unlock_all(struct txstats__keys *k);
struct txstats__key_sub *txstats__keys_sub(struct txstats__keys *k, const struct txstats__key *key);

#endif
