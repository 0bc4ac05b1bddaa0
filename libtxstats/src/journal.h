/* SPDX-License-Identifier: MIT */
/* Internal: the journal's state and record format, shared by journal.c and recover.c. */
#ifndef TXSTATS_JOURNAL_H
#define TXSTATS_JOURNAL_H

#include "internal.h"

#define TXSTATS__REC_SIZE  32
#define TXSTATS__REC_ADD   1
#define TXSTATS__REC_CLEAR 2

struct txstats__journal {
    txstats_durability_t cfg;
    int dirfd, lockfd;
    char *snapshot_path;
    _Atomic uint64_t next_seg;
    uint64_t clear_id;    /* under all shard locks */
    unsigned streams;     /* journal streams recorded in snapshots (>= nshards) */
    pthread_mutex_t ckpt; /* one checkpoint at a time; guards checkpoints, live_segments */
    uint64_t checkpoints, live_segments;
    pthread_t flusher;
    bool flusher_running, stop;
    pthread_mutex_t fl_lock;
    pthread_cond_t fl_cond;
};

struct jrec {
    int type;
    int64_t ts, value;
};

bool txstats__decode(const uint8_t *r, struct jrec *out);
void txstats__segment_name(char *buf, size_t n, unsigned stream, uint64_t seg);
bool txstats__parse_segment_name(const char *name, unsigned *stream, uint64_t *seg);
void *txstats__flusher_main(void *arg);

#endif
