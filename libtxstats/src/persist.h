/* SPDX-License-Identifier: MIT */
/* Internal: what recover.c asks of the persistence layer (persist.c). */
#ifndef TXSTATS_PERSIST_H
#define TXSTATS_PERSIST_H

#include "image.h"
#include "internal.h"
#include "snapshot.h"

#define TXSTATS__CHECKPOINT_NAME "checkpoint.bin"
#define TXSTATS__LEGACY_SNAPSHOT "snapshot.json" /* checkpoints of libtxstats 0.1.0 */

/* Where an image is read from: the file itself (format 2), or an older format or a JSON
 * snapshot turned into an image in memory. */
struct txstats__source {
    struct txstats__img_in in;
    int fd;
    uint8_t *mem;
    size_t len;
    uint64_t approximate; /* amounts the file did not keep the buckets of (older formats) */
};

/* `name` relative to `dirfd` (AT_FDCWD: a path) opened as an image: TXSTATS_OK, TXSTATS_EIO
 * (errno; ENOENT when there is no such file), TXSTATS_EFORMAT, TXSTATS_ENOMEM. */
int txstats__source_open(txstats_t *t, int dirfd, const char *name, struct txstats__source *src);
void txstats__source_close(txstats_t *t, struct txstats__source *src);
/* Attach an open, started journal: every shard gets its stream, checkpoints start (the
 * background checkpointer too, with cfg.checkpoint_interval_ms > 0). `known_streams`: streams
 * that checkpoints must cover (>= the shards; more after a run with more shards). */
int txstats__attach(txstats_t *t, struct txstats__journal *j, unsigned known_streams);

#endif
