/* SPDX-License-Identifier: MIT */
/*
 * The live operations: instances, the clock, locks, and the order of an add:
 * lock a shard -> reserve in its window -> append to its journal stream -> apply (or cancel) ->
 * unlock -> commit (wait for fdatasync when asked). Neither the window nor the journal knows of
 * the other.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

void txstats_config_init(txstats_config_t *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof(*cfg));
    cfg->window_ms = 60000;
    cfg->max_skew_ms = 0;
    cfg->max_retained = TXSTATS_DEFAULT_MAX_RETAINED;
}

static int64_t real_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t txstats__now(txstats_t *t)
{
    int64_t c = t->cfg.clock_ms ? t->cfg.clock_ms(t->cfg.clock_ctx) : real_clock_ms();
    if (c > TXSTATS__CLOCK_LIMIT)
        c = TXSTATS__CLOCK_LIMIT;
    if (c < -TXSTATS__CLOCK_LIMIT)
        c = -TXSTATS__CLOCK_LIMIT;
    int64_t last = atomic_load_explicit(&t->last_now, memory_order_relaxed);
    while (c > last) {
        if (atomic_compare_exchange_weak_explicit(&t->last_now, &last, c, memory_order_relaxed,
                                                  memory_order_relaxed))
            return c;
    }
    return last;
}

static int check_config(const txstats_config_t *c)
{
    if (c->window_ms < 1 || c->max_skew_ms < 0 || c->max_skew_ms > TXSTATS_MAX_SPAN_MS ||
        c->window_ms > TXSTATS_MAX_SPAN_MS - c->max_skew_ms || c->shards > TXSTATS__MAX_SHARDS ||
        (!c->alloc) != (!c->free))
        return TXSTATS_EINVAL;
    return TXSTATS_OK;
}

static unsigned auto_shards(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 16 ? 16 : (unsigned)n;
}

static int init_shards(txstats_t *t)
{
    for (unsigned i = 0; i < t->nshards; i++) {
        struct txstats__shard *s = &t->shards[i];
        s->js = NULL;
        if (txstats__window_init(&s->w, &t->geom, &t->mem, &t->ret) != TXSTATS_OK) {
            while (i-- > 0) {
                txstats__window_fini(&t->shards[i].w);
                pthread_mutex_destroy(&t->shards[i].lock);
            }
            return TXSTATS_ENOMEM;
        }
        pthread_mutex_init(&s->lock, NULL);
    }
    return TXSTATS_OK;
}

static void init_geometry(txstats_t *t, const txstats_config_t *cfg)
{
    t->cfg = *cfg;
    t->mem = (struct txstats__mem){cfg->alloc, cfg->free, cfg->alloc_ud};
    t->nshards = cfg->shards ? cfg->shards : auto_shards();
    t->geom.window_ms = cfg->window_ms;
    t->geom.skew_ms = cfg->max_skew_ms;
    for (t->geom.ring = 64; t->geom.ring <= cfg->window_ms + cfg->max_skew_ms;)
        t->geom.ring <<= 1;
    t->geom.mask = t->geom.ring - 1;
    atomic_init(&t->last_now, -2 * TXSTATS__CLOCK_LIMIT);
    atomic_init(&t->ret.pool, (uint64_t)cfg->max_retained);
    t->ret.batch = cfg->max_retained / (8 * (uint64_t)t->nshards);
    t->ret.batch = t->ret.batch < 1 ? 1 : t->ret.batch > 256 ? 256 : t->ret.batch;
}

int txstats_create(txstats_t **out, const txstats_config_t *cfg)
{
    txstats_config_t def;
    if (!out)
        return TXSTATS_EINVAL;
    *out = NULL;
    if (!cfg) {
        txstats_config_init(&def);
        cfg = &def;
    }
    if (check_config(cfg) != TXSTATS_OK)
        return TXSTATS_EINVAL;
    struct txstats__mem boot = {cfg->alloc, cfg->free, cfg->alloc_ud};
    txstats_t *t = txstats__alloc(&boot, sizeof(*t));
    if (!t)
        return TXSTATS_ENOMEM;
    memset(t, 0, sizeof(*t));
    init_geometry(t, cfg);
    t->shards_mem = txstats__alloc(&t->mem, t->nshards * sizeof(*t->shards) + 63);
    t->shards = (void *)(((uintptr_t)t->shards_mem + 63) & ~(uintptr_t)63);
    if (!t->shards_mem || init_shards(t) != TXSTATS_OK) {
        txstats__free(&boot, t->shards_mem);
        txstats__free(&boot, t);
        return TXSTATS_ENOMEM;
    }
    *out = t;
    return TXSTATS_OK;
}

void txstats_destroy(txstats_t *t)
{
    if (!t)
        return;
    if (t->detach)
        t->detach(t);
    for (unsigned i = 0; i < t->nshards; i++) {
        txstats__window_fini(&t->shards[i].w);
        pthread_mutex_destroy(&t->shards[i].lock);
    }
    struct txstats__mem mem = t->mem;
    txstats__free(&mem, t->shards_mem);
    txstats__free(&mem, t);
}

static int admit(const txstats_config_t *cfg, txstats_amount_t amount, int64_t ts, int64_t now)
{
    if (amount <= -TXSTATS_AMOUNT_LIMIT || amount >= TXSTATS_AMOUNT_LIMIT)
        return TXSTATS_ERANGE;
    if (ts > now + cfg->max_skew_ms)
        return TXSTATS_EFUTURE;
    if (ts <= now - cfg->window_ms)
        return TXSTATS_EXPIRED;
    return TXSTATS_OK;
}

int txstats_admit(const txstats_config_t *cfg, txstats_amount_t amount, int64_t timestamp_ms,
                  int64_t now_ms)
{
    txstats_config_t def;
    if (!cfg) {
        txstats_config_init(&def);
        cfg = &def;
    }
    return admit(cfg, amount, timestamp_ms, now_ms);
}

/* Spread concurrent adds: start at the shard of the current CPU, take the first free lock. */
static struct txstats__shard *lock_some_shard(txstats_t *t)
{
    if (t->nshards == 1) {
        pthread_mutex_lock(&t->shards[0].lock);
        return &t->shards[0];
    }
    int cpu = sched_getcpu();
    unsigned start = cpu < 0 ? 0 : (unsigned)cpu % t->nshards;
    for (unsigned k = 0; k < t->nshards; k++) {
        struct txstats__shard *s = &t->shards[(start + k) % t->nshards];
        if (pthread_mutex_trylock(&s->lock) == 0)
            return s;
    }
    pthread_mutex_lock(&t->shards[start].lock);
    return &t->shards[start];
}

/* Reserve, journal, apply: the shard's lock held. */
static int add_locked(txstats_t *t, struct txstats__shard *s, txstats_amount_t amount, int64_t ts,
                      uint64_t *seq)
{
    struct txstats__reservation r;
    int rc = txstats__window_reserve(&s->w, amount, ts, &r);
    if (rc != TXSTATS_OK)
        return rc;
    if (s->js) { /* the record goes out before the window changes */
        struct txstats__jrec rec = {TXSTATS__REC_ADD, ts, amount};
        rc = txstats__jstream_append(t->journal, s->js, &rec, seq);
        if (rc != TXSTATS_OK) {
            txstats__window_cancel(&s->w, &r);
            return rc;
        }
    }
    txstats__window_apply(&s->w, &r);
    return TXSTATS_OK;
}

int txstats_add(txstats_t *t, txstats_amount_t amount, int64_t timestamp_ms)
{
    if (!t)
        return TXSTATS_EINVAL;
    int64_t now = txstats__now(t);
    int rc = admit(&t->cfg, amount, timestamp_ms, now);
    if (rc != TXSTATS_OK)
        return rc;
    struct txstats__shard *s = lock_some_shard(t);
    uint64_t seq = 0;
    txstats__window_advance(&s->w, now);
    rc = add_locked(t, s, amount, timestamp_ms, &seq);
    pthread_mutex_unlock(&s->lock);
    if (rc == TXSTATS_OK && s->js)
        rc = txstats__jstream_commit(t->journal, s->js, seq);
    return rc;
}

/* Scratch of a batch: reservations, records, their encoding, and which transaction each is. */
struct batch {
    struct txstats__reservation *r;
    struct txstats__jrec *rec;
    uint8_t *enc;
    size_t *idx;
    void *mem;
};

static int batch_alloc(txstats_t *t, size_t n, struct batch *b)
{
    size_t one = sizeof(*b->r) + sizeof(*b->rec) + TXSTATS__REC_SIZE + sizeof(*b->idx);
    if (n > SIZE_MAX / one || !(b->mem = txstats__alloc(&t->mem, (n ? n : 1) * one)))
        return TXSTATS_ENOMEM;
    b->r = b->mem;
    b->rec = (void *)(b->r + n);
    b->idx = (void *)(b->rec + n);
    b->enc = (void *)(b->idx + n);
    return TXSTATS_OK;
}

/* Judge and reserve every transaction; returns how many were reserved. Lock held. */
static size_t reserve_batch(txstats_t *t, struct txstats__shard *s, int64_t now,
                            const txstats_tx_t *tx, size_t n, int *res, struct batch *b)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = admit(&t->cfg, tx[i].amount, tx[i].timestamp_ms, now);
        if (rc == TXSTATS_OK)
            rc = txstats__window_reserve(&s->w, tx[i].amount, tx[i].timestamp_ms, &b->r[k]);
        res[i] = rc;
        if (rc == TXSTATS_OK) {
            b->rec[k] = (struct txstats__jrec){TXSTATS__REC_ADD, tx[i].timestamp_ms, tx[i].amount};
            b->idx[k++] = i;
        }
    }
    return k;
}

/* Journal the reserved ones in one write, then apply them all or cancel them all. Lock held. */
static int commit_batch(txstats_t *t, struct txstats__shard *s, struct batch *b, size_t k,
                        int *res, uint64_t *seq)
{
    int rc = TXSTATS_OK;
    if (s->js && k)
        rc = txstats__jstream_append_batch(t->journal, s->js, b->rec, k, b->enc, seq);
    for (size_t j = 0; j < k; j++) {
        if (rc == TXSTATS_OK) {
            txstats__window_apply(&s->w, &b->r[j]);
        } else {
            txstats__window_cancel(&s->w, &b->r[j]);
            res[b->idx[j]] = rc;
        }
    }
    return rc;
}

int txstats_add_batch(txstats_t *t, const txstats_tx_t *tx, size_t n, int *results,
                      size_t *stored)
{
    struct batch b;
    if (stored)
        *stored = 0;
    if (!t || (!tx && n > 0))
        return TXSTATS_EINVAL;
    int *res = results ? results : txstats__alloc(&t->mem, (n ? n : 1) * sizeof(int));
    if (!res || batch_alloc(t, n, &b) != TXSTATS_OK) {
        if (res != results)
            txstats__free(&t->mem, res);
        return TXSTATS_ENOMEM;
    }
    int64_t now = txstats__now(t);
    uint64_t seq = 0;
    struct txstats__shard *s = lock_some_shard(t);
    txstats__window_advance(&s->w, now);
    size_t k = reserve_batch(t, s, now, tx, n, res, &b);
    int rc = commit_batch(t, s, &b, k, res, &seq);
    pthread_mutex_unlock(&s->lock);
    if (rc == TXSTATS_OK && s->js && k && txstats__jstream_commit(t->journal, s->js, seq) != 0)
        for (size_t j = 0; j < k; j++) /* written and counted, not known durable: as add does */
            res[b.idx[j]] = TXSTATS_EIO;
    if (stored)
        *stored = rc == TXSTATS_OK ? k : 0;
    txstats__free(&t->mem, b.mem);
    if (res != results)
        txstats__free(&t->mem, res);
    return TXSTATS_OK;
}

void txstats__lock_all(txstats_t *t)
{
    for (unsigned i = 0; i < t->nshards; i++)
        pthread_mutex_lock(&t->shards[i].lock);
}

void txstats__unlock_all(txstats_t *t)
{
    for (unsigned i = t->nshards; i-- > 0;)
        pthread_mutex_unlock(&t->shards[i].lock);
}

int txstats_stats(txstats_t *t, txstats_summary_t *out)
{
    if (!t || !out)
        return TXSTATS_EINVAL;
    memset(out, 0, sizeof(*out));
    txstats__i128 sum = 0;
    struct txstats__minmax mm = {INT64_MAX, INT64_MIN};
    txstats__lock_all(t);
    int64_t now = txstats__now(t);
    for (unsigned i = 0; i < t->nshards; i++) {
        struct txstats__window *w = &t->shards[i].w;
        txstats__window_advance(w, now);
        struct txstats__minmax e = txstats__window_extremes(w);
        out->count += w->count;
        sum += w->sum;
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

/* Copy the kept amounts of one cell, oldest first, while there is room. */
static void copy_cell(const struct txstats__cell *c, int64_t ts, txstats_tx_t *buf, size_t cap,
                      size_t *w)
{
    struct txstats__kept_iter it;
    const txstats_amount_t *a;
    uint32_t n;
    txstats__kept_begin(c, &it);
    while (*w < cap && (a = txstats__kept_next(&it, &n)))
        for (uint32_t j = 0; j < n && *w < cap; j++)
            buf[(*w)++] = (txstats_tx_t){a[j], ts};
}

/* Merge the shards' cells in timestamp order (shard order within a millisecond); locks held. */
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

int txstats_get_ex(txstats_t *t, txstats_tx_t *buf, size_t cap, txstats_list_info_t *info)
{
    if (!t || !info || (!buf && cap > 0))
        return TXSTATS_EINVAL;
    memset(info, 0, sizeof(*info));
    txstats__lock_all(t);
    int64_t now = txstats__now(t);
    for (unsigned i = 0; i < t->nshards; i++) {
        txstats__window_advance(&t->shards[i].w, now);
        info->in_window += t->shards[i].w.count;
        info->retained += t->shards[i].w.kept;
    }
    size_t w = cap ? copy_all(t, now - t->cfg.window_ms + 1, now, buf, cap) : 0;
    txstats__unlock_all(t);
    info->written = w;
    info->now_ms = now;
    return w < info->retained ? TXSTATS_ENOBUFS : TXSTATS_OK;
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

/* Journal a clear in every stream; all shard locks held. */
static int journal_clear(txstats_t *t, uint64_t *seqs)
{
    struct txstats__jrec rec = {TXSTATS__REC_CLEAR, 0, (int64_t)++t->clear_id};
    for (unsigned i = 0; i < t->nshards; i++) {
        int rc = txstats__jstream_append(t->journal, t->shards[i].js, &rec, &seqs[i]);
        if (rc != TXSTATS_OK)
            return rc;
    }
    return TXSTATS_OK;
}

int txstats_clear_ex(txstats_t *t)
{
    if (!t)
        return TXSTATS_EINVAL;
    uint64_t seqs[TXSTATS__MAX_SHARDS];
    txstats__lock_all(t);
    int rc = t->journal ? journal_clear(t, seqs) : TXSTATS_OK;
    for (unsigned i = 0; i < t->nshards && rc == TXSTATS_OK; i++)
        txstats__window_reset(&t->shards[i].w);
    txstats__unlock_all(t);
    for (unsigned i = 0; t->journal && i < t->nshards && rc == TXSTATS_OK; i++)
        rc = txstats__jstream_commit(t->journal, t->shards[i].js, seqs[i]);
    return rc;
}

void txstats_clear(txstats_t *t)
{
    (void)txstats_clear_ex(t);
}
