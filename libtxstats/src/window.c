/* SPDX-License-Identifier: MIT */
/*
 * The window of one shard: its cells (timeindex.h: memory that follows the milliseconds holding
 * transactions), and what each of its spans counts.
 *
 * - Each cell holds the exact count, 128-bit sum, min and max of its millisecond, the chain of
 *   retained amounts, the buckets of the others, and the tags of keyed transactions.
 * - A cell is *active* when its timestamp is <= the window's `now`. Span s counts the active
 *   cells with ts > now - spans[s]: its running count, sum and distribution. Cells ahead of `now`
 *   (accepted thanks to max_skew_ms) wait to be activated.
 * - Advancing `now` activates the cells the clock reached (counted in every span), uncounts in
 *   each span the cells that left it, and frees those that left the longest: a cell is visited
 *   once per span, never per transaction, and never for milliseconds without a cell.
 * - Min and max of a span come from the index's summaries of the active cells.
 *
 * A leaf: no lock (the caller serialises), no journal, no file; only the allocator and the index.
 */
#include <stdlib.h>
#include <string.h>

#include "window.h"

const struct txstats__cell *txstats__window_cell(const struct txstats__window *w, int64_t ts)
{
    return txstats__ti_peek(&w->ti, ts);
}

int64_t txstats__window_next_used(const struct txstats__window *w, int64_t from, int64_t to)
{
    return txstats__ti_next(&w->ti, from, to);
}

static bool in_span(const struct txstats__window *w, unsigned s, int64_t ts)
{
    return ts <= w->now && ts > w->now - w->g->spans[s];
}

static void release_tags(struct txstats__window *w, struct txstats__cell *c);
static void chunk_give(struct txstats__window *w, struct txstats__chunk *k);

static void sink(struct txstats__window *w, uint32_t slot, txstats_amount_t a, int op, unsigned s)
{
    if (w->sink.fn)
        w->sink.fn(w->sink.ctx, slot, a, op, s);
}

/* Every tag of a chain (tail: its newest chunk) to the sink. */
static void sink_tags(struct txstats__window *w, const struct txstats__tchunk *tail, int op,
                      unsigned s)
{
    if (!tail || !w->sink.fn)
        return;
    const struct txstats__tchunk *k = tail;
    do {
        k = k->next;
        for (uint32_t i = 0; i < k->n; i++)
            w->sink.fn(w->sink.ctx, k->slot[i], k->amount[i], op, s);
    } while (k != tail);
}

/* A cell's tags leave: uncounted in the spans that hold ts (the longest last), or dropped when the
 * cell was never active. Its chunks go to the free list. */
static void settle_tags(struct txstats__window *w, struct txstats__cell *c, int64_t ts)
{
    struct txstats__tchunk *tail = c->tags;
    if (!tail)
        return;
    if (ts > w->now) {
        sink_tags(w, tail, TXSTATS__TAG_DROP, 0);
    } else {
        for (unsigned s = 0; s < w->g->nspans; s++)
            if (s != w->g->longest && in_span(w, s, ts))
                sink_tags(w, tail, TXSTATS__TAG_UNCOUNT, s);
        sink_tags(w, tail, TXSTATS__TAG_UNCOUNT, w->g->longest);
    }
    release_tags(w, c);
}

static struct txstats__tchunk *tchunk_take(struct txstats__window *w)
{
    struct txstats__tchunk *k = w->free_tags;
    if (k) {
        w->free_tags = k->next;
        w->nfree_tags--;
    } else if (!(k = txstats__alloc(w->mem, sizeof(*k)))) {
        return NULL;
    }
    k->n = 0;
    return k;
}

/* A chunk to the free list, or freed once the list holds TXSTATS__FREE_MAX: memory goes back as
 * traffic falls. */
static void tchunk_give(struct txstats__window *w, struct txstats__tchunk *k)
{
    if (w->nfree_tags >= TXSTATS__FREE_MAX) {
        txstats__free(w->mem, k);
        return;
    }
    k->next = w->free_tags;
    w->free_tags = k;
    w->nfree_tags++;
}

/* A cell's tag chunks to the free list (or freed). */
static void release_tags(struct txstats__window *w, struct txstats__cell *c)
{
    struct txstats__tchunk *tail = c->tags;
    if (!tail)
        return;
    struct txstats__tchunk *k = tail->next;
    tail->next = NULL;
    while (k) {
        struct txstats__tchunk *next = k->next;
        tchunk_give(w, k);
        k = next;
    }
    c->tags = NULL;
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

static void release_chain(struct txstats__window *w, struct txstats__cell *c)
{
    if (!c->tail)
        return;
    struct txstats__chunk *k = c->tail->next;
    c->tail->next = NULL;
    while (k) {
        struct txstats__chunk *next = k->next;
        chunk_give(w, k);
        k = next;
    }
    c->tail = NULL;
}
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
static void give_credit(struct txstats__window *w, uint64_t n)
{
    w->credit += n;
    if (w->credit > 2 * w->ret->batch) {
        atomic_fetch_add_explicit(&w->ret->pool, w->credit - w->ret->batch, memory_order_relaxed);
        w->credit = w->ret->batch;
    }
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
int txstats__window_stage_tag(struct txstats__window *w, struct txstats__stage *st, int64_t ts,
                              uint32_t slot, txstats_amount_t amount)
{
    struct txstats__tchunk *fresh = NULL;
    if ((!st->c.tags || st->c.tags->n == TXSTATS__TAG_CAP) && !(fresh = tchunk_take(w))) {
        sink(w, slot, amount, TXSTATS__TAG_DROP, 0);
        return TXSTATS_ENOMEM;
    }
    tag_append(&st->c, fresh, slot, amount);
    st->ts = ts;
    if (ts > w->now)
        return TXSTATS_OK;
    /* Active: counted now, so that an entity never holds more than one reservation for it */
    sink(w, slot, amount, TXSTATS__TAG_COUNT, 0);
    for (unsigned s = 0; s < w->g->nspans; s++)
        if (!in_span(w, s, ts))
            sink(w, slot, amount, TXSTATS__TAG_UNCOUNT, s);
    return TXSTATS_OK;
}
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
void txstats__window_stage_drop(struct txstats__window *w, struct txstats__stage *st)
{
    settle_tags(w, &st->c, st->c.tags ? st->ts : INT64_MAX); /* counted as they came */
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

/* A cell's amounts into (or out of) span s: totals and distribution. */
static void span_cell(struct txstats__window *w, unsigned s, const struct txstats__cell *c,
                      bool add)
{
    struct txstats__span *sp = &w->sp[s];
    sp->count += add ? c->count : -c->count;
    sp->kept += add ? c->kept : -c->kept;
    sp->sum += add ? c->sum : -c->sum;
    struct txstats__kept_iter it;
    const txstats_amount_t *a;
    uint32_t n;
    txstats__kept_begin(c, &it);
    while ((a = txstats__kept_next(&it, &n)))
        txstats__dcounts_amounts(&sp->k, a, n, add);
    txstats__dcounts_list(&sp->k, c->dtail, add);
}

/* A cell at the window's lower edge (or, at a reset, every cell): its chains back to the free
 * lists, its budget back, the cell out of the index. */
static void drop_cell(struct txstats__window *w, int64_t ts, struct txstats__cell *c)
{
    release_chain(w, c);
    txstats__dist_release(&w->dist, &c->dtail);
    give_credit(w, c->kept);
    txstats__ti_remove(&w->ti, ts, w->now, true);
}

/* A cell the clock reached: counted in every span, its tags too (the spans it is already out of
 * uncount it right after, in the same advance: ts > old - span for every span). */
static void activate_cell(struct txstats__window *w, int64_t ts)
{
    struct txstats__cell *c = txstats__ti_get(&w->ti, ts);
    for (unsigned s = 0; s < w->g->nspans; s++)
        span_cell(w, s, c, true);
    txstats__ti_widen(&w->ti, ts, (struct txstats__minmax){c->min, c->max});
    sink_tags(w, c->tags, TXSTATS__TAG_COUNT, 0);
}

/* Span s (not the longest) lost the cells of (from, to]. */
static void leave_span(struct txstats__window *w, unsigned s, int64_t from, int64_t to)
{
    for (int64_t ts = txstats__ti_next(&w->ti, from + 1, to); ts != INT64_MAX;
         ts = txstats__ti_next(&w->ti, ts + 1, to)) {
        struct txstats__cell *c = txstats__ti_get(&w->ti, ts);
        span_cell(w, s, c, false);
        sink_tags(w, c->tags, TXSTATS__TAG_UNCOUNT, s);
    }
}

/* The cells of (from, to] left the longest span: uncounted and freed. */
static void leave_window(struct txstats__window *w, int64_t from, int64_t to)
{
    unsigned s = w->g->longest;
    for (int64_t ts = txstats__ti_next(&w->ti, from + 1, to); ts != INT64_MAX;
         ts = txstats__ti_next(&w->ti, ts + 1, to)) {
        struct txstats__cell *c = txstats__ti_get(&w->ti, ts);
        span_cell(w, s, c, false);
        sink_tags(w, c->tags, TXSTATS__TAG_UNCOUNT, s);
        release_tags(w, c);
        drop_cell(w, ts, c);
    }
}

void txstats__window_advance(struct txstats__window *w, int64_t now)
{
    if (now <= w->now)
        return;
    int64_t old = w->now, skew = w->g->skew_ms;
    w->now = now;
    if (skew > 0) {
        int64_t hi = now < old + skew ? now : old + skew;
        for (int64_t ts = txstats__ti_next(&w->ti, old + 1, hi); ts != INT64_MAX;
             ts = txstats__ti_next(&w->ti, ts + 1, hi))
            activate_cell(w, ts);
    }
    for (unsigned s = 0; s < w->g->nspans; s++)
        if (s != w->g->longest)
            leave_span(w, s, old - w->g->spans[s], now - w->g->spans[s]);
    leave_window(w, old - w->g->window_ms, now - w->g->window_ms);
}

void txstats__window_reset(struct txstats__window *w)
{
    int64_t lo = w->now - w->g->window_ms + 1, hi = w->now + w->g->skew_ms;
    for (int64_t ts = txstats__ti_next(&w->ti, lo, hi); ts != INT64_MAX;
         ts = txstats__ti_next(&w->ti, ts + 1, hi)) {
        struct txstats__cell *c = txstats__ti_get(&w->ti, ts);
        settle_tags(w, c, ts);
        drop_cell(w, ts, c);
    }
    for (unsigned s = 0; s < w->g->nspans; s++) {
        txstats__dcounts_zero(&w->sp[s].k);
        w->sp[s].count = w->sp[s].kept = 0;
        w->sp[s].sum = 0;
    }
}

/* Remove a cell a cancelled reservation made, when nothing came into it. */
static void unmake(struct txstats__window *w, const struct txstats__reservation *r)
{
    struct txstats__cell *c = r->made ? txstats__ti_find(&w->ti, r->ts) : NULL;
    if (c && c->count == 0)
        txstats__ti_remove(&w->ti, r->ts, w->now, false);
}

/* The chunks a reservation needs in cell c, with `pend` reserved before it. */
static int reserve_chunks(struct txstats__window *w, const struct txstats__cell *c,
                          struct txstats__reservation *r, const struct txstats__pending *pend)
{
    uint32_t pk = pend ? pend->keep : 0, pd = pend ? pend->dist : 0, pt = pend ? pend->tags : 0;
    if (r->tag && ((c->tags ? c->tags->n : 0) + pt) % TXSTATS__TAG_CAP == 0 &&
        !(r->tfresh = tchunk_take(w)))
        return TXSTATS_ENOMEM;
    /* The tail as the pending reservations will leave it: full means a fresh chunk. */
    if (r->keep && ((c->tail ? c->tail->n : 0) + pk) % TXSTATS__CHUNK_CAP == 0 &&
        !(r->fresh = chunk_take(w)))
        return TXSTATS_ENOMEM;
    return txstats__dist_reserve(&w->dist, c->dtail, r->keep, pd, &r->dfresh);
}

int txstats__window_reserve(struct txstats__window *w, txstats_amount_t amount, int64_t ts,
                            uint32_t tag, struct txstats__reservation *r,
                            struct txstats__pending *pend, bool may_keep)
{
    if (ts <= w->now - w->g->window_ms)
        return TXSTATS_EXPIRED;
    struct txstats__cell *c = txstats__ti_find(&w->ti, ts);
    *r = (struct txstats__reservation){.amount = amount, .ts = ts, .tag = tag, .made = !c};
    if (!c && txstats__ti_make(&w->ti, ts, &c) != TXSTATS_OK)
        return TXSTATS_ENOMEM;
    r->keep = may_keep && take_credit(w);
    if (reserve_chunks(w, c, r, pend) != TXSTATS_OK) {
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
    if (r->tag)
        sink(w, r->tag - 1, r->amount, TXSTATS__TAG_DROP, 0);
    if (r->tfresh)
        tchunk_give(w, r->tfresh);
    if (r->fresh)
        chunk_give(w, r->fresh);
    txstats__dist_cancel(&w->dist, r->dfresh);
    if (r->keep)
        give_credit(w, 1);
    unmake(w, r);
}

/* An applied amount into the spans that hold its active cell. */
static void count_amount(struct txstats__window *w, const struct txstats__reservation *r)
{
    for (unsigned s = 0; s < w->g->nspans; s++) {
        if (!in_span(w, s, r->ts))
            continue;
        struct txstats__span *sp = &w->sp[s];
        sp->count++;
        sp->sum += r->amount;
        sp->kept += r->keep;
        txstats__dcounts_amount(&sp->k, r->amount, true);
    }
    txstats__ti_widen(&w->ti, r->ts, (struct txstats__minmax){r->amount, r->amount});
}

void txstats__window_apply(struct txstats__window *w, const struct txstats__reservation *r)
{
    struct txstats__cell *c = txstats__ti_find(&w->ti, r->ts);
    txstats_amount_t amount = r->amount;
    if (r->keep)
        chain_append(c, r->fresh, amount);
    txstats__dist_push(&w->dist, &c->dtail, r->dfresh, amount, r->keep);
    if (c->count++ == 0) {
        c->min = c->max = amount;
    } else {
        c->min = amount < c->min ? amount : c->min;
        c->max = amount > c->max ? amount : c->max;
    }
    c->sum += amount;
    if (r->tag)
        tag_append(c, r->tfresh, r->tag - 1, amount);
    if (r->ts > w->now)
        return;
    count_amount(w, r);
    if (r->tag) {
        sink(w, r->tag - 1, amount, TXSTATS__TAG_COUNT, 0);
        for (unsigned s = 0; s < w->g->nspans; s++)
            if (!in_span(w, s, r->ts))
                sink(w, r->tag - 1, amount, TXSTATS__TAG_UNCOUNT, s);
    }
}

struct txstats__minmax txstats__window_extremes(const struct txstats__window *w, unsigned span)
{
    return txstats__ti_extremes(&w->ti, txstats__window_lo(w, span), w->now);
}

/* The staged part of a cell into the spans that hold it (its aggregates `agg`). */
static void count_stage(struct txstats__window *w, int64_t ts, const struct txstats__cell *st,
                        const struct txstats__cell *agg)
{
    struct txstats__cell part = *st;
    part.count = agg->count;
    part.sum = agg->sum;
    for (unsigned s = 0; s < w->g->nspans; s++)
        if (in_span(w, s, ts))
            span_cell(w, s, &part, true);
    txstats__ti_widen(&w->ti, ts, (struct txstats__minmax){agg->min, agg->max});
}

int txstats__window_stage_close(struct txstats__window *w, int64_t ts, struct txstats__stage *st,
                                const struct txstats__cell *agg)
{
    struct txstats__cell *c;
    if (txstats__ti_make(&w->ti, ts, &c) != TXSTATS_OK) {
        txstats__window_stage_drop(w, st);
        return TXSTATS_ENOMEM;
    }
    if (ts <= w->now)
        count_stage(w, ts, &st->c, agg);
    if (c->count == 0) {
        c->min = agg->min;
        c->max = agg->max;
    }
    c->min = agg->min < c->min ? agg->min : c->min;
    c->max = agg->max > c->max ? agg->max : c->max;
    c->count += agg->count;
    c->sum += agg->sum;
    splice(c, &st->c);
    splice_tags(c, &st->c);
    memset(st, 0, sizeof(*st));
    return TXSTATS_OK;
}

bool txstats__window_used(const struct txstats__window *w, int64_t ts)
{
    const struct txstats__cell *c;
    return ts > w->now - w->g->window_ms && ts <= w->now + w->g->skew_ms &&
           (c = txstats__ti_peek(&w->ti, ts)) && c->count > 0;
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

static void fini_spans(struct txstats__window *w, unsigned n)
{
    for (unsigned s = 0; s < n; s++)
        txstats__dcounts_fini(&w->sp[s].k, w->mem);
}

int txstats__window_init(struct txstats__window *w, const struct txstats__geom *g,
                         const struct txstats__mem *mem, struct txstats__retention *ret)
{
    memset(w, 0, sizeof(*w));
    w->g = g;
    w->mem = mem;
    w->ret = ret;
    w->now = -4 * TXSTATS__CLOCK_LIMIT;
    if (txstats__ti_init(&w->ti, mem, g->window_ms + g->skew_ms) != TXSTATS_OK)
        return TXSTATS_ENOMEM;
    for (unsigned s = 0; s < g->nspans; s++) {
        if (txstats__dcounts_init(&w->sp[s].k, mem) != TXSTATS_OK) {
            fini_spans(w, s);
            txstats__ti_fini(&w->ti);
            return TXSTATS_ENOMEM;
        }
    }
    txstats__dist_init(&w->dist, mem);
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
    txstats__ti_fini(&w->ti);
    fini_spans(w, w->g->nspans);
    txstats__dist_fini(&w->dist);
}
