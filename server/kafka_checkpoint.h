/* SPDX-License-Identifier: MIT */
/*
 * Per-partition checkpoints of a cluster node (kafka_checkpoint.c): one partition's window, the
 * offset it covers and its table of record identities, so that a restarted node reads only what
 * came after instead of the whole window.
 *
 * Files in DIR (DATA_DIR/partitions/TOPIC; DATA_DIR/partitions/lock is the flock against a
 * second process):
 * - `p<P>-<OFFSET>.bin`: the window of partition P holding exactly the records below OFFSET
 *   (txstats_save_bin, with its own CRC-32C: temporary file, fsync, rename, fsync of the
 *   directory);
 * - `p<P>.meta`: the pointer, text lines `txstats-partition-checkpoint 1`, `topic`, `partition`,
 *   `offset`, `window_ms`, `saved_ms`, `transactions`, `snapshot` (the file name above),
 *   `origins N` then N lines `<node, 16 hex digits> <last seq>`, and last `crc <CRC-32 (zlib's) of
 *   every byte before that line, 8 hex digits>`; written after its snapshot, through a temporary
 *   file, fsync, rename, fsync of the directory.
 * A snapshot is deleted only after a newer meta no longer names it, so a crash at any point leaves
 * the previous meta and the snapshot it names, or the new ones.
 *
 * Thread-safety: none; one writer per directory (the lock), readers before it starts writing.
 */
#ifndef TXSTATS_SERVER_KAFKA_CHECKPOINT_H
#define TXSTATS_SERVER_KAFKA_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include <txstats/txstats.h>

/* The last sequence applied from one node (record identities; node 0 is never stored). */
struct srv_ckpt_origin {
    uint64_t node, last;
};

/* What a meta file says: the snapshot, the offset and identities it covers. */
struct srv_ckpt_meta {
    char topic[256];
    int32_t partition;
    int64_t offset;    /* records below it are in the snapshot */
    int64_t window_ms; /* the longest span of the windows the snapshot was written with */
    int64_t saved_ms;  /* wall clock, ms since the epoch */
    uint64_t transactions;
    char snapshot[64]; /* file name in the directory */
    size_t norigins;
    struct srv_ckpt_origin *origins; /* malloc'd by srv_ckpt_read; srv_ckpt_meta_free */
};

/* Create DATA_DIR/partitions/TOPIC and lock DATA_DIR/partitions (flock, held on *lock_fd until
 * srv_ckpt_unlock). `dir` (of `dirn` bytes) receives the topic's directory.
 * Returns 0, or -1 with a message in err (EBUSY: another process holds it). */
int srv_ckpt_open(const char *data_dir, const char *topic, char *dir, size_t dirn, int *lock_fd,
                  char *err, size_t errn);
void srv_ckpt_unlock(int lock_fd); /* -1: nothing */

/* Write partition m->partition's checkpoint: the snapshot of `w` as p<P>-<m->offset>.bin, then
 * the meta (m's topic, offset, window_ms, transactions and origins; saved_ms and snapshot are
 * filled in here), then delete the partition's older files. `w` must not change meanwhile (the
 * caller is the only thread applying records to it). Returns 0, or -1 with a message in err (the
 * previous checkpoint is then still usable). */
int srv_ckpt_write(const char *dir, txstats_t *w, struct srv_ckpt_meta *m, char *err, size_t errn);

/* Read and check partition p's meta (CRC, format, partition). Returns 0 (m filled, free with
 * srv_ckpt_meta_free), 1 when there is none, or -1 with a message in err (damaged). */
int srv_ckpt_read(const char *dir, int32_t p, struct srv_ckpt_meta *m, char *err, size_t errn);

/* Load the snapshot m names into `w` (all or nothing). Returns a txstats status; *approximate:
 * transactions whose buckets the file, written by an older version, did not keep. */
int srv_ckpt_load(const char *dir, const struct srv_ckpt_meta *m, txstats_t *w,
                  uint64_t *approximate);

void srv_ckpt_meta_free(struct srv_ckpt_meta *m);

#endif
