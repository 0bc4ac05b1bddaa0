/* SPDX-License-Identifier: MIT */
/*
 * Internal: the cells of a window, found by timestamp, in memory that follows the milliseconds
 * that hold transactions, not the span (leaf: only the allocator).
 *
 * A 64-ary radix tree over time: a page holds the cells of 64 ms that have one, packed in time
 * order (a bitmap says which); a level-1 node holds the pages of 4,096 ms, a level-2 node the
 * level-1 nodes of 262,144 ms; a ring of level-2 nodes covers the span. Nothing exists for time
 * without transactions: an idle window costs its ring (8 bytes per 262 s of span). Each node keeps
 * the min and max of its active cells (those the caller declared with txstats__ti_widen: the
 * window declares a cell once the clock reaches it), per child and in all, so that the extremes
 * of any suffix of the window come from at most 64 cells and 2 x 64 summaries plus one summary
 * per 262 s of the suffix.
 *
 * Cells move inside their page when a neighbour comes or goes: hold no pointer to a cell across a
 * txstats__ti_make or txstats__ti_remove of the same page.
 */
#ifndef TXSTATS_TIMEINDEX_H
#define TXSTATS_TIMEINDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "txstats/txstats.h"

typedef __int128 txstats__i128;

struct txstats__minmax {
    txstats_amount_t min;
    txstats_amount_t max;
};

/* Everything a window knows about one millisecond (window.h gives the chains' types). */
struct txstats__cell {
    uint64_t count;
    uint64_t kept; /* retained amounts in the chain */
    txstats_amount_t min;
    txstats_amount_t max;
    txstats__i128 sum;
    struct txstats__chunk *tail;   /* retained amounts: circular, newest chunk */
    struct txstats__dchunk *dtail; /* buckets of the amounts not retained (distribution.h) */
    struct txstats__tchunk *tags;  /* keyed transactions' entities: circular, newest chunk */
};

struct txstats__tnode;
struct txstats__tpage;

struct txstats__tindex {
    const struct txstats__mem *mem;
    struct txstats__tnode **ring; /* level-2 nodes, at (ts >> 18) & (nring - 1) */
    int64_t nring;
    struct txstats__tpage *hot; /* the page found last (adds cluster near now), or NULL */
    /* Freed blocks kept for reuse, a few of each kind (cell arrays of 1, 2, ... 64 cells, pages,
     * nodes): a window whose traffic holds steady allocates nothing, so the heap does not
     * fragment as cells come and go. */
    void *spare[9];
    uint32_t nspare[9];
    uint64_t cells; /* cells held */
    uint64_t bytes; /* allocated, the ring included */
};

/* An index for cells within `span_ms` (window + skew) of each other. TXSTATS_OK, TXSTATS_ENOMEM. */
int txstats__ti_init(struct txstats__tindex *ti, const struct txstats__mem *mem, int64_t span_ms);
/* Free every node and page (the cells' chains are the caller's to release first). */
void txstats__ti_fini(struct txstats__tindex *ti);
/* The cell of ts, or NULL (its page remembered: the next find near it is one comparison). */
struct txstats__cell *txstats__ti_find(struct txstats__tindex *ti, int64_t ts);
/* The same, remembering nothing (readers; and expiry, which must not move the remembered page
 * away from where adds go). */
const struct txstats__cell *txstats__ti_peek(const struct txstats__tindex *ti, int64_t ts);
struct txstats__cell *txstats__ti_get(const struct txstats__tindex *ti, int64_t ts);
/* The cell of ts, made (zeroed) when missing: TXSTATS_OK or TXSTATS_ENOMEM. */
int txstats__ti_make(struct txstats__tindex *ti, int64_t ts, struct txstats__cell **out);
/* Remove the cell of ts (it exists; its chains released); the summaries are refreshed from the
 * active cells (count > 0, ts <= now) left. `at_edge`: the cell left the window at its lower
 * edge (as every older one did): no refresh, since no query reads the summaries of the path of
 * the window's lower edge (a span's query descends to the cells on the path of its own lower
 * edge, which is never below the window's, and reads the summaries above it). */
void txstats__ti_remove(struct txstats__tindex *ti, int64_t ts, int64_t now, bool at_edge);
/* The first ts in [from, to] that has a cell, or INT64_MAX. */
int64_t txstats__ti_next(const struct txstats__tindex *ti, int64_t from, int64_t to);
/* The cell of ts is active with these extremes (or they grew). */
void txstats__ti_widen(struct txstats__tindex *ti, int64_t ts, struct txstats__minmax mm);
/* Min and max of the active cells with ts >= lo (INT64_MAX/INT64_MIN when none); `now` tells the
 * active cells of the page of lo. */
struct txstats__minmax txstats__ti_extremes(const struct txstats__tindex *ti, int64_t lo,
                                            int64_t now);

#endif
