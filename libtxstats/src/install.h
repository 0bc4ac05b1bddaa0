/* SPDX-License-Identifier: MIT */
/*
 * Internal: the image reader (format in image.h), in two passes over the blocks, one block in
 * memory at a time. The first checks everything (CRCs, records, every cell's invariants, the
 * totals), builds the idempotency-key table aside, keeps the journal cuts and counts what the
 * window will need; nothing of the instance changes. The second allocates that first (so that it
 * cannot fail half-way), then under every lock empties the window and puts each cell into shard
 * (section mod shards), merged with what is there: cells built as the live window builds them
 * (the same retention budget, the same bucket lists), so every answer after a load is the one
 * the image was written from.
 */
#ifndef TXSTATS_INSTALL_H
#define TXSTATS_INSTALL_H

#include <stdbool.h>

#include "image.h"
#include "internal.h"

struct txstats__load;

/* The first pass over `in` (which the load uses until txstats__load_free): TXSTATS_OK,
 * TXSTATS_EFORMAT, TXSTATS_EIO (errno), TXSTATS_ENOMEM. */
int txstats__load_check(txstats_t *t, struct txstats__img_in *in, struct txstats__load **out);
/* The second pass: the contents replaced. TXSTATS_OK; TXSTATS_ENOMEM before anything changed;
 * TXSTATS_EIO or TXSTATS_EFORMAT when the input changed since the first pass (the contents are
 * then empty). *loaded and *dropped (outside the window now) count transactions; *by_bucket, of
 * those loaded, the ones whose amounts came as bucket counts (not retained). */
int txstats__load_commit(struct txstats__load *l, uint64_t *loaded, uint64_t *dropped,
                         uint64_t *by_bucket);
void txstats__load_free(struct txstats__load *l);
/* Whether the image is a journal checkpoint that covers stream s: its segments below *bound. */
bool txstats__load_bound(const struct txstats__load *l, unsigned s, uint64_t *bound);
/* Whether a journal record of stream s, in a segment at or above its bound, is in the image
 * already (image.h's cut rule). */
bool txstats__load_covers(const struct txstats__load *l, unsigned s, int64_t ts, uint64_t seq);

#endif
