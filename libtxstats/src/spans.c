/* SPDX-License-Identifier: MIT */
/*
 * The statistics and the listing of a span, at one moment (every shard locked): the spans an
 * instance keeps, each over the same cells (window.h).
 */
#include <string.h>

#include "internal.h"

int txstats_spans(txstats_t *t, int64_t *spans_ms, unsigned cap, unsigned *n)
{
    if (!t || !n || (!spans_ms && cap > 0))
        return TXSTATS_EINVAL;
    *n = t->geom.nspans;
    for (unsigned i = 0; i < cap && i < t->geom.nspans; i++)
        spans_ms[i] = t->geom.spans[i];
    return cap < t->geom.nspans ? TXSTATS_ENOBUFS : TXSTATS_OK;
}

int txstats_stats_span(txstats_t *t, unsigned span, txstats_summary_t *out)
{
    if (!t || !out || span >= t->geom.nspans)
        return TXSTATS_EINVAL;
    memset(out, 0, sizeof(*out));
    txstats__i128 sum = 0;
    struct txstats__minmax mm = {INT64_MAX, INT64_MIN};
    txstats__lock_all(t);
    int64_t now = txstats__now(t);
    for (unsigned i = 0; i < t->nshards; i++) {
        struct txstats__window *w = &t->shards[i].w;
        txstats__window_advance(w, now);
        struct txstats__minmax e = txstats__window_extremes(w, span);
        out->count += w->sp[span].count;
        sum += w->sp[span].sum;
        mm.min = e.min < mm.min ? e.min : mm.min;
        mm.max = e.max > mm.max ? e.max : mm.max;
    }
    txstats__unlock_all(t);
    out->now_ms = now;
    out->sum_hi = (int64_t)(sum >> 64);
    out->sum_lo = (uint64_t)sum;
    out->min = out->count ? mm.min : 0;
    out->max = out->count ? mm.max : 0;
    return TXSTATS_OK;
}

int txstats_stats(txstats_t *t, txstats_summary_t *out)
{
    return txstats_stats_span(t, 0, out);
}

/* Copy the kept amounts of one cell, oldest first, while there is room. */
static void copy_cell(const struct txstats__cell *c, int64_t ts, txstats_tx_t *buf, size_t cap,
                      size_t *w)
{
    struct txstats__kept_iter it;
    const txstats_amount_t *a;
    uint32_t n;
    txstats__kept_begin(c, &it);
    while (*w < cap && (a = txstats__kept_next(&it, &n)))
        for (uint32_t i = 0; i < n && *w < cap; i++)
            buf[(*w)++] = (txstats_tx_t){a[i], ts};
}

/* Merge the shards' cells in timestamp order; every lock held. */
static size_t copy_all(txstats_t *t, int64_t lo, int64_t hi, txstats_tx_t *buf, size_t cap)
{
    int64_t next[TXSTATS__MAX_SHARDS];
    size_t w = 0;
    for (unsigned i = 0; i < t->nshards; i++)
        next[i] = txstats__window_next_used(&t->shards[i].w, lo, hi);
    while (w < cap) {
        int64_t ts = INT64_MAX;
        for (unsigned i = 0; i < t->nshards; i++)
            ts = next[i] < ts ? next[i] : ts;
        if (ts == INT64_MAX)
            break;
        for (unsigned i = 0; i < t->nshards; i++) {
            if (next[i] != ts)
                continue;
            copy_cell(txstats__window_cell(&t->shards[i].w, ts), ts, buf, cap, &w);
            next[i] = txstats__window_next_used(&t->shards[i].w, ts + 1, hi);
        }
    }
    return w;
}

int txstats_get_span(txstats_t *t, unsigned span, txstats_tx_t *buf, size_t cap,
                     txstats_list_info_t *info)
{
    if (!t || !info || (!buf && cap > 0) || span >= t->geom.nspans)
        return TXSTATS_EINVAL;
    memset(info, 0, sizeof(*info));
    txstats__lock_all(t);
    int64_t now = txstats__now(t);
    for (unsigned i = 0; i < t->nshards; i++) {
        txstats__window_advance(&t->shards[i].w, now);
        info->in_window += t->shards[i].w.sp[span].count;
        info->retained += t->shards[i].w.sp[span].kept;
    }
    size_t w = cap ? copy_all(t, now - t->geom.spans[span] + 1, now, buf, cap) : 0;
    txstats__unlock_all(t);
    info->written = w;
    info->now_ms = now;
    return w < info->retained ? TXSTATS_ENOBUFS : TXSTATS_OK;
}

int txstats_get_ex(txstats_t *t, txstats_tx_t *buf, size_t cap, txstats_list_info_t *info)
{
    return txstats_get_span(t, 0, buf, cap, info);
}

int txstats_get(txstats_t *t, txstats_tx_t *buf, size_t cap, size_t *count)
{
    txstats_list_info_t info = {0};
    if (!count)
        return TXSTATS_EINVAL;
    int rc = txstats_get_ex(t, buf, cap, &info);
    *count = (size_t)info.retained;
    return rc;
}
