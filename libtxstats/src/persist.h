/* SPDX-License-Identifier: MIT */
/* Internal: what recover.c asks of the persistence layer (persist.c). */
#ifndef TXSTATS_PERSIST_H
#define TXSTATS_PERSIST_H

#include "internal.h"
#include "snapshot.h"

#define TXSTATS__CHECKPOINT_NAME "checkpoint.bin"
#define TXSTATS__LEGACY_SNAPSHOT "snapshot.json" /* checkpoints of libtxstats 0.1.0 */

/* The newest checkpoint in `dirfd` into an initialised `sn`: TXSTATS_OK, TXSTATS_EFORMAT,
 * TXSTATS_EIO with errno ENOENT when there is none, other TXSTATS_EIO, TXSTATS_ENOMEM. */
int txstats__checkpoint_read(txstats_t *t, int dirfd, struct txstats__snap *sn);
/* Replace the window's contents with the cells of `sn` that are inside it now; all or nothing.
 * Returns TXSTATS_OK or TXSTATS_ENOMEM; *dropped (may be NULL) counts the transactions of cells
 * outside the window. */
int txstats__snapshot_install(txstats_t *t, const struct txstats__snap *sn, uint64_t *dropped);
/* Attach an open, started journal: every shard gets its stream, checkpoints start (the
 * background checkpointer too, with cfg.checkpoint_interval_ms > 0). `known_streams`: streams
 * that checkpoints must cover (>= the shards; more after a run with more shards). */
int txstats__attach(txstats_t *t, struct txstats__journal *j, unsigned known_streams);

#endif
