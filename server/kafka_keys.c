/* SPDX-License-Identifier: MIT */
/*
 * Cluster mode, the answers about keys merged over the partitions (kafka_cluster.h). A key's
 * transactions go to its home partition (the key is their message key) unless an idempotency key
 * sent some elsewhere: a "foreign" key there. The reader notes until when each partition may hold
 * foreign keys (a foreign record's timestamp plus the window; after a restored checkpoint, a
 * whole window from the start).
 * - A key's statistics: the exact merge of its window in every partition.
 * - Both answers are of one span of --window-ms: every partition keeps the same spans, and the
 *   reasoning below holds in each (a span's scores are what its lists rank by; the foreign
 *   horizon is the longest span's, which covers the shorter ones).
 * - The top keys: with no foreign key anywhere every key lives in one partition, so the first
 *   `cap` of the union of each partition's first `cap` are exact, ties included (a key that a
 *   partition did not list ranks after its last one). Otherwise Fagin's threshold algorithm:
 *   each partition's first `depth` are candidates, scored exactly over all partitions; a key in
 *   no list scores at most the largest last score of a list plus the last scores of the lists of
 *   partitions that may hold foreign keys (0 for a list that holds all of its partition); once the
 *   cap-th candidate scores above that bound the answer is exact, else depth grows fourfold (at
 *   worst, every active key is a candidate).
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_cluster.h"
#include "log.h"

typedef __int128 score_t;

int srv_kafka_key_stats(struct srv_cluster *k, unsigned span, const void *key, size_t len,
                        txstats_summary_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int p = 0; p < k->partitions; p++) {
        txstats_summary_t s;
        int rc = txstats_entity_stats_span(k->part[p], span, key, len, &s);
        if (rc != TXSTATS_OK)
            return rc;
        txstats_summary_merge(out, &s);
    }
    return TXSTATS_OK;
}

void srv_kafka_key_info(struct srv_cluster *k, txstats_entity_info_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int p = 0; p < k->partitions; p++) {
        txstats_entity_info_t i;
        txstats_entity_info(k->part[p], &i);
        out->active += i.active; /* a key spread over partitions counts in each */
    }
    out->limit = (uint64_t)k->opt.max_active_keys;
    out->refused = atomic_load(&k->keys_refused);
}

static score_t score(const txstats_summary_t *s, txstats_top_by_t by)
{
    if (by == TXSTATS_TOP_COUNT)
        return (score_t)s->count;
    return (score_t)s->sum_hi * ((score_t)1 << 64) + (score_t)s->sum_lo;
}

/* Largest score first, then the key's bytes (memcmp, the shorter first), as txstats_top(). */
static int rank(const void *x, const void *y, void *by)
{
    const txstats_top_entry_t *a = x, *b = y;
    score_t sa = score(&a->stats, *(txstats_top_by_t *)by),
            sb = score(&b->stats, *(txstats_top_by_t *)by);
    if (sa != sb)
        return sa > sb ? -1 : 1;
    size_t n = a->entity_len < b->entity_len ? a->entity_len : b->entity_len;
    int c = memcmp(a->entity, b->entity, n);
    return c ? c : (a->entity_len > b->entity_len) - (a->entity_len < b->entity_len);
}

/* The candidates of a round, without repeats (open addressing over their bytes). */
struct cands {
    txstats_top_entry_t *v;
    size_t n, cap;
    uint32_t *slot; /* index + 1, 0: free */
    size_t nslot;   /* a power of two above 2 cap */
};

static void cand_add(struct cands *c, const txstats_top_entry_t *e)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (size_t i = 0; i < e->entity_len; i++)
        h = (h ^ e->entity[i]) * 1099511628211u;
    for (size_t s = h & (c->nslot - 1);; s = (s + 1) & (c->nslot - 1)) {
        if (!c->slot[s]) {
            c->v[c->n] = *e;
            c->slot[s] = (uint32_t)++c->n;
            return;
        }
        const txstats_top_entry_t *o = &c->v[c->slot[s] - 1];
        if (o->entity_len == e->entity_len && !memcmp(o->entity, e->entity, e->entity_len))
            return;
    }
}

static bool cands_init(struct cands *c, size_t cap)
{
    c->n = 0;
    c->cap = cap;
    for (c->nslot = 16; c->nslot < 2 * cap; c->nslot *= 2)
        ;
    c->v = malloc((cap ? cap : 1) * sizeof(*c->v));
    c->slot = calloc(c->nslot, sizeof(*c->slot));
    return c->v && c->slot;
}

/* Whether partition p may hold keys whose home is another partition. */
static bool foreign(struct srv_cluster *k, int p)
{
    return atomic_load(&k->foreign_until[p]) > srv_now_ms();
}

/* How many of its first keys each partition lists in a round: `depth`, or fewer when it holds
 * fewer (so that the candidates never take more than the active keys, however deep the round);
 * the largest of them. */
static size_t plan(struct srv_cluster *k, size_t depth, size_t *want, size_t *total)
{
    size_t most = 0;
    *total = 0;
    for (int p = 0; p < k->partitions; p++) {
        txstats_entity_info_t info;
        txstats_entity_info(k->part[p], &info);
        size_t room = (size_t)info.active + 64; /* keys that arrive meanwhile */
        want[p] = depth < room ? depth : room;
        *total += want[p];
        most = want[p] > most ? want[p] : most;
    }
    return most;
}

/* One round: each partition's first keys into c; *bound: what a key in no list may score at
 * most; *all: every list held its whole partition. */
static int gather(struct srv_cluster *k, unsigned span, txstats_top_by_t by, size_t depth,
                  struct cands *c, score_t *bound, bool *all)
{
    size_t *want = malloc((size_t)k->partitions * sizeof(*want)), total = 0;
    size_t most = want ? plan(k, depth, want, &total) : 0;
    txstats_top_entry_t *tmp =
        want && cands_init(c, total) ? malloc((most ? most : 1) * sizeof(*tmp)) : NULL;
    score_t top = 0, foreign_sum = 0;
    *all = true;
    for (int p = 0; tmp && p < k->partitions; p++) {
        size_t n = 0;
        if (txstats_top_span(k->part[p], span, by, tmp, want[p], &n) != TXSTATS_OK)
            break;
        for (size_t i = 0; i < n; i++)
            cand_add(c, &tmp[i]);
        score_t last = n == want[p] && n > 0 ? score(&tmp[n - 1].stats, by) : 0;
        last = last > 0 ? last : 0;
        *all &= n < want[p];
        top = last > top ? last : top;
        foreign_sum += foreign(k, p) ? last : 0;
    }
    int rc = tmp ? TXSTATS_OK : TXSTATS_ENOMEM;
    free(tmp);
    free(want);
    *bound = top + foreign_sum;
    return rc;
}

/* Each candidate's statistics merged over the partitions; those with nothing left dropped. */
static void rescore(struct srv_cluster *k, unsigned span, struct cands *c)
{
    size_t kept = 0;
    for (size_t i = 0; i < c->n; i++) {
        txstats_top_entry_t *e = &c->v[i];
        srv_kafka_key_stats(k, span, e->entity, e->entity_len, &e->stats);
        if (e->stats.count > 0)
            c->v[kept++] = *e;
    }
    c->n = kept;
}

int srv_kafka_top(struct srv_cluster *k, unsigned span, txstats_top_by_t by,
                  txstats_top_entry_t *buf, size_t cap, size_t *n)
{
    bool any_foreign = false;
    for (int p = 0; p < k->partitions; p++)
        any_foreign |= foreign(k, p);
    *n = 0;
    if (cap == 0)
        return TXSTATS_OK;
    for (size_t depth = cap;; depth *= 4) {
        struct cands c = {NULL, 0, 0, NULL, 0};
        score_t bound;
        bool all;
        int rc = gather(k, span, by, depth, &c, &bound, &all);
        if (rc == TXSTATS_OK) {
            rescore(k, span, &c);
            qsort_r(c.v, c.n, sizeof(*c.v), rank, &by);
        }
        bool done = rc != TXSTATS_OK || !any_foreign || all ||
                    (c.n >= cap && score(&c.v[cap - 1].stats, by) > bound);
        if (done && rc == TXSTATS_OK) {
            *n = c.n < cap ? c.n : cap;
            memcpy(buf, c.v, *n * sizeof(*buf));
        }
        free(c.v);
        free(c.slot);
        if (done)
            return rc;
    }
}
