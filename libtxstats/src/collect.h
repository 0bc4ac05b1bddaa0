/* SPDX-License-Identifier: MIT */
/*
 * Internal: the image writer (format in image.h). It visits every shard in short holds of its
 * lock, each copying at most a megabyte of cells into one block, which is written once the lock
 * is released: writers wait for a copy of at most that much, never for file I/O. Then the
 * idempotency keys, a piece of a sub-table at a time, and for a checkpoint each journal stream's
 * bound and cuts (image.h gives the rule that makes the pieces one exact cut).
 *
 * Memory beyond the window: one block (2 MiB), the bucket tally of one cell (520 KiB) and two
 * words per hold. A cell larger than a hold is written across several holds: its retained
 * amounts only ever grow at the end of its chain until it leaves the window, so the cursor stays
 * valid while the cell is in the window.
 */
#ifndef TXSTATS_COLLECT_H
#define TXSTATS_COLLECT_H

#include <stdbool.h>

#include "fileio.h"
#include "internal.h"

struct txstats__collect;

/* A writer of `t`'s image. `checkpoint`: each shard's journal stream moves to a fresh segment at
 * the shard's first hold and the image carries the cuts; `streams` (>= the shards) is how many
 * journal streams it must cover (streams beyond the shards, from a run with more, are covered
 * whole). TXSTATS_OK or TXSTATS_ENOMEM. */
int txstats__collect_new(txstats_t *t, bool checkpoint, unsigned streams,
                         struct txstats__collect **out);
void txstats__collect_free(struct txstats__collect *c);
/* A txstats__produce_fn (fileio.h) for a txstats__collect: the image, block by block, through
 * `emit`. 0, or -1 with errno: EAGAIN when the contents were replaced meanwhile (a clear, a
 * load: produce again), ENOMEM, or what emit or a journal rotation failed with. */
int txstats__collect_produce(void *collect, txstats__emit_fn emit, void *emit_ctx);
/* After a produced checkpoint: per stream, the first segment it does not cover, into bound[];
 * returns the number of streams. */
unsigned txstats__collect_bounds(const struct txstats__collect *c, uint64_t *bound);

#endif
