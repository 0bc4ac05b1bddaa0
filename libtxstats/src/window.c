/* SPDX-License-Identifier: MIT */
/*
 * The window of one shard: a ring of per-millisecond cells, `ring` slots (a power of two larger
 * than window_ms + max_skew_ms), slot = timestamp & mask.
 *
 * - Each cell holds the exact count, 128-bit sum, min and max of its millisecond, and the chain of
 *   retained amounts.
 * - A cell is *active* when its timestamp is <= the window's `now`; running count/sum cover exactly
 *   the active cells. Cells ahead of `now` (accepted thanks to max_skew_ms) wait to be activated.
 * - Advancing `now` expires the cells that fall out of (now - window_ms, now] and activates the
 *   future ones that the clock reached. A bitmap of used cells makes that cost proportional to the
 *   cells that hold data (plus one word test per 64 ms), never to the number of transactions.
 * - A binary tree over the ring keeps min/max of the active cells: its root answers in O(1);
 *   an add walks up only while it improves an extreme, an expiry recomputes one path.
 *
 * A leaf: no lock (the caller serialises), no journal, no file; only the allocator.
 */
#include <stdlib.h>
#include <string.h>

#include "window.h"

static const struct txstats__minmax EMPTY_MM = {INT64_MAX, INT64_MIN};

/* The timestamp a used slot stands for: the unique one in (now - window, now - window + ring]. */
static int64_t slot_ts(const struct txstats__window *w, int64_t slot)
{
    int64_t base = w->now - w->g->window_ms + 1;
    return base + ((slot - base) & w->g->mask);
}

static struct txstats__minmax leaf(const struct txstats__window *w, int64_t slot)
{
    const struct txstats__cell *c = &w->cells[slot];
    if (c->count == 0 || (w->g->skew_ms > 0 && slot_ts(w, slot) > w->now))
        return EMPTY_MM;
    return (struct txstats__minmax){c->min, c->max};
}

static struct txstats__minmax node(const struct txstats__window *w, int64_t i)
{
    return i >= w->g->ring ? leaf(w, i - w->g->ring) : w->tree[i];
}

/* A leaf gained `mm`: widen ancestors while that changes them. */
static void tree_widen(struct txstats__window *w, int64_t slot, struct txstats__minmax mm)
{
    for (int64_t p = (w->g->ring + slot) >> 1; p >= 1; p >>= 1) {
        bool changed = false;
        if (mm.min < w->tree[p].min) {
            w->tree[p].min = mm.min;
            changed = true;
        }
        if (mm.max > w->tree[p].max) {
            w->tree[p].max = mm.max;
            changed = true;
        }
        if (!changed)
            return;
    }
}

/* A leaf lost values: recompute ancestors until one does not change. */
static void tree_refresh(struct txstats__window *w, int64_t slot)
{
    for (int64_t p = (w->g->ring + slot) >> 1; p >= 1; p >>= 1) {
        struct txstats__minmax a = node(w, 2 * p), b = node(w, 2 * p + 1);
        struct txstats__minmax m = {a.min < b.min ? a.min : b.min, a.max > b.max ? a.max : b.max};
        if (m.min == w->tree[p].min && m.max == w->tree[p].max)
            return;
        w->tree[p] = m;
    }
}

static void tree_clear(struct txstats__window *w)
{
    for (int64_t i = 0; i < w->g->ring; i++)
        w->tree[i] = EMPTY_MM;
}

int64_t txstats__window_next_used(const struct txstats__window *w, int64_t from, int64_t to)
{
    while (from <= to) {
        int64_t slot = from & w->g->mask;
        uint64_t word = w->bits[slot >> 6] >> (slot & 63);
        if (word) {
            int64_t ts = from + __builtin_ctzll(word);
            return ts <= to ? ts : INT64_MAX;
        }
        from += 64 - (slot & 63);
    }
    return INT64_MAX;
}

const struct txstats__cell *txstats__window_cell(const struct txstats__window *w, int64_t ts)
{
    return &w->cells[ts & w->g->mask];
}

/* Move a cell's chain to the window's free list: O(1), the chain is circular. */
static void release_chain(struct txstats__window *w, struct txstats__cell *c)
{
    if (c->tail) {
        struct txstats__chunk *head = c->tail->next;
        c->tail->next = w->free_chunks;
        w->free_chunks = head;
        c->tail = NULL;
    }
}

/* Every tag of a cell to the sink with `op`, its chunks to the free list. */
static void settle_tags(struct txstats__window *w, struct txstats__cell *c, int op)
{
    struct txstats__tchunk *tail = c->tags;
    if (!tail)
        return;
    struct txstats__tchunk *k = tail->next;
    for (;;) {
        if (w->sink.fn)
            for (uint32_t i = 0; i < k->n; i++)
                w->sink.fn(w->sink.ctx, k->slot[i], k->amount[i], op);
        if (k == tail)
            break;
        k = k->next;
    }
    struct txstats__tchunk *head = tail->next;
    tail->next = w->free_tags;
    w->free_tags = head;
    c->tags = NULL;
}

/* Every tag of a cell to the sink with `op` (the chain stays). */
static void sink_tags(struct txstats__window *w, const struct txstats__tchunk *tail, int op)
{
    if (!tail || !w->sink.fn)
        return;
    const struct txstats__tchunk *k = tail;
    do {
        k = k->next;
        for (uint32_t i = 0; i < k->n; i++)
            w->sink.fn(w->sink.ctx, k->slot[i], k->amount[i], op);
    } while (k != tail);
}

void txstats__window_tags(const struct txstats__cell *c,
                          void (*fn)(void *ctx, uint32_t slot, txstats_amount_t amount), void *ctx)
{
    const struct txstats__tchunk *k = c->tags;
    if (!k)
        return;
    do {
        k = k->next;
        for (uint32_t i = 0; i < k->n; i++)
            fn(ctx, k->slot[i], k->amount[i]);
    } while (k != c->tags);
}

static struct txstats__tchunk *tchunk_take(struct txstats__window *w)
{
    struct txstats__tchunk *k = w->free_tags;
    if (k)
        w->free_tags = k->next;
    else if (!(k = txstats__alloc(w->mem, sizeof(*k))))
        return NULL;
    k->n = 0;
    return k;
}

static void tchunk_give(struct txstats__window *w, struct txstats__tchunk *k)
{
    k->next = w->free_tags;
    w->free_tags = k;
}

/* Append a tag; the tail chunk must have room or `fresh` be given. */
static void tag_append(struct txstats__cell *c, struct txstats__tchunk *fresh, uint32_t slot,
                       txstats_amount_t a)
{
    if (fresh) {
        fresh->next = c->tags ? c->tags->next : fresh;
        if (c->tags)
            c->tags->next = fresh;
        c->tags = fresh;
    }
    c->tags->slot[c->tags->n] = slot;
    c->tags->amount[c->tags->n++] = a;
}

/* Permission to retain one more amount: from the window's credit, refilled from the pool. */
static bool take_credit(struct txstats__window *w)
{
    if (w->credit == 0) {
        uint64_t avail = atomic_load_explicit(&w->ret->pool, memory_order_relaxed);
        while (avail > 0) {
            uint64_t take = avail < w->ret->batch ? avail : w->ret->batch;
            if (atomic_compare_exchange_weak_explicit(&w->ret->pool, &avail, avail - take,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                w->credit = take;
                break;
            }
        }
    }
    if (w->credit == 0)
        return false;
    w->credit--;
    return true;
}

/* Retained amounts were dropped: keep a batch of credit, return the rest to the pool. */
static void give_credit(struct txstats__window *w, uint64_t n)
{
    w->credit += n;
    if (w->credit > 2 * w->ret->batch) {
        atomic_fetch_add_explicit(&w->ret->pool, w->credit - w->ret->batch, memory_order_relaxed);
        w->credit = w->ret->batch;
    }
}

static void clear_cell(struct txstats__window *w, int64_t slot)
{
    struct txstats__cell *c = &w->cells[slot];
    release_chain(w, c);
    txstats__dist_release(&w->dist, &c->dtail);
    give_credit(w, c->kept);
    c->count = 0;
    c->kept = 0;
    c->sum = 0;
    w->bits[slot >> 6] &= ~(UINT64_C(1) << (slot & 63));
}

/* A cell's amounts into (or out of) the distribution: the retained ones, then the list. */
static void count_cell(struct txstats__window *w, const struct txstats__cell *c, bool add)
{
    struct txstats__kept_iter it;
    const txstats_amount_t *a;
    uint32_t n;
    txstats__kept_begin(c, &it);
    while ((a = txstats__kept_next(&it, &n)))
        txstats__dist_count_amounts(&w->dist, a, n, add);
    txstats__dist_count(&w->dist, c->dtail, add);
}

static void expire_cell(struct txstats__window *w, int64_t ts)
{
    int64_t slot = ts & w->g->mask;
    struct txstats__cell *c = &w->cells[slot];
    bool active = ts <= w->now;
    if (active) {
        w->count -= c->count;
        w->sum -= c->sum;
        w->kept -= c->kept;
        count_cell(w, c, false);
    }
    settle_tags(w, c, active ? TXSTATS__TAG_UNCOUNT : TXSTATS__TAG_DROP);
    clear_cell(w, slot);
    if (active)
        tree_refresh(w, slot);
}

/* A cell's aggregates into the running totals (its tags are the caller's). */
static void count_totals(struct txstats__window *w, int64_t ts)
{
    int64_t slot = ts & w->g->mask;
    struct txstats__cell *c = &w->cells[slot];
    w->count += c->count;
    w->sum += c->sum;
    w->kept += c->kept;
    count_cell(w, c, true);
    tree_widen(w, slot, (struct txstats__minmax){c->min, c->max});
}

static void activate_cell(struct txstats__window *w, int64_t ts)
{
    count_totals(w, ts);
    sink_tags(w, w->cells[ts & w->g->mask].tags, TXSTATS__TAG_COUNT);
}

void txstats__window_reset(struct txstats__window *w)
{
    int64_t ts = txstats__window_next_used(w, w->now - w->g->ring + 1, w->now);
    /* Scanning a full ring's worth of timestamps visits every slot once. */
    for (; ts != INT64_MAX; ts = txstats__window_next_used(w, ts + 1, w->now)) {
        /* A slot visited below now - window holds a cell ahead of now (the ring is longer than
         * window + skew): its tags were never counted. */
        struct txstats__cell *c = &w->cells[ts & w->g->mask];
        bool active = ts > w->now - w->g->window_ms;
        settle_tags(w, c, active ? TXSTATS__TAG_UNCOUNT : TXSTATS__TAG_DROP);
        clear_cell(w, ts & w->g->mask);
    }
    tree_clear(w);
    txstats__dcounts_zero(&w->dist.k);
    w->count = 0;
    w->kept = 0;
    w->sum = 0;
}

void txstats__window_advance(struct txstats__window *w, int64_t now)
{
    if (now <= w->now)
        return;
    int64_t old = w->now, win = w->g->window_ms, skew = w->g->skew_ms;
    if (now - old >= w->g->ring) {
        /* Everything stored is at most old + skew <= now - window: all of it expires. */
        txstats__window_reset(w);
        w->now = now;
        return;
    }
    int64_t hi = now - win;
    for (int64_t ts = txstats__window_next_used(w, old - win + 1, hi); ts != INT64_MAX;
         ts = txstats__window_next_used(w, ts + 1, hi))
        expire_cell(w, ts);
    w->now = now;
    if (skew == 0)
        return;
    int64_t lo = (old > now - win ? old : now - win) + 1;
    hi = now < old + skew ? now : old + skew;
    for (int64_t ts = txstats__window_next_used(w, lo, hi); ts != INT64_MAX;
         ts = txstats__window_next_used(w, ts + 1, hi))
        activate_cell(w, ts);
}

static struct txstats__chunk *chunk_take(struct txstats__window *w)
{
    struct txstats__chunk *k = w->free_chunks;
    if (k)
        w->free_chunks = k->next;
    else if (!(k = txstats__alloc(w->mem, sizeof(*k))))
        return NULL;
    k->n = 0;
    return k;
}

static void chunk_give(struct txstats__window *w, struct txstats__chunk *k)
{
    k->next = w->free_chunks;
    w->free_chunks = k;
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

int txstats__window_reserve(struct txstats__window *w, txstats_amount_t amount, int64_t ts,
                            uint32_t tag, struct txstats__reservation *r,
                            struct txstats__pending *pend, bool may_keep)
{
    if (ts <= w->now - w->g->window_ms)
        return TXSTATS_EXPIRED;
    struct txstats__cell *c = &w->cells[ts & w->g->mask];
    uint32_t pk = pend ? pend->keep : 0, pd = pend ? pend->dist : 0, pt = pend ? pend->tags : 0;
    r->amount = amount;
    r->ts = ts;
    r->tag = tag;
    r->keep = may_keep && take_credit(w);
    r->fresh = NULL;
    r->dfresh = NULL;
    r->tfresh = NULL;
    if (tag && ((c->tags ? c->tags->n : 0) + pt) % TXSTATS__TAG_CAP == 0 &&
        !(r->tfresh = tchunk_take(w))) {
        give_credit(w, r->keep);
        return TXSTATS_ENOMEM;
    }
    /* The tail as the pending reservations will leave it: full means a fresh chunk. */
    if ((r->keep && ((c->tail ? c->tail->n : 0) + pk) % TXSTATS__CHUNK_CAP == 0 &&
         !(r->fresh = chunk_take(w))) ||
        txstats__dist_reserve(&w->dist, c->dtail, r->keep, pd, &r->dfresh) != TXSTATS_OK) {
        r->tag = 0; /* a failed reserve leaves the tag the caller's */
        txstats__window_cancel(w, r);
        return TXSTATS_ENOMEM;
    }
    if (pend) {
        pend->keep += r->keep;
        pend->dist += !r->keep;
        pend->tags += tag != 0;
    }
    return TXSTATS_OK;
}

void txstats__window_cancel(struct txstats__window *w, const struct txstats__reservation *r)
{
    if (r->tag && w->sink.fn)
        w->sink.fn(w->sink.ctx, r->tag - 1, r->amount, TXSTATS__TAG_DROP);
    if (r->tfresh)
        tchunk_give(w, r->tfresh);
    if (r->fresh)
        chunk_give(w, r->fresh);
    txstats__dist_cancel(&w->dist, r->dfresh);
    if (r->keep)
        give_credit(w, 1);
}

void txstats__window_apply(struct txstats__window *w, const struct txstats__reservation *r)
{
    int64_t slot = r->ts & w->g->mask;
    struct txstats__cell *c = &w->cells[slot];
    txstats_amount_t amount = r->amount;
    if (r->keep)
        chain_append(c, r->fresh, amount);
    txstats__dist_push(&w->dist, &c->dtail, r->dfresh, amount, r->keep, r->ts <= w->now);
    if (c->count++ == 0) {
        c->min = c->max = amount;
        w->bits[slot >> 6] |= UINT64_C(1) << (slot & 63);
    } else {
        c->min = amount < c->min ? amount : c->min;
        c->max = amount > c->max ? amount : c->max;
    }
    c->sum += amount;
    if (r->tag)
        tag_append(c, r->tfresh, r->tag - 1, amount);
    if (r->ts <= w->now) {
        w->count++;
        w->sum += amount;
        w->kept += r->keep;
        tree_widen(w, slot, (struct txstats__minmax){amount, amount});
        if (r->tag && w->sink.fn)
            w->sink.fn(w->sink.ctx, r->tag - 1, amount, TXSTATS__TAG_COUNT);
    }
}

int txstats__window_stage_kept(struct txstats__window *w, struct txstats__stage *st,
                               txstats_amount_t amount)
{
    struct txstats__cell *c = &st->c;
    if (!take_credit(w))
        return txstats__window_stage_buckets(w, st, txstats__dist_bucket(amount), 1);
    struct txstats__chunk *fresh = NULL;
    if ((!c->tail || c->tail->n == TXSTATS__CHUNK_CAP) && !(fresh = chunk_take(w))) {
        give_credit(w, 1);
        return TXSTATS_ENOMEM;
    }
    chain_append(c, fresh, amount);
    c->count++;
    return TXSTATS_OK;
}

int txstats__window_stage_buckets(struct txstats__window *w, struct txstats__stage *st,
                                  uint32_t bucket, uint64_t n)
{
    int rc = txstats__dist_stage(&w->dist, &st->c.dtail, bucket, n);
    if (rc == TXSTATS_OK)
        st->c.count += n;
    return rc;
}

int txstats__window_stage_tag(struct txstats__window *w, struct txstats__stage *st, uint32_t slot,
                              txstats_amount_t amount)
{
    struct txstats__tchunk *fresh = NULL;
    if ((!st->c.tags || st->c.tags->n == TXSTATS__TAG_CAP) && !(fresh = tchunk_take(w))) {
        if (w->sink.fn)
            w->sink.fn(w->sink.ctx, slot, amount, TXSTATS__TAG_DROP);
        return TXSTATS_ENOMEM;
    }
    tag_append(&st->c, fresh, slot, amount);
    return TXSTATS_OK;
}

/* The staged tags' chain after the cell's (both circular). */
static void splice_tags(struct txstats__cell *c, struct txstats__cell *s)
{
    if (!s->tags)
        return;
    if (c->tags) {
        struct txstats__tchunk *head = c->tags->next;
        c->tags->next = s->tags->next;
        s->tags->next = head;
    }
    c->tags = s->tags;
}

/* The staged chain after the cell's own (both circular), and the staged bucket list before the
 * cell's (both end at their oldest chunk). */
static void splice(struct txstats__cell *c, struct txstats__cell *s)
{
    if (s->tail) {
        if (c->tail) {
            struct txstats__chunk *head = c->tail->next;
            c->tail->next = s->tail->next;
            s->tail->next = head;
        }
        c->tail = s->tail;
    }
    if (s->dtail) {
        struct txstats__dchunk *k = s->dtail;
        while (k->next)
            k = k->next;
        k->next = c->dtail;
        c->dtail = s->dtail;
    }
    c->kept += s->kept;
}

void txstats__window_stage_close(struct txstats__window *w, int64_t ts, struct txstats__stage *st,
                                 const struct txstats__cell *agg)
{
    int64_t slot = ts & w->g->mask;
    struct txstats__cell *c = &w->cells[slot];
    bool active = ts <= w->now;
    if (c->count && active) { /* uncounted, then counted again whole */
        w->count -= c->count;
        w->sum -= c->sum;
        w->kept -= c->kept;
        count_cell(w, c, false);
    }
    if (c->count == 0) {
        c->min = agg->min;
        c->max = agg->max;
    }
    c->min = agg->min < c->min ? agg->min : c->min;
    c->max = agg->max > c->max ? agg->max : c->max;
    c->count += agg->count;
    c->sum += agg->sum;
    if (active) /* only the staged tags: the cell's own were counted already */
        sink_tags(w, st->c.tags, TXSTATS__TAG_COUNT);
    splice(c, &st->c);
    splice_tags(c, &st->c);
    memset(st, 0, sizeof(*st));
    w->bits[slot >> 6] |= UINT64_C(1) << (slot & 63);
    if (active)
        count_totals(w, ts);
}

void txstats__window_stage_drop(struct txstats__window *w, struct txstats__stage *st)
{
    settle_tags(w, &st->c, TXSTATS__TAG_DROP);
    release_chain(w, &st->c);
    txstats__dist_release(&w->dist, &st->c.dtail);
    give_credit(w, st->c.kept);
    memset(st, 0, sizeof(*st));
}

void txstats__window_return_credit(struct txstats__window *w)
{
    atomic_fetch_add_explicit(&w->ret->pool, w->credit, memory_order_relaxed);
    w->credit = 0;
}

bool txstats__window_used(const struct txstats__window *w, int64_t ts)
{
    return ts > w->now - w->g->window_ms && ts <= w->now + w->g->skew_ms &&
           txstats__window_next_used(w, ts, ts) == ts;
}

void txstats__window_adopt_chunks(struct txstats__window *w, struct txstats__chunk *pool)
{
    while (pool) {
        struct txstats__chunk *k = pool;
        pool = k->next;
        chunk_give(w, k);
    }
}

int txstats__chunks_alloc(const struct txstats__mem *mem, uint64_t n, struct txstats__chunk **pool)
{
    *pool = NULL;
    for (uint64_t i = 0; i < n; i++) {
        struct txstats__chunk *k = txstats__alloc(mem, sizeof(*k));
        if (!k) {
            txstats__chunks_free(mem, *pool);
            *pool = NULL;
            return TXSTATS_ENOMEM;
        }
        k->next = *pool;
        *pool = k;
    }
    return TXSTATS_OK;
}

void txstats__chunks_free(const struct txstats__mem *mem, struct txstats__chunk *pool)
{
    while (pool) {
        struct txstats__chunk *k = pool;
        pool = k->next;
        txstats__free(mem, k);
    }
}

void txstats__kept_begin(const struct txstats__cell *c, struct txstats__kept_iter *it)
{
    it->tail = c->tail;
    it->next = c->tail ? c->tail->next : NULL;
}

const txstats_amount_t *txstats__kept_next(struct txstats__kept_iter *it, uint32_t *n)
{
    const struct txstats__chunk *k = it->next;
    if (!k)
        return NULL;
    it->next = k == it->tail ? NULL : k->next;
    *n = k->n;
    return k->amounts;
}

struct txstats__minmax txstats__window_extremes(const struct txstats__window *w)
{
    return w->tree[1];
}

int txstats__window_init(struct txstats__window *w, const struct txstats__geom *g,
                         const struct txstats__mem *mem, struct txstats__retention *ret)
{
    memset(w, 0, sizeof(*w));
    w->g = g;
    w->mem = mem;
    w->ret = ret;
    w->now = -4 * TXSTATS__CLOCK_LIMIT;
    w->cells = txstats__calloc(mem, (size_t)g->ring, sizeof(*w->cells));
    w->tree = txstats__alloc(mem, (size_t)g->ring * sizeof(*w->tree));
    w->bits = txstats__calloc(mem, (size_t)g->ring / 64, sizeof(uint64_t));
    if (!w->cells || !w->tree || !w->bits || txstats__dist_init(&w->dist, mem) != TXSTATS_OK) {
        txstats__free(mem, w->cells);
        txstats__free(mem, w->tree);
        txstats__free(mem, w->bits);
        return TXSTATS_ENOMEM;
    }
    tree_clear(w);
    return TXSTATS_OK;
}

void txstats__window_fini(struct txstats__window *w)
{
    w->sink.fn = NULL; /* the tags' entities go with their table */
    txstats__window_reset(w);
    while (w->free_tags) {
        struct txstats__tchunk *k = w->free_tags;
        w->free_tags = k->next;
        txstats__free(w->mem, k);
    }
    txstats__chunks_free(w->mem, w->free_chunks);
    w->free_chunks = NULL;
    txstats__free(w->mem, w->cells);
    txstats__free(w->mem, w->tree);
    txstats__free(w->mem, w->bits);
    txstats__dist_fini(&w->dist);
}
