/* SPDX-License-Identifier: MIT */
/*
 * A brute-force model of entity windows (issue 20) for the tests: a plain list of (entity,
 * timestamp, amount); the statistics of an entity, of the global window and the exact top-K
 * ranking are computed from it by scanning every transaction, with a 128-bit sum.
 */
#ifndef TXSTATS_TEST_ENTITY_MODEL_H
#define TXSTATS_TEST_ENTITY_MODEL_H

#include "helpers.h"

struct em_tx {
    unsigned char ent[TXSTATS_MAX_ENTITY_BYTES];
    size_t len; /* 0: no entity (global window only) */
    size_t idx; /* its entity's index in em.ents */
    int64_t ts;
    txstats_amount_t amount;
};

struct em_entity {
    unsigned char ent[TXSTATS_MAX_ENTITY_BYTES];
    size_t len;
    txstats_summary_t s; /* at the moment of the last em_collect() */
    int active;          /* a transaction in the window or ahead of it */
};

struct em {
    struct em_tx *tx;
    size_t n, cap;
    int64_t window_ms;
    struct em_entity *ents; /* every entity ever added, in order of first appearance */
    size_t nents, ents_cap;
};

static inline void em_init(struct em *m, int64_t window_ms)
{
    memset(m, 0, sizeof(*m));
    m->window_ms = window_ms;
}

static inline void em_free(struct em *m)
{
    free(m->tx);
    free(m->ents);
    memset(m, 0, sizeof(*m));
}

static inline int em_same(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* The index of an entity in m->ents, added when new. */
static inline size_t em_entity_index(struct em *m, const void *ent, size_t len)
{
    for (size_t i = 0; i < m->nents; i++)
        if (em_same(m->ents[i].ent, m->ents[i].len, ent, len))
            return i;
    if (m->nents == m->ents_cap) {
        m->ents_cap = m->ents_cap ? 2 * m->ents_cap : 64;
        m->ents = realloc(m->ents, m->ents_cap * sizeof(*m->ents));
        assert_non_null(m->ents);
    }
    struct em_entity *e = &m->ents[m->nents];
    memset(e, 0, sizeof(*e));
    memcpy(e->ent, ent, len);
    e->len = len;
    return m->nents++;
}

/* Record a transaction the library accepted (TXSTATS_OK). len 0: no entity. */
static inline void em_add(struct em *m, const void *ent, size_t len, txstats_amount_t amount,
                          int64_t ts)
{
    assert_true(len <= TXSTATS_MAX_ENTITY_BYTES);
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 256;
        m->tx = realloc(m->tx, m->cap * sizeof(*m->tx));
        assert_non_null(m->tx);
    }
    struct em_tx *x = &m->tx[m->n++];
    memset(x, 0, sizeof(*x));
    if (len)
        memcpy(x->ent, ent, len);
    x->len = len;
    x->ts = ts;
    x->amount = amount;
    x->idx = len ? em_entity_index(m, ent, len) : 0;
}

static inline void em_empty(struct em *m)
{
    m->n = 0;
}

static inline void em_sum_set(txstats_summary_t *s, __int128 sum)
{
    s->sum_hi = (int64_t)(sum >> 64);
    s->sum_lo = (uint64_t)sum;
}

static inline __int128 em_sum_get(const txstats_summary_t *s)
{
    return (__int128)(((unsigned __int128)(uint64_t)s->sum_hi << 64) | s->sum_lo);
}

/* Fold one amount into a summary whose sum is kept in *sum. */
static inline void em_fold(txstats_summary_t *s, __int128 *sum, txstats_amount_t a)
{
    if (s->count == 0 || a < s->min)
        s->min = a;
    if (s->count == 0 || a > s->max)
        s->max = a;
    s->count++;
    *sum += a;
    em_sum_set(s, *sum);
}

/* Statistics at `now` of one entity (ent NULL: the global window). */
static inline txstats_summary_t em_stats(const struct em *m, const void *ent, size_t len,
                                         int64_t now)
{
    txstats_summary_t s;
    __int128 sum = 0;
    memset(&s, 0, sizeof(s));
    s.now_ms = now;
    for (size_t i = 0; i < m->n; i++) {
        const struct em_tx *x = &m->tx[i];
        if (x->ts <= now - m->window_ms || x->ts > now)
            continue;
        if (ent && !em_same(x->ent, x->len, ent, len))
            continue;
        em_fold(&s, &sum, x->amount);
    }
    return s;
}

/* Every entity's statistics and activity at `now`, in one pass; returns how many are active. */
static inline size_t em_collect(struct em *m, int64_t now)
{
    __int128 *sums = calloc(m->nents + 1, sizeof(*sums));
    size_t active = 0;
    assert_non_null(sums);
    for (size_t i = 0; i < m->nents; i++) {
        memset(&m->ents[i].s, 0, sizeof(m->ents[i].s));
        m->ents[i].s.now_ms = now;
        m->ents[i].active = 0;
    }
    for (size_t i = 0; i < m->n; i++) {
        const struct em_tx *x = &m->tx[i];
        if (!x->len || x->ts <= now - m->window_ms)
            continue;
        size_t k = x->idx;
        m->ents[k].active = 1;
        if (x->ts <= now)
            em_fold(&m->ents[k].s, &sums[k], x->amount);
    }
    for (size_t i = 0; i < m->nents; i++)
        active += (size_t)m->ents[i].active;
    free(sums);
    return active;
}

/* The documented order of txstats_top(): larger first, then entity bytes, then shorter. */
static inline int em_cmp_bytes(const struct em_entity *a, const struct em_entity *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->ent, b->ent, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static inline int em_cmp_sum(const void *pa, const void *pb)
{
    const struct em_entity *a = pa, *b = pb;
    __int128 x = em_sum_get(&a->s), y = em_sum_get(&b->s);
    if (x != y)
        return x > y ? -1 : 1;
    return em_cmp_bytes(a, b);
}

static inline int em_cmp_count(const void *pa, const void *pb)
{
    const struct em_entity *a = pa, *b = pb;
    if (a->s.count != b->s.count)
        return a->s.count > b->s.count ? -1 : 1;
    return em_cmp_bytes(a, b);
}

/* The exact ranking at `now`: entities with count > 0, sorted; the caller frees *out. */
static inline size_t em_rank(struct em *m, int64_t now, txstats_top_by_t by, struct em_entity **out)
{
    em_collect(m, now);
    struct em_entity *r = calloc(m->nents + 1, sizeof(*r));
    size_t n = 0;
    assert_non_null(r);
    for (size_t i = 0; i < m->nents; i++)
        if (m->ents[i].s.count > 0)
            r[n++] = m->ents[i];
    qsort(r, n, sizeof(*r), by == TXSTATS_TOP_SUM ? em_cmp_sum : em_cmp_count);
    *out = r;
    return n;
}

/* The same statistics (now_ms not compared); `what` names the case in the failure message. */
static inline void em_assert_summary(const txstats_summary_t *got, const txstats_summary_t *want,
                                     const char *what, int64_t now)
{
    if (got->count == want->count && got->min == want->min && got->max == want->max &&
        got->sum_hi == want->sum_hi && got->sum_lo == want->sum_lo)
        return;
    fail_msg("%s at now %+lld: got count %llu min %lld max %lld sum %lld:%llu; want count %llu "
             "min %lld max %lld sum %lld:%llu",
             what, (long long)(now - T0), (unsigned long long)got->count, (long long)got->min,
             (long long)got->max, (long long)got->sum_hi, (unsigned long long)got->sum_lo,
             (unsigned long long)want->count, (long long)want->min, (long long)want->max,
             (long long)want->sum_hi, (unsigned long long)want->sum_lo);
}

/* Printable name of an entity for messages: its first bytes, escaped. */
static inline const char *em_name(const void *ent, size_t len, char *buf, size_t cap)
{
    const unsigned char *p = ent;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 6 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, p[i] >= 33 && p[i] < 127 ? "%c" : "\\x%02x", p[i]);
    snprintf(buf + o, cap - o, "(%zu)", len);
    return buf;
}

/* Every entity of the model (and the global window) against the library at `now`. The active
 * count first: before any query of an entity could bring its shard up to date. */
static inline void em_assert_all(txstats_t *t, struct em *m, int64_t now)
{
    size_t active = em_collect(m, now);
    char name[80], what[128];
    txstats_entity_info_t info;
    assert_int_equal(txstats_entity_info(t, &info), TXSTATS_OK);
    if (info.active != active)
        fail_msg("at now %+lld: %llu active entities, want %zu", (long long)(now - T0),
                 (unsigned long long)info.active, active);
    for (size_t i = 0; i < m->nents; i++) {
        txstats_summary_t got;
        const struct em_entity *e = &m->ents[i];
        assert_int_equal(txstats_entity_stats(t, e->ent, e->len, &got), TXSTATS_OK);
        snprintf(what, sizeof(what), "entity %s", em_name(e->ent, e->len, name, sizeof(name)));
        em_assert_summary(&got, &e->s, what, now);
    }
    txstats_summary_t g, want = em_stats(m, NULL, 0, now);
    assert_int_equal(txstats_stats(t, &g), TXSTATS_OK);
    em_assert_summary(&g, &want, "global window", now);
}

/* txstats_top(t, by, cap) against the exact sort of the model at `now`. */
static inline void em_assert_top(txstats_t *t, struct em *m, int64_t now, txstats_top_by_t by,
                                 size_t cap)
{
    struct em_entity *want;
    size_t ranked = em_rank(m, now, by, &want), n = 12345, expect = cap < ranked ? cap : ranked;
    txstats_top_entry_t *got = calloc(cap + 1, sizeof(*got));
    char name[80], what[160];
    assert_non_null(got);
    assert_int_equal(txstats_top(t, by, cap ? got : NULL, cap, &n), TXSTATS_OK);
    if (n != expect)
        fail_msg("top by %s, cap %zu, at now %+lld: %zu entries, want %zu",
                 by == TXSTATS_TOP_SUM ? "sum" : "count", cap, (long long)(now - T0), n, expect);
    for (size_t i = 0; i < n; i++) {
        snprintf(what, sizeof(what), "top by %s, cap %zu, entry %zu (want %s)",
                 by == TXSTATS_TOP_SUM ? "sum" : "count", cap, i,
                 em_name(want[i].ent, want[i].len, name, sizeof(name)));
        if (!em_same(got[i].entity, got[i].entity_len, want[i].ent, want[i].len))
            fail_msg("%s at now %+lld: got %s", what, (long long)(now - T0),
                     em_name(got[i].entity, got[i].entity_len, name, sizeof(name)));
        em_assert_summary(&got[i].stats, &want[i].s, what, now);
    }
    free(got);
    free(want);
}

/* ---- Random sequences (splitmix64, fixed seeds) -------------------------------------------- */

static inline uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static inline int64_t rnd_in(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd(s) % (uint64_t)(hi - lo + 1));
}

/* Mostly small amounts of few values (ties), now and then an extreme, so that min and max move
 * as the extremes leave the window. */
static inline txstats_amount_t rnd_amount(uint64_t *s)
{
    switch (rnd(s) % 10) {
    case 0:
        return rnd_in(s, 500, 999) * 1000000;
    case 1:
        return -rnd_in(s, 500, 999) * 1000000;
    case 2:
        return rnd_in(s, -999999, 999999);
    default:
        return rnd_in(s, -3, 3) * 1000000;
    }
}

/* Entity number i (< 256) as bytes: short text with prefixes of each other ("e1", "e10"),
 * binary with a 0x00, 128 bytes differing only in the last, 0xff runs. All distinct. */
static inline size_t ent_name(int i, unsigned char *buf)
{
    size_t len;
    switch (i % 4) {
    case 0:
        return (size_t)snprintf((char *)buf, 16, "e%d", i);
    case 1:
        buf[0] = 0;
        buf[1] = (unsigned char)i;
        return 2;
    case 2:
        memset(buf, 'L', TXSTATS_MAX_ENTITY_BYTES);
        buf[TXSTATS_MAX_ENTITY_BYTES - 1] = (unsigned char)i;
        return TXSTATS_MAX_ENTITY_BYTES;
    default:
        len = 1 + (size_t)i % 7;
        memset(buf, 0xff, len);
        buf[0] = (unsigned char)i;
        return len;
    }
}

#endif
