/* SPDX-License-Identifier: MIT */
/*
 * A brute-force model of an instance with several spans (issue 21), over entity_model.h: every
 * transaction accepted, with its entity and arrival order; each span's statistics, listing,
 * entity statistics and top-K computed by scanning them all. Span s holds at `now` the
 * transactions with now - spans[s] < ts <= now; one is stored while ts > now - longest and
 * ts <= now + skew; an entity is active while it has a stored one.
 */
#ifndef TXSTATS_TEST_SPAN_MODEL_H
#define TXSTATS_TEST_SPAN_MODEL_H

#include "entity_model.h"

struct sm {
    struct em m; /* m.window_ms is set to the span asked about before each em_* call */
    int64_t spans[TXSTATS_MAX_SPANS];
    unsigned n, longest;
    int64_t skew;
    int exact_order;      /* one shard: the listing's order within a millisecond is arrival order */
    int all_kept;         /* max_retained never binds: the listing is every transaction */
    txstats_dist_t *dist; /* for txstats_dist_collect_span(), made when first needed */
};

static inline void sm_init(struct sm *s, const int64_t *spans, unsigned n, int64_t skew)
{
    memset(s, 0, sizeof(*s));
    em_init(&s->m, spans[0]);
    memcpy(s->spans, spans, n * sizeof(spans[0]));
    s->n = n;
    s->skew = skew;
    for (unsigned i = 1; i < n; i++)
        s->longest = spans[i] > spans[s->longest] ? i : s->longest;
    s->all_kept = 1;
}

static inline void sm_free(struct sm *s)
{
    txstats_dist_destroy(s->dist);
    em_free(&s->m);
    s->dist = NULL;
}

static inline int64_t sm_longest(const struct sm *s)
{
    return s->spans[s->longest];
}

/* What txstats_add() must answer at `now`. */
static inline int sm_expect(const struct sm *s, int64_t ts, int64_t now)
{
    if (ts > now + s->skew)
        return TXSTATS_EFUTURE;
    return ts <= now - sm_longest(s) ? TXSTATS_EXPIRED : TXSTATS_OK;
}

/* Forget what can never count again (the clock only moves forward). */
static inline void sm_prune(struct sm *s, int64_t now)
{
    size_t w = 0;
    for (size_t i = 0; i < s->m.n; i++)
        if (s->m.tx[i].ts > now - sm_longest(s))
            s->m.tx[w++] = s->m.tx[i];
    s->m.n = w;
}

/* Keep only the transactions with lo_excl < ts <= hi_incl (what a load or a recovery keeps). */
static inline void sm_keep_for(struct sm *s, int64_t lo_excl, int64_t hi_incl)
{
    size_t w = 0;
    for (size_t i = 0; i < s->m.n; i++)
        if (s->m.tx[i].ts > lo_excl && s->m.tx[i].ts <= hi_incl)
            s->m.tx[w++] = s->m.tx[i];
    s->m.n = w;
}

static inline txstats_summary_t sm_stats(struct sm *s, unsigned span, const void *ent, size_t len,
                                         int64_t now)
{
    s->m.window_ms = s->spans[span];
    return em_stats(&s->m, ent, len, now);
}

/* Listing order: timestamp, then arrival (model) or amount (both sides, several shards). */
static inline int sm_cmp_tx(const void *pa, const void *pb)
{
    const txstats_tx_t *a = pa, *b = pb;
    if (a->timestamp_ms != b->timestamp_ms)
        return a->timestamp_ms < b->timestamp_ms ? -1 : 1;
    return a->amount < b->amount ? -1 : a->amount > b->amount;
}

/* The transactions of span `span` at `now`, oldest first (arrival order within a ms); the
 * caller frees. */
static inline txstats_tx_t *sm_listing(const struct sm *s, unsigned span, int64_t now, size_t *n)
{
    txstats_tx_t *out = malloc((s->m.n + 1) * sizeof(*out));
    size_t k = 0;
    assert_non_null(out);
    for (size_t i = 0; i < s->m.n; i++) {
        const struct em_tx *x = &s->m.tx[i];
        if (x->ts > now - s->spans[span] && x->ts <= now)
            out[k++] = (txstats_tx_t){x->amount, x->ts};
    }
    /* Insertion sort by timestamp only: stable, and the model is nearly sorted already. */
    for (size_t i = 1; i < k; i++) {
        txstats_tx_t v = out[i];
        size_t j = i;
        for (; j > 0 && out[j - 1].timestamp_ms > v.timestamp_ms; j--)
            out[j] = out[j - 1];
        out[j] = v;
    }
    *n = k;
    return out;
}

/* Every element of sorted `sub` is in sorted `all` (multisets). */
static inline int sm_is_subset(const txstats_tx_t *sub, size_t nsub, const txstats_tx_t *all,
                               size_t nall)
{
    size_t j = 0;
    for (size_t i = 0; i < nsub; i++) {
        while (j < nall && sm_cmp_tx(&all[j], &sub[i]) < 0)
            j++;
        if (j == nall || sm_cmp_tx(&all[j], &sub[i]) != 0)
            return 0;
        j++;
    }
    return 1;
}

/* The listing of a span: counts, order, contents (all of them, or a subset when the retention
 * budget binds). */
static inline void sm_assert_listing(txstats_t *t, struct sm *s, unsigned span, int64_t now,
                                     const char *what)
{
    size_t nw;
    txstats_tx_t *want = sm_listing(s, span, now, &nw);
    txstats_tx_t *got = malloc((nw + 2) * sizeof(*got));
    txstats_list_info_t info;
    assert_non_null(got);
    int rc = txstats_get_span(t, span, got, nw + 2, &info);
    if (rc != TXSTATS_OK || info.in_window != nw || info.written != info.retained ||
        info.retained > nw || (s->all_kept && info.retained != nw))
        fail_msg("%s span %u (%lld ms) at %lld: listing rc %d in_window %llu retained %llu "
                 "written %llu; want %zu",
                 what, span, (long long)s->spans[span], (long long)now, rc,
                 (unsigned long long)info.in_window, (unsigned long long)info.retained,
                 (unsigned long long)info.written, nw);
    for (size_t i = 1; i < info.written; i++)
        if (got[i].timestamp_ms < got[i - 1].timestamp_ms)
            fail_msg("%s span %u at %lld: listing not oldest first at %zu", what, span,
                     (long long)now, i);
    if (!s->exact_order || !s->all_kept) {
        qsort(want, nw, sizeof(*want), sm_cmp_tx);
        qsort(got, info.written, sizeof(*got), sm_cmp_tx);
    }
    if (s->all_kept && memcmp(got, want, nw * sizeof(*got)) != 0)
        fail_msg("%s span %u (%lld ms) at %lld: listing differs", what, span,
                 (long long)s->spans[span], (long long)now);
    if (!s->all_kept && !sm_is_subset(got, info.written, want, nw))
        fail_msg("%s span %u at %lld: a listed transaction is not in the span", what, span,
                 (long long)now);
    free(got);
    free(want);
}

/* The q-quantile (nearest rank) of the span's amounts. */
static inline txstats_amount_t sm_quantile(const txstats_tx_t *sorted_by_amount, size_t n,
                                           uint32_t q_ppb)
{
    uint64_t r = ((uint64_t)q_ppb * n + TXSTATS_Q_SCALE - 1) / TXSTATS_Q_SCALE;
    return sorted_by_amount[r ? r - 1 : 0].amount;
}

static inline int sm_cmp_amount(const void *pa, const void *pb)
{
    const txstats_tx_t *a = pa, *b = pb;
    return a->amount < b->amount ? -1 : a->amount > b->amount;
}

/* Quantiles of a span: the count, exact min (q 0) and max (q 1), the median within a bucket.
 * `approx`: the amounts are not all known exactly (files of 0.1): the count only. */
static inline void sm_assert_quantiles(txstats_t *t, struct sm *s, unsigned span, int64_t now,
                                       const char *what)
{
    static const uint32_t q[3] = {0, TXSTATS_Q_SCALE / 2, TXSTATS_Q_SCALE};
    txstats_amount_t out[3];
    uint64_t count = 99;
    size_t n;
    txstats_tx_t *v = sm_listing(s, span, now, &n);
    assert_int_equal(txstats_quantiles_span(t, span, q, 3, out, &count), TXSTATS_OK);
    qsort(v, n, sizeof(*v), sm_cmp_amount);
    txstats_amount_t med = n ? sm_quantile(v, n, q[1]) : 0, tol = med < 0 ? -med : med;
    tol = tol / 1000 + 1;
    if (count != n || (n && (out[0] != v[0].amount || out[2] != v[n - 1].amount ||
                             out[1] < med - tol || out[1] > med + tol)))
        fail_msg("%s span %u at %lld: quantiles count %llu [%lld %lld %lld], want %zu [%lld "
                 "%lld %lld]",
                 what, span, (long long)now, (unsigned long long)count, (long long)out[0],
                 (long long)out[1], (long long)out[2], n, (long long)(n ? v[0].amount : 0),
                 (long long)med, (long long)(n ? v[n - 1].amount : 0));
    free(v);
}

/* txstats_dist_collect_span(): the same count and exact extremes as the model. */
static inline void sm_assert_dist(txstats_t *t, struct sm *s, unsigned span, int64_t now,
                                  const char *what)
{
    txstats_amount_t lo = 1, hi = -1;
    if (!s->dist)
        assert_int_equal(txstats_dist_create(&s->dist, NULL), TXSTATS_OK);
    txstats_dist_clear(s->dist);
    assert_int_equal(txstats_dist_collect_span(t, span, s->dist), TXSTATS_OK);
    assert_int_equal(txstats_dist_extremes(s->dist, &lo, &hi), TXSTATS_OK);
    txstats_summary_t want = sm_stats(s, span, NULL, 0, now);
    if (txstats_dist_count(s->dist) != want.count || lo != want.min || hi != want.max)
        fail_msg("%s span %u at %lld: collected %llu [%lld, %lld], want %llu [%lld, %lld]", what,
                 span, (long long)now, (unsigned long long)txstats_dist_count(s->dist),
                 (long long)lo, (long long)hi, (unsigned long long)want.count, (long long)want.min,
                 (long long)want.max);
}

/* txstats_top_span() against the exact sort of the model. */
static inline void sm_assert_top(txstats_t *t, struct sm *s, unsigned span, int64_t now,
                                 txstats_top_by_t by, size_t cap)
{
    struct em_entity *want;
    s->m.window_ms = s->spans[span];
    size_t ranked = em_rank(&s->m, now, by, &want), n = 12345;
    size_t expect = cap < ranked ? cap : ranked;
    txstats_top_entry_t *got = calloc(cap + 1, sizeof(*got));
    char name[80], what[160];
    assert_non_null(got);
    assert_int_equal(txstats_top_span(t, span, by, cap ? got : NULL, cap, &n), TXSTATS_OK);
    if (n != expect)
        fail_msg("top span %u by %d cap %zu at %lld: %zu entries, want %zu", span, by, cap,
                 (long long)now, n, expect);
    for (size_t i = 0; i < n; i++) {
        snprintf(what, sizeof(what), "top span %u by %d, entry %zu (want %s)", span, by, i,
                 em_name(want[i].ent, want[i].len, name, sizeof(name)));
        if (!em_same(got[i].entity, got[i].entity_len, want[i].ent, want[i].len))
            fail_msg("%s at %lld: got %s", what, (long long)now,
                     em_name(got[i].entity, got[i].entity_len, name, sizeof(name)));
        em_assert_summary(&got[i].stats, &want[i].s, what, now + T0);
    }
    free(got);
    free(want);
}

/* Every entity of the model in span `span`. */
static inline void sm_assert_entities(txstats_t *t, struct sm *s, unsigned span, int64_t now)
{
    char name[80], what[160];
    s->m.window_ms = s->spans[span];
    em_collect(&s->m, now);
    for (size_t i = 0; i < s->m.nents; i++) {
        const struct em_entity *e = &s->m.ents[i];
        txstats_summary_t got;
        assert_int_equal(txstats_entity_stats_span(t, span, e->ent, e->len, &got), TXSTATS_OK);
        snprintf(what, sizeof(what), "span %u (%lld ms) entity %s", span, (long long)s->spans[span],
                 em_name(e->ent, e->len, name, sizeof(name)));
        em_assert_summary(&got, &e->s, what, now + T0);
    }
}

/* Statistics of one span (the global window of it). */
static inline void sm_assert_stats(txstats_t *t, struct sm *s, unsigned span, int64_t now,
                                   const char *what)
{
    char msg[160];
    txstats_summary_t got, want = sm_stats(s, span, NULL, 0, now);
    assert_int_equal(txstats_stats_span(t, span, &got), TXSTATS_OK);
    snprintf(msg, sizeof(msg), "%s: span %u (%lld ms)", what, span, (long long)s->spans[span]);
    em_assert_summary(&got, &want, msg, now + T0);
    if (got.now_ms != now)
        fail_msg("%s: now_ms %lld, want %lld", msg, (long long)got.now_ms, (long long)now);
}

/* The active entities (transactions inside the longest span or ahead of it). */
static inline void sm_assert_active(txstats_t *t, struct sm *s, int64_t now, const char *what)
{
    txstats_entity_info_t info;
    s->m.window_ms = sm_longest(s);
    size_t active = em_collect(&s->m, now);
    assert_int_equal(txstats_entity_info(t, &info), TXSTATS_OK);
    if (info.active != active)
        fail_msg("%s at %lld: %llu active entities, want %zu", what, (long long)now,
                 (unsigned long long)info.active, active);
}

/* The listing of span `span` (retained transactions), as txstats_get_span() gives it. */
static inline txstats_tx_t *sm_list_lib(txstats_t *t, unsigned span, size_t *n)
{
    txstats_list_info_t info;
    int rc = txstats_get_span(t, span, NULL, 0, &info);
    assert_int_equal(rc, info.retained ? TXSTATS_ENOBUFS : TXSTATS_OK);
    size_t cap = (size_t)info.retained + 1;
    txstats_tx_t *v = malloc(cap * sizeof(*v));
    assert_non_null(v);
    assert_int_equal(txstats_get_span(t, span, v, cap, &info), TXSTATS_OK);
    *n = (size_t)info.written;
    return v;
}

/* The spans are views of the same cells: at one moment each span's listing is exactly the part
 * of the longest span's listing with ts > now - span (even when the retention budget binds, in
 * the same order across shards); a short buffer gets the oldest of it (TXSTATS_ENOBUFS). */
static inline void sm_assert_nested(txstats_t *t, struct sm *s, int64_t now, const char *what)
{
    size_t nl, n;
    txstats_tx_t *all = sm_list_lib(t, s->longest, &nl);
    for (unsigned span = 0; span < s->n; span++) {
        txstats_tx_t *v = sm_list_lib(t, span, &n);
        size_t skip = 0;
        while (skip < nl && all[skip].timestamp_ms <= now - s->spans[span])
            skip++;
        if (n != nl - skip || memcmp(v, all + skip, n * sizeof(*v)) != 0)
            fail_msg("%s at %lld: span %u's listing (%zu) is not the end of the longest's (%zu "
                     "from %zu)",
                     what, (long long)now, span, n, nl, skip);
        txstats_list_info_t info;
        if (n >= 2 && txstats_get_span(t, span, v, n / 2, &info) != TXSTATS_ENOBUFS)
            fail_msg("%s: span %u, a buffer of %zu for %zu: not ENOBUFS", what, span, n / 2, n);
        if (n >= 2 && (info.written != n / 2 || memcmp(v, all + skip, n / 2 * sizeof(*v)) != 0))
            fail_msg("%s: span %u, a buffer of %zu: not the oldest", what, span, n / 2);
        free(v);
    }
    free(all);
}

/* Everything of every span against the model at `now`. */
static inline void sm_assert_all(txstats_t *t, struct sm *s, int64_t now, const char *what)
{
    sm_assert_active(t, s, now, what);
    for (unsigned span = 0; span < s->n; span++) {
        sm_assert_stats(t, s, span, now, what);
        sm_assert_listing(t, s, span, now, what);
        sm_assert_quantiles(t, s, span, now, what);
        sm_assert_dist(t, s, span, now, what);
        sm_assert_entities(t, s, span, now);
        sm_assert_top(t, s, span, now, TXSTATS_TOP_SUM, 3);
        sm_assert_top(t, s, span, now, TXSTATS_TOP_COUNT, s->m.nents + 1);
    }
    sm_assert_nested(t, s, now, what);
    txstats_summary_t d0, s0;
    assert_int_equal(txstats_stats(t, &d0), TXSTATS_OK); /* span 0 is the default */
    assert_int_equal(txstats_stats_span(t, 0, &s0), TXSTATS_OK);
    em_assert_summary(&d0, &s0, "txstats_stats() against span 0", now + T0);
}

/* An instance with these spans on a fake clock. */
static inline txstats_t *sm_instance(struct fake_clock *clk, int64_t start, const int64_t *spans,
                                     unsigned n, int64_t skew, unsigned shards, size_t retained)
{
    txstats_config_t cfg;
    txstats_t *t = NULL;
    txstats_config_init(&cfg);
    clk->now = start;
    cfg.spans_ms = spans;
    cfg.nspans = n;
    cfg.max_skew_ms = skew;
    cfg.shards = shards;
    cfg.max_retained = retained;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = clk;
    cfg.max_entities = 1000;
    int rc = txstats_create(&t, &cfg);
    if (rc != TXSTATS_OK)
        fail_msg("create with %u spans, skew %lld: %d", n, (long long)skew, rc);
    return t;
}

#endif
