/* SPDX-License-Identifier: MIT */
/*
 * Writes refused because this node's disk would not take them (refusals.c): every POST, batch
 * line or DELETE answered 503 because the journal or the outbox could not be written, by cause,
 * for /metrics as txstats_writes_refused_total{cause="disk_full"|"io_error"}. Rare by nature:
 * one atomic counter per cause, no per-CPU slots.
 */
#ifndef TXSTATS_SERVER_REFUSALS_H
#define TXSTATS_SERVER_REFUSALS_H

#include <stdatomic.h>
#include <stdint.h>

#include "text.h"

enum srv_refusal_cause {
    REFUSED_DISK_FULL, /* ENOSPC, EDQUOT */
    REFUSED_IO_ERROR,  /* any other error */
    REFUSAL_CAUSES
};

struct srv_refusals {
    atomic_uint_fast64_t n[REFUSAL_CAUSES];
};

/* `writes` writes refused because a write failed with errno `err`. */
void srv_refused(struct srv_refusals *r, int err, uint64_t writes);
/* The txstats_writes_refused_total family, every cause listed (0 included). */
void srv_refusals_metrics(struct srv_refusals *r, struct srv_text *t);

#endif
