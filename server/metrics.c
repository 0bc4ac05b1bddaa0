/* SPDX-License-Identifier: MIT */
/* GET /metrics: Prometheus text exposition format 0.0.4. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quantiles.h"
#include "server.h"
#include "spans.h"

/* The statistics of every window (span of --window-ms), labelled window="1m" and so on
 * (spans.h): each family's series together, as the exposition format wants. */
static void window(struct srv *s, struct srv_text *t)
{
    static const char *const stats[] = {"sum", "avg", "min", "max"};
    txstats_summary_text_t x[TXSTATS_MAX_SPANS];
    char name[TXSTATS_MAX_SPANS][SRV_SPAN_NAME];
    unsigned n = s->opt.spans.n;
    for (unsigned i = 0; i < n; i++) {
        txstats_summary_t sum;
        s->backend.ops->stats(s->backend.self, i, &sum);
        txstats_summary_text(&sum, &x[i]);
        srv_span_name(s->opt.spans.ms[i], name[i]);
    }
    srv_text_family(t, "txstats_window_transactions", "gauge", "Transactions in each window.");
    for (unsigned i = 0; i < n; i++)
        srv_text_put(t, "txstats_window_transactions{window=\"%s\"} %llu\n", name[i],
                     (unsigned long long)x[i].count);
    srv_text_family(
        t, "txstats_window_amount", "gauge",
        "Sum, average, minimum and maximum of the amounts in each window (currency units).");
    for (unsigned i = 0; i < n; i++) {
        const char *v[] = {x[i].sum, x[i].avg, x[i].min, x[i].max};
        for (int k = 0; k < 4; k++)
            srv_text_put(t, "txstats_window_amount{window=\"%s\",stat=\"%s\"} %s\n", name[i],
                         stats[k], v[k]);
    }
}

/* The per-key windows (the "key" member): how many are active, the limit, refusals by it. */
static void keys(struct srv *s, struct srv_text *t)
{
    txstats_entity_info_t info;
    s->backend.ops->key_info(s->backend.self, &info);
    srv_text_family(t, "txstats_keys_active", "gauge",
                    "Keys (the \"key\" member) with a transaction in the longest window or "
                    "ahead of it.");
    srv_text_put(t, "txstats_keys_active %llu\n", (unsigned long long)info.active);
    srv_text_family(t, "txstats_keys_active_limit", "gauge",
                    "Most keys active at once (--max-active-keys).");
    srv_text_put(t, "txstats_keys_active_limit %llu\n", (unsigned long long)info.limit);
    srv_text_family(t, "txstats_keys_refused_total", "counter",
                    "Transactions refused (503) because their key was new while "
                    "--max-active-keys keys were active.");
    srv_text_put(t, "txstats_keys_refused_total %llu\n", (unsigned long long)info.refused);
}

static void http(struct srv *s, struct srv_text *t)
{
    srv_text_family(t, "txstats_posts_total", "counter", "POST /transactions by outcome.");
    for (int i = 0; i < POST_OUTCOMES; i++)
        srv_text_put(t, "txstats_posts_total{outcome=\"%s\"} %llu\n", srv_post_outcome_names[i],
                     (unsigned long long)srv_posts(&s->counters, i));
    srv_text_family(t, "txstats_http_requests_total", "counter",
                    "HTTP requests by route and status class.");
    for (int r = 0; r < ROUTES; r++)
        for (int k = 2; k <= 5; k++) {
            uint64_t n = srv_statuses(&s->counters, r, k);
            if (n)
                srv_text_put(t, "txstats_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n",
                             srv_route_names[r], k, (unsigned long long)n);
        }
    uint64_t buckets[SRV_BUCKETS], ns;
    srv_durations(&s->counters, buckets, &ns);
    srv_text_family(t, "txstats_http_request_duration_seconds", "histogram",
                    "Time to handle a request (streams excluded).");
    for (int b = 0; b < SRV_BUCKETS - 1; b++)
        srv_text_put(t, "txstats_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                     srv_bucket_bounds[b], (unsigned long long)buckets[b]);
    uint64_t count = buckets[SRV_BUCKETS - 1];
    srv_text_put(t, "txstats_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                 (unsigned long long)count);
    srv_text_put(t, "txstats_http_request_duration_seconds_sum %.9f\n", (double)ns / 1e9);
    srv_text_put(t, "txstats_http_request_duration_seconds_count %llu\n",
                 (unsigned long long)count);
    srv_text_family(t, "txstats_http_open_connections", "gauge", "Open client connections.");
    srv_text_put(t, "txstats_http_open_connections %d\n", atomic_load(&s->connections));
    srv_text_family(t, "txstats_stream_clients", "gauge", "Open /statistics/stream clients.");
    srv_text_put(t, "txstats_stream_clients %d\n", atomic_load(&s->streams));
}

static void process(struct srv *s, struct srv_text *t)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    srv_text_family(t, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    srv_text_put(t, "process_resident_memory_bytes %ld\n", resident * sysconf(_SC_PAGESIZE));
    srv_text_family(t, "process_start_time_seconds", "gauge", "Start time since the Unix epoch.");
    srv_text_put(t, "process_start_time_seconds %.3f\n", (double)s->started_ms / 1000);
    srv_text_family(t, "txstats_build_info", "gauge", "Build information.");
    srv_text_put(t, "txstats_build_info{version=\"%s\"} 1\n", txstats_version());
}

int srv_metrics(struct srv *s, struct mg_connection *c)
{
    /* 32 KiB: on the heap, neither on the worker's small stack nor in TLS (which glibc carves
     * out of every thread's stack). */
    struct srv_text *t = malloc(sizeof(*t));
    if (!t)
        return srv_error(c, 503, "Retry-After: 1\r\n", "out of memory");
    t->n = 0;
    window(s, t);
    keys(s, t);
    srv_metrics_quantiles(s, t);
    http(s, t);
    s->backend.ops->metrics(s->backend.self, t);
    process(s, t);
    int st = srv_reply_as(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, t->buf, t->n);
    free(t);
    return st;
}
