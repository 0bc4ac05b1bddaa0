/* SPDX-License-Identifier: MIT */
/* The idempotency-key table; see keys.h. */
#include <sodium.h>
#include <string.h>

#include "keys.h"

/* `expires` holds the expiry + TIME_BIAS in its low 56 bits (any clock reading, negative too)
 * and the status + 16 in its top byte; a top byte of 0 is a forgotten entry. */
#define STATUS_SHIFT 56
#define TIME_MASK    ((INT64_C(1) << STATUS_SHIFT) - 1)
#define TIME_BIAS    (INT64_C(1) << 54)

void txstats__key_digest(const void *key, size_t len, struct txstats__key *out)
{
    unsigned char d[16];
    crypto_generichash(d, sizeof(d), key, len, NULL, 0); /* BLAKE2b-128 */
    memcpy(out->h, d, sizeof(d));
    if (out->h[0] == 0 && out->h[1] == 0)
        out->h[1] = 1; /* (0, 0) marks an empty slot */
}

uint64_t txstats__key_fingerprint(txstats_amount_t amount, int64_t ts, const void *ent,
                                  size_t ent_len)
{
    uint64_t x = (uint64_t)amount * 0x9E3779B97F4A7C15u ^ (uint64_t)ts;
    if (ent_len) { /* the entity too: the same key for another entity is another transaction */
        uint64_t h;
        crypto_generichash((unsigned char *)&h, sizeof(h), ent, ent_len, NULL, 0);
        x ^= h * 0xD6E8FEB86659FD93u;
    }
    x ^= x >> 31; /* splitmix64's finaliser: every input bit reaches every output bit */
    x *= 0xBF58476D1CE4E5B9u;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

static int64_t expiry_of(const struct txstats__key_entry *e)
{
    return (e->expires & TIME_MASK) - TIME_BIAS;
}

static bool empty(const struct txstats__key_entry *e)
{
    return e->h[0] == 0 && e->h[1] == 0;
}

static bool live(const struct txstats__key_entry *e, int64_t now)
{
    return !empty(e) && (e->expires >> STATUS_SHIFT) != 0 && expiry_of(e) > now;
}

static void info_of(const struct txstats__key_entry *e, struct txstats__key_info *out)
{
    out->fp = e->fp;
    out->status = (int)((uint64_t)e->expires >> STATUS_SHIFT) - 16;
    out->expires = expiry_of(e);
}

int txstats__keys_init(struct txstats__keys *k, const struct txstats__mem *mem, uint64_t max_keys)
{
    memset(k, 0, sizeof(*k));
    k->mem = mem;
    k->cap = max_keys;
    atomic_init(&k->held, 0);
    for (int i = 0; i < TXSTATS__KEY_SUBTABLES; i++) {
        pthread_mutex_init(&k->sub[i].lock, NULL);
        k->sub[i].min_expiry = INT64_MAX;
    }
    return sodium_init() < 0 ? TXSTATS_ENOMEM : TXSTATS_OK;
}

void txstats__keys_fini(struct txstats__keys *k)
{
    for (int i = 0; i < TXSTATS__KEY_SUBTABLES; i++) {
        txstats__free(k->mem, k->sub[i].slots);
        pthread_mutex_destroy(&k->sub[i].lock);
    }
}

struct txstats__key_sub *txstats__keys_lock(struct txstats__keys *k, const struct txstats__key *key)
{
    struct txstats__key_sub *s = &k->sub[key->h[1] % TXSTATS__KEY_SUBTABLES];
    pthread_mutex_lock(&s->lock);
    return s;
}

void txstats__keys_unlock(struct txstats__key_sub *s)
{
    pthread_mutex_unlock(&s->lock);
}

/* The slot of the key, or the first empty slot of its probe run. */
static struct txstats__key_entry *probe(const struct txstats__key_sub *s,
                                        const struct txstats__key *key)
{
    /* The digest is uniform: its high bits scaled to the table pick the home slot (any size). */
    uint64_t i = (uint64_t)(((unsigned __int128)key->h[0] * s->nslots) >> 64);
    for (;; i = i + 1 == s->nslots ? 0 : i + 1) {
        struct txstats__key_entry *e = &s->slots[i];
        if (empty(e) || (e->h[0] == key->h[0] && e->h[1] == key->h[1]))
            return e;
    }
}

bool txstats__keys_find(const struct txstats__key_sub *s, const struct txstats__key *key,
                        int64_t now, struct txstats__key_info *out)
{
    if (s->nslots == 0)
        return false;
    const struct txstats__key_entry *e = probe(s, key);
    if (!live(e, now))
        return false;
    info_of(e, out);
    return true;
}

/* Rebuild into `nslots` slots, keeping only the live entries. */
static int rebuild(struct txstats__keys *k, struct txstats__key_sub *s, uint64_t nslots,
                   int64_t now)
{
    struct txstats__key_entry *old = s->slots;
    uint64_t n = s->nslots, was = s->used;
    struct txstats__key_entry *fresh = txstats__calloc(k->mem, nslots, sizeof(*fresh));
    if (!fresh)
        return TXSTATS_ENOMEM;
    s->slots = fresh;
    s->nslots = nslots;
    s->used = 0;
    s->moves++;
    s->min_expiry = INT64_MAX;
    for (uint64_t i = 0; i < n; i++) {
        if (!live(&old[i], now))
            continue;
        struct txstats__key key = {{old[i].h[0], old[i].h[1]}};
        *probe(s, &key) = old[i];
        s->used++;
        s->min_expiry = expiry_of(&old[i]) < s->min_expiry ? expiry_of(&old[i]) : s->min_expiry;
    }
    atomic_fetch_sub(&k->held, was - s->used); /* only the dead left: one step, never a dip */
    txstats__free(k->mem, old);
    return TXSTATS_OK;
}

/* The table is full: drop the dead of every other sub-table whose lock is free (a trylock, so
 * no lock order is broken) and in which something may have expired. */
static void reclaim_others(struct txstats__keys *k, const struct txstats__key_sub *self,
                           int64_t now)
{
    for (int i = 0; i < TXSTATS__KEY_SUBTABLES; i++) {
        struct txstats__key_sub *o = &k->sub[i];
        if (o == self || pthread_mutex_trylock(&o->lock) != 0)
            continue;
        if (o->used > 0 && now >= o->min_expiry)
            (void)rebuild(k, o, o->nslots, now); /* out of memory: it stays as it was */
        pthread_mutex_unlock(&o->lock);
    }
}

static bool full(struct txstats__keys *k)
{
    return atomic_load(&k->held) >= k->cap;
}

/* Room for one more entry: the cap (max_keys) holds over all sub-tables; a sub-table grows by
 * half, dropping its dead, so its load stays between 1/2 and 3/4 (43 to 64 bytes a key). */
static int make_room(struct txstats__keys *k, struct txstats__key_sub *s, int64_t now)
{
    bool roomy = (s->used + 1) * 4 <= s->nslots * 3;
    if (!full(k) && roomy)
        return TXSTATS_OK;
    if (full(k))
        reclaim_others(k, s, now);
    if (full(k) && now < s->min_expiry)
        return TXSTATS_EFULL; /* nothing here has expired yet: a rebuild cannot help */
    uint64_t want = s->nslots ? s->nslots : 64;
    while ((s->used + 1) * 4 > want * 3)
        want += want / 2;
    int rc = rebuild(k, s, want, now);
    if (rc != TXSTATS_OK)
        return rc;
    return !full(k) && (s->used + 1) * 4 <= s->nslots * 3 ? TXSTATS_OK : TXSTATS_EFULL;
}

int txstats__keys_put(struct txstats__keys *k, struct txstats__key_sub *s,
                      const struct txstats__key *key, const struct txstats__key_info *info,
                      int64_t now)
{
    if (k->cap == 0)
        return TXSTATS_EFULL;
    struct txstats__key_entry *e = s->nslots ? probe(s, key) : NULL;
    if (!e || empty(e)) {
        int rc = make_room(k, s, now);
        if (rc != TXSTATS_OK)
            return rc;
        e = probe(s, key);
        s->used++;
        atomic_fetch_add(&k->held, 1);
    }
    e->h[0] = key->h[0];
    e->h[1] = key->h[1];
    e->fp = info->fp;
    e->expires = ((info->expires + TIME_BIAS) & TIME_MASK) |
                 (int64_t)((uint64_t)(info->status + 16) << STATUS_SHIFT);
    s->min_expiry = info->expires < s->min_expiry ? info->expires : s->min_expiry;
    return TXSTATS_OK;
}

void txstats__keys_forget(struct txstats__key_sub *s, const struct txstats__key *key)
{
    if (s->nslots == 0)
        return;
    struct txstats__key_entry *e = probe(s, key);
    if (!empty(e))
        e->expires = 0; /* dead: its slot stays in the probe run until a rebuild */
}

void txstats__keys_clear(struct txstats__keys *k)
{
    for (int i = 0; i < TXSTATS__KEY_SUBTABLES; i++) {
        struct txstats__key_sub *s = &k->sub[i];
        if (s->slots)
            memset(s->slots, 0, s->nslots * sizeof(*s->slots));
        s->used = 0;
        s->min_expiry = INT64_MAX;
        s->moves++;
    }
    atomic_store(&k->held, 0);
}

uint64_t txstats__keys_count(struct txstats__keys *k)
{
    return atomic_load(&k->held);
}

int txstats__keys_each_from(struct txstats__keys *k, unsigned i, int64_t now, uint64_t *from,
                            size_t max, uint64_t *moves, txstats__key_fn fn, void *ctx)
{
    struct txstats__key_sub *s = &k->sub[i];
    int rc = 0;
    size_t seen = 0;
    pthread_mutex_lock(&s->lock);
    uint64_t j = *from;
    for (; j < s->nslots && seen < max; j++) {
        const struct txstats__key_entry *e = &s->slots[j];
        if (!live(e, now))
            continue;
        struct txstats__key key = {{e->h[0], e->h[1]}};
        struct txstats__key_info info;
        info_of(e, &info);
        if ((rc = fn(ctx, &key, &info)) != 0)
            break; /* not taken: the next piece starts with it */
        seen++;
    }
    *from = j < s->nslots ? j : UINT64_MAX;
    *moves = s->moves;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void txstats__keys_lock_all(struct txstats__keys *k)
{
    for (int i = 0; i < TXSTATS__KEY_SUBTABLES; i++)
        pthread_mutex_lock(&k->sub[i].lock);
}

void txstats__keys_unlock_all(struct txstats__keys *k)
{
    for (int i = TXSTATS__KEY_SUBTABLES; i-- > 0;)
        pthread_mutex_unlock(&k->sub[i].lock);
}

struct txstats__key_sub *txstats__keys_sub(struct txstats__keys *k, const struct txstats__key *key)
{
    return &k->sub[key->h[1] % TXSTATS__KEY_SUBTABLES];
}

void txstats__keys_swap(struct txstats__keys *a, struct txstats__keys *b)
{
    for (int i = 0; i < TXSTATS__KEY_SUBTABLES; i++) {
        struct txstats__key_sub *x = &a->sub[i], *y = &b->sub[i], t = *x;
        x->slots = y->slots;
        x->nslots = y->nslots;
        x->used = y->used;
        x->min_expiry = y->min_expiry;
        y->slots = t.slots;
        y->nslots = t.nslots;
        y->used = t.used;
        y->min_expiry = t.min_expiry;
        x->moves++;
        y->moves++;
    }
    uint64_t held = atomic_load(&a->held);
    atomic_store(&a->held, atomic_load(&b->held));
    atomic_store(&b->held, held);
}
