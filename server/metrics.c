/* SPDX-License-Identifier: MIT */
/* GET /metrics: Prometheus text exposition format 0.0.4. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "server.h"

const double srv_bucket_bounds[SRV_BUCKETS - 1] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                   0.01,   0.025,   0.05,   0.1,   1.0};

static const char *const route_names[ROUTES] = {
    "/transactions", "/statistics", "/transactions/statistics", "/statistics/stream", "/healthz",
    "/metrics",      "/",           "/statistics/history",      "/openapi.json",      "other"};
static const char *const outcomes[POST_OUTCOMES] = {
    "stored", "expired", "invalid_json", "invalid_field", "future", "too_large", "unavailable"};

struct text {
    char buf[16384];
    size_t n;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->buf + t->n, sizeof(t->buf) - t->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        t->n = t->n + (size_t)k < sizeof(t->buf) ? t->n + (size_t)k : sizeof(t->buf) - 1;
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void window(struct srv *s, struct text *t)
{
    txstats_summary_t sum;
    txstats_summary_text_t x;
    srv_window_stats(s, &sum);
    txstats_summary_text(&sum, &x);
    family(t, "txstats_window_transactions", "gauge", "Transactions in the window.");
    put(t, "txstats_window_transactions %llu\n", (unsigned long long)x.count);
    family(t, "txstats_window_amount", "gauge",
           "Sum, average, minimum and maximum of the amounts in the window (currency units).");
    put(t, "txstats_window_amount{stat=\"sum\"} %s\n", x.sum);
    put(t, "txstats_window_amount{stat=\"avg\"} %s\n", x.avg);
    put(t, "txstats_window_amount{stat=\"min\"} %s\n", x.min);
    put(t, "txstats_window_amount{stat=\"max\"} %s\n", x.max);
}

static void http(struct srv *s, struct text *t)
{
    family(t, "txstats_posts_total", "counter", "POST /transactions by outcome.");
    for (int i = 0; i < POST_OUTCOMES; i++)
        put(t, "txstats_posts_total{outcome=\"%s\"} %llu\n", outcomes[i],
            (unsigned long long)srv_posts(s, i));
    family(t, "txstats_http_requests_total", "counter", "HTTP requests by route and status class.");
    for (int r = 0; r < ROUTES; r++)
        for (int k = 2; k <= 5; k++) {
            uint64_t n = srv_statuses(s, r, k);
            if (n)
                put(t, "txstats_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n",
                    route_names[r], k, (unsigned long long)n);
        }
    uint64_t buckets[SRV_BUCKETS] = {0}, ns = 0, count = 0;
    for (int i = 0; i < SRV_COUNTER_SLOTS; i++) {
        for (int b = 0; b < SRV_BUCKETS; b++)
            buckets[b] +=
                atomic_load_explicit(&s->counters[i].duration_buckets[b], memory_order_relaxed);
        ns += atomic_load_explicit(&s->counters[i].duration_ns, memory_order_relaxed);
    }
    family(t, "txstats_http_request_duration_seconds", "histogram",
           "Time to handle a request (streams excluded).");
    for (int b = 0; b < SRV_BUCKETS; b++) {
        count += buckets[b];
        if (b < SRV_BUCKETS - 1)
            put(t, "txstats_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                srv_bucket_bounds[b], (unsigned long long)count);
    }
    put(t, "txstats_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
        (unsigned long long)count);
    put(t, "txstats_http_request_duration_seconds_sum %.9f\n", (double)ns / 1e9);
    put(t, "txstats_http_request_duration_seconds_count %llu\n", (unsigned long long)count);
    family(t, "txstats_http_open_connections", "gauge", "Open client connections.");
    put(t, "txstats_http_open_connections %d\n", atomic_load(&s->connections));
    family(t, "txstats_stream_clients", "gauge", "Open /statistics/stream clients.");
    put(t, "txstats_stream_clients %d\n", atomic_load(&s->streams));
}

static void durability(struct srv *s, struct text *t)
{
    txstats_journal_stats_t js;
    txstats_journal_stats(s->stats, &js);
    family(t, "txstats_snapshots_total", "counter", "Checkpoints written, by result.");
    put(t, "txstats_snapshots_total{result=\"ok\"} %llu\n",
        (unsigned long long)atomic_load(&s->snapshots_ok));
    put(t, "txstats_snapshots_total{result=\"error\"} %llu\n",
        (unsigned long long)atomic_load(&s->snapshots_failed));
    family(t, "txstats_journal_records_total", "counter", "Journal records written.");
    put(t, "txstats_journal_records_total %llu\n", (unsigned long long)js.records);
    family(t, "txstats_journal_written_bytes_total", "counter", "Journal bytes written.");
    put(t, "txstats_journal_written_bytes_total %llu\n", (unsigned long long)js.bytes);
    family(t, "txstats_journal_syncs_total", "counter", "Journal fdatasync calls.");
    put(t, "txstats_journal_syncs_total %llu\n", (unsigned long long)js.syncs);
    family(t, "txstats_journal_write_errors_total", "counter",
           "Journal writes that failed (the request got a 503).");
    put(t, "txstats_journal_write_errors_total %llu\n", (unsigned long long)js.write_errors);
    family(t, "txstats_journal_segments", "gauge", "Live journal segment files.");
    put(t, "txstats_journal_segments %llu\n", (unsigned long long)js.segments);
    family(t, "txstats_recovery_duration_seconds", "gauge", "Time the start-up recovery took.");
    put(t, "txstats_recovery_duration_seconds %.3f\n", (double)s->recovery.duration_ms / 1000);
}

static void cluster(struct srv *s, struct text *t)
{
    struct srv_cluster_figures f;
    if (!s->cluster)
        return;
    srv_cluster_figures(s, &f);
    family(t, "txstats_kafka_partitions", "gauge", "Partitions of the topic.");
    put(t, "txstats_kafka_partitions %d\n", f.partitions);
    family(t, "txstats_kafka_ready", "gauge", "1 once every partition was read to its end.");
    put(t, "txstats_kafka_ready %d\n", f.ready ? 1 : 0);
    family(t, "txstats_kafka_records_total", "counter", "Records read from the topic, by result.");
    put(t, "txstats_kafka_records_total{result=\"applied\"} %llu\n", (unsigned long long)f.applied);
    put(t, "txstats_kafka_records_total{result=\"expired\"} %llu\n", (unsigned long long)f.expired);
    put(t, "txstats_kafka_records_total{result=\"malformed\"} %llu\n",
        (unsigned long long)f.malformed);
    put(t, "txstats_kafka_records_total{result=\"clear\"} %llu\n", (unsigned long long)f.clears);
}

static void process(struct srv *s, struct text *t)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    family(t, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    put(t, "process_resident_memory_bytes %ld\n", resident * sysconf(_SC_PAGESIZE));
    family(t, "process_start_time_seconds", "gauge", "Start time since the Unix epoch.");
    put(t, "process_start_time_seconds %.3f\n", (double)s->started_ms / 1000);
    family(t, "txstats_build_info", "gauge", "Build information.");
    put(t, "txstats_build_info{version=\"%s\"} 1\n", txstats_version());
}

int srv_metrics(struct srv *s, struct mg_connection *c)
{
    /* 16 KiB: on the heap, neither on the worker's small stack nor in TLS (which glibc carves
     * out of every thread's stack). */
    struct text *t = malloc(sizeof(*t));
    if (!t)
        return srv_error(c, 503, NULL, "out of memory");
    t->n = 0;
    window(s, t);
    http(s, t);
    durability(s, t);
    cluster(s, t);
    process(s, t);
    int st = srv_reply_as(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, t->buf, t->n);
    free(t);
    return st;
}
