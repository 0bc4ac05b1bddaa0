/* SPDX-License-Identifier: MIT */
/* Instances: configuration, allocation, the clock, and the operations that span shards. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

void *txstats__alloc(const txstats_t *t, size_t size)
{
    return t->cfg.alloc ? t->cfg.alloc(size, t->cfg.alloc_ud) : malloc(size);
}

void *txstats__calloc(const txstats_t *t, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = txstats__alloc(t, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void txstats__free(const txstats_t *t, void *p)
{
    if (!p)
        return;
    if (t->cfg.free)
        t->cfg.free(p, t->cfg.alloc_ud);
    else
        free(p);
}

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
        c->window_ms > TXSTATS_MAX_SPAN_MS - c->max_skew_ms || c->shards > 256 ||
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
        if (txstats__shard_init(t, &t->shards[i]) != TXSTATS_OK) {
            while (i-- > 0)
                txstats__shard_fini(t, &t->shards[i]);
            return TXSTATS_ENOMEM;
        }
    }
    return TXSTATS_OK;
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
    txstats_t boot = {.cfg = *cfg};
    txstats_t *t = txstats__alloc(&boot, sizeof(*t));
    if (!t)
        return TXSTATS_ENOMEM;
    memset(t, 0, sizeof(*t));
    t->cfg = *cfg;
    t->nshards = cfg->shards ? cfg->shards : auto_shards();
    for (t->ring = 64; t->ring <= cfg->window_ms + cfg->max_skew_ms;)
        t->ring <<= 1;
    t->mask = t->ring - 1;
    atomic_init(&t->last_now, -2 * TXSTATS__CLOCK_LIMIT);
    atomic_init(&t->pool, (uint64_t)cfg->max_retained);
    t->batch = cfg->max_retained / (8 * (uint64_t)t->nshards);
    t->batch = t->batch < 1 ? 1 : t->batch > 256 ? 256 : t->batch;
    t->shards_mem = txstats__alloc(t, t->nshards * sizeof(*t->shards) + 63);
    t->shards = (void *)(((uintptr_t)t->shards_mem + 63) & ~(uintptr_t)63);
    if (!t->shards_mem || init_shards(t) != TXSTATS_OK) {
        txstats__free(t, t->shards_mem);
        txstats__free(t, t);
        return TXSTATS_ENOMEM;
    }
    *out = t;
    return TXSTATS_OK;
}

void txstats_destroy(txstats_t *t)
{
    if (!t)
        return;
    txstats__journal_close(t);
    for (unsigned i = 0; i < t->nshards; i++)
        txstats__shard_fini(t, &t->shards[i]);
    txstats__free(t, t->shards_mem);
    txstats__free(t, t);
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

int txstats_add(txstats_t *t, txstats_amount_t amount, int64_t timestamp_ms)
{
    if (!t)
        return TXSTATS_EINVAL;
    if (amount <= -TXSTATS_AMOUNT_LIMIT || amount >= TXSTATS_AMOUNT_LIMIT)
        return TXSTATS_ERANGE;
    int64_t now = txstats__now(t);
    if (timestamp_ms > now + t->cfg.max_skew_ms)
        return TXSTATS_EFUTURE;
    if (timestamp_ms <= now - t->cfg.window_ms)
        return TXSTATS_EXPIRED;
    struct txstats__shard *s = lock_some_shard(t);
    txstats__shard_advance(t, s, now);
    int rc = txstats__shard_add(t, s, amount, timestamp_ms);
    uint64_t seq = s->jseq;
    pthread_mutex_unlock(&s->lock);
    if (rc == TXSTATS_OK && t->journal)
        rc = txstats__journal_commit(t, s, seq);
    return rc;
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
        struct txstats__shard *s = &t->shards[i];
        txstats__shard_advance(t, s, now);
        struct txstats__minmax e = txstats__shard_extremes(t, s);
        out->count += s->count;
        sum += s->sum;
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
    if (!c->tail)
        return;
    const struct txstats__chunk *k = c->tail->next;
    for (;;) {
        for (uint32_t j = 0; j < k->n && *w < cap; j++)
            buf[(*w)++] = (txstats_tx_t){k->amounts[j], ts};
        if (k == c->tail || *w >= cap)
            return;
        k = k->next;
    }
}

int txstats_get_ex(txstats_t *t, txstats_tx_t *buf, size_t cap, txstats_list_info_t *info)
{
    if (!t || !info || (!buf && cap > 0))
        return TXSTATS_EINVAL;
    memset(info, 0, sizeof(*info));
    size_t w = 0;
    txstats__lock_all(t);
    int64_t now = txstats__now(t);
    for (unsigned i = 0; i < t->nshards; i++) {
        txstats__shard_advance(t, &t->shards[i], now);
        info->in_window += t->shards[i].count;
        info->retained += t->shards[i].kept;
    }
    int64_t lo = now - t->cfg.window_ms + 1;
    for (int64_t ts = txstats__next_used(t, t->shards, t->nshards, lo, now);
         ts != INT64_MAX && w < cap; ts = txstats__next_used(t, t->shards, t->nshards, ts + 1, now))
        for (unsigned i = 0; i < t->nshards; i++)
            copy_cell(&t->shards[i].cells[ts & t->mask], ts, buf, cap, &w);
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

void txstats_clear(txstats_t *t)
{
    (void)txstats_clear_ex(t);
}
