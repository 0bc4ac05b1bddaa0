/* SPDX-License-Identifier: MIT */
/*
 * Internal: the window of one shard, a ring of per-millisecond cells (leaf: it knows no lock, no
 * journal, no file; it calls only the allocator). The caller serialises every call on one window.
 */
#ifndef TXSTATS_WINDOW_H
#define TXSTATS_WINDOW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "distribution.h"
#include "timeindex.h"
#include "txstats/txstats.h"

/* Clock readings are clamped to +/- this, so timestamps stay exact in a JSON double (2^53) and
 * no window arithmetic can overflow. */
#define TXSTATS__CLOCK_LIMIT (INT64_C(1) << 52)
#define TXSTATS__MAX_SPANS   8
#define TXSTATS__FREE_MAX    256 /* chunks a window keeps for reuse, of each kind */

/* The shape every window of an instance shares. */
struct txstats__geom {
    int64_t window_ms; /* the longest span: what the window keeps */
    int64_t skew_ms;
    unsigned nspans;
    unsigned longest;                  /* its index */
    int64_t spans[TXSTATS__MAX_SPANS]; /* spans[0]: the default */
};

/* Retention budget shared by the windows of an instance: kept amounts + window credits + pool ==
 * max_retained, always. Windows take credit in batches, so the shared counter is touched once per
 * `batch` adds. */
struct txstats__retention {
    _Atomic uint64_t pool;
    uint64_t batch;
};

/* Retained amounts of one millisecond: a circular list of chunks; the cell points at the newest
 * (tail) chunk, tail->next is the oldest. */
#define TXSTATS__CHUNK_CAP 14
struct txstats__chunk {
    struct txstats__chunk *next;
    uint32_t n;
    txstats_amount_t amounts[TXSTATS__CHUNK_CAP];
};

/* Tags of one millisecond: which entity (entities.h: a slot of the shard's table) each keyed
 * transaction counts for, and its amount. A list, newest chunk first. */
#define TXSTATS__TAG_CAP 12
struct txstats__tchunk {
    struct txstats__tchunk *next;
    uint32_t n;
    uint32_t slot[TXSTATS__TAG_CAP];
    txstats_amount_t amount[TXSTATS__TAG_CAP];
};

/* What happens to a tag (window.h calls the window's sink; entities.h does it). Every tag in a
 * window holds its entity's reservation until it is counted (its cell active: it counts in every
 * span at once), then its count in each span until it is uncounted there (its cell left that
 * span); a tag discarded before it was counted is dropped. `span` matters to UNCOUNT only; the
 * longest span's UNCOUNT comes last. */
enum { TXSTATS__TAG_COUNT = 1, TXSTATS__TAG_UNCOUNT = 2, TXSTATS__TAG_DROP = 3 };
struct txstats__tag_sink {
    void (*fn)(void *ctx, uint32_t slot, txstats_amount_t amount, int op, unsigned span);
    void *ctx;
};

/* What one span of a window counts: the active cells with ts > now - span. */
struct txstats__span {
    uint64_t count, kept;
    txstats__i128 sum;
    struct txstats__dcounts k; /* the distribution of their amounts */
};

struct txstats__window {
    const struct txstats__geom *g;
    const struct txstats__mem *mem;
    struct txstats__retention *ret;
    int64_t now;               /* the time up to which expiry has been applied */
    uint64_t credit;           /* retained amounts this window may still add, from ret->pool */
    struct txstats__tindex ti; /* the cells, active or ahead of now */
    struct txstats__span sp[TXSTATS__MAX_SPANS];
    struct txstats__chunk *free_chunks; /* at most TXSTATS__FREE_MAX each */
    struct txstats__tchunk *free_tags;
    uint32_t nfree_chunks, nfree_tags;
    struct txstats__tag_sink sink; /* set by the owner after init; fn NULL: tags ignored */
    struct txstats__dist dist;     /* the bucket lists' chunks */
};

/* An add in two steps, so that the caller can do what may fail (a journal write) in between:
 * reserve takes what the add needs (credit, a chunk), then apply or cancel. Several reservations
 * may be pending at once (a batch): apply them in the order they were reserved, or cancel them
 * all. */
struct txstats__reservation {
    txstats_amount_t amount;
    int64_t ts;
    bool keep;
    bool made;    /* the reserve made the cell (a cancel removes it again when empty) */
    uint32_t tag; /* entity slot + 1 (its reservation taken by the caller), 0: none */
    struct txstats__chunk *fresh;
    struct txstats__dchunk *dfresh;
    struct txstats__tchunk *tfresh;
};

/* TXSTATS_OK or TXSTATS_ENOMEM (nothing allocated). */
int txstats__window_init(struct txstats__window *w, const struct txstats__geom *g,
                         const struct txstats__mem *mem, struct txstats__retention *ret);
void txstats__window_fini(struct txstats__window *w);
/* Activate what the clock reached, then, in each span, uncount what left it; the cells that left
 * the longest span are freed. */
void txstats__window_advance(struct txstats__window *w, int64_t now);
/* Remove everything; `now` stays. */
void txstats__window_reset(struct txstats__window *w);
/* What a caller with several reservations pending in one cell has reserved there (a batch):
 * reserve needs it to know where the cell's chains will end. */
struct txstats__pending {
    uint32_t keep, dist, tags;
};
/* The cell of ts is made (empty) if missing, so that apply never allocates; cancel removes it
 * again when nothing else is in it.
 * TXSTATS_OK, TXSTATS_EXPIRED (older than the window's now) or TXSTATS_ENOMEM. `pend`: the
 * caller's pending reservations in this cell, updated (NULL: none). `may_keep` false: not
 * retained for listing whatever the budget (a replay of an add the live window did not retain);
 * r->keep says what was decided. `tag`: entity slot + 1 or 0; on success the tag (and its
 * entity's reservation) belongs to the window: apply counts it when its cell is active, cancel
 * drops it; on failure it stays the caller's. */
int txstats__window_reserve(struct txstats__window *w, txstats_amount_t amount, int64_t ts,
                            uint32_t tag, struct txstats__reservation *r,
                            struct txstats__pending *pend, bool may_keep);
void txstats__window_apply(struct txstats__window *w, const struct txstats__reservation *r);
void txstats__window_cancel(struct txstats__window *w, const struct txstats__reservation *r);
/* Min and max of the span's cells (INT64_MAX/INT64_MIN when empty): from at most 64 cells and
 * 128 summaries, plus one summary per 262 s of the span. */
struct txstats__minmax txstats__window_extremes(const struct txstats__window *w, unsigned span);
/* The oldest timestamp of a span now. */
static inline int64_t txstats__window_lo(const struct txstats__window *w, unsigned span)
{
    return w->now - w->g->spans[span] + 1;
}
/* First ts in [from, to] whose cell holds data, or INT64_MAX. */
int64_t txstats__window_next_used(const struct txstats__window *w, int64_t from, int64_t to);
/* The cell of a used ts. */
const struct txstats__cell *txstats__window_cell(const struct txstats__window *w, int64_t ts);

/* Retained amounts of a cell, oldest first, a chunk at a time. */
struct txstats__kept_iter {
    const struct txstats__chunk *next, *tail;
};
void txstats__kept_begin(const struct txstats__cell *c, struct txstats__kept_iter *it);
/* The next run of amounts (*n of them), or NULL at the end. */
const txstats_amount_t *txstats__kept_next(struct txstats__kept_iter *it, uint32_t *n);

/* A cell being loaded from an image: built outside the ring, then closed into it. Its retained
 * amounts take the retention budget as adds do; those that find none, and the buckets of the
 * amounts the image did not retain, go to its bucket list. Nothing of it is counted until it is
 * closed. */
struct txstats__stage {
    struct txstats__cell c; /* count: amounts staged so far */
    int64_t ts;             /* the cell's, once a tag came */
};
/* TXSTATS_OK or TXSTATS_ENOMEM (drop the stage). Chunks come from the window's free lists
 * or are allocated. */
int txstats__window_stage_kept(struct txstats__window *w, struct txstats__stage *st,
                               txstats_amount_t amount);
int txstats__window_stage_buckets(struct txstats__window *w, struct txstats__stage *st,
                                  uint32_t bucket, uint64_t n);
/* A tag (entity slot, amount) of the staged cell `ts`, its entity's reservation taken, and
 * counted at once when ts is active (so an entity holds no pile of reservations while a large
 * cell is staged; a dropped stage uncounts it): TXSTATS_OK or TXSTATS_ENOMEM (the tag dropped
 * through the sink). */
int txstats__window_stage_tag(struct txstats__window *w, struct txstats__stage *st, int64_t ts,
                              uint32_t slot, txstats_amount_t amount);
/* Into the window at ts with the aggregates of `agg` (count, sum, min, max), merged with what
 * the cell there holds; counted when ts <= the window's now, in the spans it is in. `st` is
 * empty afterwards. TXSTATS_OK, or TXSTATS_ENOMEM (the cell could not be made: the stage is
 * dropped). */
int txstats__window_stage_close(struct txstats__window *w, int64_t ts, struct txstats__stage *st,
                                const struct txstats__cell *agg);
/* Give back what a stage holds (chunks, budget; its tags dropped through the sink). */
void txstats__window_stage_drop(struct txstats__window *w, struct txstats__stage *st);
/* The window's unused retention credit back to the shared budget (a load, every lock held: so
 * that no window's batch of credit keeps another from retaining what the image retained). */
void txstats__window_return_credit(struct txstats__window *w);
/* Whether ts is inside the window or ahead of it within the skew, with a used cell. */
bool txstats__window_used(const struct txstats__window *w, int64_t ts);

/* Free a list of chunks linked by `next`. */
void txstats__chunks_free(const struct txstats__mem *mem, struct txstats__chunk *pool);

#endif
