/* SPDX-License-Identifier: MIT */
/*
 * The live operations: instances, the clock, locks, and the order of an add:
 * lock a shard -> reserve in its window -> append to its journal stream -> apply (or cancel) ->
 * unlock -> commit (wait for fdatasync when asked). Neither the window nor the journal knows of
 * the other.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <sodium.h>
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
    cfg->max_keys = TXSTATS_DEFAULT_MAX_KEYS;
    cfg->max_entities = TXSTATS_DEFAULT_MAX_ENTITIES;
}

/* The window's tags, told to the shard's entities. */
void txstats__tag_sink(void *ctx, uint32_t slot, txstats_amount_t amount, int op, unsigned span)
{
    struct txstats__entities *e = ctx;
    if (op == TXSTATS__TAG_COUNT)
        txstats__ent_count(e, slot, amount);
    else if (op == TXSTATS__TAG_UNCOUNT)
        txstats__ent_uncount(e, slot, amount, span);
    else
        txstats__ent_drop(e, slot);
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

/* The spans of a configuration (window_ms alone, or spans_ms): how many, or 0 when invalid
 * (none, more than TXSTATS_MAX_SPANS, one < 1 or past TXSTATS_MAX_SPAN_MS with the skew, or two
 * equal). */
static unsigned spans_of(const txstats_config_t *c, int64_t *out)
{
    unsigned n = c->spans_ms ? c->nspans : 1;
    if (n < 1 || n > TXSTATS_MAX_SPANS || c->max_skew_ms < 0 ||
        c->max_skew_ms > TXSTATS_MAX_SPAN_MS)
        return 0;
    for (unsigned i = 0; i < n; i++) {
        out[i] = c->spans_ms ? c->spans_ms[i] : c->window_ms;
        if (out[i] < 1 || out[i] > TXSTATS_MAX_SPAN_MS - c->max_skew_ms)
            return 0;
        for (unsigned j = 0; j < i; j++)
            if (out[j] == out[i])
                return 0;
    }
    return n;
}

static int check_config(const txstats_config_t *c)
{
    int64_t spans[TXSTATS_MAX_SPANS];
    if (!spans_of(c, spans) || c->shards > TXSTATS__MAX_SHARDS || c->key_ttl_ms < 0 ||
        c->key_ttl_ms > TXSTATS__CLOCK_LIMIT || (!c->alloc) != (!c->free))
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
        txstats__ent_init(&s->ents, &t->mem, &t->ents);
        s->w.sink = (struct txstats__tag_sink){txstats__tag_sink, &s->ents};
    }
    return TXSTATS_OK;
}

/* The spans, and which is the longest (what the windows keep). */
static void init_spans(txstats_t *t, const txstats_config_t *cfg)
{
    struct txstats__geom *g = &t->geom;
    g->nspans = spans_of(cfg, g->spans);
    g->longest = 0;
    for (unsigned i = 1; i < g->nspans; i++)
        g->longest = g->spans[i] > g->spans[g->longest] ? i : g->longest;
    g->window_ms = g->spans[g->longest];
    g->skew_ms = cfg->max_skew_ms;
    t->ents.nspans = g->nspans;
    t->ents.longest = g->longest;
}

static void init_geometry(txstats_t *t, const txstats_config_t *cfg)
{
    t->cfg = *cfg;
    t->mem = (struct txstats__mem){cfg->alloc, cfg->free, cfg->alloc_ud};
    t->nshards = cfg->shards ? cfg->shards : auto_shards();
    init_spans(t, cfg);
    /* t->cfg's window is the longest span: what admission and loads keep; the spans live in
     * t->geom (the caller's array is not kept). */
    t->cfg.window_ms = t->geom.window_ms;
    t->cfg.spans_ms = NULL;
    t->cfg.nspans = 0;
    atomic_init(&t->last_now, -2 * TXSTATS__CLOCK_LIMIT);
    int64_t lifetime = t->geom.window_ms + cfg->max_skew_ms;
    t->key_ttl = cfg->key_ttl_ms > lifetime ? cfg->key_ttl_ms : lifetime;
    atomic_init(&t->ret.pool, (uint64_t)cfg->max_retained);
    t->ents.cap = cfg->max_entities;
    for (unsigned b = 0; b < TXSTATS__PLACE_BUCKETS; b++)
        atomic_init(&t->place[b], (uint8_t)(b % t->nshards));
    uint64_t key[2];
    randombytes_buf(key, sizeof(key));
    atomic_init(&t->ents.hash_key[0], key[0]);
    atomic_init(&t->ents.hash_key[1], key[1]);
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
    if (sodium_init() < 0)
        return TXSTATS_ENOMEM;
    /* The instance holds 64-byte aligned members (shards, key sub-tables): aligned here, since
     * malloc and a caller's allocator promise only 16. */
    void *self = txstats__alloc(&boot, sizeof(txstats_t) + 63);
    if (!self)
        return TXSTATS_ENOMEM;
    txstats_t *t = (void *)(((uintptr_t)self + 63) & ~(uintptr_t)63);
    memset(t, 0, sizeof(*t));
    t->self_mem = self;
    init_geometry(t, cfg);
    t->shards_mem = txstats__alloc(&t->mem, t->nshards * sizeof(*t->shards) + 63);
    t->shards = (void *)(((uintptr_t)t->shards_mem + 63) & ~(uintptr_t)63);
    if (!t->shards_mem || init_shards(t) != TXSTATS_OK) {
        txstats__free(&boot, t->shards_mem);
        txstats__free(&boot, self);
        return TXSTATS_ENOMEM;
    }
    if (txstats__keys_init(&t->keys, &t->mem, cfg->max_keys) != TXSTATS_OK) {
        t->detach = NULL;
        txstats_destroy(t);
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
        txstats__ent_fini(&t->shards[i].ents);
        pthread_mutex_destroy(&t->shards[i].lock);
    }
    txstats__keys_fini(&t->keys);
    struct txstats__mem mem = t->mem;
    txstats__free(&mem, t->shards_mem);
    txstats__free(&mem, t->self_mem);
}

static int admit(const txstats_config_t *cfg, txstats_amount_t amount, int64_t ts, int64_t now)
{
    int64_t latest, oldest; /* saturating: any clock reading and config a caller passes */
    if (amount <= -TXSTATS_AMOUNT_LIMIT || amount >= TXSTATS_AMOUNT_LIMIT)
        return TXSTATS_ERANGE;
    if (__builtin_add_overflow(now, cfg->max_skew_ms, &latest))
        latest = INT64_MAX;
    if (__builtin_sub_overflow(now, cfg->window_ms, &oldest))
        oldest = INT64_MIN;
    if (ts > latest)
        return TXSTATS_EFUTURE;
    if (ts <= oldest)
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
    txstats_config_t longest = *cfg;
    if (cfg->spans_ms) { /* the spans as txstats_create() checks them, without the maximum */
        if (cfg->nspans < 1 || cfg->nspans > TXSTATS_MAX_SPANS)
            return TXSTATS_EINVAL;
        longest.window_ms = 0;
        for (unsigned i = 0; i < cfg->nspans; i++) {
            for (unsigned j = 0; j < i; j++)
                if (cfg->spans_ms[j] == cfg->spans_ms[i])
                    return TXSTATS_EINVAL;
            if (cfg->spans_ms[i] < 1)
                return TXSTATS_EINVAL;
            longest.window_ms =
                cfg->spans_ms[i] > longest.window_ms ? cfg->spans_ms[i] : longest.window_ms;
        }
    }
    if (longest.window_ms < 1 || cfg->max_skew_ms < 0)
        return TXSTATS_EINVAL;
    return admit(&longest, amount, timestamp_ms, now_ms);
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

/* The entity a transaction counts for: its key, and the hash that places it. */
struct ent_ref {
    const void *key;
    size_t len;
    uint64_t hash;
};

struct txstats__shard *txstats__lock_entity(txstats_t *t, const void *key, size_t len,
                                            uint64_t *hash)
{
    for (;;) {
        uint64_t epoch = atomic_load_explicit(&t->ents.epoch, memory_order_acquire);
        *hash = txstats__ent_hash(&t->ents, key, len);
        struct txstats__shard *s = &t->shards[txstats__home(t, *hash)];
        pthread_mutex_lock(&s->lock);
        if (atomic_load_explicit(&t->ents.epoch, memory_order_relaxed) == epoch)
            return s;
        pthread_mutex_unlock(&s->lock); /* a load changed the key meanwhile */
    }
}

static struct txstats__jrec add_record(txstats_amount_t amount, int64_t ts,
                                       const struct txstats__key *key, const struct ent_ref *ent,
                                       bool kept)
{
    struct txstats__jrec rec = {.type = TXSTATS__REC_ADD,
                                .ts = ts,
                                .value = amount,
                                .keep = kept ? TXSTATS__KEEP_YES : TXSTATS__KEEP_NO};
    if (key) {
        rec.type = TXSTATS__REC_ADD_KEYED;
        rec.key[0] = key->h[0];
        rec.key[1] = key->h[1];
    }
    if (ent) {
        rec.type = key ? TXSTATS__REC_KEYED_ENT : TXSTATS__REC_ADD_ENT;
        rec.ent = ent->key;
        rec.ent_len = (uint32_t)ent->len;
    }
    return rec;
}

/* The entity's slot in the shard, one transaction reserved there: its tag (slot + 1), or an
 * error (TXSTATS_ELIMIT, TXSTATS_ENOMEM) with nothing held. */
static int reserve_entity(struct txstats__shard *s, const struct ent_ref *ent, uint32_t *tag)
{
    uint32_t slot;
    int rc = txstats__ent_acquire(&s->ents, ent->key, ent->len, ent->hash, &slot);
    if (rc == TXSTATS_OK)
        rc = txstats__ent_reserve(&s->ents, slot);
    *tag = rc == TXSTATS_OK ? slot + 1 : 0;
    return rc;
}

/* Reserve, journal, apply: the shard's lock held. flatten: the window's reserve and apply inline
 * here whatever their size (callgrind: 637 -> 590 instructions per add). */
__attribute__((flatten)) static int
add_locked(txstats_t *t, struct txstats__shard *s, txstats_amount_t amount, int64_t ts,
           const struct txstats__key *key, const struct ent_ref *ent, bool may_keep, uint64_t *seq)
{
    struct txstats__reservation r;
    uint32_t tag = 0;
    int rc = ent ? reserve_entity(s, ent, &tag) : TXSTATS_OK;
    if (rc != TXSTATS_OK)
        return rc;
    rc = txstats__window_reserve(&s->w, amount, ts, tag, &r, NULL, may_keep);
    if (rc != TXSTATS_OK) {
        if (tag)
            txstats__ent_cancel(&s->ents, tag - 1, true);
        return rc;
    }
    if (s->js) { /* the record goes out before the window changes */
        struct txstats__jrec rec = add_record(amount, ts, key, ent, r.keep);
        rc = txstats__jstream_append(t->journal, s->js, &rec, seq);
        if (rc != TXSTATS_OK) {
            txstats__window_cancel(&s->w, &r);
            return rc;
        }
    }
    txstats__window_apply(&s->w, &r);
    return TXSTATS_OK;
}

void txstats__advance_all(txstats_t *t, int64_t now)
{
    for (unsigned i = 0; i < t->nshards; i++) {
        pthread_mutex_lock(&t->shards[i].lock);
        txstats__window_advance(&t->shards[i].w, now);
        pthread_mutex_unlock(&t->shards[i].lock);
    }
}

/* An entity's transaction into its home shard: locked, advanced, added. At the entity cap, once
 * more after every shard advanced (their expired entities freed); then refused for good. */
static int add_entity(txstats_t *t, txstats_amount_t amount, int64_t ts, int64_t now,
                      const struct txstats__key *key, struct ent_ref ent, bool may_keep,
                      struct txstats__shard **sp, uint64_t *seq)
{
    int rc = TXSTATS_ELIMIT;
    for (int round = 0; round < 2 && rc == TXSTATS_ELIMIT; round++) {
        if (round)
            txstats__advance_all(t, now);
        struct txstats__shard *s = txstats__lock_entity(t, ent.key, ent.len, &ent.hash);
        txstats__window_advance(&s->w, now);
        rc = add_locked(t, s, amount, ts, key, &ent, may_keep, seq);
        pthread_mutex_unlock(&s->lock);
        *sp = s;
    }
    if (rc == TXSTATS_ELIMIT)
        atomic_fetch_add_explicit(&t->ents.refused, 1, memory_order_relaxed);
    return rc;
}

/* An admitted transaction into a shard (an entity's own, else some shard): lock, reserve,
 * journal, apply, unlock, commit. */
static int add_admitted(txstats_t *t, txstats_amount_t amount, int64_t ts, int64_t now,
                        const struct txstats__key *key, const struct ent_ref *ent, bool may_keep)
{
    struct txstats__shard *s;
    uint64_t seq = 0;
    int rc;
    if (ent) {
        rc = add_entity(t, amount, ts, now, key, *ent, may_keep, &s, &seq);
    } else {
        s = lock_some_shard(t);
        txstats__window_advance(&s->w, now);
        rc = add_locked(t, s, amount, ts, key, NULL, may_keep, &seq);
        pthread_mutex_unlock(&s->lock);
    }
    if (rc == TXSTATS_OK && s->js)
        rc = txstats__jstream_commit(t->journal, s->js, seq);
    return rc;
}

int txstats_add(txstats_t *t, txstats_amount_t amount, int64_t timestamp_ms)
{
    if (!t)
        return TXSTATS_EINVAL;
    int64_t now = txstats__now(t);
    int rc = admit(&t->cfg, amount, timestamp_ms, now);
    return rc == TXSTATS_OK ? add_admitted(t, amount, timestamp_ms, now, NULL, NULL, true) : rc;
}

/* The first sight of a key (its sub-table locked): judge, remember, then store when admitted.
 * A stored transaction's key is remembered before it counts, so that no concurrent retry can
 * miss it; a failed store forgets it again. */
static int add_first(txstats_t *t, struct txstats__key_sub *sub, const txstats_tx_t *tx,
                     const struct txstats__key *key, const struct ent_ref *ent, int64_t now)
{
    int rc = admit(&t->cfg, tx->amount, tx->timestamp_ms, now);
    struct txstats__key_info info = {txstats__key_fingerprint(tx->amount, tx->timestamp_ms,
                                                              ent ? ent->key : NULL,
                                                              ent ? ent->len : 0),
                                     rc, (rc == TXSTATS_OK ? tx->timestamp_ms : now) + t->key_ttl};
    int put = txstats__keys_put(&t->keys, sub, key, &info, now);
    if (rc != TXSTATS_OK || put != TXSTATS_OK)
        return rc != TXSTATS_OK ? rc : put; /* a refusal stands even when it cannot be kept */
    rc = add_admitted(t, tx->amount, tx->timestamp_ms, now, key, ent, true);
    if (rc != TXSTATS_OK)
        txstats__keys_forget(sub, key);
    return rc;
}

/* A keyed transaction, its key's sub-table locked. */
static int add_keyed_locked(txstats_t *t, struct txstats__key_sub *sub, const txstats_tx_t *tx,
                            const struct txstats__key *key, const struct ent_ref *ent, int64_t now,
                            int *first)
{
    struct txstats__key_info info;
    if (!txstats__keys_find(sub, key, now, &info))
        return add_first(t, sub, tx, key, ent, now);
    if (first)
        *first = info.status;
    uint64_t fp = txstats__key_fingerprint(tx->amount, tx->timestamp_ms, ent ? ent->key : NULL,
                                           ent ? ent->len : 0);
    return info.fp == fp ? TXSTATS_DUPLICATE : TXSTATS_ECONFLICT;
}

/* Whether an input's entity and key have lengths the API allows (absent ones do). */
static bool input_ok(const txstats_input_t *in)
{
    bool ent = in->entity && in->entity_len;
    bool key = in->idem_key && in->idem_key_len;
    return (!ent || in->entity_len <= TXSTATS_MAX_ENTITY_BYTES) &&
           (!key || in->idem_key_len <= TXSTATS_MAX_KEY_BYTES) &&
           !(in->entity_len && !in->entity) && !(in->idem_key_len && !in->idem_key);
}

int txstats_add_ex(txstats_t *t, const txstats_input_t *in, int *first)
{
    if (!t || !in || !input_ok(in))
        return TXSTATS_EINVAL;
    struct ent_ref ent = {in->entity, in->entity_len, 0};
    struct ent_ref *e = in->entity_len ? &ent : NULL;
    int64_t now = txstats__now(t);
    if (!in->idem_key_len) {
        int rc = admit(&t->cfg, in->amount, in->timestamp_ms, now);
        return rc == TXSTATS_OK ? add_admitted(t, in->amount, in->timestamp_ms, now, NULL, e, true)
                                : rc;
    }
    struct txstats__key k;
    txstats__key_digest(in->idem_key, in->idem_key_len, &k);
    txstats_tx_t tx = {in->amount, in->timestamp_ms};
    struct txstats__key_sub *sub = txstats__keys_lock(&t->keys, &k);
    int rc = add_keyed_locked(t, sub, &tx, &k, e, now, first);
    txstats__keys_unlock(sub);
    return rc;
}

int txstats_add_entity(txstats_t *t, const void *entity, size_t entity_len, txstats_amount_t amount,
                       int64_t timestamp_ms)
{
    if (!entity || entity_len == 0)
        return TXSTATS_EINVAL;
    txstats_input_t in = {amount, timestamp_ms, entity, entity_len, NULL, 0};
    return txstats_add_ex(t, &in, NULL);
}

int txstats_add_keyed(txstats_t *t, txstats_amount_t amount, int64_t timestamp_ms, const void *key,
                      size_t key_len, int *first)
{
    if (!key || key_len == 0)
        return TXSTATS_EINVAL;
    txstats_input_t in = {amount, timestamp_ms, NULL, 0, key, key_len};
    return txstats_add_ex(t, &in, first);
}

int txstats_key_check_ex(txstats_t *t, const txstats_input_t *in, int *first)
{
    if (!t || !in || !in->idem_key || in->idem_key_len == 0 || !input_ok(in))
        return TXSTATS_EINVAL;
    struct txstats__key k;
    struct txstats__key_info info;
    txstats__key_digest(in->idem_key, in->idem_key_len, &k);
    struct txstats__key_sub *sub = txstats__keys_lock(&t->keys, &k);
    bool known = txstats__keys_find(sub, &k, txstats__now(t), &info);
    txstats__keys_unlock(sub);
    if (!known)
        return TXSTATS_OK;
    if (first)
        *first = info.status;
    uint64_t fp = txstats__key_fingerprint(in->amount, in->timestamp_ms, in->entity,
                                           in->entity ? in->entity_len : 0);
    return info.fp == fp ? TXSTATS_DUPLICATE : TXSTATS_ECONFLICT;
}

int txstats_key_check(txstats_t *t, txstats_amount_t amount, int64_t timestamp_ms, const void *key,
                      size_t key_len, int *first)
{
    txstats_input_t in = {amount, timestamp_ms, NULL, 0, key, key_len};
    return key && key_len ? txstats_key_check_ex(t, &in, first) : TXSTATS_EINVAL;
}

int txstats__replay(txstats_t *t, const struct txstats__jrec *rec)
{
    int64_t now = txstats__now(t);
    if (rec->type == TXSTATS__REC_ADD_KEYED || rec->type == TXSTATS__REC_KEYED_ENT) {
        struct txstats__key key = {{rec->key[0], rec->key[1]}};
        struct txstats__key_info info = {
            txstats__key_fingerprint(rec->value, rec->ts, rec->ent, rec->ent_len), TXSTATS_OK,
            rec->ts + t->key_ttl};
        struct txstats__key_sub *sub = txstats__keys_lock(&t->keys, &key);
        int put = txstats__keys_put(&t->keys, sub, &key, &info, now);
        txstats__keys_unlock(sub);
        if (put == TXSTATS_ENOMEM)
            return put; /* at the cap, the transaction still counts */
    }
    int rc = admit(&t->cfg, rec->value, rec->ts, now);
    if (rc != TXSTATS_OK)
        return rc;
    struct ent_ref ent = {rec->ent, rec->ent_len, 0};
    bool keep = rec->keep != TXSTATS__KEEP_NO;
    if (!rec->ent_len)
        return add_admitted(t, rec->value, rec->ts, now, NULL, NULL, keep);
    rc = add_admitted(t, rec->value, rec->ts, now, NULL, &ent, keep);
    /* Restarted with a smaller max_entities: the global window still gets it. */
    return rc == TXSTATS_ELIMIT ? add_admitted(t, rec->value, rec->ts, now, NULL, NULL, keep) : rc;
}

int txstats_key_count(txstats_t *t, uint64_t *held)
{
    if (!t || !held)
        return TXSTATS_EINVAL;
    *held = txstats__keys_count(&t->keys);
    return TXSTATS_OK;
}

/* Scratch of a batch: reservations, records, their encoding, which transaction each is, keys. */
struct pend_slot {
    int64_t ts; /* INT64_MIN: empty */
    struct txstats__pending p;
};

struct batch {
    struct txstats__reservation *r;
    struct txstats__jrec *rec;
    uint8_t *enc;
    size_t *idx;
    struct txstats__key *keys; /* digests; h == {0, 0}: no key */
    void *mem;
    struct pend_slot *pend; /* the batch's reservations per millisecond, open addressing */
    size_t npend;           /* a power of two, at least twice the batch */
};

/* The batch's pending reservations in the cell of ts. */
static struct txstats__pending *pending_of(struct batch *b, int64_t ts)
{
    size_t mask = b->npend - 1;
    for (size_t i = (size_t)(((uint64_t)ts * 0x9E3779B97F4A7C15u) >> 20) & mask;;
         i = (i + 1) & mask) {
        if (b->pend[i].ts == ts)
            return &b->pend[i].p;
        if (b->pend[i].ts == INT64_MIN) {
            b->pend[i].ts = ts;
            return &b->pend[i].p;
        }
    }
}

static int batch_alloc(txstats_t *t, size_t n, struct batch *b)
{
    size_t one =
        sizeof(*b->r) + sizeof(*b->rec) + TXSTATS__REC_MAX + sizeof(*b->idx) + sizeof(*b->keys);
    for (b->npend = 16; b->npend < 2 * n;)
        b->npend *= 2;
    if (n > SIZE_MAX / one || !(b->mem = txstats__alloc(&t->mem, (n ? n : 1) * one)))
        return TXSTATS_ENOMEM;
    if (!(b->pend = txstats__alloc(&t->mem, b->npend * sizeof(*b->pend)))) {
        txstats__free(&t->mem, b->mem);
        return TXSTATS_ENOMEM;
    }
    for (size_t i = 0; i < b->npend; i++)
        b->pend[i] = (struct pend_slot){INT64_MIN, {0, 0, 0}};
    b->r = b->mem;
    b->rec = (void *)(b->r + n);
    b->keys = (void *)(b->rec + n);
    b->idx = (void *)(b->keys + n);
    b->enc = (void *)(b->idx + n);
    return TXSTATS_OK;
}

/* Keyed transaction i before it is reserved (all key locks held): TXSTATS_OK to go on (its key
 * remembered as stored), or its final result. */
static int judge_keyed(txstats_t *t, const txstats_tx_t *tx, const txstats_key_t *key,
                       struct txstats__key *k, int64_t now, int *first)
{
    if (key->len > TXSTATS_MAX_KEY_BYTES)
        return TXSTATS_EINVAL;
    txstats__key_digest(key->key, key->len, k);
    struct txstats__key_sub *sub = txstats__keys_sub(&t->keys, k);
    struct txstats__key_info info;
    if (txstats__keys_find(sub, k, now, &info)) {
        *first = info.status;
        return info.fp == txstats__key_fingerprint(tx->amount, tx->timestamp_ms, NULL, 0)
                   ? TXSTATS_DUPLICATE
                   : TXSTATS_ECONFLICT;
    }
    int rc = admit(&t->cfg, tx->amount, tx->timestamp_ms, now);
    info =
        (struct txstats__key_info){txstats__key_fingerprint(tx->amount, tx->timestamp_ms, NULL, 0),
                                   rc, (rc == TXSTATS_OK ? tx->timestamp_ms : now) + t->key_ttl};
    int put = txstats__keys_put(&t->keys, sub, k, &info, now);
    return rc != TXSTATS_OK ? rc : put;
}

/* Judge and reserve transaction i; on success it joins the batch's records. Lock(s) held. */
static int reserve_one(txstats_t *t, struct txstats__shard *s, int64_t now, const txstats_tx_t *tx,
                       const txstats_key_t *key, size_t i, size_t *k, struct batch *b, int *first)
{
    struct txstats__key *kd = &b->keys[*k];
    bool keyed = key && key->key && key->len > 0;
    int rc = keyed ? judge_keyed(t, tx, key, kd, now, first)
                   : admit(&t->cfg, tx->amount, tx->timestamp_ms, now);
    if (rc == TXSTATS_OK)
        rc = txstats__window_reserve(&s->w, tx->amount, tx->timestamp_ms, 0, &b->r[*k],
                                     pending_of(b, tx->timestamp_ms), true);
    if (rc == TXSTATS_ENOMEM && keyed) /* the key was remembered as stored: it is not */
        txstats__keys_forget(txstats__keys_sub(&t->keys, kd), kd);
    if (rc != TXSTATS_OK)
        return rc;
    b->rec[*k] = add_record(tx->amount, tx->timestamp_ms, keyed ? kd : NULL, NULL, b->r[*k].keep);
    if (!keyed)
        kd->h[0] = kd->h[1] = 0;
    b->idx[(*k)++] = i;
    return TXSTATS_OK;
}

/* Journal the reserved ones in one write, then apply them all or cancel them all (forgetting
 * their keys). Lock(s) held. */
static int commit_batch(txstats_t *t, struct txstats__shard *s, struct batch *b, size_t k, int *res,
                        uint64_t *seq)
{
    int rc = TXSTATS_OK;
    if (s->js && k)
        rc = txstats__jstream_append_batch(t->journal, s->js, b->rec, k, b->enc, seq);
    for (size_t j = 0; j < k; j++) {
        if (rc == TXSTATS_OK) {
            txstats__window_apply(&s->w, &b->r[j]);
            continue;
        }
        txstats__window_cancel(&s->w, &b->r[j]);
        if (b->keys[j].h[0] || b->keys[j].h[1])
            txstats__keys_forget(txstats__keys_sub(&t->keys, &b->keys[j]), &b->keys[j]);
        res[b->idx[j]] = rc;
    }
    return rc;
}

/* After a failed journal write: a line that repeated the key of a line that was to be stored,
 * and is now forgotten, reports the failure too, not a duplicate of it. Key locks held. */
static void undo_repeats(txstats_t *t, const txstats_key_t *keys, size_t n, int *res, int64_t now,
                         int rc)
{
    for (size_t i = 0; i < n; i++) {
        if ((res[i] != TXSTATS_DUPLICATE && res[i] != TXSTATS_ECONFLICT) || !keys[i].key)
            continue;
        struct txstats__key k;
        struct txstats__key_info info;
        txstats__key_digest(keys[i].key, keys[i].len, &k);
        if (!txstats__keys_find(txstats__keys_sub(&t->keys, &k), &k, now, &info))
            res[i] = rc;
    }
}

/* The batch under the locks: judge, reserve, journal, apply. Returns how many were stored. */
static size_t run_batch(txstats_t *t, const txstats_tx_t *tx, const txstats_key_t *keys, size_t n,
                        int *res, int *firsts, struct batch *b)
{
    int64_t now = txstats__now(t);
    uint64_t seq = 0;
    size_t k = 0;
    struct txstats__shard *s = lock_some_shard(t);
    txstats__window_advance(&s->w, now);
    for (size_t i = 0; i < n; i++) {
        int first = TXSTATS_OK;
        res[i] = reserve_one(t, s, now, &tx[i], keys ? &keys[i] : NULL, i, &k, b, &first);
        if (firsts)
            firsts[i] = first;
    }
    int rc = commit_batch(t, s, b, k, res, &seq);
    pthread_mutex_unlock(&s->lock);
    if (rc != TXSTATS_OK && keys)
        undo_repeats(t, keys, n, res, now, rc);
    if (rc == TXSTATS_OK && s->js && k && txstats__jstream_commit(t->journal, s->js, seq) != 0)
        for (size_t j = 0; j < k; j++) /* written and counted, not known durable: as add does */
            res[b->idx[j]] = TXSTATS_EIO;
    return rc == TXSTATS_OK ? k : 0;
}

int txstats_add_batch_keyed(txstats_t *t, const txstats_tx_t *tx, const txstats_key_t *keys,
                            size_t n, int *results, int *firsts, size_t *stored)
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
    if (keys) /* lock order everywhere: keys, then shards */
        txstats__keys_lock_all(&t->keys);
    size_t k = run_batch(t, tx, keys, n, res, firsts, &b);
    if (keys)
        txstats__keys_unlock_all(&t->keys);
    if (stored)
        *stored = k;
    txstats__free(&t->mem, b.mem);
    txstats__free(&t->mem, b.pend);
    if (res != results)
        txstats__free(&t->mem, res);
    return TXSTATS_OK;
}

int txstats_add_batch(txstats_t *t, const txstats_tx_t *tx, size_t n, int *results, size_t *stored)
{
    return txstats_add_batch_keyed(t, tx, NULL, n, results, NULL, stored);
}

/* A batch naming entities: line by line, in order. */
static int batch_by_line(txstats_t *t, const txstats_input_t *in, size_t n, int *results,
                         int *firsts, size_t *stored)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int first = TXSTATS_OK;
        int rc = txstats_add_ex(t, &in[i], &first);
        k += rc == TXSTATS_OK;
        if (results)
            results[i] = rc;
        if (firsts)
            firsts[i] = first;
    }
    if (stored)
        *stored = k;
    return TXSTATS_OK;
}

/* A batch without entities: txstats_add_batch_keyed() (one lock, one journal write). */
static int batch_unnamed(txstats_t *t, const txstats_input_t *in, size_t n, int *results,
                         int *firsts, size_t *stored)
{
    txstats_tx_t *tx = txstats__alloc(&t->mem, (n ? n : 1) * sizeof(*tx));
    txstats_key_t *keys = txstats__alloc(&t->mem, (n ? n : 1) * sizeof(*keys));
    int rc = tx && keys ? TXSTATS_OK : TXSTATS_ENOMEM;
    for (size_t i = 0; i < n && rc == TXSTATS_OK; i++) {
        tx[i] = (txstats_tx_t){in[i].amount, in[i].timestamp_ms};
        keys[i] = (txstats_key_t){in[i].idem_key, in[i].idem_key_len};
    }
    if (rc == TXSTATS_OK)
        rc = txstats_add_batch_keyed(t, tx, keys, n, results, firsts, stored);
    txstats__free(&t->mem, tx);
    txstats__free(&t->mem, keys);
    return rc;
}

int txstats_add_batch_ex(txstats_t *t, const txstats_input_t *in, size_t n, int *results,
                         int *firsts, size_t *stored)
{
    if (stored)
        *stored = 0;
    if (!t || (!in && n > 0))
        return TXSTATS_EINVAL;
    bool named = false;
    for (size_t i = 0; i < n && !named; i++)
        named = in[i].entity_len > 0 || !input_ok(&in[i]);
    return named ? batch_by_line(t, in, n, results, firsts, stored)
                 : batch_unnamed(t, in, n, results, firsts, stored);
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

int txstats__journal_clear(txstats_t *t, uint64_t *seqs)
{
    struct txstats__jrec rec = {.type = TXSTATS__REC_CLEAR, .value = (int64_t)++t->clear_id};
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
    txstats__keys_lock_all(&t->keys); /* lock order everywhere: keys, then shards */
    txstats__lock_all(t);
    int rc = t->journal ? txstats__journal_clear(t, seqs) : TXSTATS_OK;
    for (unsigned i = 0; i < t->nshards && rc == TXSTATS_OK; i++)
        txstats__window_reset(&t->shards[i].w);
    if (rc == TXSTATS_OK) {
        txstats__keys_clear(&t->keys);
        atomic_fetch_add(&t->generation, 1);
    }
    txstats__unlock_all(t);
    txstats__keys_unlock_all(&t->keys);
    return rc == TXSTATS_OK ? txstats__journal_commit_all(t, seqs) : rc;
}

int txstats__journal_commit_all(txstats_t *t, const uint64_t *seqs)
{
    int rc = TXSTATS_OK;
    for (unsigned i = 0; t->journal && i < t->nshards && rc == TXSTATS_OK; i++)
        rc = txstats__jstream_commit(t->journal, t->shards[i].js, seqs[i]);
    return rc;
}

void txstats_clear(txstats_t *t)
{
    (void)txstats_clear_ex(t);
}
