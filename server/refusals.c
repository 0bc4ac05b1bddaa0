/* SPDX-License-Identifier: MIT */
/* Writes refused by the disk, by cause (refusals.h). */
#include <errno.h>

#include "refusals.h"

static const char *const cause_names[REFUSAL_CAUSES] = {"disk_full", "io_error"};

void srv_refused(struct srv_refusals *r, int err, uint64_t writes)
{
    int cause = err == ENOSPC || err == EDQUOT ? REFUSED_DISK_FULL : REFUSED_IO_ERROR;
    atomic_fetch_add_explicit(&r->n[cause], writes, memory_order_relaxed);
}

void srv_refusals_metrics(struct srv_refusals *r, struct srv_text *t)
{
    srv_text_family(t, "txstats_writes_refused_total", "counter",
                    "Writes (POSTs, batch lines, DELETEs) answered 503 because the journal or "
                    "the outbox could not be written, by cause: disk_full (ENOSPC, EDQUOT), "
                    "io_error (any other error).");
    for (int c = 0; c < REFUSAL_CAUSES; c++)
        srv_text_put(t, "txstats_writes_refused_total{cause=\"%s\"} %llu\n", cause_names[c],
                     (unsigned long long)atomic_load_explicit(&r->n[c], memory_order_relaxed));
}
