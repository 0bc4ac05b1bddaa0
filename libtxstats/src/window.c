/* SPDX-License-Identifier: MIT */
/*
 * The window of one shard: a ring of per-millisecond cells, `ring` slots (a power of two larger
 * than window_ms + max_skew_ms), slot = timestamp & mask.
 *
 * - Each cell holds the exact count, 128-bit sum, min and max of its millisecond, and the chain of
 *   retained amounts.
 * - A cell is *active* when its timestamp is <= the shard's `now`; running count/sum cover exactly
 *   the active cells. Cells ahead of `now` (accepted thanks to max_skew_ms) wait to be activated.
 * - Advancing `now` expires the cells that fall out of (now - window_ms, now] and activates the
 *   future ones that the clock reached. A bitmap of used cells makes that cost proportional to the
 *   cells that hold data (plus one word test per 64 ms), never to the number of transactions.
 * - A binary tree over the ring keeps min/max of the active cells: its root answers in O(1);
 *   an add walks up only while it improves an extreme, an expiry recomputes one path.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const struct txstats__minmax EMPTY_MM = {INT64_MAX, INT64_MIN};

/* The timestamp a used slot stands for: the unique one in (now - window, now - window + ring]. */
static int64_t slot_ts(const txstats_t *t, const struct txstats__shard *s, int64_t slot)
{
    int64_t base = s->now - t->cfg.window_ms + 1;
    return base + ((slot - base) & t->mask);
}

static struct txstats__minmax leaf(const txstats_t *t, const struct txstats__shard *s, int64_t slot)
{
    const struct txstats__cell *c = &s->cells[slot];
    if (c->count == 0 || (t->cfg.max_skew_ms > 0 && slot_ts(t, s, slot) > s->now))
        return EMPTY_MM;
    return (struct txstats__minmax){c->min, c->max};
}

static struct txstats__minmax node(const txstats_t *t, const struct txstats__shard *s, int64_t i)
{
    return i >= t->ring ? leaf(t, s, i - t->ring) : s->tree[i];
}

/* A leaf gained `mm`: widen ancestors while that changes them. */
static void tree_widen(const txstats_t *t, struct txstats__shard *s, int64_t slot,
                       struct txstats__minmax mm)
{
    for (int64_t p = (t->ring + slot) >> 1; p >= 1; p >>= 1) {
        bool changed = false;
        if (mm.min < s->tree[p].min) {
            s->tree[p].min = mm.min;
            changed = true;
        }
        if (mm.max > s->tree[p].max) {
            s->tree[p].max = mm.max;
            changed = true;
        }
        if (!changed)
            return;
    }
}

/* A leaf lost values: recompute ancestors until one does not change. */
static void tree_refresh(const txstats_t *t, struct txstats__shard *s, int64_t slot)
{
    for (int64_t p = (t->ring + slot) >> 1; p >= 1; p >>= 1) {
        struct txstats__minmax a = node(t, s, 2 * p), b = node(t, s, 2 * p + 1);
        struct txstats__minmax m = {a.min < b.min ? a.min : b.min, a.max > b.max ? a.max : b.max};
        if (m.min == s->tree[p].min && m.max == s->tree[p].max)
            return;
        s->tree[p] = m;
    }
}

static void tree_clear(const txstats_t *t, struct txstats__shard *s)
{
    for (int64_t i = 0; i < t->ring; i++)
        s->tree[i] = EMPTY_MM;
}

int64_t txstats__next_used(const txstats_t *t, const struct txstats__shard *shards, unsigned n,
                           int64_t from, int64_t to)
{
    while (from <= to) {
        int64_t slot = from & t->mask;
        uint64_t word = 0;
        for (unsigned i = 0; i < n; i++)
            word |= shards[i].bits[slot >> 6];
        word >>= (slot & 63);
        if (word) {
            int64_t ts = from + __builtin_ctzll(word);
            return ts <= to ? ts : INT64_MAX;
        }
        from += 64 - (slot & 63);
    }
    return INT64_MAX;
}

/* Move a cell's chain to the shard's free list: O(1), the chain is circular. */
static void release_chain(struct txstats__shard *s, struct txstats__cell *c)
{
    if (c->tail) {
        struct txstats__chunk *head = c->tail->next;
        c->tail->next = s->free_chunks;
        s->free_chunks = head;
        c->tail = NULL;
    }
}

/* Permission to retain one more amount: from the shard's credit, refilled from the pool. */
static bool take_credit(txstats_t *t, struct txstats__shard *s)
{
    if (s->credit == 0) {
        uint64_t avail = atomic_load_explicit(&t->pool, memory_order_relaxed);
        while (avail > 0) {
            uint64_t take = avail < t->batch ? avail : t->batch;
            if (atomic_compare_exchange_weak_explicit(&t->pool, &avail, avail - take,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                s->credit = take;
                break;
            }
        }
    }
    if (s->credit == 0)
        return false;
    s->credit--;
    return true;
}

/* Retained amounts were dropped: keep a batch of credit, return the rest to the pool. */
static void give_credit(txstats_t *t, struct txstats__shard *s, uint64_t n)
{
    s->credit += n;
    if (s->credit > 2 * t->batch) {
        atomic_fetch_add_explicit(&t->pool, s->credit - t->batch, memory_order_relaxed);
        s->credit = t->batch;
    }
}

static void clear_cell(txstats_t *t, struct txstats__shard *s, int64_t slot)
{
    struct txstats__cell *c = &s->cells[slot];
    release_chain(s, c);
    give_credit(t, s, c->kept);
    c->count = 0;
    c->kept = 0;
    c->sum = 0;
    s->bits[slot >> 6] &= ~(UINT64_C(1) << (slot & 63));
}

static void expire_cell(txstats_t *t, struct txstats__shard *s, int64_t ts)
{
    int64_t slot = ts & t->mask;
    struct txstats__cell *c = &s->cells[slot];
    bool active = ts <= s->now;
    if (active) {
        s->count -= c->count;
        s->sum -= c->sum;
        s->kept -= c->kept;
    }
    clear_cell(t, s, slot);
    if (active)
        tree_refresh(t, s, slot);
}

static void activate_cell(txstats_t *t, struct txstats__shard *s, int64_t ts)
{
    int64_t slot = ts & t->mask;
    struct txstats__cell *c = &s->cells[slot];
    s->count += c->count;
    s->sum += c->sum;
    s->kept += c->kept;
    tree_widen(t, s, slot, (struct txstats__minmax){c->min, c->max});
}

void txstats__shard_reset(txstats_t *t, struct txstats__shard *s)
{
    int64_t ts = txstats__next_used(t, s, 1, s->now - t->ring + 1, s->now);
    /* Scanning a full ring's worth of timestamps visits every slot once. */
    for (; ts != INT64_MAX; ts = txstats__next_used(t, s, 1, ts + 1, s->now))
        clear_cell(t, s, ts & t->mask);
    tree_clear(t, s);
    s->count = 0;
    s->kept = 0;
    s->sum = 0;
}

void txstats__shard_advance(txstats_t *t, struct txstats__shard *s, int64_t now)
{
    if (now <= s->now)
        return;
    int64_t old = s->now, w = t->cfg.window_ms, skew = t->cfg.max_skew_ms;
    if (now - old >= t->ring) {
        /* Everything stored is at most old + skew <= now - window: all of it expires. */
        txstats__shard_reset(t, s);
        s->now = now;
        return;
    }
    int64_t hi = now - w;
    for (int64_t ts = txstats__next_used(t, s, 1, old - w + 1, hi); ts != INT64_MAX;
         ts = txstats__next_used(t, s, 1, ts + 1, hi))
        expire_cell(t, s, ts);
    s->now = now;
    if (skew == 0)
        return;
    int64_t lo = (old > now - w ? old : now - w) + 1;
    hi = now < old + skew ? now : old + skew;
    for (int64_t ts = txstats__next_used(t, s, 1, lo, hi); ts != INT64_MAX;
         ts = txstats__next_used(t, s, 1, ts + 1, hi))
        activate_cell(t, s, ts);
}

struct txstats__chunk *txstats__chunk_take(txstats_t *t, struct txstats__shard *s)
{
    struct txstats__chunk *k = s->free_chunks;
    if (k)
        s->free_chunks = k->next;
    else if (!(k = txstats__alloc(t, sizeof(*k))))
        return NULL;
    k->n = 0;
    return k;
}

/* Append to a cell's chain; the chunk must have room or be a fresh one (k != NULL). */
static void chain_append(struct txstats__cell *c, struct txstats__chunk *fresh, txstats_amount_t a)
{
    if (fresh) {
        fresh->next = c->tail ? c->tail->next : fresh;
        if (c->tail)
            c->tail->next = fresh;
        c->tail = fresh;
    }
    c->tail->amounts[c->tail->n++] = a;
    c->kept++;
}

int txstats__shard_add(txstats_t *t, struct txstats__shard *s, txstats_amount_t amount, int64_t ts)
{
    if (ts <= s->now - t->cfg.window_ms)
        return TXSTATS_EXPIRED;
    int64_t slot = ts & t->mask;
    struct txstats__cell *c = &s->cells[slot];
    bool keep = take_credit(t, s);
    struct txstats__chunk *fresh = NULL;
    if (keep && (!c->tail || c->tail->n == TXSTATS__CHUNK_CAP)) {
        if (!(fresh = txstats__chunk_take(t, s))) {
            give_credit(t, s, 1);
            return TXSTATS_ENOMEM;
        }
    }
    if (t->journal) { /* the record goes out before anything here changes */
        int rc = txstats__journal_add(t, s, amount, ts);
        if (rc != TXSTATS_OK) {
            if (fresh) {
                fresh->next = s->free_chunks;
                s->free_chunks = fresh;
            }
            if (keep)
                give_credit(t, s, 1);
            return rc;
        }
    }
    if (keep)
        chain_append(c, fresh, amount);
    if (c->count++ == 0) {
        c->min = c->max = amount;
        s->bits[slot >> 6] |= UINT64_C(1) << (slot & 63);
    } else {
        c->min = amount < c->min ? amount : c->min;
        c->max = amount > c->max ? amount : c->max;
    }
    c->sum += amount;
    if (ts <= s->now) {
        s->count++;
        s->sum += amount;
        s->kept += keep;
        tree_widen(t, s, slot, (struct txstats__minmax){amount, amount});
    }
    return TXSTATS_OK;
}

void txstats__shard_put_cell(txstats_t *t, struct txstats__shard *s, int64_t ts,
                             const struct txstats__cell *agg, const txstats_amount_t *kept,
                             uint64_t nkept, struct txstats__chunk **pool)
{
    int64_t slot = ts & t->mask;
    struct txstats__cell *c = &s->cells[slot];
    for (uint64_t i = 0; i < nkept && take_credit(t, s); i++) {
        struct txstats__chunk *fresh = NULL;
        if (!c->tail || c->tail->n == TXSTATS__CHUNK_CAP) {
            fresh = *pool;
            *pool = fresh->next;
            fresh->n = 0;
        }
        chain_append(c, fresh, kept[i]);
    }
    c->count = agg->count;
    c->sum = agg->sum;
    c->min = agg->min;
    c->max = agg->max;
    s->bits[slot >> 6] |= UINT64_C(1) << (slot & 63);
    if (ts <= s->now)
        activate_cell(t, s, ts);
}

struct txstats__minmax txstats__shard_extremes(const txstats_t *t, const struct txstats__shard *s)
{
    (void)t;
    return s->tree[1];
}

int txstats__shard_init(txstats_t *t, struct txstats__shard *s)
{
    memset(s, 0, sizeof(*s));
    s->now = -4 * TXSTATS__CLOCK_LIMIT;
    s->jfd = -1;
    s->cells = txstats__calloc(t, (size_t)t->ring, sizeof(*s->cells));
    s->tree = txstats__alloc(t, (size_t)t->ring * sizeof(*s->tree));
    s->bits = txstats__calloc(t, (size_t)t->ring / 64, sizeof(uint64_t));
    if (!s->cells || !s->tree || !s->bits || pthread_mutex_init(&s->lock, NULL) != 0 ||
        pthread_mutex_init(&s->io, NULL) != 0) {
        txstats__free(t, s->cells);
        txstats__free(t, s->tree);
        txstats__free(t, s->bits);
        return TXSTATS_ENOMEM;
    }
    tree_clear(t, s);
    return TXSTATS_OK;
}

void txstats__shard_fini(txstats_t *t, struct txstats__shard *s)
{
    txstats__shard_reset(t, s);
    while (s->free_chunks) {
        struct txstats__chunk *k = s->free_chunks;
        s->free_chunks = k->next;
        txstats__free(t, k);
    }
    txstats__free(t, s->cells);
    txstats__free(t, s->tree);
    txstats__free(t, s->bits);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->io);
}
