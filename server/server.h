/* SPDX-License-Identifier: MIT */
/* State shared by the server's files. */
#ifndef TXSTATS_SERVER_H
#define TXSTATS_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <civetweb.h>
#include <txstats/txstats.h>

enum srv_log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct srv_options {
    char listen[128];
    int threads;
    int64_t window_ms;
    int64_t max_skew_ms;
    int64_t max_retained;
    int64_t max_body_bytes;
    char data_dir[1024];
    int64_t save_interval_ms;
    char admin_token_file[1024];
    char access_log[1024];
    int log_level;
    int fsync; /* txstats_fsync_t */
    int64_t fsync_interval_ms;
    int recover; /* 0 strict, 1 skip-corrupt */
    int64_t request_timeout_ms;
    int64_t keep_alive_timeout_ms;
    int64_t max_list;
    char port_file[1024];
    int64_t stream_interval_ms;
    int max_streams;
    int64_t stream_max_seconds;
    char kafka_brokers[1024];
    char kafka_topic[256];
    int64_t kafka_timeout_ms;
};

/* Routes, for per-route metrics; ROUTE_OTHER counts 404s. */
enum srv_route {
    ROUTE_TRANSACTIONS,
    ROUTE_STATISTICS,
    ROUTE_STATISTICS_ALIAS,
    ROUTE_STREAM,
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_DASHBOARD,
    ROUTE_OTHER,
    ROUTES
};
#define SRV_BUCKETS 12 /* request-duration histogram buckets, the last one +Inf */

/* POST outcomes and HTTP statuses, for /metrics. */
enum srv_post_outcome {
    POST_STORED,
    POST_EXPIRED,
    POST_INVALID_JSON,
    POST_INVALID_FIELD,
    POST_FUTURE,
    POST_TOO_LARGE,
    POST_UNAVAILABLE,
    POST_OUTCOMES
};

/* Request counters, spread over per-CPU slots so that concurrent requests do not fight over one
 * cache line; /metrics adds the slots up. */
#define SRV_COUNTER_SLOTS 16
struct srv_counters {
    atomic_uint_fast64_t posts[POST_OUTCOMES];
    atomic_uint_fast64_t statuses[ROUTES][6]; /* by route and class: [r][2] = 2xx ... */
    atomic_uint_fast64_t duration_buckets[SRV_BUCKETS];
    atomic_uint_fast64_t duration_ns; /* sum */
    atomic_uint_fast64_t mutations;   /* stored POSTs and DELETEs: the saver skips idle periods */
} __attribute__((aligned(64)));

struct srv {
    struct srv_options opt;
    struct srv_counters counters[SRV_COUNTER_SLOTS];
    txstats_t *stats;
    char admin_token[256]; /* empty: DELETE is open */
    size_t admin_token_len;
    FILE *access_log;
    atomic_int listings; /* concurrent GET /transactions */
    atomic_int streams;  /* open /statistics/stream clients */
    atomic_int connections;
    atomic_bool stopping;
    atomic_uint_fast64_t snapshots_ok, snapshots_failed;
    txstats_recovery_t recovery;
    struct srv_cluster *cluster; /* NULL: standalone */
    struct srv_guard *guard;     /* guard.c: held connections never starve the rest */
    int64_t started_ms;
};

/* counters (routes.c) */
struct srv_counters *srv_slot(struct srv *s); /* the current CPU's slot */
uint64_t srv_posts(struct srv *s, int outcome);
uint64_t srv_statuses(struct srv *s, int route, int cls);
uint64_t srv_mutations(struct srv *s);

/* log.c */
extern int srv_log_threshold;
void srv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t srv_now_ms(void);

/* http.c: every response is built in one buffer and sent with one write, with Content-Length
 * (or chunked framing), so keep-alive works and Nagle never delays a reply. */
int srv_reply(struct mg_connection *c, int status, const char *headers, const char *body,
              size_t len);
int srv_reply_as(struct mg_connection *c, int status, const char *type, const char *headers,
                 const char *body, size_t len);
/* 201 or 204 with no body: a constant, one write. */
int srv_reply_empty(struct mg_connection *c, int status);
int srv_reply_json(struct mg_connection *c, int status, const char *json);
int srv_error(struct mg_connection *c, int status, const char *headers, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Read the whole request body: 0 and a malloc'd buffer; 413 past `max` (a declared length at once,
 * before any "100 Continue", RFC 9110 §10.1.1); 408 when the client stops sending (request
 * timeout); 400 when it closes or the chunked framing is bad (RFC 9112 §7.1). */
int srv_read_body(struct mg_connection *c, int64_t max, char **body, size_t *len);
/* Per request: srv_request_begin before the handler (HEAD: every reply is headers only, RFC 9110
 * §9.3.2); srv_request_end after it closes the connection when the body was not read to its end
 * (RFC 9112 §9.6, §6.3), since civetweb would otherwise keep it open. Replies sent while the body
 * is unread carry "Connection: close". */
void srv_request_begin(struct mg_connection *c, bool head);
void srv_request_end(struct mg_connection *c);
bool srv_body_unread(const struct mg_connection *c);
/* RFC 9110 §10.1.1: 0, or 417 (sent) for an expectation other than 100-continue. */
int srv_expectation(struct mg_connection *c);
/* Chunked responses: the header, then chunks, then the end. Each is one write. */
int srv_chunked_start(struct mg_connection *c, int status, const char *content_type);
int srv_chunk(struct mg_connection *c, const char *data, size_t len);
void srv_access_log(struct srv *s, const struct mg_connection *c, int status, double seconds);

/* routes.c */
int srv_handle(struct mg_connection *c, void *cbdata);
/* The window, standalone or cluster. */
int srv_window_stats(struct srv *s, txstats_summary_t *out);
int srv_window_list(struct srv *s, txstats_tx_t *buf, size_t cap, txstats_list_info_t *info);
/* The statistics JSON object of SPEC §2; returns its length. */
int srv_stats_json(struct srv *s, char *buf, size_t n);

/* metrics.c */
int srv_metrics(struct srv *s, struct mg_connection *c);
extern const double srv_bucket_bounds[SRV_BUCKETS - 1];

/* dashboard.c (generated from dashboard/index.html) */
extern const unsigned char srv_dashboard_html[];
extern const size_t srv_dashboard_html_len;

/* options.c: 0, or 2 after printing why (bad option); 1 after --help/--version (exit 0). */
int srv_parse_options(int argc, char **argv, struct srv_options *o);

#endif
