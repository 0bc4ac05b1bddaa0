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

#ifdef __cplusplus
extern "C" {
#endif

#define TXSTATS_VERSION_MAJOR 0
#define TXSTATS_VERSION_MINOR 1
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

/** Largest accepted `window_ms + max_skew_ms` (one hour). Memory grows linearly with it. */
#define TXSTATS_MAX_SPAN_MS INT64_C(3600000)
/** Default cap on the number of transactions kept for listing. */
#define TXSTATS_DEFAULT_MAX_RETAINED ((size_t)1048576)

/** Opaque instance. */
typedef struct txstats txstats_t;

/** Status codes. */
enum {
    TXSTATS_OK = 0,       /**< success */
    TXSTATS_EXPIRED = 1,  /**< valid, but older than the window: not stored, not counted */
    TXSTATS_EFUTURE = -1, /**< timestamp later than now + max_skew_ms */
    TXSTATS_ERANGE = -2,  /**< value out of range (|amount| >= 10^12, timestamp out of range) */
    TXSTATS_EINVAL = -3,  /**< invalid argument or unparsable text */
    TXSTATS_ENOMEM = -4,  /**< allocation failed; the instance is unchanged and usable */
    TXSTATS_ENOBUFS = -5, /**< caller's buffer too small; what fits was written */
    TXSTATS_EIO = -6,     /**< I/O error (open, read, write, fsync, rename); see errno */
    TXSTATS_EFORMAT = -7, /**< file is not a valid snapshot or journal (corrupt, wrong version) */
    TXSTATS_EBUSY = -8    /**< the data directory is in use by another instance or process */
};

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
    uint64_t reserved[8];                  /**< zero; room for future fields */
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
 * @return TXSTATS_OK; TXSTATS_EINVAL for a NULL `out`, window_ms < 1, max_skew_ms < 0,
 *         window_ms + max_skew_ms > TXSTATS_MAX_SPAN_MS, shards > 256, or only one of alloc/free;
 *         TXSTATS_ENOMEM.
 * Memory: about 64 bytes per millisecond of (window + skew, rounded up to a power of two) per
 * shard, plus about 9 bytes per retained transaction. The caller owns the instance.
 */
TXSTATS_API int txstats_create(txstats_t **out, const txstats_config_t *cfg);

/** Free an instance and everything it holds. NULL is a no-op. Not concurrent with other calls. */
TXSTATS_API void txstats_destroy(txstats_t *t);

/**
 * Record a transaction.
 * @param t instance (NULL: TXSTATS_EINVAL).
 * @param amount micro-units, |amount| < TXSTATS_AMOUNT_LIMIT.
 * @param timestamp_ms ms since the epoch.
 * @return TXSTATS_OK (stored and counted); TXSTATS_EXPIRED (timestamp <= now - window_ms: valid,
 *         not stored); TXSTATS_EFUTURE (timestamp > now + max_skew_ms); TXSTATS_ERANGE (amount out
 *         of range); TXSTATS_EINVAL; TXSTATS_ENOMEM (nothing recorded). A transaction later than
 *         `now` but within the skew is stored and counted once the clock reaches its timestamp.
 * O(log window) worst case, O(1) typical; no allocation once the retained list has warmed up.
 */
TXSTATS_API int txstats_add(txstats_t *t, txstats_amount_t amount, int64_t timestamp_ms);

/**
 * Statistics of the window now, consistent across all fields (one moment). O(shards), whatever
 * the number of transactions. @return TXSTATS_OK or TXSTATS_EINVAL (NULL argument).
 */
TXSTATS_API int txstats_stats(txstats_t *t, txstats_summary_t *out);

/**
 * Render a summary as text (HALF_UP, 2 places, never "-0.00").
 * @return TXSTATS_OK or TXSTATS_EINVAL (NULL argument).
 */
TXSTATS_API int txstats_summary_text(const txstats_summary_t *s, txstats_summary_text_t *out);

/**
 * Copy the retained transactions of the window, oldest first, into `buf`.
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
 *  (txstats_open_dir), use txstats_clear_ex() to learn whether the clear was made durable. */
TXSTATS_API void txstats_clear(txstats_t *t);

/**
 * Remove every transaction; with a journal, the clear is journaled first (and synced, with
 * TXSTATS_FSYNC_ALWAYS), so a crash afterwards does not bring cleared transactions back.
 * @return TXSTATS_OK; TXSTATS_EIO when the journal could not be written: nothing was cleared;
 *         TXSTATS_EINVAL for NULL.
 */
TXSTATS_API int txstats_clear_ex(txstats_t *t);

/**
 * Write the window (exact per-millisecond aggregates and the retained transactions) to `path` as a
 * versioned JSON document, atomically: a temporary file in the same directory, fsync, rename over
 * `path`, fsync of the directory. On failure `path` is untouched.
 * @return TXSTATS_OK; TXSTATS_EIO (errno tells why); TXSTATS_ENOMEM; TXSTATS_EINVAL.
 * Adds proceed while the file is written; each shard is copied under its lock, then formatted.
 */
TXSTATS_API int txstats_save(txstats_t *t, const char *path);

/**
 * Replace the instance's contents with the snapshot at `path`, dropping entries that have expired
 * (and, beyond max_retained, listing entries; statistics stay exact). All or nothing: on any error
 * the instance is as it was.
 * @return TXSTATS_OK; TXSTATS_EIO (cannot open or read; errno tells why); TXSTATS_EFORMAT
 *         (not a snapshot, corrupt, truncated, empty, or an unsupported version); TXSTATS_ENOMEM;
 *         TXSTATS_EINVAL.
 */
TXSTATS_API int txstats_load(txstats_t *t, const char *path);

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
    uint64_t reserved[8];
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
    uint64_t reserved[8];
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
 * Make the instance durable in directory `dir` (created if missing): recover the snapshot
 * (`snapshot.json`) and the journal written after it (`journal-*.log`), dropping what has
 * expired; then journal every later txstats_add() and txstats_clear_ex() there, and write a
 * checkpoint. Call it once, before the instance is shared between threads; its contents are
 * replaced. The directory is locked against other processes until txstats_destroy().
 * @param d NULL for the defaults. @param report may be NULL.
 * @return TXSTATS_OK; TXSTATS_EBUSY (directory locked by another process); TXSTATS_EFORMAT (damaged
 *         snapshot, or a damaged journal record followed by good ones without skip_corrupt: files
 *         are left untouched); TXSTATS_EIO (errno tells why); TXSTATS_ENOMEM; TXSTATS_EINVAL
 *         (NULL, or a journal is already attached).
 * Once attached, txstats_add() returns TXSTATS_EIO, having recorded nothing, when its journal
 * record cannot be written (a full disk, say), and succeeds again once it can.
 */
TXSTATS_API int txstats_open_dir(txstats_t *t, const char *dir, const txstats_durability_t *d,
                                 txstats_recovery_t *report);

/**
 * Write a snapshot of the window to the directory of txstats_open_dir(), recording the journal
 * position it covers, then delete the journal segments it makes unnecessary, so that disk use is
 * bounded by the traffic between checkpoints rather than by uptime. Adds continue meanwhile.
 * @return TXSTATS_OK; TXSTATS_EIO; TXSTATS_ENOMEM; TXSTATS_EINVAL (no directory attached).
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

#ifdef __cplusplus
}
#endif

#endif /* TXSTATS_TXSTATS_H */
