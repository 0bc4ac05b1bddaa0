/* SPDX-License-Identifier: MIT */
/*
 * Distribution queries over an instance: quantiles straight from the shards' bucket counts, and
 * txstats_dist_collect() into a combinable txstats_dist_t. Both lock every shard, like
 * txstats_stats(), so they describe one moment.
 */
#include <string.h>

#include "internal.h"

/* Every shard advanced to now, its extremes merged; all locks held. */
static int64_t advance_all(txstats_t *t, struct txstats__minmax *mm)
{
    int64_t now = txstats__now(t);
    *mm = (struct txstats__minmax){INT64_MAX, INT64_MIN};
    for (unsigned i = 0; i < t->nshards; i++) {
        struct txstats__window *w = &t->shards[i].w;
        txstats__window_advance(w, now);
        struct txstats__minmax e = txstats__window_extremes(w);
        mm->min = e.min < mm->min ? e.min : mm->min;
        mm->max = e.max > mm->max ? e.max : mm->max;
    }
    return now;
}

int txstats_quantiles(txstats_t *t, const uint32_t *q_ppb, size_t n, txstats_amount_t *out,
                      uint64_t *count)
{
    if (!t || (n && (!q_ppb || !out)))
        return TXSTATS_EINVAL;
    const struct txstats__dcounts *parts[TXSTATS__MAX_SHARDS];
    struct txstats__minmax mm;
    txstats__lock_all(t);
    advance_all(t, &mm);
    uint64_t total = 0;
    for (unsigned i = 0; i < t->nshards; i++) {
        parts[i] = &t->shards[i].w.dist.k;
        total += parts[i]->total;
    }
    int rc = txstats__quantiles(parts, t->nshards, mm.min, mm.max, q_ppb, n, out);
    txstats__unlock_all(t);
    if (count)
        *count = total;
    return rc;
}

int txstats_dist_collect(txstats_t *t, txstats_dist_t *d)
{
    if (!t || !d)
        return TXSTATS_EINVAL;
    struct txstats__minmax mm;
    uint64_t total = 0;
    txstats__lock_all(t);
    advance_all(t, &mm);
    for (unsigned i = 0; i < t->nshards; i++) {
        txstats__dcounts_merge(&d->k, &t->shards[i].w.dist.k);
        total += t->shards[i].w.dist.k.total;
    }
    txstats__unlock_all(t);
    if (total) {
        d->min = mm.min < d->min ? mm.min : d->min;
        d->max = mm.max > d->max ? mm.max : d->max;
    }
    return TXSTATS_OK;
}
