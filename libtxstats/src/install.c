/* SPDX-License-Identifier: MIT */
/* The image reader: a checking pass, then the install under every lock (install.h). */
#include <string.h>

#include "distribution.h"
#include "install.h"
#include "snapshot.h"

struct stream {
    bool present;
    uint64_t bound;
    struct txstats__img_cut *v;
    size_t n, cap;
};

struct txstats__load {
    txstats_t *t;
    struct txstats__img_in *in;
    bool apply; /* the second pass */
    int64_t now;
    struct txstats__keys keys; /* the image's keys, swapped in by the second pass */
    struct stream streams[TXSTATS__MAX_STREAMS];
    /* The walk. */
    bool headed, ended, sectioned, open, skip;
    unsigned sections, section;
    int64_t ts, prev;
    uint64_t nkept; /* amounts of the open cell */
    txstats_amount_t amin, amax;
    txstats__i128 asum;
    uint64_t nsingles; /* its buckets of one amount ('B') */
    uint32_t bmin, bmax;
    struct txstats__stage st;
    uint64_t cells, count, kept, nkeys, loaded, dropped;
    uint64_t listed; /* of `loaded`, the amounts given by bucket counts, not retained */
    /* Entities: the image's hash key and placement ('P'), the section's names (index -> the slot
     * it got in the target shard; NO_SLOT: none), the open cell's tags. */
    uint64_t hkey[2];
    uint8_t place[TXSTATS__PLACE_BUCKETS]; /* bucket -> section */
    bool placed;
    uint32_t *names;
    size_t nnames, names_cap;
    uint64_t ntags;
    txstats_amount_t tmin, tmax;
    /* The second pass builds here, aside from the live shards, and swaps in when all is built. */
    struct txstats__window *fresh;
    struct txstats__entities *fents;
    struct txstats__retention ret;  /* the budget the fresh windows retain from */
    struct txstats__ent_shared esh; /* the image's hash key; the fresh entities' count */
};

#define NO_SLOT UINT32_MAX

static struct txstats__window *target(const struct txstats__load *l)
{
    return &l->fresh[l->section % l->t->nshards];
}

static struct txstats__entities *target_ents(const struct txstats__load *l)
{
    return &l->fents[l->section % l->t->nshards];
}

static bool inside(const struct txstats__load *l, int64_t ts)
{
    return ts > l->now - l->t->cfg.window_ms && ts <= l->now + l->t->cfg.max_skew_ms;
}

/* The instance takes the image's placement: each bucket goes to the shard its section goes to;
 * and its hash key (every lock held, at the swap). */
static void adopt_placement(struct txstats__load *l)
{
    txstats_t *t = l->t;
    for (unsigned b = 0; b < TXSTATS__PLACE_BUCKETS; b++)
        atomic_store_explicit(&t->place[b], (uint8_t)(l->place[b] % t->nshards),
                              memory_order_relaxed);
    if (l->placed) {
        atomic_store(&t->ents.hash_key[0], l->hkey[0]);
        atomic_store(&t->ents.hash_key[1], l->hkey[1]);
    }
    atomic_fetch_add(&t->ents.epoch, 1);
}

static int on_header(struct txstats__load *l, const struct txstats__img_rec *r)
{
    if (l->headed || (int64_t)r->f[0] < 1 || r->f[2] < 1 || r->f[2] > TXSTATS__MAX_SHARDS)
        return TXSTATS_EFORMAT;
    l->headed = true;
    l->sections = (unsigned)r->f[2];
    l->placed = false;
    for (unsigned b = 0; b < TXSTATS__PLACE_BUCKETS; b++) /* an image of 0.2: no entities */
        l->place[b] = (uint8_t)(b % l->sections);
    return TXSTATS_OK;
}

/* 'P': the hash key, and the section of each bucket, 8 to a word. */
static int on_place(struct txstats__load *l, const struct txstats__img_rec *r)
{
    if (l->placed || l->sectioned || r->n != TXSTATS__PLACE_BUCKETS / 8)
        return TXSTATS_EFORMAT;
    for (unsigned b = 0; b < TXSTATS__PLACE_BUCKETS; b++) {
        uint64_t section = txstats__img_word(r->arr, b / 8) >> (8 * (b % 8)) & 0xff;
        if (section >= l->sections)
            return TXSTATS_EFORMAT;
        l->place[b] = (uint8_t)section;
    }
    l->hkey[0] = r->f[0];
    l->hkey[1] = r->f[1];
    l->placed = true;
    if (l->apply) { /* the fresh entities hash with the image's key */
        atomic_store(&l->esh.hash_key[0], l->hkey[0]);
        atomic_store(&l->esh.hash_key[1], l->hkey[1]);
    }
    return TXSTATS_OK;
}

/* The section's names that no tag took are let go (apply pass); the names start again. */
static void names_end(struct txstats__load *l)
{
    for (size_t i = 0; l->apply && i < l->nnames; i++)
        if (l->names[i] != NO_SLOT)
            txstats__ent_cancel(target_ents(l), l->names[i], false);
    l->nnames = 0;
}

static int on_section(struct txstats__load *l, const struct txstats__img_rec *r)
{
    if (l->open || r->f[0] >= l->sections)
        return TXSTATS_EFORMAT;
    names_end(l);
    if (l->apply && l->sectioned)
        txstats__window_return_credit(target(l));
    l->sectioned = true;
    l->section = (unsigned)r->f[0];
    l->prev = INT64_MIN;
    return TXSTATS_OK;
}

/* A cell's first record: ts after the section's last, inside the clock's range. */
static int open_cell(struct txstats__load *l, int64_t ts)
{
    if (!l->sectioned || ts <= l->prev || ts > 2 * TXSTATS__CLOCK_LIMIT ||
        ts < -2 * TXSTATS__CLOCK_LIMIT)
        return TXSTATS_EFORMAT;
    l->open = true;
    l->ts = ts;
    l->nkept = 0;
    l->amin = INT64_MAX;
    l->amax = INT64_MIN;
    l->asum = 0;
    l->nsingles = 0;
    l->bmin = UINT32_MAX;
    l->bmax = 0;
    l->ntags = 0;
    l->tmin = INT64_MAX;
    l->tmax = INT64_MIN;
    l->skip = !inside(l, ts);
    return TXSTATS_OK;
}

static int enter(struct txstats__load *l, int64_t ts)
{
    if (!l->open)
        return open_cell(l, ts);
    return ts == l->ts ? TXSTATS_OK : TXSTATS_EFORMAT;
}

static int on_amounts(struct txstats__load *l, const struct txstats__img_rec *r)
{
    int rc = enter(l, (int64_t)r->f[0]);
    for (uint64_t i = 0; i < r->n && rc == TXSTATS_OK; i++) {
        txstats_amount_t a = (txstats_amount_t)txstats__img_word(r->arr, i);
        if (a <= -TXSTATS_AMOUNT_LIMIT || a >= TXSTATS_AMOUNT_LIMIT)
            return TXSTATS_EFORMAT;
        l->amin = a < l->amin ? a : l->amin;
        l->amax = a > l->amax ? a : l->amax;
        l->asum += a;
        if (l->apply && !l->skip)
            rc = txstats__window_stage_kept(target(l), &l->st, a);
    }
    l->nkept += r->n;
    l->kept += r->n;
    return rc;
}

static int on_buckets(struct txstats__load *l, const struct txstats__img_rec *r)
{
    int rc = enter(l, (int64_t)r->f[0]);
    for (uint64_t i = 0; i < r->n && rc == TXSTATS_OK; i++) {
        uint32_t b = txstats__img_bucket(r->arr, i);
        if (b >= TXSTATS__DIST_BUCKETS)
            return TXSTATS_EFORMAT;
        l->bmin = b < l->bmin ? b : l->bmin;
        l->bmax = b > l->bmax ? b : l->bmax;
        if (l->apply && !l->skip)
            rc = txstats__window_stage_buckets(target(l), &l->st, b, 1);
    }
    l->nsingles += r->n;
    return rc;
}

/* The key of an 'N' record into key[] (its length), or 0 when malformed. */
static size_t name_key(const struct txstats__img_rec *r, uint8_t *key)
{
    uint64_t len = r->f[1];
    if (len < 1 || len > TXSTATS_MAX_ENTITY_BYTES || r->n != (len + 7) / 8)
        return 0;
    for (uint64_t w = 0; w < r->n; w++) {
        uint64_t v = txstats__img_word(r->arr, w);
        for (unsigned b = 0; b < 8; b++, v >>= 8) {
            if (8 * w + b < len)
                key[8 * w + b] = (uint8_t)v;
            else if (v & 0xff)
                return 0; /* padding must be zero */
        }
    }
    return (size_t)len;
}

/* An entity's name: checked to belong in this section (first pass), given its slot in the
 * target shard (second pass; none when max_entities is reached: its transactions then count only
 * in the global window). */
static int on_name(struct txstats__load *l, const struct txstats__img_rec *r)
{
    uint8_t key[TXSTATS_MAX_ENTITY_BYTES];
    size_t len = name_key(r, key);
    if (!len || !l->placed || !l->sectioned || r->f[0] != l->nnames)
        return TXSTATS_EFORMAT;
    uint64_t h = txstats__ent_hash_with(l->hkey, key, len);
    if (l->place[h >> TXSTATS__PLACE_SHIFT] != l->section)
        return TXSTATS_EFORMAT;
    if (txstats__reserve(&l->t->mem, (void **)&l->names, &l->names_cap, l->nnames + 1,
                         sizeof(*l->names)) != 0)
        return TXSTATS_ENOMEM;
    uint32_t slot = NO_SLOT;
    if (l->apply) {
        int rc = txstats__ent_acquire(target_ents(l), key, len, h, &slot);
        if (rc == TXSTATS_ENOMEM)
            return rc;
        slot = rc == TXSTATS_OK ? slot : NO_SLOT;
    }
    l->names[l->nnames++] = slot;
    return TXSTATS_OK;
}

static int on_tags(struct txstats__load *l, const struct txstats__img_rec *r)
{
    int rc = enter(l, (int64_t)r->f[0]);
    for (uint64_t i = 0; i < r->n && rc == TXSTATS_OK; i++) {
        uint64_t idx = txstats__img_word(r->arr, 2 * i);
        txstats_amount_t a = (txstats_amount_t)txstats__img_word(r->arr, 2 * i + 1);
        if (idx >= l->nnames || a <= -TXSTATS_AMOUNT_LIMIT || a >= TXSTATS_AMOUNT_LIMIT)
            return TXSTATS_EFORMAT;
        l->tmin = a < l->tmin ? a : l->tmin;
        l->tmax = a > l->tmax ? a : l->tmax;
        uint32_t slot = l->names[idx];
        if (!l->apply || l->skip || slot == NO_SLOT)
            continue;
        rc = txstats__ent_reserve(target_ents(l), slot);
        if (rc == TXSTATS_OK)
            rc = txstats__window_stage_tag(target(l), &l->st, l->ts, slot, a);
    }
    l->ntags += r->n;
    return rc;
}

/* Every invariant of a 'C' record against what its 'A' records said; *indiv and *runs: the
 * bucket entries and run chunks its list will take. */
static int check_cell(const struct txstats__load *l, const struct txstats__img_rec *r,
                      const struct txstats__cell *agg, uint64_t *indiv, uint64_t *runs)
{
    if (agg->count < 1 || agg->min > agg->max || agg->min <= -TXSTATS_AMOUNT_LIMIT ||
        agg->max >= TXSTATS_AMOUNT_LIMIT ||
        (l->nkept && (l->amin < agg->min || l->amax > agg->max)) ||
        (l->ntags && (l->ntags > agg->count || l->tmin < agg->min || l->tmax > agg->max)))
        return TXSTATS_EFORMAT;
    if (agg->sum < (txstats__i128)agg->min * (txstats__i128)agg->count ||
        agg->sum > (txstats__i128)agg->max * (txstats__i128)agg->count)
        return TXSTATS_EFORMAT;
    uint32_t blo = txstats__dist_bucket(agg->min), bhi = txstats__dist_bucket(agg->max);
    uint64_t total = l->nkept + l->nsingles;
    if (l->nsingles && (l->bmin < blo || l->bmax > bhi || total > agg->count))
        return TXSTATS_EFORMAT;
    *indiv = l->nsingles;
    *runs = 0;
    for (uint64_t i = 0; i < r->n; i++) {
        uint64_t w = txstats__img_word(r->arr, i), n = w >> 16, b = w & 0xffff;
        if (n < 1 || b < blo || b > bhi || n > agg->count - total)
            return TXSTATS_EFORMAT;
        total += n;
        *indiv += n < TXSTATS__DCHUNK_CAP ? n : 0;
        *runs += n >= TXSTATS__DCHUNK_CAP;
    }
    if (total != agg->count)
        return TXSTATS_EFORMAT;
    /* A cell that retains every amount has exactly their sum and extremes. */
    bool whole = r->n == 0 && l->nsingles == 0;
    return !whole || (l->asum == agg->sum && l->amin == agg->min && l->amax == agg->max)
               ? TXSTATS_OK
               : TXSTATS_EFORMAT;
}

/* The bucket list of a cell being installed: single entries first, then runs. */
static int stage_hist(struct txstats__load *l, const struct txstats__img_rec *r)
{
    int rc = TXSTATS_OK;
    for (int runs = 0; runs < 2; runs++) {
        for (uint64_t i = 0; i < r->n && rc == TXSTATS_OK; i++) {
            uint64_t w = txstats__img_word(r->arr, i), n = w >> 16;
            if ((n >= TXSTATS__DCHUNK_CAP) == runs)
                rc = txstats__window_stage_buckets(target(l), &l->st, (uint32_t)(w & 0xffff), n);
        }
    }
    return rc;
}

static int on_cell(struct txstats__load *l, const struct txstats__img_rec *r)
{
    struct txstats__cell agg = {0};
    uint64_t indiv, runs;
    int rc = enter(l, (int64_t)r->f[0]);
    agg.count = r->f[1];
    agg.sum = (txstats__i128)(((unsigned __int128)r->f[3] << 64) | r->f[2]);
    agg.min = (txstats_amount_t)r->f[4];
    agg.max = (txstats_amount_t)r->f[5];
    if (rc == TXSTATS_OK)
        rc = check_cell(l, r, &agg, &indiv, &runs);
    if (rc == TXSTATS_OK && l->apply && !l->skip)
        rc = stage_hist(l, r);
    if (rc != TXSTATS_OK)
        return rc;
    if (l->apply && !l->skip && txstats__window_stage_close(target(l), l->ts, &l->st, &agg))
        return TXSTATS_ENOMEM; /* the stage was dropped */
    *(l->skip ? &l->dropped : &l->loaded) += agg.count;
    l->listed += l->skip ? 0 : agg.count - l->nkept;
    l->cells++;
    l->count += agg.count;
    l->open = false;
    l->prev = l->ts;
    return TXSTATS_OK;
}

static int on_vanish(struct txstats__load *l, const struct txstats__img_rec *r)
{
    int rc = enter(l, (int64_t)r->f[0]);
    if (rc == TXSTATS_OK && l->apply)
        txstats__window_stage_drop(target(l), &l->st);
    l->open = false;
    l->prev = l->ts;
    return rc;
}

static int on_keys(struct txstats__load *l, const struct txstats__img_rec *r)
{
    for (uint64_t i = 0; i < r->n && !l->apply; i++) {
        const uint8_t *e = r->arr + 8 * TXSTATS__IMG_KEY_WORDS * i;
        int64_t status = (int64_t)txstats__img_word(e, 4);
        struct txstats__snap_key k = {{txstats__img_word(e, 0), txstats__img_word(e, 1)},
                                      txstats__img_word(e, 2),
                                      (int64_t)txstats__img_word(e, 3),
                                      (int)status};
        if (k.status != status || !txstats__snap_key_valid(&k))
            return TXSTATS_EFORMAT;
        struct txstats__key key = {{k.h[0], k.h[1]}};
        struct txstats__key_info info = {k.fp, k.status, k.expires};
        if (info.expires <= l->now)
            continue;
        int rc =
            txstats__keys_put(&l->keys, txstats__keys_sub(&l->keys, &key), &key, &info, l->now);
        if (rc == TXSTATS_ENOMEM)
            return rc; /* TXSTATS_EFULL: a smaller max_keys now, keep what fits */
    }
    l->nkeys += r->n;
    return TXSTATS_OK;
}

static int on_journal(struct txstats__load *l, const struct txstats__img_rec *r)
{
    if (r->f[0] >= TXSTATS__MAX_STREAMS)
        return TXSTATS_EFORMAT;
    struct stream *s = &l->streams[r->f[0]];
    if (l->apply)
        return TXSTATS_OK;
    if (s->present && s->bound != r->f[1])
        return TXSTATS_EFORMAT;
    s->present = true;
    s->bound = r->f[1];
    if (txstats__reserve(&l->t->mem, (void **)&s->v, &s->cap, s->n + r->n, sizeof(*s->v)) != 0)
        return TXSTATS_ENOMEM;
    for (uint64_t i = 0; i < r->n; i++) {
        struct txstats__img_cut c = {(int64_t)txstats__img_word(r->arr, 2 * i),
                                     txstats__img_word(r->arr, 2 * i + 1)};
        if (s->n && c.hi <= s->v[s->n - 1].hi)
            return TXSTATS_EFORMAT;
        s->v[s->n++] = c;
    }
    return TXSTATS_OK;
}

static int on_end(struct txstats__load *l, const struct txstats__img_rec *r)
{
    if (l->open || r->f[0] != l->cells || r->f[1] != l->count || r->f[2] != l->kept ||
        r->f[3] != l->nkeys)
        return TXSTATS_EFORMAT;
    names_end(l);
    if (l->apply && l->sectioned)
        txstats__window_return_credit(target(l));
    l->ended = true;
    return TXSTATS_OK;
}

static int record(struct txstats__load *l, const struct txstats__img_rec *r)
{
    if (l->ended || (!l->headed && r->type != TXSTATS__IMG_HEADER))
        return TXSTATS_EFORMAT;
    switch (r->type) {
    case TXSTATS__IMG_HEADER:
        return on_header(l, r);
    case TXSTATS__IMG_SECTION:
        return on_section(l, r);
    case TXSTATS__IMG_AMOUNTS:
        return on_amounts(l, r);
    case TXSTATS__IMG_BUCKETS:
        return on_buckets(l, r);
    case TXSTATS__IMG_CELL:
        return on_cell(l, r);
    case TXSTATS__IMG_VANISH:
        return on_vanish(l, r);
    case TXSTATS__IMG_KEYS:
        return l->open ? TXSTATS_EFORMAT : on_keys(l, r);
    case TXSTATS__IMG_JOURNAL:
        return l->open ? TXSTATS_EFORMAT : on_journal(l, r);
    case TXSTATS__IMG_PLACE:
        return on_place(l, r);
    case TXSTATS__IMG_NAME:
        return on_name(l, r);
    case TXSTATS__IMG_TAGS:
        return on_tags(l, r);
    default:
        return on_end(l, r);
    }
}

static int block(struct txstats__load *l, const uint8_t *payload, size_t len)
{
    const uint8_t *p = payload, *end = payload + len;
    struct txstats__img_rec rec;
    int k, rc = TXSTATS_OK;
    while (rc == TXSTATS_OK && (k = txstats__img_next(&p, end, &rec)) == 1)
        rc = record(l, &rec);
    return rc != TXSTATS_OK ? rc : k < 0 ? TXSTATS_EFORMAT : TXSTATS_OK;
}

static int walk(struct txstats__load *l)
{
    l->headed = l->ended = l->sectioned = l->open = false;
    l->nnames = 0;
    l->cells = l->count = l->kept = l->nkeys = l->loaded = l->dropped = l->listed = 0;
    int rc = txstats__img_rewind(l->in), r = 0;
    const uint8_t *payload;
    size_t len;
    while (rc == TXSTATS_OK && (r = txstats__img_block(l->in, &payload, &len)) == 1)
        rc = block(l, payload, len);
    if (rc == TXSTATS_OK && r < 0)
        rc = r;
    if (rc == TXSTATS_OK && !l->ended)
        rc = TXSTATS_EFORMAT;
    return rc;
}

int txstats__load_check(txstats_t *t, struct txstats__img_in *in, struct txstats__load **out)
{
    struct txstats__load *l = txstats__calloc(&t->mem, 1, sizeof(*l));
    *out = NULL;
    if (!l)
        return TXSTATS_ENOMEM;
    l->t = t;
    l->in = in;
    l->now = txstats__now(t);
    int rc = txstats__keys_init(&l->keys, &t->mem, t->cfg.max_keys);
    if (rc == TXSTATS_OK)
        rc = walk(l);
    if (rc != TXSTATS_OK) {
        txstats__load_free(l);
        return rc;
    }
    *out = l;
    return TXSTATS_OK;
}

void txstats__load_free(struct txstats__load *l)
{
    if (!l)
        return;
    txstats__keys_fini(&l->keys);
    txstats__free(&l->t->mem, l->names);
    for (unsigned i = 0; i < TXSTATS__MAX_STREAMS; i++)
        txstats__free(&l->t->mem, l->streams[i].v);
    txstats__free(&l->t->mem, l);
}

/* Fresh windows and entity tables for the second pass to build into, at the check's moment. */
static int fresh_alloc(struct txstats__load *l)
{
    txstats_t *t = l->t;
    unsigned n = t->nshards;
    l->fresh = txstats__calloc(&t->mem, n, sizeof(*l->fresh));
    l->fents = txstats__calloc(&t->mem, n, sizeof(*l->fents));
    if (!l->fresh || !l->fents) {
        txstats__free(&t->mem, l->fresh);
        l->fresh = NULL; /* nothing to finish */
        return TXSTATS_ENOMEM;
    }
    atomic_init(&l->ret.pool, (uint64_t)t->cfg.max_retained);
    l->ret.batch = t->ret.batch;
    l->esh = (struct txstats__ent_shared){
        .cap = t->ents.cap, .nspans = t->ents.nspans, .longest = t->ents.longest};
    for (unsigned i = 0; i < n; i++) {
        if (txstats__window_init(&l->fresh[i], &t->geom, &t->mem, &l->ret) != TXSTATS_OK) {
            for (unsigned j = 0; j < i; j++)
                txstats__window_fini(&l->fresh[j]);
            txstats__free(&t->mem, l->fresh);
            l->fresh = NULL;
            return TXSTATS_ENOMEM;
        }
        txstats__ent_init(&l->fents[i], &t->mem, &l->esh);
        l->fresh[i].sink = (struct txstats__tag_sink){txstats__tag_sink, &l->fents[i]};
        txstats__window_advance(&l->fresh[i], l->now);
    }
    return TXSTATS_OK;
}

/* What the fresh structures hold now (the old contents after a swap) is freed. */
static void fresh_free(struct txstats__load *l)
{
    for (unsigned i = 0; l->fresh && i < l->t->nshards; i++) {
        txstats__window_fini(&l->fresh[i]);
        txstats__ent_fini(&l->fents[i]);
    }
    txstats__free(&l->t->mem, l->fresh);
    txstats__free(&l->t->mem, l->fents);
    l->fresh = NULL;
    l->fents = NULL;
}

/* Every lock held: the built windows and entities in, the old ones out (to be freed with the
 * load's budget and counters, not the instance's). */
static void swap_in(struct txstats__load *l)
{
    txstats_t *t = l->t;
    for (unsigned i = 0; i < t->nshards; i++) {
        struct txstats__shard *s = &t->shards[i];
        txstats__window_return_credit(&l->fresh[i]);
        struct txstats__window w = s->w;
        s->w = l->fresh[i];
        l->fresh[i] = w;
        struct txstats__entities e = s->ents;
        s->ents = l->fents[i];
        l->fents[i] = e;
        s->ents.shared = &t->ents;
        l->fents[i].shared = &l->esh;
        s->w.sink.ctx = &s->ents;
        l->fresh[i].sink.ctx = &l->fents[i];
        s->w.ret = &t->ret;
        l->fresh[i].ret = &l->ret;
    }
    uint64_t active = atomic_load(&l->esh.active);
    atomic_store(&l->esh.active, atomic_load(&t->ents.active));
    atomic_store(&t->ents.active, active);
    atomic_store(&t->ret.pool, atomic_load(&l->ret.pool));
    adopt_placement(l);
    txstats__keys_swap(&t->keys, &l->keys);
    atomic_fetch_add(&t->generation, 1);
}

int txstats__load_commit(struct txstats__load *l, uint64_t *loaded, uint64_t *dropped,
                         uint64_t *by_bucket)
{
    txstats_t *t = l->t;
    int rc = fresh_alloc(l);
    l->apply = true;
    if (rc == TXSTATS_OK)
        rc = walk(l); /* no lock held: the live shards go on meanwhile */
    if (rc != TXSTATS_OK && l->fresh && l->open)
        txstats__window_stage_drop(target(l), &l->st);
    uint64_t seqs[TXSTATS__MAX_SHARDS];
    if (rc == TXSTATS_OK) {
        txstats__keys_lock_all(&t->keys); /* lock order everywhere: keys, then shards */
        txstats__lock_all(t);
        /* Journaled with the swap, so that a recovery before the caller's next checkpoint does
         * not add the journal's older records to what was loaded. */
        rc = t->journal ? txstats__journal_clear(t, seqs) : TXSTATS_OK;
        if (rc == TXSTATS_OK)
            swap_in(l);
        txstats__unlock_all(t);
        txstats__keys_unlock_all(&t->keys);
    }
    fresh_free(l);
    if (rc == TXSTATS_OK)
        rc = txstats__journal_commit_all(t, seqs);
    *loaded = l->loaded;
    *dropped = l->dropped;
    *by_bucket = l->listed;
    return rc;
}

bool txstats__load_bound(const struct txstats__load *l, unsigned s, uint64_t *bound)
{
    if (s >= TXSTATS__MAX_STREAMS || !l->streams[s].present)
        return false;
    *bound = l->streams[s].bound;
    return true;
}

bool txstats__load_covers(const struct txstats__load *l, unsigned s, int64_t ts, uint64_t seq)
{
    if (s >= TXSTATS__MAX_STREAMS || !l->streams[s].present)
        return false;
    const struct stream *st = &l->streams[s];
    size_t lo = 0, hi = st->n; /* the first cut with ts < cut.hi */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ts < st->v[mid].hi)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo < st->n && seq <= st->v[lo].seq;
}
