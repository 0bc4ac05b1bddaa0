/* SPDX-License-Identifier: MIT */
/*
 * Entities asked about: one entity's statistics (its home shard, O(1)), the ranking of the top
 * entities (every shard scanned under its own lock, a heap of the best `cap` in the caller's
 * buffer), and the counters.
 */
#include <string.h>

#include "internal.h"

int txstats_entity_stats_span(txstats_t *t, unsigned span, const void *entity, size_t entity_len,
                              txstats_summary_t *out)
{
    if (!t || !entity || !out || entity_len == 0 || entity_len > TXSTATS_MAX_ENTITY_BYTES ||
        span >= t->geom.nspans)
        return TXSTATS_EINVAL;
    uint64_t hash;
    memset(out, 0, sizeof(*out));
    int64_t now = txstats__now(t);
    out->now_ms = now;
    struct txstats__shard *s = txstats__lock_entity(t, entity, entity_len, &hash);
    txstats__window_advance(&s->w, now);
    uint32_t slot;
    if (txstats__ent_find(&s->ents, entity, entity_len, hash, &slot))
        txstats__ent_summary(txstats__ent_at(&s->ents, slot), span, out);
    pthread_mutex_unlock(&s->lock);
    return TXSTATS_OK;
}

int txstats_entity_stats(txstats_t *t, const void *entity, size_t entity_len,
                         txstats_summary_t *out)
{
    return txstats_entity_stats_span(t, 0, entity, entity_len, out);
}

/* The ranking's order: <0 when a ranks below b (smaller value; on a tie, the larger key). */
static int rank_cmp(txstats_top_by_t by, const txstats_top_entry_t *a, const txstats_top_entry_t *b)
{
    if (by == TXSTATS_TOP_COUNT) {
        if (a->stats.count != b->stats.count)
            return a->stats.count < b->stats.count ? -1 : 1;
    } else if (a->stats.sum_hi != b->stats.sum_hi || a->stats.sum_lo != b->stats.sum_lo) {
        if (a->stats.sum_hi != b->stats.sum_hi)
            return a->stats.sum_hi < b->stats.sum_hi ? -1 : 1;
        return a->stats.sum_lo < b->stats.sum_lo ? -1 : 1;
    }
    size_t n = a->entity_len < b->entity_len ? a->entity_len : b->entity_len;
    int c = memcmp(a->entity, b->entity, n);
    if (c == 0)
        c = a->entity_len < b->entity_len ? -1 : a->entity_len > b->entity_len;
    return -c; /* the smaller key ranks higher */
}

struct heap {
    txstats_top_entry_t *v;
    size_t n, cap;
    txstats_top_by_t by;
    unsigned span;
};

static void swap(txstats_top_entry_t *a, txstats_top_entry_t *b)
{
    txstats_top_entry_t x = *a;
    *a = *b;
    *b = x;
}

/* A min-heap: v[0] ranks lowest. */
static void sift_down(struct heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && rank_cmp(h->by, &h->v[l], &h->v[m]) < 0)
            m = l;
        if (r < h->n && rank_cmp(h->by, &h->v[r], &h->v[m]) < 0)
            m = r;
        if (m == i)
            return;
        swap(&h->v[i], &h->v[m]);
        i = m;
    }
}

static void sift_up(struct heap *h, size_t i)
{
    while (i > 0 && rank_cmp(h->by, &h->v[i], &h->v[(i - 1) / 2]) < 0) {
        swap(&h->v[i], &h->v[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

static void entry_of(const struct txstats__entity *en, unsigned span, txstats_top_entry_t *e,
                     int64_t now)
{
    memset(&e->stats, 0, sizeof(e->stats));
    txstats__ent_summary(en, span, &e->stats);
    e->stats.now_ms = now;
    e->entity_len = en->key_len;
    memcpy(e->entity, txstats__ent_key(en), en->key_len);
}

/* Whether an entity may enter a full heap: cheap value tests before the whole comparison. */
/* Whether an entity ranks above the lowest of a full heap, from its slot alone: its value, and
 * on a tie its key (the smaller first). Most entities fail here without a copy. */
static bool may_enter(const struct heap *h, const struct txstats__entity *en)
{
    const txstats_top_entry_t *low = &h->v[0];
    const struct txstats__ent_span *sp = txstats__ent_span(en, h->span);
    if (h->by == TXSTATS_TOP_COUNT && sp->count != low->stats.count)
        return sp->count > low->stats.count;
    if (h->by == TXSTATS_TOP_SUM &&
        (sp->sum_hi != low->stats.sum_hi || sp->sum_lo != low->stats.sum_lo))
        return sp->sum_hi > low->stats.sum_hi ||
               (sp->sum_hi == low->stats.sum_hi && sp->sum_lo > low->stats.sum_lo);
    size_t n = en->key_len < low->entity_len ? en->key_len : low->entity_len;
    int c = memcmp(txstats__ent_key(en), low->entity, n);
    return c < 0 || (c == 0 && en->key_len < low->entity_len);
}

static void offer(struct heap *h, const struct txstats__entity *en, int64_t now)
{
    if (h->n < h->cap) {
        entry_of(en, h->span, &h->v[h->n], now);
        sift_up(h, h->n++);
        return;
    }
    if (!may_enter(h, en))
        return;
    entry_of(en, h->span, &h->v[0], now);
    sift_down(h, 0);
}

static void scan_shard(struct txstats__shard *s, struct heap *h, int64_t now)
{
    pthread_mutex_lock(&s->lock);
    txstats__window_advance(&s->w, now);
    uint32_t end = txstats__ent_slots(&s->ents);
    for (uint32_t slot = 0; slot < end; slot++) {
        const struct txstats__entity *en = txstats__ent_at(&s->ents, slot);
        if (en->key_len && txstats__ent_span(en, h->span)->count > 0)
            offer(h, en, now);
    }
    pthread_mutex_unlock(&s->lock);
}

int txstats_top_span(txstats_t *t, unsigned span, txstats_top_by_t by, txstats_top_entry_t *buf,
                     size_t cap, size_t *n)
{
    if (!t || !n || (!buf && cap > 0) || (by != TXSTATS_TOP_SUM && by != TXSTATS_TOP_COUNT) ||
        span >= t->geom.nspans)
        return TXSTATS_EINVAL;
    struct heap h = {buf, 0, cap, by, span};
    *n = 0;
    if (cap == 0)
        return TXSTATS_OK;
    int64_t now = txstats__now(t);
    for (unsigned i = 0; i < t->nshards; i++)
        scan_shard(&t->shards[i], &h, now);
    size_t found = h.n;
    /* Heap sort: the lowest goes to the end each round, leaving the best first. */
    for (size_t k = found; k > 1; k--) {
        swap(&h.v[0], &h.v[k - 1]);
        h.n = k - 1;
        sift_down(&h, 0);
    }
    *n = found;
    return TXSTATS_OK;
}

int txstats_top(txstats_t *t, txstats_top_by_t by, txstats_top_entry_t *buf, size_t cap, size_t *n)
{
    return txstats_top_span(t, 0, by, buf, cap, n);
}

int txstats_entity_info(txstats_t *t, txstats_entity_info_t *out)
{
    if (!t || !out)
        return TXSTATS_EINVAL;
    memset(out, 0, sizeof(*out));
    txstats__advance_all(t, txstats__now(t)); /* entities whose last transaction left: freed */
    out->active = atomic_load_explicit(&t->ents.active, memory_order_relaxed);
    out->limit = t->ents.cap;
    out->refused = atomic_load_explicit(&t->ents.refused, memory_order_relaxed);
    return TXSTATS_OK;
}
