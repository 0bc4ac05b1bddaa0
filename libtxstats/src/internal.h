/* SPDX-License-Identifier: MIT */
/*
 * Internal: the instance, shared by the orchestrators (txstats.c for live operations, persist.c
 * for save, load and checkpoints, recover.c for txstats_open_dir). Not installed.
 *
 * Layers (tests/check_architecture.py enforces them; a file calls only files of lower layers):
 *   0  alloc.c  amount.c  crc32c.c  error.c  time.c
 *   1  fileio.c (the file layer: whole writes, atomic replacement, whole reads)
 *      amountset.c (an ordered multiset of amounts: an entity's min and max)
 *      distribution.c (amount buckets, their counts, per-cell bucket lists, txstats_dist_t)
 *      image.c (the image format of checkpoints and snapshots: blocks of records)
 *   2  window.c (one shard's ring)  journal.c (records, one stream of segments)
 *      keys.c (the idempotency-key table)  snapshot.c (the older formats, read into images)
 *      entities.c (one shard's entities: per-key windows' statistics)
 *      image_json.c (an image as JSON text and back)
 *   3  txstats.c   locks, clock, add = lock -> reserve -> journal append -> apply/cancel -> unlock
 *                  -> commit; stats; get; clear
 *   4  collect.c   the image writer: shards in short holds, keys, journal cuts
 *      ranking.c   an entity's statistics, the top entities, the entity counters
 *      install.c   the image reader: a checking pass, then the install under every lock
 *      quantile.c  txstats_quantiles, txstats_dist_collect (all shards at one moment)
 *   5  persist.c   save, load, checkpoint, the background checkpointer
 *   6  recover.c   txstats_open_dir: read the checkpoint and the journal, replay, attach
 */
#ifndef TXSTATS_INTERNAL_H
#define TXSTATS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "entities.h"
#include "image.h"
#include "journal.h"
#include "keys.h"
#include "txstats/txstats.h"
#include "window.h"

#define TXSTATS__MAX_SHARDS 256

/* One independent sub-window and its journal stream, guarded by `lock`. */
struct txstats__shard {
    pthread_mutex_t lock;
    struct txstats__window w;
    struct txstats__jstream *js;   /* NULL without a journal */
    struct txstats__entities ents; /* the entities whose transactions this shard holds */
} __attribute__((aligned(64)));

/* Entities are placed by their key's hash: its top 12 bits pick one of TXSTATS__PLACE_BUCKETS
 * buckets, `place` maps each bucket to a shard (bucket % shards at creation). A load of an image
 * written with another shard count maps each bucket to the shard the image's section of that
 * bucket goes to, so that every entity stays in the shard its transactions went to. The index of
 * an entity table uses the hash's low bits: independent of the placement. */
#define TXSTATS__PLACE_BUCKETS TXSTATS__IMG_PLACE_BUCKETS
#define TXSTATS__PLACE_SHIFT   52

struct txstats__durable; /* persist.c: checkpoint state */

struct txstats {
    txstats_config_t cfg;
    struct txstats__mem mem;
    struct txstats__geom geom;
    unsigned nshards;
    struct txstats__shard *shards; /* 64-byte aligned inside shards_mem: no false sharing */
    void *shards_mem;
    void *self_mem;           /* the allocation this instance sits in, 64-byte aligned */
    _Atomic int64_t last_now; /* high-water mark of the clock: time never runs backwards here */
    /* Written now and then: 64 bytes of padding on each side keep it off the read-mostly lines
     * above whatever the allocation's alignment. */
    char pad0[64];
    struct txstats__retention ret;
    char pad1[64];
    struct txstats__keys keys;       /* idempotency keys (txstats_add_keyed) */
    struct txstats__ent_shared ents; /* what the shards' entity tables share */
    /* Entity placement: changed under every shard lock (then ents.epoch advanced), read without
     * any by txstats__lock_entity(), which checks the epoch once it holds the home shard. */
    _Atomic uint8_t place[TXSTATS__PLACE_BUCKETS];
    int64_t key_ttl;                  /* ms a key lives after its timestamp (or first sight) */
    struct txstats__journal *journal; /* NULL unless txstats_open_dir() attached one */
    uint64_t clear_id;                /* last journaled clear; under all shard locks */
    /* Changes, under every shard lock, whenever the contents are replaced as a whole (a clear,
     * a load): an image written in pieces across it is void. */
    _Atomic uint64_t generation;
    struct txstats__durable *durable; /* persist.c's, with the journal */
    /* Set by the layer that attached the journal: stops and frees what it started (threads,
     * journal). txstats_destroy() calls it first; the live layer never calls upward by name. */
    void (*detach)(txstats_t *t);
};

/* The shard of an entity's key hash. */
static inline unsigned txstats__home(txstats_t *t, uint64_t hash)
{
    return atomic_load_explicit(&t->place[hash >> TXSTATS__PLACE_SHIFT], memory_order_relaxed);
}

/* The home shard of an entity, locked, with its key's hash (good while the lock is held). */
struct txstats__shard *txstats__lock_entity(txstats_t *t, const void *key, size_t len,
                                            uint64_t *hash);

/* A window's tag sink (window.h) for a shard's entities (ctx: its struct txstats__entities). */
void txstats__tag_sink(void *ctx, uint32_t slot, txstats_amount_t amount, int op, unsigned span);

/* Every shard advanced to `now`, one lock at a time. */
void txstats__advance_all(txstats_t *t, int64_t now);

/* The current time: max(clock, every earlier reading), clamped. */
int64_t txstats__now(txstats_t *t);
/* A journal add replayed at recovery (no journal attached yet): a keyed one's key remembered as
 * stored, then the add, retained for listing only if the live window retained it (when the
 * record says). What txstats_add() returns. */
int txstats__replay(txstats_t *t, const struct txstats__jrec *rec);
/* A clear journaled in every stream (a new clear id), all shard locks held; seqs[i] receives
 * stream i's record number. TXSTATS_OK or TXSTATS_EIO (a clear missing from some stream is
 * ignored at recovery). Then, the locks released, txstats__journal_commit_all() (fsync always).
 * No journal: nothing to do. */
int txstats__journal_clear(txstats_t *t, uint64_t *seqs);
int txstats__journal_commit_all(txstats_t *t, const uint64_t *seqs);
/* Every shard's lock, in index order (and back). */
void txstats__lock_all(txstats_t *t);
void txstats__unlock_all(txstats_t *t);

#endif
