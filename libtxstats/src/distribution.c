/* SPDX-License-Identifier: MIT */
/*
 * The distribution of amounts: log-linear buckets, their counts in three levels, the per-cell
 * lists of buckets that make expiry exact, and the public txstats_dist_t that combines windows.
 * A leaf: only the allocator. See distribution.h.
 */
#include <stdint.h>
#include <string.h>

#include "distribution.h"

#ifdef TXSTATS_BENCH_NO_DIST_ADD /* bench/dist_ab.sh's baseline: see libtxstats/CMakeLists.txt */
#define TXSTATS__BENCH_NO_DIST_ADD 1
#else
#define TXSTATS__BENCH_NO_DIST_ADD 0
#endif

txstats_amount_t txstats__dist_value(uint32_t bucket)
{
    txstats_amount_t lo, hi;
    txstats__dist_bounds(bucket, &lo, &hi);
    if (lo == hi)
        return lo;
    /* Width 2^(e-9): the midpoint is lo + 2^(e-10) for positive, hi - 2^(e-10) for negative. */
    uint64_t half = ((uint64_t)(hi - lo) + 1) / 2;
    return lo >= 0 ? lo + (txstats_amount_t)half : hi - (txstats_amount_t)half;
}

void txstats__dist_bounds(uint32_t bucket, txstats_amount_t *lo, txstats_amount_t *hi)
{
    int64_t s = (int64_t)bucket - (TXSTATS__DIST_HALF - 1);
    uint64_t i = (uint64_t)(s < 0 ? -s : s), a, b;
    if (i < 1024) {
        a = b = i;
    } else {
        unsigned e = (unsigned)((i - 1024) / 512) + 10;
        a = (512 + (i - 1024) % 512) << (e - 9);
        b = a + (UINT64_C(1) << (e - 9)) - 1;
    }
    *lo = s < 0 ? -(txstats_amount_t)b : (txstats_amount_t)a;
    *hi = s < 0 ? -(txstats_amount_t)a : (txstats_amount_t)b;
}

int txstats__dcounts_init(struct txstats__dcounts *k, const struct txstats__mem *mem)
{
    size_t n = TXSTATS__DIST_L0 + TXSTATS__DIST_L1 + TXSTATS__DIST_L2;
    k->c0 = txstats__calloc(mem, n, sizeof(uint64_t));
    if (!k->c0)
        return TXSTATS_ENOMEM;
    k->c1 = k->c0 + TXSTATS__DIST_L0;
    k->c2 = k->c1 + TXSTATS__DIST_L1;
    k->total = 0;
    return TXSTATS_OK;
}

void txstats__dcounts_fini(struct txstats__dcounts *k, const struct txstats__mem *mem)
{
    txstats__free(mem, k->c0);
    k->c0 = k->c1 = k->c2 = NULL;
}

void txstats__dcounts_zero(struct txstats__dcounts *k)
{
    for (unsigned s = 0; s < TXSTATS__DIST_L2 && k->total; s++) {
        if (!k->c2[s])
            continue;
        for (unsigned g = s * 64; g < s * 64 + 64; g++) {
            if (k->c1[g])
                memset(&k->c0[g * 64], 0, 64 * sizeof(uint64_t));
            k->c1[g] = 0;
        }
        k->c2[s] = 0;
    }
    k->total = 0;
}

void txstats__dcounts_merge(struct txstats__dcounts *acc, const struct txstats__dcounts *part)
{
    for (unsigned s = 0; s < TXSTATS__DIST_L2; s++) {
        if (!part->c2[s])
            continue;
        acc->c2[s] += part->c2[s];
        for (unsigned g = s * 64; g < s * 64 + 64; g++) {
            if (!part->c1[g])
                continue;
            acc->c1[g] += part->c1[g];
            for (unsigned b = g * 64; b < g * 64 + 64; b++)
                acc->c0[b] += part->c0[b];
        }
    }
    acc->total += part->total;
}

/* Sum of the parts' counts at index i of a level. */
static uint64_t level_sum(const struct txstats__dcounts *const *parts, unsigned n, int level,
                          unsigned i)
{
    uint64_t sum = 0;
    for (unsigned p = 0; p < n; p++)
        sum += (level == 0 ? parts[p]->c0 : level == 1 ? parts[p]->c1 : parts[p]->c2)[i];
    return sum;
}

/* The child of [first, first + len) of a level holding rank *r; *r becomes the rank inside it. */
static unsigned find_child(const struct txstats__dcounts *const *parts, unsigned n, int level,
                           unsigned first, unsigned len, uint64_t *r)
{
    for (unsigned i = first; i < first + len - 1; i++) {
        uint64_t c = level_sum(parts, n, level, i);
        if (*r <= c)
            return i;
        *r -= c;
    }
    return first + len - 1;
}

uint32_t txstats__dcounts_rank(const struct txstats__dcounts *const *parts, unsigned n, uint64_t r)
{
    unsigned s = find_child(parts, n, 2, 0, TXSTATS__DIST_L2, &r);
    unsigned g = find_child(parts, n, 1, s * 64, 64, &r);
    return find_child(parts, n, 0, g * 64, 64, &r);
}

/* How many amounts of the parts lie in buckets below `b`. */
static uint64_t below(const struct txstats__dcounts *const *parts, unsigned n, uint32_t b)
{
    uint64_t sum = 0;
    for (unsigned s = 0; s < b / 4096; s++)
        sum += level_sum(parts, n, 2, s);
    for (unsigned g = b / 4096 * 64; g < b / 64; g++)
        sum += level_sum(parts, n, 1, g);
    for (unsigned i = b / 64 * 64; i < b; i++)
        sum += level_sum(parts, n, 0, i);
    return sum;
}

uint64_t txstats__dcounts_le(const struct txstats__dcounts *const *parts, unsigned n,
                             txstats_amount_t le)
{
    if (le <= -TXSTATS_AMOUNT_LIMIT)
        return 0;
    if (le >= TXSTATS_AMOUNT_LIMIT)
        le = TXSTATS_AMOUNT_LIMIT - 1;
    uint32_t b = txstats__dist_bucket(le);
    return below(parts, n, b) + level_sum(parts, n, 0, b); /* le's own bucket counts whole */
}

/* A block of chunks owned by one window: 63 at a time for adds, or as many as a load needs. */
#define SLAB_CHUNKS 63
struct txstats__dslab {
    struct txstats__dslab *next;
    uint64_t n;
    struct txstats__dchunk chunks[];
};

int txstats__dist_init(struct txstats__dist *d, const struct txstats__mem *mem)
{
    d->mem = mem;
    d->free_chunks = NULL;
    d->slabs = NULL;
    return TXSTATS_OK;
}

void txstats__dist_fini(struct txstats__dist *d)
{
    while (d->slabs) {
        struct txstats__dslab *s = d->slabs;
        d->slabs = s->next;
        txstats__free(d->mem, s);
    }
    d->free_chunks = NULL;
}

int txstats__dslab_alloc(const struct txstats__mem *mem, uint64_t n, struct txstats__dslab **out)
{
    *out = NULL;
    if (n == 0)
        return TXSTATS_OK;
    if (n > (SIZE_MAX - sizeof(**out)) / sizeof(struct txstats__dchunk))
        return TXSTATS_ENOMEM;
    struct txstats__dslab *s = txstats__alloc(mem, sizeof(*s) + n * sizeof(s->chunks[0]));
    if (!s)
        return TXSTATS_ENOMEM;
    s->n = n;
    s->next = NULL;
    *out = s;
    return TXSTATS_OK;
}

void txstats__dslab_free(const struct txstats__mem *mem, struct txstats__dslab *s)
{
    txstats__free(mem, s);
}

void txstats__dist_adopt(struct txstats__dist *d, struct txstats__dslab *s)
{
    if (!s)
        return;
    s->next = d->slabs;
    d->slabs = s;
    for (uint64_t i = s->n; i-- > 0;) {
        s->chunks[i].next = d->free_chunks;
        d->free_chunks = &s->chunks[i];
    }
}

static struct txstats__dchunk *chunk_take(struct txstats__dist *d)
{
    if (!d->free_chunks) {
        struct txstats__dslab *s;
        if (txstats__dslab_alloc(d->mem, SLAB_CHUNKS, &s) != TXSTATS_OK)
            return NULL;
        txstats__dist_adopt(d, s);
    }
    struct txstats__dchunk *k = d->free_chunks;
    d->free_chunks = k->next;
    k->n = 0;
    return k;
}

int txstats__dist_reserve(struct txstats__dist *d, const struct txstats__dchunk *tail, bool keep,
                          uint32_t pending, struct txstats__dchunk **fresh)
{
    /* The tail as `pending` reservations will leave it (a full or run chunk as none): a fresh
     * chunk exactly when that one is full. */
    uint32_t fill = tail && tail->n < TXSTATS__DCHUNK_CAP ? tail->n : 0;
    *fresh = NULL;
    if (TXSTATS__BENCH_NO_DIST_ADD || keep || (fill + pending) % TXSTATS__DCHUNK_CAP != 0)
        return TXSTATS_OK;
    return (*fresh = chunk_take(d)) ? TXSTATS_OK : TXSTATS_ENOMEM;
}

void txstats__dist_cancel(struct txstats__dist *d, struct txstats__dchunk *fresh)
{
    if (fresh) {
        fresh->next = d->free_chunks;
        d->free_chunks = fresh;
    }
}

static inline void count_bucket(struct txstats__dcounts *k, uint32_t b, uint64_t delta)
{
    uint64_t *c0 = k->c0; /* the levels are one array: one pointer to load, constant offsets */
    uint64_t *c1 = c0 + TXSTATS__DIST_L0, *c2 = c1 + TXSTATS__DIST_L1;
    c0[b] += delta;
    c1[b >> 6] += delta;
    c2[b >> 12] += delta;
    k->total += delta;
}

void txstats__dcounts_amount(struct txstats__dcounts *k, txstats_amount_t a, bool add)
{
    if (!TXSTATS__BENCH_NO_DIST_ADD)
        count_bucket(k, txstats__dist_bucket(a), add ? 1 : UINT64_MAX);
}

void txstats__dist_push(struct txstats__dist *d, struct txstats__dchunk **tail,
                        struct txstats__dchunk *fresh, txstats_amount_t amount, bool keep)
{
    (void)d;
    if (TXSTATS__BENCH_NO_DIST_ADD || keep)
        return; /* the retained amount says which bucket */
    uint32_t b = txstats__dist_bucket(amount);
    if (fresh) {
        fresh->next = *tail;
        *tail = fresh;
    }
    (*tail)->b[(*tail)->n++] = (uint16_t)b;
}

void txstats__dcounts_amounts(struct txstats__dcounts *k, const txstats_amount_t *a, uint32_t n,
                              bool add)
{
    for (uint32_t i = 0; i < n; i++)
        count_bucket(k, txstats__dist_bucket(a[i]), add ? 1 : UINT64_MAX);
}

/* A run chunk (n == RUN) stands for `run` amounts of bucket b[0], the run in b[1..4]. */
#define RUN UINT32_MAX

static uint64_t run_of(const struct txstats__dchunk *k)
{
    uint64_t run;
    memcpy(&run, &k->b[1], sizeof(run));
    return run;
}

void txstats__dcounts_list(struct txstats__dcounts *c, const struct txstats__dchunk *tail, bool add)
{
    for (const struct txstats__dchunk *k = tail; k; k = k->next) {
        if (k->n == RUN) {
            uint64_t run = run_of(k);
            count_bucket(c, k->b[0], add ? run : -run);
            continue;
        }
        for (uint32_t i = 0; i < k->n; i++)
            count_bucket(c, k->b[i], add ? 1 : UINT64_MAX); /* UINT64_MAX: minus one */
    }
}

void txstats__dist_release(struct txstats__dist *d, struct txstats__dchunk **tail)
{
    struct txstats__dchunk *k = *tail;
    if (!k)
        return;
    while (k->next)
        k = k->next;
    k->next = d->free_chunks;
    d->free_chunks = *tail;
    *tail = NULL;
}

void txstats__dist_tally(const struct txstats__dchunk *tail, uint64_t *hist, uint16_t *touched,
                         size_t *ntouched)
{
    for (const struct txstats__dchunk *k = tail; k; k = k->next) {
        bool run = k->n == RUN;
        uint32_t n = run ? 1 : k->n;
        for (uint32_t i = 0; i < n; i++) {
            uint16_t b = k->b[i];
            if (hist[b] == 0)
                touched[(*ntouched)++] = b;
            hist[b] += run ? run_of(k) : 1;
        }
    }
}

int txstats__dist_stage(struct txstats__dist *d, struct txstats__dchunk **tail, uint32_t bucket,
                        uint64_t n)
{
    if (n >= TXSTATS__DCHUNK_CAP) {
        struct txstats__dchunk *k = chunk_take(d);
        if (!k)
            return TXSTATS_ENOMEM;
        k->next = *tail;
        *tail = k;
        k->n = RUN;
        k->b[0] = (uint16_t)bucket;
        memcpy(&k->b[1], &n, sizeof(n));
        return TXSTATS_OK;
    }
    for (uint64_t i = 0; i < n; i++) {
        struct txstats__dchunk *k = *tail;
        if (!k || k->n >= TXSTATS__DCHUNK_CAP) { /* full, or a run */
            if (!(k = chunk_take(d)))
                return TXSTATS_ENOMEM; /* the entries before stay: the caller drops the list */
            k->next = *tail;
            *tail = k;
        }
        k->b[k->n++] = (uint16_t)bucket;
    }
    return TXSTATS_OK;
}

/* The public distribution. */

int txstats_dist_create(txstats_dist_t **out, const txstats_config_t *cfg)
{
    if (!out || (cfg && (!cfg->alloc) != (!cfg->free)))
        return TXSTATS_EINVAL;
    struct txstats__mem mem = {cfg ? cfg->alloc : NULL, cfg ? cfg->free : NULL,
                               cfg ? cfg->alloc_ud : NULL};
    txstats_dist_t *d = txstats__alloc(&mem, sizeof(*d));
    *out = NULL;
    if (!d)
        return TXSTATS_ENOMEM;
    d->mem = mem;
    if (txstats__dcounts_init(&d->k, &d->mem) != TXSTATS_OK) {
        txstats__free(&mem, d);
        return TXSTATS_ENOMEM;
    }
    d->min = INT64_MAX;
    d->max = INT64_MIN;
    *out = d;
    return TXSTATS_OK;
}

void txstats_dist_destroy(txstats_dist_t *d)
{
    if (!d)
        return;
    struct txstats__mem mem = d->mem;
    txstats__dcounts_fini(&d->k, &mem);
    txstats__free(&mem, d);
}

void txstats_dist_clear(txstats_dist_t *d)
{
    if (!d)
        return;
    txstats__dcounts_zero(&d->k);
    d->min = INT64_MAX;
    d->max = INT64_MIN;
}

int txstats_dist_add(txstats_dist_t *d, txstats_amount_t amount, uint64_t n)
{
    if (!d)
        return TXSTATS_EINVAL;
    if (amount <= -TXSTATS_AMOUNT_LIMIT || amount >= TXSTATS_AMOUNT_LIMIT)
        return TXSTATS_ERANGE;
    if (n == 0)
        return TXSTATS_OK;
    count_bucket(&d->k, txstats__dist_bucket(amount), n);
    d->min = amount < d->min ? amount : d->min;
    d->max = amount > d->max ? amount : d->max;
    return TXSTATS_OK;
}

int txstats_dist_merge(txstats_dist_t *acc, const txstats_dist_t *part)
{
    if (!acc || !part)
        return TXSTATS_EINVAL;
    txstats__dcounts_merge(&acc->k, &part->k);
    acc->min = part->min < acc->min ? part->min : acc->min;
    acc->max = part->max > acc->max ? part->max : acc->max;
    return TXSTATS_OK;
}

uint64_t txstats_dist_count(const txstats_dist_t *d)
{
    return d ? d->k.total : 0;
}

int txstats__quantiles(const struct txstats__dcounts *const *parts, unsigned nparts,
                       txstats_amount_t min, txstats_amount_t max, const uint32_t *q_ppb, size_t n,
                       txstats_amount_t *out)
{
    uint64_t total = 0;
    for (unsigned p = 0; p < nparts; p++)
        total += parts[p]->total;
    for (size_t i = 0; i < n; i++)
        if (q_ppb[i] > TXSTATS_Q_SCALE)
            return TXSTATS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        /* Nearest rank: the ceil(q * count)-th smallest amount, at least the first. */
        unsigned __int128 x = (unsigned __int128)q_ppb[i] * total + (TXSTATS_Q_SCALE - 1);
        uint64_t r = (uint64_t)(x / TXSTATS_Q_SCALE);
        r = r < 1 ? 1 : r;
        if (total == 0) {
            out[i] = 0;
        } else if (r == 1 || r == total) {
            out[i] = r == 1 ? min : max;
        } else {
            txstats_amount_t v = txstats__dist_value(txstats__dcounts_rank(parts, nparts, r));
            out[i] = v < min ? min : v > max ? max : v;
        }
    }
    return TXSTATS_OK;
}

int txstats_dist_quantiles(const txstats_dist_t *d, const uint32_t *q_ppb, size_t n,
                           txstats_amount_t *out)
{
    if (!d || (n && (!q_ppb || !out)))
        return TXSTATS_EINVAL;
    const struct txstats__dcounts *parts[1] = {&d->k};
    return txstats__quantiles(parts, 1, d->min, d->max, q_ppb, n, out);
}

int txstats_dist_histogram(const txstats_dist_t *d, const txstats_amount_t *le, size_t n,
                           uint64_t *counts)
{
    if (!d || (n && (!le || !counts)))
        return TXSTATS_EINVAL;
    const struct txstats__dcounts *parts[1] = {&d->k};
    for (size_t i = 0; i < n; i++)
        counts[i] = le[i] >= d->max  ? d->k.total
                    : le[i] < d->min ? 0
                                     : txstats__dcounts_le(parts, 1, le[i]);
    return TXSTATS_OK;
}

int txstats_dist_bucket_next(const txstats_dist_t *d, uint32_t *cursor, txstats_amount_t *lo,
                             txstats_amount_t *hi, uint64_t *count)
{
    if (!d || !cursor || !lo || !hi || !count)
        return 0;
    for (uint32_t b = *cursor; b < TXSTATS__DIST_BUCKETS;) {
        if (!d->k.c2[b >> 12]) {
            b = (b >> 12 << 12) + 4096; /* an empty super: skip it */
        } else if (!d->k.c1[b >> 6]) {
            b = (b >> 6 << 6) + 64; /* an empty group */
        } else if (!d->k.c0[b]) {
            b++;
        } else {
            txstats__dist_bounds(b, lo, hi);
            *count = d->k.c0[b];
            *cursor = b + 1;
            return 1;
        }
    }
    *cursor = TXSTATS__DIST_BUCKETS;
    return 0;
}

int txstats_dist_extremes(const txstats_dist_t *d, txstats_amount_t *min, txstats_amount_t *max)
{
    if (!d || !min || !max)
        return TXSTATS_EINVAL;
    *min = d->k.total ? d->min : 0;
    *max = d->k.total ? d->max : 0;
    return TXSTATS_OK;
}
