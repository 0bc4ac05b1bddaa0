/* SPDX-License-Identifier: MIT */
/*
 * Distribution queries over an instance: quantiles straight from the shards' bucket counts, and
 * txstats_dist_collect() into a combinable txstats_dist_t. Quantiles lock every shard, like
 * txstats_stats(), to describe one moment; a collection takes one shard at a time (scrapes).
 */
#include <string.h>

#include "internal.h"

/* Every shard advanced to now, its extremes merged; all locks held. */
static int64_t advance_all(txstats_t *t, unsigned span, struct txstats__minmax *mm)
{
    int64_t now = txstats__now(t);
    *mm = (struct txstats__minmax){INT64_MAX, INT64_MIN};
    for (unsigned i = 0; i < t->nshards; i++) {
        struct txstats__window *w = &t->shards[i].w;
        txstats__window_advance(w, now);
        struct txstats__minmax e = txstats__window_extremes(w, span);
        mm->min = e.min < mm->min ? e.min : mm->min;
        mm->max = e.max > mm->max ? e.max : mm->max;
    }
    return now;
}

int txstats_quantiles_span(txstats_t *t, unsigned span, const uint32_t *q_ppb, size_t n,
                           txstats_amount_t *out, uint64_t *count)
{
    if (!t || (n && (!q_ppb || !out)) || span >= t->geom.nspans)
        return TXSTATS_EINVAL;
    const struct txstats__dcounts *parts[TXSTATS__MAX_SHARDS];
    struct txstats__minmax mm;
    txstats__lock_all(t);
    advance_all(t, span, &mm);
    uint64_t total = 0;
    for (unsigned i = 0; i < t->nshards; i++) {
        parts[i] = &t->shards[i].w.sp[span].k;
        total += parts[i]->total;
    }
    int rc = txstats__quantiles(parts, t->nshards, mm.min, mm.max, q_ppb, n, out);
    txstats__unlock_all(t);
    if (count)
        *count = total;
    return rc;
}

int txstats_quantiles(txstats_t *t, const uint32_t *q_ppb, size_t n, txstats_amount_t *out,
                      uint64_t *count)
{
    return txstats_quantiles_span(t, 0, q_ppb, n, out, count);
}

int txstats_dist_collect_span(txstats_t *t, unsigned span, txstats_dist_t *d)
{
    if (!t || !d || span >= t->geom.nspans)
        return TXSTATS_EINVAL;
    struct txstats__minmax mm = {INT64_MAX, INT64_MIN};
    uint64_t total = 0;
    int64_t now = txstats__now(t);
    for (unsigned i = 0; i < t->nshards; i++) { /* one lock at a time: writers elsewhere go on */
        struct txstats__shard *s = &t->shards[i];
        pthread_mutex_lock(&s->lock);
        txstats__window_advance(&s->w, now);
        struct txstats__minmax e = txstats__window_extremes(&s->w, span);
        txstats__dcounts_merge(&d->k, &s->w.sp[span].k);
        total += s->w.sp[span].k.total;
        pthread_mutex_unlock(&s->lock);
        mm.min = e.min < mm.min ? e.min : mm.min;
        mm.max = e.max > mm.max ? e.max : mm.max;
    }
    if (total) {
        d->min = mm.min < d->min ? mm.min : d->min;
        d->max = mm.max > d->max ? mm.max : d->max;
    }
    return TXSTATS_OK;
}

int txstats_dist_collect(txstats_t *t, txstats_dist_t *d)
{
    return txstats_dist_collect_span(t, 0, d);
}
