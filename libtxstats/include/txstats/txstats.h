/* SPDX-License-Identifier: MIT */
/**
 * @file txstats.h
 * @brief libtxstats: exact statistics of money transactions over a sliding time window.
 *
 * A transaction is an amount (fixed point, 1 unit = 1e-6) and a timestamp in milliseconds since
 * the Unix epoch (UTC). At clock time `now`, a transaction is *in the window* when
 * `now - window_ms < timestamp_ms <= now`. Statistics (count, exact sum, avg, min, max) of the
 * transactions in the window are answered in O(1) time and memory whatever the traffic.
 *
 * Thread safety: every function may be called from any number of threads at once on the same
 * `txstats_t`, except txstats_destroy(), which must not race with any other call on that instance.
 * Functions that take no instance are pure and thread-safe. There is no global mutable state.
 *
 * Errors: functions return a status code (`TXSTATS_OK`, a positive informational code, or a
 * negative `TXSTATS_E*` error); txstats_strerror() describes any of them.
 */
#ifndef TXSTATS_TXSTATS_H
#define TXSTATS_TXSTATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TXSTATS_VERSION_MAJOR 0
#define TXSTATS_VERSION_MINOR 3
#define TXSTATS_VERSION_PATCH 0
/** Version as 0xMMmmpp, for compile-time comparisons. */
#define TXSTATS_VERSION_HEX                                                                        \
    ((TXSTATS_VERSION_MAJOR << 16) | (TXSTATS_VERSION_MINOR << 8) | TXSTATS_VERSION_PATCH)

#if defined(_WIN32) && defined(TXSTATS_BUILDING_SHARED)
#define TXSTATS_API __declspec(dllexport)
#elif defined(_WIN32) && defined(TXSTATS_SHARED)
#define TXSTATS_API __declspec(dllimport)
#elif defined(__GNUC__) || defined(__clang__)
#define TXSTATS_API __attribute__((visibility("default")))
#else
#define TXSTATS_API
#endif

/** Amount in fixed point: 1 unit = 1e-6 of the currency unit (a "micro"). */
typedef int64_t txstats_amount_t;
#define TXSTATS_AMOUNT_SCALE 1000000
/** Amounts must satisfy |amount| < TXSTATS_AMOUNT_LIMIT (that is, |value| < 10^12). */
#define TXSTATS_AMOUNT_LIMIT INT64_C(1000000000000000000)

/** Largest accepted span + max_skew_ms (31 days). Memory follows the milliseconds that hold
 *  transactions, not the span: an idle span costs 8 bytes per 262 s of it. */
#define TXSTATS_MAX_SPAN_MS INT64_C(2678400000)
/** Most spans one instance keeps (txstats_config_t.spans_ms). */
#define TXSTATS_MAX_SPANS 8
/** Default cap on the number of transactions kept for listing. */
#define TXSTATS_DEFAULT_MAX_RETAINED ((size_t)1048576)
/** Default cap on remembered idempotency keys. */
#define TXSTATS_DEFAULT_MAX_KEYS ((size_t)1048576)
/** Default cap on active entities (per-key windows, txstats_add_entity()). */
#define TXSTATS_DEFAULT_MAX_ENTITIES ((size_t)1048576)
/** Longest entity key, in bytes. */
#define TXSTATS_MAX_ENTITY_BYTES 128

/** Opaque instance. */
typedef struct txstats txstats_t;

/** Status codes. */
enum {
    TXSTATS_OK = 0,         /**< success */
    TXSTATS_EXPIRED = 1,    /**< valid, but older than the window: not stored, not counted */
    TXSTATS_EFUTURE = -1,   /**< timestamp later than now + max_skew_ms */
    TXSTATS_ERANGE = -2,    /**< value out of range (|amount| >= 10^12, timestamp out of range) */
    TXSTATS_EINVAL = -3,    /**< invalid argument or unparsable text */
    TXSTATS_ENOMEM = -4,    /**< allocation failed; the instance is unchanged and usable */
    TXSTATS_ENOBUFS = -5,   /**< caller's buffer too small; what fits was written */
    TXSTATS_EIO = -6,       /**< I/O error (open, read, write, fsync, rename); see errno */
    TXSTATS_EFORMAT = -7,   /**< file is not a valid snapshot or journal (corrupt, wrong version) */
    TXSTATS_EBUSY = -8,     /**< the data directory is in use by another instance or process */
    TXSTATS_DUPLICATE = 2,  /**< the idempotency key was seen with this same transaction: not
                                 counted again (txstats_add_keyed) */
    TXSTATS_ECONFLICT = -9, /**< the idempotency key was seen with another transaction: nothing
                                 counted */
    TXSTATS_EFULL = -10,    /**< the idempotency-key table holds max_keys live keys: nothing
                                 counted; retry once keys expire */
    TXSTATS_ELIMIT = -11    /**< a transaction for a new entity while max_entities entities are
                                 active: nothing recorded; known entities keep working */
};

/** Longest idempotency key, in bytes (the IETF Idempotency-Key draft leaves it open; Stripe's
 *  limit is 255). */
#define TXSTATS_MAX_KEY_BYTES 255

/**
 * The file layer the library writes through (journal records, checkpoints, snapshots): a seam
 * for fault injection and for platforms with their own I/O. Every function has POSIX semantics:
 * it returns what write(2) / fdatasync(2) return and sets errno on failure. A NULL function uses
 * the POSIX call. The structure is read, not copied: it must outlive the instance.
 */
typedef struct {
    ssize_t (*write)(int fd, const void *buf, size_t len, void *ctx); /**< write(2) */
    int (*sync)(int fd, void *ctx);                                   /**< fdatasync(2) */
    void *ctx;                                                        /**< passed to both */
} txstats_io_t;

/**
 * Configuration of an instance. Always initialise with txstats_config_init() before setting
 * fields, so that fields added in later versions get their defaults.
 */
typedef struct {
    int64_t window_ms;   /**< window length, >= 1; default 60000 */
    int64_t max_skew_ms; /**< accepted lead of timestamps over the clock, >= 0; default 0 */
    size_t max_retained; /**< cap on transactions kept for listing; 0 keeps none; default
                              TXSTATS_DEFAULT_MAX_RETAINED. Statistics stay exact past it. */
    int64_t (*clock_ms)(void *ctx); /**< current time in ms since the epoch; NULL: CLOCK_REALTIME */
    void *clock_ctx;                /**< passed to clock_ms */
    unsigned shards; /**< independent sub-windows that concurrent adds spread over; 0: one per
                          online CPU, at most 16. 1 makes every add take the same lock. */
    void *(*alloc)(size_t size, void *ud); /**< allocator; NULL (with free NULL): malloc */
    void (*free)(void *ptr, void *ud);     /**< deallocator matching alloc; NULL: free */
    void *alloc_ud;                        /**< passed to alloc and free */
    const txstats_io_t *io;                /**< file layer; NULL: POSIX write/fdatasync */
    size_t max_keys;     /**< idempotency keys remembered at once (txstats_add_keyed); 0: keys
                              refused with TXSTATS_EFULL; default TXSTATS_DEFAULT_MAX_KEYS */
    int64_t key_ttl_ms;  /**< how long a key is remembered after its transaction's timestamp (or,
                              for a transaction not stored, after it was seen); at least
                              window_ms + max_skew_ms, which 0 (the default) means */
    size_t max_entities; /**< entities (per-key windows) active at once; a transaction for a new
                              one past it gets TXSTATS_ELIMIT; 0: entities refused; default
                              TXSTATS_DEFAULT_MAX_ENTITIES */
    const int64_t *spans_ms; /**< several windows at once: `nspans` spans in ms (1 to
                                  TXSTATS_MAX_SPANS, distinct, each >= 1); spans_ms[0] is the
                                  default span and replaces window_ms. Read at creation, not
                                  kept. NULL: one span, window_ms (nspans is then ignored).
                                  Changing the spans between runs of one data directory: a
                                  restart keeps what the new longest span holds of what the
                                  checkpoint and the journal hold */
    unsigned nspans;         /**< entries of spans_ms */
    uint64_t reserved[2];    /**< zero; room for future fields */
} txstats_config_t;

/**
 * Statistics of the window at one moment. The sum is exact: a two's complement 128-bit integer
 * of micro-units split in `sum_hi` (high 64 bits, signed) and `sum_lo` (low 64 bits); it cannot
 * overflow. With count == 0, sum, min and max are 0.
 */
typedef struct {
    uint64_t count;       /**< transactions in the window */
    txstats_amount_t min; /**< smallest amount in the window */
    txstats_amount_t max; /**< largest amount in the window */
    int64_t sum_hi;       /**< exact sum in micro-units, high 64 bits (signed) */
    uint64_t sum_lo;      /**< exact sum in micro-units, low 64 bits */
    int64_t now_ms;       /**< the clock time these statistics describe */
    uint64_t reserved[4];
} txstats_summary_t;

/** Statistics as text: HALF_UP to 2 decimal places, never "-0.00"; empty window "0.00". */
typedef struct {
    char sum[48];
    char avg[48]; /**< exact sum / count, then rounded */
    char max[48];
    char min[48];
    uint64_t count;
} txstats_summary_text_t;

/** One transaction. */
typedef struct {
    txstats_amount_t amount;
    int64_t timestamp_ms;
} txstats_tx_t;

/** What a listing covered; filled by txstats_get_ex(). */
typedef struct {
    uint64_t in_window; /**< transactions in the window (equals the statistics' count) */
    uint64_t retained;  /**< of those, how many are kept and listable (<= in_window) */
    uint64_t written;   /**< how many were copied into the caller's buffer */
    int64_t now_ms;     /**< the clock time the listing describes */
    uint64_t reserved[4];
} txstats_list_info_t;

/**
 * Fill `cfg` with the defaults (window 60000 ms, skew 0, max_retained 1,048,576, real clock,
 * automatic shards, malloc). @param cfg must not be NULL.
 */
TXSTATS_API void txstats_config_init(txstats_config_t *cfg);

/**
 * Create an instance.
 * @param out receives the instance (set to NULL on failure); must not be NULL.
 * @param cfg configuration, copied; NULL for the defaults.
 * @return TXSTATS_OK; TXSTATS_EINVAL for a NULL `out`, a span < 1 (window_ms, or an entry of
 *         spans_ms), a span + max_skew_ms > TXSTATS_MAX_SPAN_MS, max_skew_ms < 0, nspans 0 or
 *         more than TXSTATS_MAX_SPANS with spans_ms, two equal spans, shards > 256, or only one
 *         of alloc/free; TXSTATS_ENOMEM.
 * Memory follows what the window holds, not its span: per shard, 8 bytes per 262 s of the
 * longest span (the ring of the cell index); per millisecond holding transactions an 80-byte
 * cell, a 56-byte page per 64 ms and a 1.6 KB node per 4,096 ms that hold one; the retained
 * amounts, in chunks of 14 (128 bytes), from 9 bytes per transaction when milliseconds hold many
 * to 128 when each holds one; the distribution of amounts: 433 KB of bucket counts per span and
 * shard (reserved, resident where used) and, for transactions past max_retained, 2 bytes each in
 * 64-byte chunks of 26 per millisecond; entities: see txstats_add_entity(). The caller owns the
 * instance.
 */
TXSTATS_API int txstats_create(txstats_t **out, const txstats_config_t *cfg);

/** Free an instance and everything it holds. NULL is a no-op. Not concurrent with other calls.
 *  With a directory attached it stops the background checkpointer and flushes and closes the
 *  journal (everything added is in it) but writes no checkpoint: call txstats_checkpoint() first
 *  for a quick next open. */
TXSTATS_API void txstats_destroy(txstats_t *t);

/**
 * Record a transaction.
 * @param t instance (NULL: TXSTATS_EINVAL).
 * @param amount micro-units, |amount| < TXSTATS_AMOUNT_LIMIT.
 * @param timestamp_ms ms since the epoch.
 * @return TXSTATS_OK (stored and counted); TXSTATS_EXPIRED (timestamp <= now - window_ms, the
 *         longest span with several: valid, not stored); TXSTATS_EFUTURE (timestamp > now +
 * max_skew_ms); TXSTATS_ERANGE (amount out of range); TXSTATS_EINVAL; TXSTATS_ENOMEM (nothing
 * recorded). A transaction later than `now` but within the skew is stored and counted once the
 * clock reaches its timestamp. O(1) (O(spans) with several); it allocates when its millisecond or
 * its 64 ms get their first transaction, and until the retained list has warmed up.
 */
TXSTATS_API int txstats_add(txstats_t *t, txstats_amount_t amount, int64_t timestamp_ms);

/**
 * Record a transaction under an idempotency key, so that a client that got no answer can retry
 * without counting it twice (the IETF HTTPAPI draft "The Idempotency-Key HTTP Header Field", and
 * Stripe's practice). The first call with a key is judged as txstats_add() judges it and its
 * outcome (TXSTATS_OK, TXSTATS_EXPIRED, TXSTATS_EFUTURE, TXSTATS_ERANGE) is remembered with the
 * transaction's amount and timestamp; a later call with the same key is not counted again.
 * A stored transaction's key is journaled in the same record, so it survives a crash (a
 * refused one's is kept in memory and in checkpoints only: after a crash its retry is judged
 * afresh, and still counted at most once). Keys are part of the instance's state: snapshots and
 * checkpoints hold them, txstats_clear() forgets them. A key lives until its transaction's
 * timestamp (a refused one: the moment it was seen) plus key_ttl_ms, so no retry can count a
 * transaction twice while it can count at all; it then expires by itself.
 * Concurrent calls with the same key are serialised: the second waits for the first, then sees
 * its outcome.
 * @param key `key_len` bytes, 1 to TXSTATS_MAX_KEY_BYTES; compared exactly (by a 128-bit
 *        BLAKE2b digest).
 * @param first may be NULL; with TXSTATS_DUPLICATE or TXSTATS_ECONFLICT it receives the outcome
 *        of the first call with this key.
 * @return what txstats_add() returns for a first call; TXSTATS_DUPLICATE (same key, same amount
 *         and timestamp: not counted again); TXSTATS_ECONFLICT (same key, another amount or
 *         timestamp: nothing counted); TXSTATS_EFULL (max_keys live keys: nothing counted);
 *         TXSTATS_EINVAL (NULL, or a key of 0 or more than TXSTATS_MAX_KEY_BYTES bytes).
 *         TXSTATS_EIO and TXSTATS_ENOMEM leave the key unknown, so the retry is judged afresh.
 */
TXSTATS_API int txstats_add_keyed(txstats_t *t, txstats_amount_t amount, int64_t timestamp_ms,
                                  const void *key, size_t key_len, int *first);

/**
 * What txstats_add_keyed() would answer about the key, without adding: TXSTATS_OK when the key is
 * not known (a call would be a first one), TXSTATS_DUPLICATE (known with this amount and
 * timestamp; *first receives its outcome), TXSTATS_ECONFLICT (known with another), TXSTATS_EINVAL.
 * For front ends that forward keyed transactions elsewhere (the server's cluster mode).
 */
TXSTATS_API int txstats_key_check(txstats_t *t, txstats_amount_t amount, int64_t timestamp_ms,
                                  const void *key, size_t key_len, int *first);

/** An idempotency key for txstats_add_batch_keyed(); `key` NULL (or len 0): no key. */
typedef struct {
    const void *key;
    size_t len;
} txstats_key_t;

/**
 * txstats_add_batch() with an optional idempotency key per transaction (keys[i] for tx[i]; keys
 * may be NULL): each keyed one is judged as txstats_add_keyed() would, in order, so a key that
 * repeats within the batch is a duplicate (or a conflict) of its first use. results[i] may then
 * also be TXSTATS_DUPLICATE, TXSTATS_ECONFLICT, TXSTATS_EFULL or TXSTATS_EINVAL (a bad key);
 * firsts (may be NULL) receives, for those, the first outcome. Still one shard lock and one
 * journal write for the batch.
 * @return TXSTATS_OK when every transaction was judged (see results: a journal write that failed
 *         gives TXSTATS_EIO to each transaction it held, and none of those is stored);
 *         TXSTATS_EINVAL for a NULL t, or a NULL tx with n > 0; TXSTATS_ENOMEM when the batch's
 *         scratch could not be allocated (nothing judged, nothing stored).
 */
TXSTATS_API int txstats_add_batch_keyed(txstats_t *t, const txstats_tx_t *tx,
                                        const txstats_key_t *keys, size_t n, int *results,
                                        int *firsts, size_t *stored);

/** Idempotency keys held now (live ones and expired ones not yet reclaimed). TXSTATS_OK or
 *  TXSTATS_EINVAL. */
TXSTATS_API int txstats_key_count(txstats_t *t, uint64_t *held);

/*
 * Entities: per-key windows. A transaction may name an entity (a card, an account, a merchant,
 * an IP address: any opaque byte string of 1 to TXSTATS_MAX_ENTITY_BYTES bytes, compared
 * exactly). It counts in the global window as any transaction does, and in its entity's window,
 * which has the same span, the same millisecond-exact edge and the same exact statistics. An
 * entity is active while it has a transaction in the window or ahead of it (max_skew_ms); its
 * state is freed when its last transaction leaves, so memory follows the active entities, not
 * every entity ever seen. ("Entity" keeps these apart from idempotency keys; the server calls
 * them `key`.) Journal, checkpoints, snapshots, txstats_clear() and txstats_load() hold and
 * restore them with the rest of the state.
 */

/** One transaction to record, for txstats_add_ex() and txstats_add_batch_ex(). */
typedef struct {
    txstats_amount_t amount;
    int64_t timestamp_ms;
    const void *entity;   /**< the entity it counts for; NULL (or entity_len 0): none */
    size_t entity_len;    /**< 1 to TXSTATS_MAX_ENTITY_BYTES */
    const void *idem_key; /**< idempotency key as in txstats_add_keyed(); NULL: none */
    size_t idem_key_len;  /**< 1 to TXSTATS_MAX_KEY_BYTES */
} txstats_input_t;

/**
 * Record a transaction for an entity: txstats_add_ex() with only an entity.
 * Memory per active entity: an 88-byte slot (keys of up to 24 bytes inside it), 11 to 21 bytes of
 * index, 40 bytes per span past the first, and longer keys' bytes; per keyed transaction a
 * 12-byte tag and, per span, 16 bytes per distinct amount of its entity. An entity is freed when
 * its last transaction leaves the longest span.
 * @return what txstats_add() returns; TXSTATS_ELIMIT (a new entity while max_entities are
 *         active: nothing recorded); TXSTATS_EINVAL (NULL t or entity, or entity_len 0 or more
 *         than TXSTATS_MAX_ENTITY_BYTES: nothing recorded).
 */
TXSTATS_API int txstats_add_entity(txstats_t *t, const void *entity, size_t entity_len,
                                   txstats_amount_t amount, int64_t timestamp_ms);

/**
 * Record one transaction with an optional entity and an optional idempotency key: judged as
 * txstats_add_keyed() judges it when it has a key (the key remembers the entity too: a retry
 * naming another entity, or none, is TXSTATS_ECONFLICT), counted in the entity's window when it
 * names one. O(1) for an entity whose amounts arrive in time order with few distinct values; at
 * worst O(log d + 64) for an entity holding d distinct amounts.
 * @param first may be NULL; as txstats_add_keyed()'s.
 * @return what txstats_add_keyed() returns (txstats_add()'s without a key); TXSTATS_ELIMIT;
 *         TXSTATS_EINVAL (NULL t or in, a bad entity or key length).
 */
TXSTATS_API int txstats_add_ex(txstats_t *t, const txstats_input_t *in, int *first);

/**
 * txstats_add_batch_keyed() over inputs that may name entities and idempotency keys; results[i]
 * may also be TXSTATS_ELIMIT. Lines are judged in order. Unlike txstats_add_batch(), a batch
 * whose lines name entities takes each line's shard lock and journal write in turn.
 * @return as txstats_add_batch_keyed().
 */
TXSTATS_API int txstats_add_batch_ex(txstats_t *t, const txstats_input_t *in, size_t n,
                                     int *results, int *firsts, size_t *stored);

/**
 * Statistics of one entity's window now, as txstats_stats() gives the global one; an entity with
 * nothing in the window (never seen, or all expired) gets count 0 and zeros. O(1).
 * @return TXSTATS_OK; TXSTATS_EINVAL (NULL argument, entity_len 0 or more than
 *         TXSTATS_MAX_ENTITY_BYTES).
 */
TXSTATS_API int txstats_entity_stats(txstats_t *t, const void *entity, size_t entity_len,
                                     txstats_summary_t *out);

/** What txstats_top() ranks by. */
typedef enum {
    TXSTATS_TOP_SUM = 0,  /**< the largest exact sum first */
    TXSTATS_TOP_COUNT = 1 /**< the most transactions first */
} txstats_top_by_t;

/** One entity of a ranking. */
typedef struct {
    txstats_summary_t stats; /**< its window's statistics at the ranking's moment */
    size_t entity_len;
    unsigned char entity[TXSTATS_MAX_ENTITY_BYTES];
} txstats_top_entry_t;

/**
 * The `cap` entities with the largest sum (or count) in the window now, exactly: largest first;
 * ties are ordered by the entity's bytes (memcmp, then the shorter first), so the ranking is
 * deterministic. Entities with nothing in the window are never ranked. Scans every active
 * entity, one shard at a time under its lock (each shard's ranking is of one moment, and the
 * shards are scanned one after the other): O(active entities + ranked * log cap), no
 * allocation.
 * @param buf `cap` entries; NULL only with cap 0.
 * @param n receives how many were written (min(cap, entities with a transaction in the window)).
 * @return TXSTATS_OK; TXSTATS_EINVAL (NULL t or n, NULL buf with cap > 0, an unknown `by`).
 */
TXSTATS_API int txstats_top(txstats_t *t, txstats_top_by_t by, txstats_top_entry_t *buf, size_t cap,
                            size_t *n);

/*
 * Spans: one instance keeps up to TXSTATS_MAX_SPANS windows of different lengths over the same
 * transactions (txstats_config_t.spans_ms; e.g. 1 min, 5 min, 1 h, 24 h). An add counts in all
 * of them at once; each span has its exact, millisecond-edged statistics, listing, distribution
 * and per-entity statistics. Span 0 is the default: the functions without `_span` use it. A
 * transaction is stored while it is inside the longest span (TXSTATS_EXPIRED past it).
 */

/** The configured spans, in configuration order, into spans_ms (cap entries); *n receives how
 *  many there are. @return TXSTATS_OK, TXSTATS_ENOBUFS (cap < *n; the first cap written) or
 *  TXSTATS_EINVAL (NULL t or n, NULL spans_ms with cap > 0). */
TXSTATS_API int txstats_spans(txstats_t *t, int64_t *spans_ms, unsigned cap, unsigned *n);
/** txstats_stats() of span `span` (an index into the configured spans). @return TXSTATS_OK or
 *  TXSTATS_EINVAL (NULL argument, span out of range). */
TXSTATS_API int txstats_stats_span(txstats_t *t, unsigned span, txstats_summary_t *out);
/** txstats_get_ex() of span `span`. @return as txstats_get_ex(); TXSTATS_EINVAL for a span out
 *  of range. */
TXSTATS_API int txstats_get_span(txstats_t *t, unsigned span, txstats_tx_t *buf, size_t cap,
                                 txstats_list_info_t *info);
/** txstats_entity_stats() of span `span`. */
TXSTATS_API int txstats_entity_stats_span(txstats_t *t, unsigned span, const void *entity,
                                          size_t entity_len, txstats_summary_t *out);
/** txstats_top() of span `span`. */
TXSTATS_API int txstats_top_span(txstats_t *t, unsigned span, txstats_top_by_t by,
                                 txstats_top_entry_t *buf, size_t cap, size_t *n);

/**
 * txstats_key_check() for a transaction that may name an entity: an idempotency key remembers
 * the entity with the amount and timestamp, so the same key with another entity is
 * TXSTATS_ECONFLICT. @return as txstats_key_check(); TXSTATS_EINVAL also without an idempotency
 * key or with a bad entity length.
 */
TXSTATS_API int txstats_key_check_ex(txstats_t *t, const txstats_input_t *in, int *first);

/** Entity counters. */
typedef struct {
    uint64_t active;  /**< entities with a transaction in the window or ahead of it */
    uint64_t limit;   /**< max_entities */
    uint64_t refused; /**< transactions refused with TXSTATS_ELIMIT since creation */
    uint64_t reserved[4];
} txstats_entity_info_t;

/** @return TXSTATS_OK or TXSTATS_EINVAL (NULL argument). */
TXSTATS_API int txstats_entity_info(txstats_t *t, txstats_entity_info_t *out);

/**
 * Record many transactions in one call, each judged on its own as txstats_add() would judge it.
 * One shard's lock is taken once for the whole batch and, with a journal, the batch's records go
 * out in one write (and, with TXSTATS_FSYNC_ALWAYS, one fdatasync) before any of them counts.
 * @param tx `n` transactions; NULL only when n == 0.
 * @param results may be NULL; else `n` statuses, results[i] for tx[i]: TXSTATS_OK,
 *        TXSTATS_EXPIRED, TXSTATS_EFUTURE, TXSTATS_ERANGE, TXSTATS_ENOMEM (that one not stored),
 *        TXSTATS_EIO (the journal write failed: none of the batch's valid transactions was
 *        stored; errno says why).
 * @param stored may be NULL; receives how many were stored.
 * @return TXSTATS_OK when every transaction was judged (see results); TXSTATS_EINVAL for a NULL
 *         `t`, or `tx` NULL with n > 0; TXSTATS_ENOMEM when the call's scratch memory (about 40
 *         bytes per transaction) cannot be allocated: nothing was stored.
 */
TXSTATS_API int txstats_add_batch(txstats_t *t, const txstats_tx_t *tx, size_t n, int *results,
                                  size_t *stored);

/**
 * Statistics of the window now, consistent across all fields (one moment). O(shards + span /
 * 262 s), whatever the number of transactions. @return TXSTATS_OK or TXSTATS_EINVAL (NULL
 * argument).
 */
TXSTATS_API int txstats_stats(txstats_t *t, txstats_summary_t *out);

/**
 * Combine the statistics of several windows exactly: after the call `acc` describes the union of
 * the transactions `acc` and `part` described (count and 128-bit sum added, min and max of both;
 * an empty side changes nothing; `now_ms` becomes the later of the two). For users who keep one
 * instance per partition, thread or tenant, and what the server's cluster mode does across Kafka
 * partitions. Start from a zeroed summary. The sum cannot overflow for fewer than 2^64
 * transactions in all. @return TXSTATS_OK or TXSTATS_EINVAL (NULL argument).
 */
TXSTATS_API int txstats_summary_merge(txstats_summary_t *acc, const txstats_summary_t *part);

/**
 * The admission rule of txstats_add(), without adding: what txstats_add() would return for this
 * transaction under configuration `cfg` at clock time `now_ms` (SPEC §1: expired when
 * timestamp <= now - window_ms, the longest of spans_ms when given; future when timestamp > now
 * + max_skew_ms). For front ends that must answer before the transaction reaches a window (a
 * queue, another process).
 * @param cfg NULL for the defaults.
 * @return TXSTATS_OK (it would be counted); TXSTATS_EXPIRED; TXSTATS_EFUTURE; TXSTATS_ERANGE
 *         (|amount| >= TXSTATS_AMOUNT_LIMIT); TXSTATS_EINVAL (window_ms < 1, max_skew_ms < 0, or
 *         spans_ms with nspans 0 or over TXSTATS_MAX_SPANS, a span < 1, two equal spans).
 *         Range first, then future, then expired; any int64 values, no overflow.
 */
TXSTATS_API int txstats_admit(const txstats_config_t *cfg, txstats_amount_t amount,
                              int64_t timestamp_ms, int64_t now_ms);

/**
 * Render a summary as text (HALF_UP, 2 places, never "-0.00").
 * @return TXSTATS_OK or TXSTATS_EINVAL (NULL argument).
 */
TXSTATS_API int txstats_summary_text(const txstats_summary_t *s, txstats_summary_text_t *out);

/**
 * Copy the retained transactions of the window, oldest first, into `buf`. Within one
 * millisecond they come shard by shard, each shard's in the order it took them: arrival order
 * holds within a millisecond only with one shard (keeping it across shards would cost a shared
 * counter on every add, which is what shards exist to avoid).
 * @param buf destination of `cap` entries (may be NULL when cap is 0).
 * @param count receives how many retained transactions the window holds (may exceed cap).
 * @return TXSTATS_OK when all fit; TXSTATS_ENOBUFS when cap < *count (the first, oldest `cap`
 *         are written); TXSTATS_EINVAL for NULL t/count or NULL buf with cap > 0.
 * When the retained cap was reached, the listing is incomplete: use txstats_get_ex() to know.
 */
TXSTATS_API int txstats_get(txstats_t *t, txstats_tx_t *buf, size_t cap, size_t *count);

/**
 * Like txstats_get(), and tells whether the listing is complete: it is when
 * info->written == info->in_window. @param info must not be NULL.
 */
TXSTATS_API int txstats_get_ex(txstats_t *t, txstats_tx_t *buf, size_t cap,
                               txstats_list_info_t *info);

/** Remove every transaction (statistics are empty afterwards). NULL is a no-op. With a journal
 *  (txstats_open_dir) it is txstats_clear_ex() without its status: when the clear cannot be
 *  journaled nothing is cleared, silently; use txstats_clear_ex() to know. */
TXSTATS_API void txstats_clear(txstats_t *t);

/**
 * Remove every transaction; with a journal, the clear is journaled first (and synced, with
 * TXSTATS_FSYNC_ALWAYS), so a crash afterwards does not bring cleared transactions back.
 * @return TXSTATS_OK; TXSTATS_EIO when the journal could not be written: nothing was cleared;
 *         TXSTATS_EINVAL for NULL.
 */
TXSTATS_API int txstats_clear_ex(txstats_t *t);

/**
 * Write the window (exact per-millisecond aggregates, the retained transactions, the bucket
 * counts of the amounts not retained, the idempotency keys) to `path` as a versioned JSON
 * document (version 2: one array per record of the binary format), atomically: a temporary file
 * in the same directory, fsync, rename over `path`, fsync of the directory. On failure `path` is
 * untouched. txstats_load() of the file gives back every answer: statistics, quantiles, histogram
 * counts and listing.
 * Adds proceed while the file is written: each shard is copied in holds of its lock of at most
 * 1 MiB of cells each, written out after the lock is released; memory beyond the window stays
 * about 3 MiB whatever the window holds.
 * @return TXSTATS_OK; TXSTATS_EIO (errno tells why; EAGAIN when a clear or a load kept replacing
 *         the contents during 16 attempts); TXSTATS_ENOMEM; TXSTATS_EINVAL.
 */
TXSTATS_API int txstats_save(txstats_t *t, const char *path);

/**
 * As txstats_save(), in the compact binary format of txstats_checkpoint() ("TXCKPT02": blocks of
 * at most 2 MiB of little-endian words, each with its CRC-32C) instead of JSON: about 2× faster
 * to write and read back. txstats_load() reads either format, and those of libtxstats 0.1.
 * @return as txstats_save().
 */
TXSTATS_API int txstats_save_bin(txstats_t *t, const char *path);

/**
 * Replace the instance's contents with the snapshot at `path` (JSON from txstats_save(), binary
 * from txstats_save_bin(), or either format of libtxstats 0.1), dropping entries that have
 * expired (and, beyond max_retained, listing entries; statistics stay exact). The file is read
 * twice, a block at a time: first checked whole (every CRC, every cell's invariants), then built
 * aside from the live shards (adds go on meanwhile, and are replaced with the rest) and swapped
 * in with every shard locked. All or nothing: on any error, a file changed on disk between the
 * two readings included (TXSTATS_EIO or TXSTATS_EFORMAT), the instance is as it was. Cells older
 * than the longest span now are dropped; entities past max_entities keep only their global
 * counting.
 * With a directory attached (txstats_open_dir()), the load is durable before it returns: a clear
 * is journaled with the install, then a checkpoint is written; TXSTATS_EIO from that checkpoint
 * means the contents are loaded but a crash before the next checkpoint comes back without them
 * (cleared, with the adds made after the load).
 * @return TXSTATS_OK; TXSTATS_EIO (cannot open or read; errno tells why); TXSTATS_EFORMAT
 *         (not a snapshot, corrupt, truncated, empty, or an unsupported version); TXSTATS_ENOMEM;
 *         TXSTATS_EINVAL.
 */
TXSTATS_API int txstats_load(txstats_t *t, const char *path);

/** What txstats_load_ex() loaded. */
typedef struct {
    uint64_t transactions; /**< now in the window, from the snapshot */
    uint64_t expired;      /**< in the snapshot but outside the window now: dropped */
    uint64_t approximate;  /**< of `transactions`, those whose amounts the file did not keep
                                (written by libtxstats 0.1, whose files stored neither those
                                amounts nor their buckets): each counts at its millisecond's mean
                                in the distribution, so quantiles are approximate until they
                                leave the window; 0 for files of this version */
    uint64_t reserved[5];
} txstats_load_info_t;

/**
 * txstats_load(), telling what it loaded. Memory beyond the window while it loads: one block of
 * the file (2 MiB) for files of this version; the whole file and its decoding for older files
 * and JSON snapshots.
 * @param info may be NULL; filled on success.
 * @return as txstats_load().
 */
TXSTATS_API int txstats_load_ex(txstats_t *t, const char *path, txstats_load_info_t *info);

/* ---- Durability: snapshot + write-ahead journal in a directory --------------------------------
 */

/** When journal records reach stable storage. */
typedef enum {
    TXSTATS_FSYNC_INTERVAL = 0, /**< written before add returns (survives a process crash);
                                     fdatasync every fsync_interval_ms (power loss loses at most
                                     that much) */
    TXSTATS_FSYNC_ALWAYS = 1,   /**< add returns only once its record is on stable storage;
                                     concurrent adds share one fdatasync (group commit) */
    TXSTATS_FSYNC_NEVER = 2     /**< written before add returns; the OS decides when to flush */
} txstats_fsync_t;

/** Journal settings; initialise with txstats_durability_init(). */
typedef struct {
    txstats_fsync_t fsync;     /**< default TXSTATS_FSYNC_INTERVAL */
    int64_t fsync_interval_ms; /**< default 100 */
    int skip_corrupt;          /**< 0 (default): a damaged record followed by good ones stops
                                    recovery with TXSTATS_EFORMAT; 1: skip and count it */
    uint64_t segment_bytes;    /**< a journal segment is closed past this size; default 64 MiB */
    int64_t checkpoint_interval_ms; /**< > 0: a background thread calls txstats_checkpoint()
                                         this often while the journal grows; 0 (default): only
                                         the caller checkpoints */
    /** Called from the background checkpointer after each checkpoint it attempts, with the
     *  status (TXSTATS_OK, TXSTATS_EIO, TXSTATS_ENOMEM) and errno; a failure is retried at the
     *  next interval, the journal keeping everything meanwhile. NULL: not called. */
    void (*on_checkpoint)(int status, int error, void *ctx);
    void *on_checkpoint_ctx; /**< passed to on_checkpoint */
    uint64_t reserved[5];
} txstats_durability_t;

/** What txstats_open_dir() found and did. */
typedef struct {
    uint64_t snapshot_transactions; /**< in the window, from the snapshot */
    uint64_t replayed;              /**< journal records applied to the window */
    uint64_t expired;               /**< journal records older than the window, dropped */
    uint64_t torn_bytes;            /**< bytes of incomplete records cut from segment tails */
    uint64_t corrupt_records;       /**< damaged records skipped (skip_corrupt only) */
    uint64_t segments;              /**< journal segments read */
    int cleared;                    /**< a journaled clear emptied the snapshot */
    int64_t duration_ms;            /**< time the recovery took */
    uint64_t approximate;        /**< transactions of a checkpoint written by libtxstats 0.1 whose
                                      amounts it did not keep: they count at their millisecond's mean in
                                      the distribution until they leave the window (see
                                      txstats_load_info_t); 0 for checkpoints of this version */
    uint64_t missing_checkpoint; /**< 1: no checkpoint, though journal segments held records, so
                                      the checkpoint they follow was removed; recovery went on
                                      from the journal alone only because skip_corrupt was set */
    uint64_t reserved[6];
} txstats_recovery_t;

/** Journal counters, for monitoring. */
typedef struct {
    uint64_t records;      /**< records written since open */
    uint64_t bytes;        /**< bytes written since open */
    uint64_t syncs;        /**< fdatasync calls */
    uint64_t write_errors; /**< failed writes (the add or clear was refused) */
    uint64_t checkpoints;  /**< snapshots written by txstats_checkpoint */
    uint64_t segments;     /**< live journal segment files */
    uint64_t reserved[8];
} txstats_journal_stats_t;

/** Fill `d` with the defaults. */
TXSTATS_API void txstats_durability_init(txstats_durability_t *d);

/**
 * Make the instance durable in directory `dir` (created if missing): recover the checkpoint
 * (`checkpoint.bin`; a `snapshot.json` written by libtxstats 0.1.0 is read when there is none)
 * and the journal written after it (`journal-<stream>-<segment>.log`), dropping what has
 * expired; then journal every later txstats_add() and txstats_clear_ex() there, and write a
 * checkpoint. With d->checkpoint_interval_ms > 0 a background thread checkpoints that often
 * while the journal grows; it stops in txstats_destroy(). Allocations go through the instance's
 * allocator; writes and fdatasync through cfg.io. Call it once, before the instance is shared
 * between threads; its contents are replaced. The directory is locked against other processes until
 * txstats_destroy().
 * @param d NULL for the defaults. @param report may be NULL.
 * @return TXSTATS_OK; TXSTATS_EBUSY (directory locked by another process); TXSTATS_EFORMAT (damaged
 *         snapshot, or a damaged journal record followed by good ones, or a record out of its
 *         stream's order (a record or segment duplicated), without skip_corrupt, or,
 *         with errno ENOENT, journal records but no checkpoint: the checkpoint they follow was
 *         removed, and without skip_corrupt recovery refuses to go on from the journal alone;
 *         files are left untouched, the instance is left empty); TXSTATS_EIO (errno tells why);
 * TXSTATS_ENOMEM; TXSTATS_EINVAL (NULL, or a journal is already attached). Once attached,
 * txstats_add() returns TXSTATS_EIO, having recorded nothing, when its journal record cannot be
 * written (a full disk, say), and succeeds again once it can. With TXSTATS_FSYNC_ALWAYS,
 * TXSTATS_EIO can also come from the fdatasync after the record was written: the transaction is
 * then counted and in the journal file, but not known to be on stable storage (a power loss may
 * lose it); errno says why.
 */
TXSTATS_API int txstats_open_dir(txstats_t *t, const char *dir, const txstats_durability_t *d,
                                 txstats_recovery_t *report);

/**
 * Write a checkpoint of the window (`checkpoint.bin`, atomically) to the directory of
 * txstats_open_dir(), recording the journal position it covers, then delete the journal segments
 * it makes unnecessary, so that disk use is bounded by the traffic between checkpoints rather
 * than by uptime. Adds continue meanwhile: each shard is locked for holds of at most 1 MiB of
 * cells, and no file I/O happens under a lock; memory beyond the window stays about 3 MiB
 * whatever it holds. The file's size is what the window holds (64 bytes per used millisecond, 24
 * more when it retains amounts and 8 per retained amount, 8 per distinct bucket of its amounts not
 * retained, 40 per key, 16 per keyed transaction and about 24 per entity), not the span or the
 * caps. Recovery replays
 * exactly the journal records the checkpoint does not hold, whatever adds ran while it was written.
 * @return TXSTATS_OK; TXSTATS_EIO (errno; EAGAIN when clears or loads kept voiding it);
 *         TXSTATS_ENOMEM; TXSTATS_EINVAL (no directory attached).
 */
TXSTATS_API int txstats_checkpoint(txstats_t *t);

/** Journal counters; all zero without a journal. @return TXSTATS_OK or TXSTATS_EINVAL. */
TXSTATS_API int txstats_journal_stats(txstats_t *t, txstats_journal_stats_t *out);

/**
 * Parse decimal text as Java's `new BigDecimal(String)` does (optional sign, digits, optional
 * fraction, optional exponent), rounded HALF_UP to 6 fractional digits.
 * @param text need not be NUL-terminated; `len` bytes are read.
 * @return TXSTATS_OK; TXSTATS_ERANGE when |value| >= 10^12 after rounding; TXSTATS_EINVAL for
 *         anything else (empty, blanks, NaN, Infinity, hex, NULL). `*out` is set only on success.
 */
TXSTATS_API int txstats_amount_parse(const char *text, size_t len, txstats_amount_t *out);

/**
 * Write the shortest exact decimal text of `a` with at least 2 fractional digits ("12.3343",
 * "5.00", "-0.000001"). Needs at most 24 bytes including the NUL.
 * @return TXSTATS_OK; TXSTATS_ENOBUFS when `len` is too small (buf gets "" if len > 0);
 *         TXSTATS_EINVAL for NULL buf.
 */
TXSTATS_API int txstats_amount_format(txstats_amount_t a, char *buf, size_t len);

/**
 * Parse an RFC 3339 date-time ("2018-07-17T09:59:51.312Z", "...+02:00"; 0 to 9 fractional
 * digits, truncated to ms; `T`/`t`/space (RFC 3339 §5.6 NOTE), `Z`/`z` accepted) into ms since
 * the epoch. A leap second, 23:59:60 UTC on any day (RFC 3339 §5.7), counts as 23:59:59.999.
 * Years 0000 to 9999; the offset may move the instant outside them, which is fine.
 * @return TXSTATS_OK; TXSTATS_EINVAL (syntax, no zone, impossible date such as Feb 30, hour 24,
 *         second 60 other than at 23:59 UTC, second 61, NULL argument). `*out_ms` is set only on
 *         success.
 */
TXSTATS_API int txstats_timestamp_parse(const char *text, size_t len, int64_t *out_ms);

/**
 * Write `ms` as UTC "YYYY-MM-DDTHH:MM:SS.sssZ" (25 bytes with the NUL).
 * @return TXSTATS_OK; TXSTATS_ERANGE (year outside 0000-9999); TXSTATS_ENOBUFS; TXSTATS_EINVAL.
 */
TXSTATS_API int txstats_timestamp_format(int64_t ms, char *buf, size_t len);

/** Human-readable text for a status code; never NULL (unknown codes get a generic text). */
TXSTATS_API const char *txstats_strerror(int code);

/** The library's version, "MAJOR.MINOR.PATCH", as built. */
TXSTATS_API const char *txstats_version(void);

/**
 * @name Distribution of the amounts in the window: quantiles and a histogram.
 *
 * Amounts are counted in log-linear buckets: |amount| below 1024 micro-units exactly, above in
 * buckets 1/512 wide (relative), so a quantile is within 1/1024 (0.098 %) of the true one; zero
 * is exact; min (q = 0) and max (q = 1) are exact. The q-quantile is the nearest-rank one: the
 * ceil(q * count)-th smallest amount (the first when that is 0). Expiry removes a transaction
 * from the distribution exactly when it leaves the statistics. q is given in parts per billion
 * (q = q_ppb / TXSTATS_Q_SCALE), so that "0.999" is exact.
 * @{
 */
#define TXSTATS_Q_SCALE 1000000000u

/**
 * Quantiles of the amounts in the window, at one moment; O(buckets), independent of the count.
 * @param q_ppb n levels, each <= TXSTATS_Q_SCALE. @param out n amounts (0 for an empty window).
 * @param count receives the number of transactions (may be NULL).
 * @return TXSTATS_OK; TXSTATS_EINVAL for NULL t, NULL arrays with n > 0, or a level > 1.
 */
TXSTATS_API int txstats_quantiles(txstats_t *t, const uint32_t *q_ppb, size_t n,
                                  txstats_amount_t *out, uint64_t *count);
/** txstats_quantiles() of span `span`; TXSTATS_EINVAL also for a span out of range. */
TXSTATS_API int txstats_quantiles_span(txstats_t *t, unsigned span, const uint32_t *q_ppb, size_t n,
                                       txstats_amount_t *out, uint64_t *count);

/** A distribution that windows add into: they combine exactly (bucket counts add up). */
typedef struct txstats_dist txstats_dist_t;

/**
 * An empty distribution (about 430 KiB). @param cfg only its allocator is used; NULL: malloc.
 * @return TXSTATS_OK, TXSTATS_EINVAL (NULL out, only one of alloc/free), TXSTATS_ENOMEM.
 */
TXSTATS_API int txstats_dist_create(txstats_dist_t **out, const txstats_config_t *cfg);
TXSTATS_API void txstats_dist_destroy(txstats_dist_t *d); /**< NULL ok */
TXSTATS_API void txstats_dist_clear(txstats_dist_t *d);   /**< empty again; NULL ok */
/**
 * Add the window of `t` to `d`: call it with several instances (partitions, nodes' own
 * instances) to get their combined distribution. O(occupied buckets). Every shard is read at the
 * same `now`, one after another, each locked only while its counts are added, so adds to the
 * other shards go on (a scrape costs writers one shard's merge, never all of them at once); an
 * add that lands meanwhile in a shard already read is counted as if it came just after.
 * txstats_quantiles() instead locks every shard at once and describes one instant.
 * @return TXSTATS_OK or TXSTATS_EINVAL (NULL argument).
 */
TXSTATS_API int txstats_dist_collect(txstats_t *t, txstats_dist_t *d);
/** txstats_dist_collect() of span `span`; TXSTATS_EINVAL also for a span out of range. */
TXSTATS_API int txstats_dist_collect_span(txstats_t *t, unsigned span, txstats_dist_t *d);
/** acc += part. @return TXSTATS_OK or TXSTATS_EINVAL (NULL argument). */
TXSTATS_API int txstats_dist_merge(txstats_dist_t *acc, const txstats_dist_t *part);
/** Count `n` transactions of `amount`. @return TXSTATS_OK, TXSTATS_EINVAL, TXSTATS_ERANGE. */
TXSTATS_API int txstats_dist_add(txstats_dist_t *d, txstats_amount_t amount, uint64_t n);
/** Transactions counted; 0 for NULL. */
TXSTATS_API uint64_t txstats_dist_count(const txstats_dist_t *d);
/** Exact min and max (0 and 0 when empty). @return TXSTATS_OK or TXSTATS_EINVAL. */
TXSTATS_API int txstats_dist_extremes(const txstats_dist_t *d, txstats_amount_t *min,
                                      txstats_amount_t *max);
/** As txstats_quantiles(), over `d`. @return TXSTATS_OK or TXSTATS_EINVAL. */
TXSTATS_API int txstats_dist_quantiles(const txstats_dist_t *d, const uint32_t *q_ppb, size_t n,
                                       txstats_amount_t *out);
/**
 * A cumulative histogram: counts[i] = transactions whose amount is <= le[i]. Every amount <= le[i]
 * is counted; an amount above le[i] but in its bucket (above by less than 0.2 %, relative) is
 * counted too. Exact for a bound below the minimum, at or above the maximum, or with |le| < 1024
 * micro-units. @return TXSTATS_OK or TXSTATS_EINVAL.
 */
TXSTATS_API int txstats_dist_histogram(const txstats_dist_t *d, const txstats_amount_t *le,
                                       size_t n, uint64_t *counts);
/**
 * The finest histogram: the non-empty buckets in increasing order, each with its exact bounds
 * (every amount counted in it lies in [lo, hi]) and its count. Start with *cursor = 0.
 * @return 1 with the next bucket, 0 at the end (or for a NULL argument).
 */
TXSTATS_API int txstats_dist_bucket_next(const txstats_dist_t *d, uint32_t *cursor,
                                         txstats_amount_t *lo, txstats_amount_t *hi,
                                         uint64_t *count);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* TXSTATS_TXSTATS_H */
