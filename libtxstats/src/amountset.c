/* SPDX-License-Identifier: MIT */
#include "amountset.h"

#include <stdbool.h>
#include <string.h>

#define LARGE(s) ((s)->cap & TXSTATS__ASET_LARGE)
#define ROOM(s)  ((s)->cap & ~TXSTATS__ASET_LARGE)

struct txstats__aset_block {
    uint32_t n;
    struct txstats__aset_block *next_spare;
    struct txstats__aset_pair p[TXSTATS__ASET_BLOCK];
};

struct txstats__aset_large {
    uint32_t nfull, nspare;            /* blocks with TXSTATS__ASET_BLOCK pairs; spare blocks */
    struct txstats__aset_block *spare; /* ready for splits */
    struct txstats__aset_block *blk[]; /* `len` blocks, sorted */
};

/* The first pair whose amount is >= a, in v[0..n). Branch-free halving (a conditional move per
 * step): amounts arrive in no order, so a branch would be mispredicted half the time (perf: the
 * comparisons were most of an entity's add). */
static uint32_t lower_bound(const struct txstats__aset_pair *v, uint32_t n, txstats_amount_t a)
{
    if (n == 0)
        return 0;
    const struct txstats__aset_pair *base = v;
    while (n > 1) {
        uint32_t half = n / 2;
        base = base[half - 1].amount < a ? base + half : base;
        n -= half;
    }
    return (uint32_t)(base - v) + (base->amount < a);
}

/* Add one of `a` to the sorted pairs v[0..*n), which have room for one more pair. */
static void pairs_insert(struct txstats__aset_pair *v, uint32_t *n, txstats_amount_t a)
{
    uint32_t i = lower_bound(v, *n, a);
    if (i < *n && v[i].amount == a) {
        v[i].n++;
        return;
    }
    memmove(&v[i + 1], &v[i], (*n - i) * sizeof(*v));
    v[i] = (struct txstats__aset_pair){a, 1};
    (*n)++;
}

/* Remove one of `a`, which is there. */
static void pairs_remove(struct txstats__aset_pair *v, uint32_t *n, txstats_amount_t a)
{
    uint32_t i = lower_bound(v, *n, a);
    if (i >= *n || v[i].amount != a || --v[i].n > 0)
        return;
    memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
    (*n)--;
}

/* The block of the directory where `a` belongs: the last whose first amount is <= a (or 0). */
static uint32_t block_of(const struct txstats__aset *s, txstats_amount_t a)
{
    uint32_t base = 0, n = s->len; /* branch-free, as lower_bound */
    while (n > 1) {
        uint32_t half = n / 2;
        base = s->u.lg->blk[base + half]->p[0].amount <= a ? base + half : base;
        n -= half;
    }
    return base;
}

/* A new array of `cap` elements holding the first `n` of `old` (freed). */
static void *regrow(const struct txstats__mem *mem, void *old, size_t n, size_t cap, size_t size)
{
    void *p = txstats__alloc(mem, cap * size);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, old, n * size);
    txstats__free(mem, old);
    return p;
}

/* Small to large: the pairs become the first block. */
static int make_large(struct txstats__aset *s, const struct txstats__mem *mem)
{
    struct txstats__aset_block *b = txstats__alloc(mem, sizeof(*b));
    struct txstats__aset_large *lg = txstats__alloc(mem, sizeof(*lg) + 4 * sizeof(lg->blk[0]));
    if (!b || !lg) {
        txstats__free(mem, b);
        txstats__free(mem, lg);
        return TXSTATS_ENOMEM;
    }
    b->n = s->len;
    b->next_spare = NULL;
    if (s->len)
        memcpy(b->p, s->u.v, s->len * sizeof(*b->p));
    txstats__free(mem, s->u.v);
    *lg = (struct txstats__aset_large){b->n == TXSTATS__ASET_BLOCK, 0, NULL};
    lg->blk[0] = b;
    s->u.lg = lg;
    s->len = 1;
    s->cap = 4 | TXSTATS__ASET_LARGE;
    return TXSTATS_OK;
}

static int reserve_small(struct txstats__aset *s, const struct txstats__mem *mem, uint32_t k)
{
    uint64_t need = (uint64_t)s->len + k;
    if (need <= s->cap)
        return TXSTATS_OK;
    if (need > TXSTATS__ASET_SMALL)
        return make_large(s, mem);
    uint32_t cap = s->cap ? s->cap : 2;
    while (cap < need)
        cap = cap + cap / 2 + 1;
    cap = cap > TXSTATS__ASET_SMALL ? TXSTATS__ASET_SMALL : cap;
    void *v = regrow(mem, s->u.v, s->len, cap, sizeof(*s->u.v));
    if (!v)
        return TXSTATS_ENOMEM;
    s->u.v = v;
    s->cap = cap;
    return TXSTATS_OK;
}

/* Large: room in the directory for a split per spare block, and the spare blocks. */
static int reserve_large(struct txstats__aset *s, const struct txstats__mem *mem, uint32_t k)
{
    struct txstats__aset_large *lg = s->u.lg;
    /* A split needs a full block: the full ones need one insert, the others (len at most) at
     * least two, a half block left by a split 32 more. */
    uint64_t half = k / 2 < s->len ? k / 2 : s->len;
    uint64_t splits = (uint64_t)lg->nfull + half + k / (TXSTATS__ASET_BLOCK / 2) + 1;
    splits = splits < k ? splits : k;
    uint64_t need = (uint64_t)s->len + splits;
    if (need > TXSTATS__ASET_LARGE / 4)
        return TXSTATS_ENOMEM;
    if (need > ROOM(s)) {
        uint32_t cap = (uint32_t)(need * 2);
        struct txstats__aset_large *n = txstats__alloc(mem, sizeof(*n) + cap * sizeof(n->blk[0]));
        if (!n)
            return TXSTATS_ENOMEM;
        memcpy(n, lg, sizeof(*lg) + s->len * sizeof(lg->blk[0]));
        txstats__free(mem, lg);
        s->u.lg = lg = n;
        s->cap = cap | TXSTATS__ASET_LARGE;
    }
    while (lg->nspare < splits) {
        struct txstats__aset_block *b = txstats__alloc(mem, sizeof(*b));
        if (!b)
            return TXSTATS_ENOMEM;
        b->next_spare = lg->spare;
        lg->spare = b;
        lg->nspare++;
    }
    return TXSTATS_OK;
}

int txstats__aset_reserve(struct txstats__aset *s, const struct txstats__mem *mem, uint32_t k)
{
    int rc = LARGE(s) ? TXSTATS_OK : reserve_small(s, mem, k);
    return rc == TXSTATS_OK && LARGE(s) ? reserve_large(s, mem, k) : rc;
}

/* Split full block i in two halves, the upper one in a spare block after it. */
static void split(struct txstats__aset *s, uint32_t i)
{
    struct txstats__aset_large *lg = s->u.lg;
    struct txstats__aset_block *b = lg->blk[i], *nb = lg->spare;
    lg->spare = nb->next_spare;
    lg->nspare--;
    lg->nfull--; /* b was full; neither half is */
    uint32_t half = b->n / 2;
    nb->n = b->n - half;
    nb->next_spare = NULL;
    memcpy(nb->p, &b->p[half], nb->n * sizeof(*nb->p));
    b->n = half;
    memmove(&s->u.lg->blk[i + 2], &s->u.lg->blk[i + 1], (s->len - i - 1) * sizeof(s->u.lg->blk[0]));
    s->u.lg->blk[i + 1] = nb;
    s->len++;
}

void txstats__aset_insert(struct txstats__aset *s, txstats_amount_t amount)
{
    if (!LARGE(s)) {
        pairs_insert(s->u.v, &s->len, amount);
        return;
    }
    uint32_t i = block_of(s, amount);
    struct txstats__aset_block *b = s->u.lg->blk[i];
    uint32_t at = lower_bound(b->p, b->n, amount);
    if (at < b->n && b->p[at].amount == amount) {
        b->p[at].n++;
        return;
    }
    if (b->n == TXSTATS__ASET_BLOCK) {
        split(s, i);
        if (amount >= s->u.lg->blk[i + 1]->p[0].amount)
            i++;
        b = s->u.lg->blk[i];
    }
    pairs_insert(b->p, &b->n, amount);
    s->u.lg->nfull += b->n == TXSTATS__ASET_BLOCK;
}

void txstats__aset_remove(struct txstats__aset *s, const struct txstats__mem *mem,
                          txstats_amount_t amount)
{
    if (!LARGE(s)) {
        pairs_remove(s->u.v, &s->len, amount);
        return;
    }
    uint32_t i = block_of(s, amount);
    struct txstats__aset_block *b = s->u.lg->blk[i];
    bool full = b->n == TXSTATS__ASET_BLOCK;
    pairs_remove(b->p, &b->n, amount);
    s->u.lg->nfull -= full && b->n < TXSTATS__ASET_BLOCK;
    if (b->n > 0 || s->len == 1)
        return;
    memmove(&s->u.lg->blk[i], &s->u.lg->blk[i + 1], (s->len - i - 1) * sizeof(s->u.lg->blk[0]));
    s->len--;
    txstats__free(mem, b);
}

txstats_amount_t txstats__aset_min(const struct txstats__aset *s)
{
    return LARGE(s) ? s->u.lg->blk[0]->p[0].amount : s->u.v[0].amount;
}

txstats_amount_t txstats__aset_max(const struct txstats__aset *s)
{
    if (!LARGE(s))
        return s->u.v[s->len - 1].amount;
    const struct txstats__aset_block *b = s->u.lg->blk[s->len - 1];
    return b->p[b->n - 1].amount;
}

void txstats__aset_trim(struct txstats__aset *s, const struct txstats__mem *mem, uint32_t k)
{
    if (!LARGE(s))
        return;
    struct txstats__aset_large *lg = s->u.lg;
    for (; lg->nspare > k; lg->nspare--) {
        struct txstats__aset_block *b = lg->spare;
        lg->spare = b->next_spare;
        txstats__free(mem, b);
    }
}

void txstats__aset_free(struct txstats__aset *s, const struct txstats__mem *mem)
{
    txstats__aset_trim(s, mem, 0);
    if (LARGE(s))
        for (uint32_t i = 0; i < s->len; i++)
            txstats__free(mem, s->u.lg->blk[i]);
    txstats__free(mem, s->u.v);
    memset(s, 0, sizeof(*s));
}

uint64_t txstats__aset_bytes(const struct txstats__aset *s)
{
    if (!LARGE(s))
        return (uint64_t)s->cap * sizeof(struct txstats__aset_pair);
    return sizeof(struct txstats__aset_large) + (uint64_t)ROOM(s) * sizeof(s->u.lg->blk[0]) +
           (uint64_t)(s->len + s->u.lg->nspare) * sizeof(struct txstats__aset_block);
}
