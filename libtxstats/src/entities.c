/* SPDX-License-Identifier: MIT */
#include "entities.h"

#include <sodium.h>
#include <string.h>

_Static_assert(sizeof(struct txstats__entity) == 88, "an entity is a slot of 88 bytes");

uint64_t txstats__ent_hash_with(const uint64_t hash_key[2], const void *key, size_t len)
{
    unsigned char k[crypto_shorthash_KEYBYTES], out[crypto_shorthash_BYTES];
    _Static_assert(sizeof(k) == 16, "SipHash keys are 128 bits");
    memcpy(k, hash_key, sizeof(k));
    crypto_shorthash(out, key, len, k);
    uint64_t h;
    memcpy(&h, out, sizeof(h));
    return h;
}

uint64_t txstats__ent_hash(const struct txstats__ent_shared *sh, const void *key, size_t len)
{
    uint64_t k[2] = {atomic_load_explicit(&sh->hash_key[0], memory_order_relaxed),
                     atomic_load_explicit(&sh->hash_key[1], memory_order_relaxed)};
    return txstats__ent_hash_with(k, key, len);
}

void txstats__ent_init(struct txstats__entities *e, const struct txstats__mem *mem,
                       struct txstats__ent_shared *shared)
{
    memset(e, 0, sizeof(*e));
    e->mem = mem;
    e->shared = shared;
}

static bool same_key(const struct txstats__entity *en, const void *key, size_t len)
{
    return en->key_len == len && memcmp(txstats__ent_key(en), key, len) == 0;
}

/* The index position of a key, or of the empty entry where it would go. */
static uint64_t probe(const struct txstats__entities *e, const void *key, size_t len, uint64_t hash)
{
    uint64_t mask = e->index_cap - 1, tag = hash >> 32;
    for (uint64_t i = hash & mask;; i = (i + 1) & mask) {
        uint64_t v = e->index[i];
        if (!v || ((v >> 32) == tag &&
                   same_key(txstats__ent_at(e, (uint32_t)(v & 0xffffffffu) - 1), key, len)))
            return i;
    }
}

bool txstats__ent_find(const struct txstats__entities *e, const void *key, size_t len,
                       uint64_t hash, uint32_t *slot)
{
    if (!e->index_cap)
        return false;
    uint64_t v = e->index[probe(e, key, len, hash)];
    if (!v)
        return false;
    *slot = (uint32_t)(v & 0xffffffffu) - 1;
    return true;
}

/* The home position of an index entry's key. */
static uint64_t home_of(const struct txstats__entities *e, uint64_t v)
{
    const struct txstats__entity *en = txstats__ent_at(e, (uint32_t)(v & 0xffffffffu) - 1);
    return txstats__ent_hash(e->shared, txstats__ent_key(en), en->key_len) & (e->index_cap - 1);
}

/* Remove entry i, shifting back the entries of its probe run (Knuth's algorithm R). */
static void index_remove(struct txstats__entities *e, uint64_t i)
{
    uint64_t mask = e->index_cap - 1;
    for (uint64_t j = (i + 1) & mask; e->index[j]; j = (j + 1) & mask) {
        uint64_t h = home_of(e, e->index[j]);
        bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
        if (movable) {
            e->index[i] = e->index[j];
            i = j;
        }
    }
    e->index[i] = 0;
}

/* Double the index (or make the first): TXSTATS_OK or TXSTATS_ENOMEM. */
static int index_grow(struct txstats__entities *e)
{
    uint64_t cap = e->index_cap ? 2 * e->index_cap : 64;
    uint64_t *old = e->index, old_cap = e->index_cap;
    uint64_t *idx = txstats__calloc(e->mem, cap, sizeof(*idx));
    if (!idx)
        return TXSTATS_ENOMEM;
    e->index = idx;
    e->index_cap = cap;
    for (uint64_t i = 0; i < old_cap; i++) {
        if (!old[i])
            continue;
        uint64_t j = home_of(e, old[i]);
        while (idx[j])
            j = (j + 1) & (cap - 1);
        idx[j] = old[i];
    }
    txstats__free(e->mem, old);
    return TXSTATS_OK;
}

/* A free slot (a new page when none): TXSTATS_OK or TXSTATS_ENOMEM. */
static int take_slot(struct txstats__entities *e, uint32_t *slot)
{
    if (!e->free_head) {
        if (e->npages == UINT32_MAX >> TXSTATS__ENT_PAGE_BITS)
            return TXSTATS_ENOMEM;
        size_t cap = e->pages_cap;
        if (txstats__reserve(e->mem, (void **)&e->pages, &cap, e->npages + 1u, sizeof(*e->pages)) !=
            0)
            return TXSTATS_ENOMEM;
        e->pages_cap = (uint32_t)cap;
        struct txstats__entity *p = txstats__calloc(e->mem, TXSTATS__ENT_PAGE, sizeof(*p));
        if (!p)
            return TXSTATS_ENOMEM;
        uint32_t base = e->npages * TXSTATS__ENT_PAGE;
        for (uint32_t i = 0; i < TXSTATS__ENT_PAGE; i++)
            p[i].next_free = i + 1 < TXSTATS__ENT_PAGE ? base + i + 2 : e->free_head;
        e->pages[e->npages++] = p;
        e->free_head = base + 1;
    }
    *slot = e->free_head - 1;
    e->free_head = txstats__ent_at(e, *slot)->next_free;
    return TXSTATS_OK;
}

/* Make a slot for a new key. */
static int make(struct txstats__entities *e, const void *key, size_t len, uint64_t hash,
                uint32_t *slot)
{
    unsigned extra = e->shared->nspans - 1;
    uint8_t *k = len > TXSTATS__ENT_INLINE ? txstats__alloc(e->mem, len) : NULL;
    struct txstats__ent_span *more = extra ? txstats__calloc(e->mem, extra, sizeof(*more)) : NULL;
    if ((len > TXSTATS__ENT_INLINE && !k) || (extra && !more) || take_slot(e, slot) != TXSTATS_OK) {
        txstats__free(e->mem, k);
        txstats__free(e->mem, more);
        return TXSTATS_ENOMEM;
    }
    struct txstats__entity *en = txstats__ent_at(e, *slot);
    uint32_t gen = en->gen + 1;
    *en = (struct txstats__entity){.key_len = (uint8_t)len, .more = more, .gen = gen ? gen : 1};
    if (k)
        en->key.ptr = k;
    e->bytes += extra * sizeof(*more);
    memcpy(k ? k : en->key.bytes, key, len);
    e->index[probe(e, key, len, hash)] = (hash >> 32) << 32 | (uint64_t)(*slot + 1);
    e->used++;
    e->bytes += k ? len : 0;
    atomic_fetch_add_explicit(&e->shared->active, 1, memory_order_relaxed);
    return TXSTATS_OK;
}

int txstats__ent_acquire(struct txstats__entities *e, const void *key, size_t len, uint64_t hash,
                         uint32_t *slot)
{
    if (txstats__ent_find(e, key, len, hash, slot))
        return TXSTATS_OK;
    if (atomic_load_explicit(&e->shared->active, memory_order_relaxed) >= e->shared->cap)
        return TXSTATS_ELIMIT;
    if ((e->used + 1) * 4 > e->index_cap * 3 && index_grow(e) != TXSTATS_OK)
        return TXSTATS_ENOMEM;
    return make(e, key, len, hash, slot);
}

static struct txstats__ent_span *span_of(struct txstats__entity *en, unsigned span)
{
    return span ? &en->more[span - 1] : &en->s0;
}

/* Every span's multiset freed, and the spans' array. */
static void free_spans(struct txstats__entities *e, struct txstats__entity *en)
{
    for (unsigned s = 0; s < e->shared->nspans; s++) {
        struct txstats__ent_span *sp = span_of(en, s);
        e->bytes -= txstats__aset_bytes(&sp->set);
        txstats__aset_free(&sp->set, e->mem);
    }
    if (en->more) {
        e->bytes -= (e->shared->nspans - 1) * sizeof(*en->more);
        txstats__free(e->mem, en->more);
        en->more = NULL;
    }
}

/* Free a slot that holds nothing. */
static void release(struct txstats__entities *e, uint32_t slot)
{
    struct txstats__entity *en = txstats__ent_at(e, slot);
    const uint8_t *key = txstats__ent_key(en);
    index_remove(e, probe(e, key, en->key_len, txstats__ent_hash(e->shared, key, en->key_len)));
    free_spans(e, en);
    if (en->key_len > TXSTATS__ENT_INLINE) {
        e->bytes -= en->key_len;
        txstats__free(e->mem, en->key.ptr);
    }
    en->key_len = 0;
    en->next_free = e->free_head;
    e->free_head = slot + 1;
    e->used--;
    atomic_fetch_sub_explicit(&e->shared->active, 1, memory_order_relaxed);
}

static void release_if_empty(struct txstats__entities *e, uint32_t slot)
{
    struct txstats__entity *en = txstats__ent_at(e, slot);
    if (span_of(en, e->shared->longest)->count == 0 && en->pending == 0)
        release(e, slot);
}

/* Room for `k` more amounts in every span's multiset: TXSTATS_OK or TXSTATS_ENOMEM. */
static int room(struct txstats__entities *e, struct txstats__entity *en, uint32_t k)
{
    int rc = TXSTATS_OK;
    for (unsigned s = 0; s < e->shared->nspans && rc == TXSTATS_OK; s++) {
        struct txstats__aset *set = &span_of(en, s)->set;
        uint64_t before = txstats__aset_bytes(set);
        rc = txstats__aset_reserve(set, e->mem, k);
        e->bytes += txstats__aset_bytes(set) - before;
    }
    return rc;
}

int txstats__ent_reserve(struct txstats__entities *e, uint32_t slot)
{
    struct txstats__entity *en = txstats__ent_at(e, slot);
    if (en->pending == UINT32_MAX || room(e, en, en->pending + 1) != TXSTATS_OK) {
        release_if_empty(e, slot);
        return TXSTATS_ENOMEM;
    }
    en->pending++;
    return TXSTATS_OK;
}

/* Spare multiset room beyond the pending reservations goes back. */
static void trim(struct txstats__entities *e, struct txstats__entity *en)
{
    for (unsigned s = 0; s < e->shared->nspans; s++) {
        struct txstats__aset *set = &span_of(en, s)->set;
        uint64_t before = txstats__aset_bytes(set);
        txstats__aset_trim(set, e->mem, en->pending);
        e->bytes -= before - txstats__aset_bytes(set);
    }
}

void txstats__ent_cancel(struct txstats__entities *e, uint32_t slot, bool reserved)
{
    struct txstats__entity *en = txstats__ent_at(e, slot);
    if (reserved) {
        en->pending--;
        trim(e, en);
    }
    release_if_empty(e, slot);
}

static void add_sum(struct txstats__ent_span *sp, txstats_amount_t a)
{
    uint64_t lo = sp->sum_lo + (uint64_t)a;
    sp->sum_hi += (int64_t)(a < 0 ? -1 : 0) + (lo < sp->sum_lo ? 1 : 0);
    sp->sum_lo = lo;
}

void txstats__ent_count(struct txstats__entities *e, uint32_t slot, txstats_amount_t amount)
{
    struct txstats__entity *en = txstats__ent_at(e, slot);
    en->pending--;
    for (unsigned s = 0; s < e->shared->nspans; s++) {
        struct txstats__ent_span *sp = span_of(en, s);
        sp->count++;
        add_sum(sp, amount);
        txstats__aset_insert(&sp->set, amount);
    }
    trim(e, en);
}

void txstats__ent_uncount(struct txstats__entities *e, uint32_t slot, txstats_amount_t amount,
                          unsigned span)
{
    struct txstats__entity *en = txstats__ent_at(e, slot);
    struct txstats__ent_span *sp = span_of(en, span);
    sp->count--;
    add_sum(sp, -amount); /* |amount| < 10^18 */
    uint64_t before = txstats__aset_bytes(&sp->set);
    txstats__aset_remove(&sp->set, e->mem, amount);
    e->bytes -= before - txstats__aset_bytes(&sp->set);
    if (span == e->shared->longest)
        release_if_empty(e, slot);
}

void txstats__ent_drop(struct txstats__entities *e, uint32_t slot)
{
    txstats__ent_cancel(e, slot, true);
}

void txstats__ent_summary(const struct txstats__entity *en, unsigned span, txstats_summary_t *out)
{
    const struct txstats__ent_span *sp = txstats__ent_span(en, span);
    out->count = sp->count;
    out->sum_lo = sp->count ? sp->sum_lo : 0;
    out->sum_hi = sp->count ? sp->sum_hi : 0;
    out->min = sp->count ? txstats__aset_min(&sp->set) : 0;
    out->max = sp->count ? txstats__aset_max(&sp->set) : 0;
}

void txstats__ent_reset(struct txstats__entities *e)
{
    for (uint32_t p = 0; p < e->npages; p++) {
        for (uint32_t i = 0; i < TXSTATS__ENT_PAGE; i++) {
            struct txstats__entity *en = &e->pages[p][i];
            if (!en->key_len)
                continue;
            free_spans(e, en);
            if (en->key_len > TXSTATS__ENT_INLINE)
                txstats__free(e->mem, en->key.ptr);
        }
        txstats__free(e->mem, e->pages[p]);
    }
    atomic_fetch_sub_explicit(&e->shared->active, e->used, memory_order_relaxed);
    txstats__free(e->mem, e->pages);
    txstats__free(e->mem, e->index);
    txstats__ent_init(e, e->mem, e->shared);
}

void txstats__ent_fini(struct txstats__entities *e)
{
    txstats__ent_reset(e);
}
