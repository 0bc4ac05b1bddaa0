/* SPDX-License-Identifier: MIT */
/* Internal declarations shared between the library's source files. Not installed. */
#ifndef TXSTATS_INTERNAL_H
#define TXSTATS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "txstats/txstats.h"

typedef __int128 txstats__i128;

/* Clock readings are clamped to +/- this, so timestamps stay exact in a JSON double (2^53) and
 * no window arithmetic can overflow. */
#define TXSTATS__CLOCK_LIMIT (INT64_C(1) << 52)

/* Retained amounts of one millisecond cell: a circular singly linked list of chunks. The cell
 * points at the newest (tail) chunk; tail->next is the oldest (head). */
#define TXSTATS__CHUNK_CAP 14
struct txstats__chunk {
    struct txstats__chunk *next;
    uint32_t n;
    txstats_amount_t amounts[TXSTATS__CHUNK_CAP];
};

/* Everything one shard knows about one millisecond. Empty when count == 0. */
struct txstats__cell {
    uint64_t count;
    uint64_t kept; /* retained amounts in the chain */
    txstats_amount_t min;
    txstats_amount_t max;
    txstats__i128 sum;
    struct txstats__chunk *tail;
};

struct txstats__minmax {
    txstats_amount_t min;
    txstats_amount_t max;
};

/* One independent sub-window. All fields are guarded by `lock`. */
struct txstats__shard {
    pthread_mutex_t lock;
    int64_t now;    /* the time up to which expiry has been applied */
    uint64_t count; /* running totals over active cells (ts <= now) */
    uint64_t kept;
    txstats__i128 sum;
    uint64_t credit; /* retained amounts this shard may still add, drawn from txstats.pool */
    struct txstats__cell *cells;  /* ring, slot = ts & mask */
    struct txstats__minmax *tree; /* internal nodes 1..ring-1; leaves are the cells */
    uint64_t *bits;               /* cells that hold data, active or future */
    struct txstats__chunk *free_chunks;
    /* Journal (when attached): the shard's current segment, written under `lock`. */
    int jfd;                   /* -1 without a journal */
    uint64_t jseg;             /* segment number */
    uint64_t joff;             /* bytes in the segment */
    uint64_t jseq;             /* records written to this shard's stream */
    _Atomic uint64_t jseq_pub; /* jseq, readable without `lock` */
    uint64_t jrecords, jbytes, jerrors;
    /* `io` serialises fdatasync and the segment's lifetime (rotation takes `lock`, then `io`). */
    pthread_mutex_t io;
    uint64_t jsynced; /* records known to be on stable storage (under io) */
    uint64_t jsyncs;  /* fdatasync calls (under io) */
} __attribute__((aligned(64)));

struct txstats__journal;

/* A snapshot in memory: cells in timestamp order, retained amounts, journal boundaries. */
struct txstats__snap_cell {
    int64_t ts;
    struct txstats__cell agg; /* count, sum, min, max (chain unused) */
    size_t off;               /* first amount in snap.amounts */
    uint64_t nkept;
};

#define TXSTATS__MAX_SHARDS 256
struct txstats__snap {
    struct txstats__snap_cell *cells;
    size_t ncells;
    txstats_amount_t *amounts;
    size_t namounts;
    uint64_t bound[TXSTATS__MAX_SHARDS]; /* per journal stream: first segment not covered */
};

struct txstats {
    txstats_config_t cfg;
    int64_t ring; /* power of two > window_ms + max_skew_ms, >= 64 */
    int64_t mask;
    unsigned nshards;
    struct txstats__shard *shards; /* 64-byte aligned inside shards_mem: no false sharing */
    void *shards_mem;
    _Atomic int64_t last_now; /* high-water mark of the clock: time never runs backwards here */
    /* Retention budget: kept amounts + shard credits + pool == max_retained, always. Shards take
     * credit in batches so that the shared counter is touched once per `batch` adds. */
    uint64_t batch;
    /* Written now and then: 64 bytes of padding on each side keep it off the read-mostly lines
     * above whatever the allocation's alignment. */
    char pad0[64];
    _Atomic uint64_t pool;
    char pad1[64];
    struct txstats__journal *journal; /* NULL unless txstats_open_dir() attached one */
};

/* Allocation through the instance's allocator. */
void *txstats__alloc(const txstats_t *t, size_t size);
void *txstats__calloc(const txstats_t *t, size_t n, size_t size);
void txstats__free(const txstats_t *t, void *p);

/* The current time: max(clock, every earlier reading), clamped. */
int64_t txstats__now(txstats_t *t);

/* Shard operations (window.c); the caller holds the shard's lock. */
int txstats__shard_init(txstats_t *t, struct txstats__shard *s);
void txstats__shard_fini(txstats_t *t, struct txstats__shard *s);
void txstats__shard_advance(txstats_t *t, struct txstats__shard *s, int64_t now);
void txstats__shard_reset(txstats_t *t, struct txstats__shard *s);
int txstats__shard_add(txstats_t *t, struct txstats__shard *s, txstats_amount_t amount, int64_t ts);
struct txstats__minmax txstats__shard_extremes(const txstats_t *t, const struct txstats__shard *s);
/* First ts in [from, to] whose cell holds data in any of shards[0..n), or INT64_MAX. */
int64_t txstats__next_used(const txstats_t *t, const struct txstats__shard *shards, unsigned n,
                           int64_t from, int64_t to);
/* Install a fully built cell at ts (load); chunks come from *pool, which holds enough. */
void txstats__shard_put_cell(txstats_t *t, struct txstats__shard *s, int64_t ts,
                             const struct txstats__cell *agg, const txstats_amount_t *kept,
                             uint64_t nkept, struct txstats__chunk **pool);
struct txstats__chunk *txstats__chunk_take(txstats_t *t, struct txstats__shard *s);

/* Snapshots (save.c). */
int txstats__snapshot_read(txstats_t *t, const char *path, struct txstats__snap *sn);
int txstats__snapshot_install(txstats_t *t, const struct txstats__snap *sn);
/* Copy every shard (rotating its journal segment under the same lock when `bound` is given) and
 * write the document atomically. */
int txstats__snapshot_write(txstats_t *t, const char *path, uint64_t *bound);
void txstats__snap_free(txstats_t *t, struct txstats__snap *sn);
int txstats__read_all(int dirfd, const char *name, uint64_t max, char **data, size_t *len);

/* Journal (journal.c). Called with the shard's lock held, before the window changes. */
int txstats__journal_add(txstats_t *t, struct txstats__shard *s, txstats_amount_t a, int64_t ts);
int txstats__journal_rotate(txstats_t *t, struct txstats__shard *s);
/* After the lock is released: wait until record `seq` is durable (TXSTATS_FSYNC_ALWAYS). */
int txstats__journal_commit(txstats_t *t, struct txstats__shard *s, uint64_t seq);
void txstats__journal_close(txstats_t *t);

void txstats__lock_all(txstats_t *t);
void txstats__unlock_all(txstats_t *t);

/* Fixed-point text of a 128-bit count of micro-units: shortest exact, at least 2 decimals.
 * buf needs 48 bytes. */
void txstats__format_micros(txstats__i128 v, char *buf);
/* Parse what txstats__format_micros writes (sign, digits, '.', 1 to 6 digits). 0 or -1. */
int txstats__parse_micros(const char *s, txstats__i128 *out);

#endif
