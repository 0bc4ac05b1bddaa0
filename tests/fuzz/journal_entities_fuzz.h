/* SPDX-License-Identifier: MIT */
/* The instance of fuzz_journal_entities and of the runs that wrote its seeds: one shard (one
 * journal stream), a 1 s window with 100 ms of skew on a fixed clock, at most 8 entities. */
#ifndef TXSTATS_JOURNAL_ENTITIES_FUZZ_H
#define TXSTATS_JOURNAL_ENTITIES_FUZZ_H

#include <stdlib.h>

#include <txstats/txstats.h>

#define JEF_T0 INT64_C(1531821591312)

static inline int64_t jef_clock(void *ctx)
{
    (void)ctx;
    return JEF_T0;
}

static inline txstats_t *jef_make(void)
{
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    cfg.shards = 1;
    cfg.window_ms = 1000; /* a small ring: fast executions */
    cfg.max_skew_ms = 100;
    cfg.max_entities = 8;
    cfg.clock_ms = jef_clock;
    if (txstats_create(&t, &cfg) != TXSTATS_OK)
        abort();
    return t;
}

#endif
