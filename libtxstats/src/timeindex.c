/* SPDX-License-Identifier: MIT */
#include "timeindex.h"

#include <stdbool.h>
#include <string.h>

#define FAN  64
#define SH0  6  /* ts >> SH0: page */
#define SH1  12 /* ts >> SH1: level-1 node */
#define SH2  18 /* ts >> SH2: level-2 node, ring slot */
#define LOW6 63

static const struct txstats__minmax EMPTY = {INT64_MAX, INT64_MIN};

/* The cells are cells[first .. first + n): expiry takes the first without moving the others. */
struct txstats__tpage {
    int64_t base; /* ts >> SH0 */
    uint64_t used;
    struct txstats__minmax mm;
    uint32_t n, cap, first;
    struct txstats__cell *cells;
};

struct txstats__tnode {
    int64_t base; /* ts >> SH1 or ts >> SH2 */
    uint64_t used;
    struct txstats__minmax mm;
    void *child[FAN];
    struct txstats__minmax cmm[FAN];
};

#define SPARE_MAX 32 /* blocks kept of each kind */
#define KIND_PAGE 7  /* kinds 0..6: cell arrays of 1 << kind cells */
#define KIND_NODE 8

/* A block of `kind`: a kept one, or allocated. */
static void *take(struct txstats__tindex *ti, int kind, size_t size)
{
    void *p = ti->spare[kind];
    if (!p)
        return txstats__alloc(ti->mem, size);
    memcpy(&ti->spare[kind], p, sizeof(void *));
    ti->nspare[kind]--;
    return p;
}

/* A block back: kept while there are few of its kind, else freed. */
static void give(struct txstats__tindex *ti, int kind, void *p)
{
    if (!p)
        return;
    if (ti->nspare[kind] >= SPARE_MAX) {
        txstats__free(ti->mem, p);
        return;
    }
    memcpy(p, &ti->spare[kind], sizeof(void *));
    ti->spare[kind] = p;
    ti->nspare[kind]++;
}

/* The kind of a cell array of `cap` cells (a power of two up to FAN). */
static int array_kind(uint32_t cap)
{
    return __builtin_ctz(cap);
}

static struct txstats__minmax join(struct txstats__minmax a, struct txstats__minmax b)
{
    return (struct txstats__minmax){a.min < b.min ? a.min : b.min, a.max > b.max ? a.max : b.max};
}

/* v << s for any v (a negative timestamp's too), without undefined behaviour. */
static int64_t shl(int64_t v, int s)
{
    return (int64_t)((uint64_t)v << s);
}

static unsigned idx(int64_t ts, int shift)
{
    return (unsigned)((ts >> shift) & LOW6);
}

int txstats__ti_init(struct txstats__tindex *ti, const struct txstats__mem *mem, int64_t span_ms)
{
    memset(ti, 0, sizeof(*ti));
    ti->mem = mem;
    int64_t need = (span_ms >> SH2) + 3;
    for (ti->nring = 4; ti->nring < need;)
        ti->nring <<= 1;
    ti->ring = txstats__calloc(mem, (size_t)ti->nring, sizeof(*ti->ring));
    if (!ti->ring)
        return TXSTATS_ENOMEM;
    ti->bytes = (uint64_t)ti->nring * sizeof(*ti->ring);
    return TXSTATS_OK;
}

static struct txstats__tnode *top(const struct txstats__tindex *ti, int64_t ts)
{
    struct txstats__tnode *n = ti->ring[(ts >> SH2) & (ti->nring - 1)];
    return n && n->base == ts >> SH2 ? n : NULL;
}

static struct txstats__tpage *page_of(const struct txstats__tindex *ti, int64_t ts)
{
    if (ti->hot && ti->hot->base == ts >> SH0)
        return ti->hot;
    struct txstats__tnode *n2 = top(ti, ts), *n1;
    if (!n2 || !(n1 = n2->child[idx(ts, SH1)]))
        return NULL;
    return n1->child[idx(ts, SH0)];
}

/* Bits set in x: inline (the baseline x86-64 target has no popcnt instruction, and libgcc's
 * __popcountdi2 is a call: 7 % of an add in perf). */
static unsigned pop64(uint64_t x)
{
    x -= (x >> 1) & UINT64_C(0x5555555555555555);
    x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
    x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
    return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
}

/* Position of the cell of ts among its page's cells. */
static uint32_t rank_in(const struct txstats__tpage *p, int64_t ts)
{
    unsigned b = idx(ts, 0);
    return pop64(b ? p->used & ((UINT64_C(1) << b) - 1) : 0);
}

const struct txstats__cell *txstats__ti_peek(const struct txstats__tindex *ti, int64_t ts)
{
    const struct txstats__tpage *p = page_of(ti, ts);
    if (!p || !(p->used >> idx(ts, 0) & 1))
        return NULL;
    return &p->cells[p->first + rank_in(p, ts)];
}

struct txstats__cell *txstats__ti_get(const struct txstats__tindex *ti, int64_t ts)
{
    struct txstats__tpage *p = page_of(ti, ts);
    if (!p || !(p->used >> idx(ts, 0) & 1))
        return NULL;
    return &p->cells[p->first + rank_in(p, ts)];
}

struct txstats__cell *txstats__ti_find(struct txstats__tindex *ti, int64_t ts)
{
    struct txstats__tpage *p = page_of(ti, ts);
    if (!p || !(p->used >> idx(ts, 0) & 1))
        return NULL;
    ti->hot = p;
    return &p->cells[p->first + rank_in(p, ts)];
}

static struct txstats__tnode *node_new(struct txstats__tindex *ti, int64_t base)
{
    struct txstats__tnode *n = take(ti, KIND_NODE, sizeof(*n));
    if (!n)
        return NULL;
    n->base = base;
    n->used = 0;
    n->mm = EMPTY;
    for (int i = 0; i < FAN; i++) {
        n->child[i] = NULL;
        n->cmm[i] = EMPTY;
    }
    ti->bytes += sizeof(*n);
    return n;
}

/* The page of ts, made with its nodes when missing: NULL when out of memory (or, never with a
 * ring that covers the span, when the ring slot holds another node). */
static struct txstats__tpage *page_make(struct txstats__tindex *ti, int64_t ts)
{
    struct txstats__tnode **slot = &ti->ring[(ts >> SH2) & (ti->nring - 1)];
    if (*slot && (*slot)->base != ts >> SH2)
        return NULL;
    if (!*slot && !(*slot = node_new(ti, ts >> SH2)))
        return NULL;
    struct txstats__tnode *n2 = *slot, *n1 = n2->child[idx(ts, SH1)];
    if (!n1 && !(n1 = node_new(ti, ts >> SH1)))
        return NULL;
    n2->child[idx(ts, SH1)] = n1;
    n2->used |= UINT64_C(1) << idx(ts, SH1);
    struct txstats__tpage *p = n1->child[idx(ts, SH0)];
    if (!p && !(p = take(ti, KIND_PAGE, sizeof(*p))))
        return NULL;
    if (!n1->child[idx(ts, SH0)]) {
        memset(p, 0, sizeof(*p));
        p->base = ts >> SH0;
        p->mm = EMPTY;
        ti->bytes += sizeof(*p);
    }
    n1->child[idx(ts, SH0)] = p;
    n1->used |= UINT64_C(1) << idx(ts, SH0);
    return p;
}

/* Room for one more cell after the page's last (moving them to the front, or growing):
 * TXSTATS_OK or TXSTATS_ENOMEM. */
static int page_room(struct txstats__tindex *ti, struct txstats__tpage *p)
{
    if (p->first + p->n < p->cap)
        return TXSTATS_OK;
    if (p->first) {
        memmove(p->cells, &p->cells[p->first], p->n * sizeof(*p->cells));
        p->first = 0;
        return TXSTATS_OK;
    }
    uint32_t cap = p->cap ? 2 * p->cap : 1;
    cap = cap > FAN ? FAN : cap;
    struct txstats__cell *c = take(ti, array_kind(cap), cap * sizeof(*c));
    if (!c)
        return TXSTATS_ENOMEM;
    if (p->n)
        memcpy(c, p->cells, p->n * sizeof(*c));
    if (p->cells)
        give(ti, array_kind(p->cap), p->cells);
    ti->bytes += (uint64_t)(cap - p->cap) * sizeof(*c);
    p->cells = c;
    p->cap = cap;
    return TXSTATS_OK;
}

/* A page or node left empty by a failed make is freed again. */
static void prune(struct txstats__tindex *ti, int64_t ts);

int txstats__ti_make(struct txstats__tindex *ti, int64_t ts, struct txstats__cell **out)
{
    if ((*out = txstats__ti_find(ti, ts)))
        return TXSTATS_OK;
    struct txstats__tpage *p = page_make(ti, ts);
    if (!p || page_room(ti, p) != TXSTATS_OK) {
        if (p || top(ti, ts))
            prune(ti, ts);
        return TXSTATS_ENOMEM;
    }
    uint32_t r = rank_in(p, ts);
    if (r == 0 && p->first > 0) {
        p->first--; /* a cell before the first: no move */
    } else {
        struct txstats__cell *at = &p->cells[p->first + r];
        memmove(at + 1, at, (p->n - r) * sizeof(*p->cells));
    }
    struct txstats__cell *c = &p->cells[p->first + r];
    memset(c, 0, sizeof(*c));
    p->n++;
    p->used |= UINT64_C(1) << idx(ts, 0);
    ti->cells++;
    *out = c;
    return TXSTATS_OK;
}

/* Extremes of a page's active cells. */
static struct txstats__minmax page_mm(const struct txstats__tpage *p, int64_t now)
{
    struct txstats__minmax m = EMPTY;
    uint64_t used = p->used;
    for (uint32_t i = 0; used; i++, used &= used - 1) {
        int64_t ts = shl(p->base, SH0) | __builtin_ctzll(used);
        const struct txstats__cell *c = &p->cells[p->first + i];
        if (c->count && ts <= now)
            m = join(m, (struct txstats__minmax){c->min, c->max});
    }
    return m;
}

static struct txstats__minmax node_mm(const struct txstats__tnode *n)
{
    struct txstats__minmax m = EMPTY;
    for (uint64_t u = n->used; u; u &= u - 1)
        m = join(m, n->cmm[__builtin_ctzll(u)]);
    return m;
}

static void prune(struct txstats__tindex *ti, int64_t ts)
{
    struct txstats__tnode **slot = &ti->ring[(ts >> SH2) & (ti->nring - 1)];
    struct txstats__tnode *n2 = *slot, *n1 = n2 ? n2->child[idx(ts, SH1)] : NULL;
    struct txstats__tpage *p = n1 ? n1->child[idx(ts, SH0)] : NULL;
    if (p && !p->used) {
        if (ti->hot == p)
            ti->hot = NULL;
        if (p->cells)
            give(ti, array_kind(p->cap), p->cells);
        ti->bytes -= sizeof(*p) + (uint64_t)p->cap * sizeof(*p->cells);
        give(ti, KIND_PAGE, p);
        n1->child[idx(ts, SH0)] = NULL;
        n1->used &= ~(UINT64_C(1) << idx(ts, SH0));
        n1->cmm[idx(ts, SH0)] = EMPTY;
    }
    if (n1 && !n1->used) {
        give(ti, KIND_NODE, n1);
        ti->bytes -= sizeof(*n1);
        n2->child[idx(ts, SH1)] = NULL;
        n2->used &= ~(UINT64_C(1) << idx(ts, SH1));
        n2->cmm[idx(ts, SH1)] = EMPTY;
    }
    if (n2 && !n2->used) {
        give(ti, KIND_NODE, n2);
        ti->bytes -= sizeof(*n2);
        *slot = NULL;
    }
}

/* The summaries on the path of ts from its page up, after its page changed. */
static void refresh(struct txstats__tindex *ti, int64_t ts, int64_t now)
{
    struct txstats__tnode *n2 = top(ti, ts);
    struct txstats__tnode *n1 = n2 ? n2->child[idx(ts, SH1)] : NULL;
    struct txstats__tpage *p = n1 ? n1->child[idx(ts, SH0)] : NULL;
    if (p) {
        p->mm = page_mm(p, now);
        n1->cmm[idx(ts, SH0)] = p->mm;
    }
    if (n1) {
        n1->mm = node_mm(n1);
        n2->cmm[idx(ts, SH1)] = n1->mm;
    }
    if (n2)
        n2->mm = node_mm(n2);
}

void txstats__ti_remove(struct txstats__tindex *ti, int64_t ts, int64_t now, bool at_edge)
{
    struct txstats__tpage *p = page_of(ti, ts);
    uint32_t r = rank_in(p, ts);
    const struct txstats__cell *c = &p->cells[p->first + r];
    bool extreme = c->count && ts <= now && (c->min == p->mm.min || c->max == p->mm.max);
    if (r == 0) {
        p->first++; /* the oldest: expiry's case, no move */
    } else {
        struct txstats__cell *at = &p->cells[p->first + r];
        memmove(at, at + 1, (p->n - r - 1) * sizeof(*p->cells));
    }
    p->n--;
    p->first = p->n ? p->first : 0;
    p->used &= ~(UINT64_C(1) << idx(ts, 0));
    ti->cells--;
    bool emptied = !p->used;
    if (emptied)
        prune(ti, ts); /* p is freed */
    if (!at_edge && (extreme || emptied))
        refresh(ti, ts, now);
}

/* The lowest set bit of `used` at or above bit b, or -1. */
static int next_bit(uint64_t used, unsigned b)
{
    uint64_t m = used & (~UINT64_C(0) << b);
    return m ? __builtin_ctzll(m) : -1;
}

/* The first ts >= from with a cell inside the level-2 node of from, or INT64_MAX. */
static int64_t next_in_top(const struct txstats__tnode *n2, int64_t from)
{
    for (int c1 = next_bit(n2->used, idx(from, SH1)); c1 >= 0;
         c1 = c1 < LOW6 ? next_bit(n2->used, (unsigned)c1 + 1) : -1) {
        const struct txstats__tnode *n1 = n2->child[c1];
        int64_t base1 = shl(n2->base, SH2) | shl(c1, SH1);
        int64_t at = from > base1 ? from : base1;
        for (int c0 = next_bit(n1->used, idx(at, SH0)); c0 >= 0;
             c0 = c0 < LOW6 ? next_bit(n1->used, (unsigned)c0 + 1) : -1) {
            const struct txstats__tpage *p = n1->child[c0];
            int64_t base0 = base1 | shl(c0, SH0);
            int b = next_bit(p->used, at > base0 ? idx(at, 0) : 0);
            if (b >= 0)
                return base0 | b;
        }
    }
    return INT64_MAX;
}

/* A range wider than the ring: every node of the ring whose span meets [from, to]. */
static int64_t next_wide(const struct txstats__tindex *ti, int64_t from, int64_t to)
{
    int64_t best = INT64_MAX;
    for (int64_t k = 0; k < ti->nring; k++) {
        const struct txstats__tnode *n2 = ti->ring[k];
        if (!n2 || n2->base < from >> SH2 || n2->base > to >> SH2)
            continue;
        int64_t start = shl(n2->base, SH2);
        int64_t ts = next_in_top(n2, from > start ? from : start);
        best = ts < best ? ts : best;
    }
    return best <= to ? best : INT64_MAX;
}

int64_t txstats__ti_next(const struct txstats__tindex *ti, int64_t from, int64_t to)
{
    if (from > to)
        return INT64_MAX;
    if (from >> SH0 == to >> SH0) { /* one page: its bitmap alone */
        const struct txstats__tpage *p = page_of(ti, from);
        uint64_t span = ~UINT64_C(0) >> (LOW6 - idx(to, 0));
        int b = p ? next_bit(p->used & span, idx(from, 0)) : -1;
        return b >= 0 ? shl(p->base, SH0) | b : INT64_MAX;
    }
    if ((to >> SH2) - (from >> SH2) >= ti->nring)
        return next_wide(ti, from, to);
    for (int64_t k = from >> SH2; k <= to >> SH2; k++) {
        const struct txstats__tnode *n2 = top(ti, shl(k, SH2));
        int64_t ts = n2 ? next_in_top(n2, from) : INT64_MAX;
        if (ts != INT64_MAX)
            return ts <= to ? ts : INT64_MAX;
        from = shl(k + 1, SH2);
    }
    return INT64_MAX;
}

void txstats__ti_widen(struct txstats__tindex *ti, int64_t ts, struct txstats__minmax mm)
{
    struct txstats__tpage *p = page_of(ti, ts);
    if (mm.min >= p->mm.min && mm.max <= p->mm.max)
        return; /* the page's extremes hold it, so do its parents' */
    struct txstats__tnode *n2 = top(ti, ts), *n1 = n2->child[idx(ts, SH1)];
    p->mm = join(p->mm, mm);
    n1->cmm[idx(ts, SH0)] = join(n1->cmm[idx(ts, SH0)], mm);
    n1->mm = join(n1->mm, mm);
    n2->cmm[idx(ts, SH1)] = join(n2->cmm[idx(ts, SH1)], mm);
    n2->mm = join(n2->mm, mm);
}

/* Extremes of the active cells of a page with ts >= lo. */
static struct txstats__minmax page_from(const struct txstats__tpage *p, int64_t lo, int64_t now)
{
    struct txstats__minmax m = EMPTY;
    uint64_t used = p->used;
    for (uint32_t i = 0; used; i++, used &= used - 1) {
        int64_t ts = shl(p->base, SH0) | __builtin_ctzll(used);
        const struct txstats__cell *c = &p->cells[p->first + i];
        if (c->count && ts >= lo && ts <= now)
            m = join(m, (struct txstats__minmax){c->min, c->max});
    }
    return m;
}

/* Extremes of the active cells of a node (level 1 or 2) with ts >= lo, lo inside it. */
static struct txstats__minmax node_from(const struct txstats__tnode *n, int level, int64_t lo,
                                        int64_t now)
{
    int shift = level == 2 ? SH1 : SH0;
    unsigned at = idx(lo, shift);
    struct txstats__minmax m = EMPTY;
    for (uint64_t u = at < LOW6 ? n->used & (~UINT64_C(0) << (at + 1)) : 0; u; u &= u - 1)
        m = join(m, n->cmm[__builtin_ctzll(u)]);
    if (!n->child[at])
        return m;
    if (level == 2)
        return join(m, node_from(n->child[at], 1, lo, now));
    return join(m, page_from(n->child[at], lo, now));
}

struct txstats__minmax txstats__ti_extremes(const struct txstats__tindex *ti, int64_t lo,
                                            int64_t now)
{
    struct txstats__minmax m = EMPTY;
    if (lo > now)
        return m;
    bool wide = (now >> SH2) - (lo >> SH2) >= ti->nring;
    for (int64_t k = wide ? 0 : lo >> SH2; k <= (wide ? ti->nring - 1 : now >> SH2); k++) {
        const struct txstats__tnode *n2 = wide ? ti->ring[k] : top(ti, shl(k, SH2));
        if (!n2 || n2->base < lo >> SH2 || n2->base > now >> SH2)
            continue;
        m = join(m, n2->base == lo >> SH2 ? node_from(n2, 2, lo, now) : n2->mm);
    }
    return m;
}

void txstats__ti_fini(struct txstats__tindex *ti)
{
    for (int64_t k = 0; ti->ring && k < ti->nring; k++) {
        struct txstats__tnode *n2 = ti->ring[k];
        for (uint64_t u2 = n2 ? n2->used : 0; u2; u2 &= u2 - 1) {
            struct txstats__tnode *n1 = n2->child[__builtin_ctzll(u2)];
            for (uint64_t u1 = n1->used; u1; u1 &= u1 - 1) {
                struct txstats__tpage *p = n1->child[__builtin_ctzll(u1)];
                txstats__free(ti->mem, p->cells);
                txstats__free(ti->mem, p);
            }
            txstats__free(ti->mem, n1);
        }
        txstats__free(ti->mem, n2);
    }
    txstats__free(ti->mem, ti->ring);
    for (int kind = 0; kind <= KIND_NODE; kind++) {
        for (void *p = ti->spare[kind], *next; p; p = next) {
            memcpy(&next, p, sizeof(next));
            txstats__free(ti->mem, p);
        }
    }
    memset(ti, 0, sizeof(*ti));
}
