/* SPDX-License-Identifier: MIT */
/* Request counters for /metrics, spread over per-CPU slots so that concurrent requests do not
 * fight over one cache line (counters.c). */
#ifndef TXSTATS_SERVER_COUNTERS_H
#define TXSTATS_SERVER_COUNTERS_H

#include <stdatomic.h>
#include <stdint.h>

/* Routes, for per-route metrics; ROUTE_OTHER counts 404s. */
enum srv_route {
    ROUTE_TRANSACTIONS,
    ROUTE_STATISTICS,
    ROUTE_STATISTICS_ALIAS,
    ROUTE_STREAM,
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_DASHBOARD,
    ROUTE_HISTORY,
    ROUTE_OPENAPI,
    ROUTE_BATCH,
    ROUTE_DISTRIBUTION,
    ROUTE_TOP,
    ROUTE_WINDOWS,
    ROUTE_OTHER,
    ROUTES
};
#define SRV_BUCKETS 12 /* request-duration histogram buckets, the last one +Inf */
extern const double srv_bucket_bounds[SRV_BUCKETS - 1];
extern const char *const srv_route_names[ROUTES];

/* Outcomes of POST /transactions and of each line of POST /transactions/batch, for /metrics. */
enum srv_post_outcome {
    POST_STORED,
    POST_EXPIRED,
    POST_INVALID_JSON,
    POST_INVALID_FIELD,
    POST_FUTURE,
    POST_TOO_LARGE,
    POST_UNAVAILABLE,
    POST_REPLAYED,  /* a retry with a known Idempotency-Key: answered again, not counted again */
    POST_CONFLICT,  /* a known Idempotency-Key with another transaction */
    POST_KEY_LIMIT, /* a new key while --max-active-keys keys are active: 503, nothing counted */
    POST_OUTCOMES
};
extern const char *const srv_post_outcome_names[POST_OUTCOMES];

#define SRV_COUNTER_SLOTS 16
struct srv_counter_slot {
    atomic_uint_fast64_t posts[POST_OUTCOMES];
    atomic_uint_fast64_t statuses[ROUTES][6]; /* by route and class: [r][2] = 2xx ... */
    atomic_uint_fast64_t duration_buckets[SRV_BUCKETS];
    atomic_uint_fast64_t duration_ns; /* sum */
} __attribute__((aligned(64)));

struct srv_counters {
    struct srv_counter_slot slot[SRV_COUNTER_SLOTS];
};

void srv_count_post(struct srv_counters *k, int outcome);
/* A finished request: its route, status and duration (ns < 0: not timed, e.g. a stream). */
void srv_count_request(struct srv_counters *k, int route, int status, int64_t ns);

/* Totals over the slots. */
uint64_t srv_posts(const struct srv_counters *k, int outcome);
uint64_t srv_statuses(const struct srv_counters *k, int route, int cls);
/* Cumulative histogram counts (buckets[SRV_BUCKETS]) and the sum of durations in ns. */
void srv_durations(const struct srv_counters *k, uint64_t *buckets, uint64_t *sum_ns);

#endif
