/* SPDX-License-Identifier: MIT */
/* Request counters, one slot per CPU (mod SRV_COUNTER_SLOTS), added up when read. */
#define _GNU_SOURCE
#include <sched.h>

#include "counters.h"

const double srv_bucket_bounds[SRV_BUCKETS - 1] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                   0.01,   0.025,   0.05,   0.1,   1.0};

const char *const srv_route_names[ROUTES] = {"/transactions",
                                             "/statistics",
                                             "/transactions/statistics",
                                             "/statistics/stream",
                                             "/healthz",
                                             "/metrics",
                                             "/",
                                             "/statistics/history",
                                             "/openapi.json",
                                             "/transactions/batch",
                                             "/statistics/distribution",
                                             "/statistics/top",
                                             "/statistics/windows",
                                             "other"};

const char *const srv_post_outcome_names[POST_OUTCOMES] = {
    "stored",    "expired",     "invalid_json", "invalid_field", "future",
    "too_large", "unavailable", "replayed",     "conflict",      "key_limit"};

static struct srv_counter_slot *slot(struct srv_counters *k)
{
    int cpu = sched_getcpu();
    return &k->slot[(unsigned)(cpu < 0 ? 0 : cpu) % SRV_COUNTER_SLOTS];
}

void srv_count_post(struct srv_counters *k, int outcome)
{
    atomic_fetch_add_explicit(&slot(k)->posts[outcome], 1, memory_order_relaxed);
}

void srv_count_request(struct srv_counters *k, int route, int status, int64_t ns)
{
    struct srv_counter_slot *s = slot(k);
    if (status >= 200 && status < 600)
        atomic_fetch_add_explicit(&s->statuses[route][status / 100], 1, memory_order_relaxed);
    if (ns < 0)
        return;
    int b = 0;
    while (b < SRV_BUCKETS - 1 && (double)ns > srv_bucket_bounds[b] * 1e9)
        b++;
    atomic_fetch_add_explicit(&s->duration_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->duration_ns, (uint64_t)ns, memory_order_relaxed);
}

uint64_t srv_posts(const struct srv_counters *k, int outcome)
{
    uint64_t n = 0;
    for (int i = 0; i < SRV_COUNTER_SLOTS; i++)
        n += atomic_load_explicit(&k->slot[i].posts[outcome], memory_order_relaxed);
    return n;
}

uint64_t srv_statuses(const struct srv_counters *k, int route, int cls)
{
    uint64_t n = 0;
    for (int i = 0; i < SRV_COUNTER_SLOTS; i++)
        n += atomic_load_explicit(&k->slot[i].statuses[route][cls], memory_order_relaxed);
    return n;
}

void srv_durations(const struct srv_counters *k, uint64_t *buckets, uint64_t *sum_ns)
{
    uint64_t running = 0;
    *sum_ns = 0;
    for (int b = 0; b < SRV_BUCKETS; b++) {
        for (int i = 0; i < SRV_COUNTER_SLOTS; i++)
            running += atomic_load_explicit(&k->slot[i].duration_buckets[b], memory_order_relaxed);
        buckets[b] = running;
    }
    for (int i = 0; i < SRV_COUNTER_SLOTS; i++)
        *sum_ns += atomic_load_explicit(&k->slot[i].duration_ns, memory_order_relaxed);
}
