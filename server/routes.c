/* SPDX-License-Identifier: MIT */
/* The REST routes of SPEC §2. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "server.h"

#define MAX_LISTINGS 4 /* concurrent GET /transactions, each holding up to max_retained x 16 B */

static void count_post(struct srv *s, int outcome)
{
    atomic_fetch_add_explicit(&srv_slot(s)->posts[outcome], 1, memory_order_relaxed);
}

static int post_transaction(struct srv *s, struct mg_connection *c)
{
    char *body, err[256];
    size_t len;
    struct srv_tx tx;
    int st = srv_read_body(c, s->opt.max_body_bytes, &body, &len);
    if (st == 413) {
        count_post(s, POST_TOO_LARGE);
        return srv_error(c, 413, "Connection: close\r\n", "request body is larger than %lld bytes",
                         (long long)s->opt.max_body_bytes);
    }
    if (st != 0)
        return srv_error(c, st, "Connection: close\r\n", "could not read the request body");
    st = srv_parse_transaction(body, len, &tx, err, sizeof(err));
    free(body);
    if (st != 0) {
        atomic_fetch_add_explicit(
            &srv_slot(s)->posts[st == 400 ? POST_INVALID_JSON : POST_INVALID_FIELD], 1,
            memory_order_relaxed);
        return srv_error(c, st, NULL, "%s", err);
    }
    int rc = txstats_add(s->stats, tx.amount, tx.timestamp_ms);
    switch (rc) {
    case TXSTATS_OK:
        count_post(s, POST_STORED);
        atomic_fetch_add_explicit(&srv_slot(s)->mutations, 1, memory_order_relaxed);
        return srv_reply_empty(c, 201);
    case TXSTATS_EXPIRED:
        count_post(s, POST_EXPIRED);
        return srv_reply_empty(c, 204);
    case TXSTATS_EFUTURE:
        count_post(s, POST_FUTURE);
        return srv_error(c, 422, NULL, "'timestamp' is in the future");
    case TXSTATS_ERANGE:
        count_post(s, POST_INVALID_FIELD);
        return srv_error(c, 422, NULL, "'amount' is out of range: |amount| must be below 10^12");
    case TXSTATS_EIO:
        count_post(s, POST_UNAVAILABLE);
        return srv_error(c, 503, "Retry-After: 1\r\n",
                         "transaction not recorded: it could not be written to the journal (%s)",
                         strerror(errno));
    default:
        count_post(s, POST_UNAVAILABLE);
        return srv_error(c, 503, "Retry-After: 1\r\n", "transaction not recorded: %s",
                         txstats_strerror(rc));
    }
}

static int get_statistics(struct srv *s, struct mg_connection *c)
{
    txstats_summary_t sum;
    txstats_summary_text_t x;
    char body[256];
    txstats_stats(s->stats, &sum);
    txstats_summary_text(&sum, &x);
    int n = snprintf(body, sizeof(body),
                     "{\"sum\":\"%s\",\"avg\":\"%s\",\"max\":\"%s\",\"min\":\"%s\",\"count\":%llu}",
                     x.sum, x.avg, x.max, x.min, (unsigned long long)x.count);
    return srv_reply(c, 200, NULL, body, (size_t)n);
}

/* "limit=N" and nothing else; N from 0 to max. -1 when absent, -2 when invalid. */
static int64_t parse_limit(const char *q, int64_t max)
{
    if (!q || !*q)
        return -1;
    if (strncmp(q, "limit=", 6) != 0)
        return -2;
    q += 6;
    int64_t v = 0;
    if (!*q || strlen(q) > 12)
        return -2;
    for (; *q; q++) {
        if (*q < '0' || *q > '9')
            return -2;
        v = v * 10 + (*q - '0');
    }
    return v > max ? max : v;
}

/* Format and send listing entries as chunks of about 32 KiB. */
static int stream_list(struct mg_connection *c, const txstats_tx_t *tx, size_t n,
                       const txstats_list_info_t *info)
{
    char buf[33 * 1024];
    size_t used = (size_t)snprintf(buf, sizeof(buf), "{\"transactions\":[");
    for (size_t i = 0; i < n; i++) {
        char a[48], ts[32];
        txstats_amount_format(tx[i].amount, a, sizeof(a));
        txstats_timestamp_format(tx[i].timestamp_ms, ts, sizeof(ts));
        used += (size_t)snprintf(buf + used, sizeof(buf) - used,
                                 "%s{\"amount\":\"%s\",\"timestamp\":\"%s\"}", i ? "," : "", a, ts);
        if (used > 32 * 1024) {
            if (srv_chunk(c, buf, used) != 0)
                return -1;
            used = 0;
        }
    }
    used += (size_t)snprintf(buf + used, sizeof(buf) - used, "],\"count\":%zu,\"truncated\":%s}", n,
                             n < info->in_window ? "true" : "false");
    if (srv_chunk(c, buf, used) != 0)
        return -1;
    return srv_chunk(c, "", 0);
}

static int get_transactions(struct srv *s, struct mg_connection *c)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    int64_t limit = parse_limit(ri->query_string, s->opt.max_list);
    if (limit == -2)
        return srv_error(c, 400, NULL, "bad query: only 'limit=N' (N a non-negative integer)");
    if (atomic_fetch_add(&s->listings, 1) >= MAX_LISTINGS) {
        atomic_fetch_sub(&s->listings, 1);
        return srv_error(c, 503, "Retry-After: 1\r\n", "too many listings at once; retry");
    }
    txstats_list_info_t info;
    txstats_get_ex(s->stats, NULL, 0, &info);
    size_t cap = (size_t)info.retained + 1024; /* room for what arrives meanwhile */
    if (limit < 0 || limit > s->opt.max_list)  /* --max-list bounds every listing */
        limit = s->opt.max_list;
    if ((size_t)limit < cap)
        cap = (size_t)limit;
    txstats_tx_t *tx = malloc((cap ? cap : 1) * sizeof(*tx));
    int st = 503;
    if (!tx) {
        srv_error(c, 503, NULL, "out of memory");
    } else {
        /* Copy under the engine's locks, then format and write with no lock held. */
        txstats_get_ex(s->stats, tx, cap, &info);
        st = 200;
        if (srv_chunked_start(c, 200, "application/json") == 0)
            stream_list(c, tx, (size_t)info.written, &info);
        free(tx);
    }
    atomic_fetch_sub(&s->listings, 1);
    return st;
}

/* Constant-time comparison: the time depends on the presented length only. */
static bool token_equal(const char *given, size_t glen, const char *want, size_t wlen)
{
    unsigned char diff = (unsigned char)(glen != wlen);
    for (size_t i = 0; i < glen; i++)
        diff |= (unsigned char)(given[i] ^ want[i % (wlen ? wlen : 1)]);
    return diff == 0;
}

static int delete_transactions(struct srv *s, struct mg_connection *c)
{
    if (s->admin_token_len > 0) {
        const char *auth = mg_get_header(c, "Authorization");
        static const char bearer[] = "Bearer ";
        if (!auth || strncmp(auth, bearer, sizeof(bearer) - 1) != 0)
            return srv_error(c, 401, "WWW-Authenticate: Bearer\r\n",
                             "DELETE needs 'Authorization: Bearer <admin token>'");
        auth += sizeof(bearer) - 1;
        if (!token_equal(auth, strlen(auth), s->admin_token, s->admin_token_len))
            return srv_error(c, 403, NULL, "wrong admin token");
    }
    int rc = txstats_clear_ex(s->stats);
    if (rc != TXSTATS_OK)
        return srv_error(c, 503, "Retry-After: 1\r\n",
                         "nothing deleted: the clear could not be written to the journal (%s)",
                         strerror(errno));
    atomic_fetch_add_explicit(&srv_slot(s)->mutations, 1, memory_order_relaxed);
    srv_log(LOG_INFO, "all transactions deleted by %s", mg_get_request_info(c)->remote_addr);
    return srv_reply(c, 204, NULL, NULL, 0);
}

static int get_metrics(struct srv *s, struct mg_connection *c);

struct route {
    const char *path;
    const char *allow;
    int (*get)(struct srv *, struct mg_connection *);
    int (*post)(struct srv *, struct mg_connection *);
    int (*del)(struct srv *, struct mg_connection *);
};

static int get_health(struct srv *s, struct mg_connection *c)
{
    (void)s;
    return srv_reply_json(c, 200, "{\"status\":\"ok\"}");
}

static const struct route routes[] = {
    {"/transactions", "GET, POST, DELETE", get_transactions, post_transaction, delete_transactions},
    {"/statistics", "GET", get_statistics, NULL, NULL},
    {"/transactions/statistics", "GET", get_statistics, NULL, NULL},
    {"/healthz", "GET", get_health, NULL, NULL},
    {"/metrics", "GET", get_metrics, NULL, NULL},
};

static int dispatch(struct srv *s, struct mg_connection *c)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *path = ri->local_uri_raw ? ri->local_uri_raw : "";
    const char *m = ri->request_method;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        if (strcmp(path, r->path) != 0)
            continue;
        int (*fn)(struct srv *, struct mg_connection *) = !strcmp(m, "GET")      ? r->get
                                                          : !strcmp(m, "POST")   ? r->post
                                                          : !strcmp(m, "DELETE") ? r->del
                                                                                 : NULL;
        if (fn)
            return fn(s, c);
        char allow[64];
        snprintf(allow, sizeof(allow), "Allow: %s\r\n", r->allow);
        return srv_error(c, 405, allow, "method %s is not allowed on %s (allowed: %s)", m, r->path,
                         r->allow);
    }
    return srv_error(c, 404, NULL, "no such resource; see GET /statistics, /transactions");
}

struct srv_counters *srv_slot(struct srv *s)
{
    int cpu = sched_getcpu();
    return &s->counters[(unsigned)(cpu < 0 ? 0 : cpu) % SRV_COUNTER_SLOTS];
}

uint64_t srv_posts(struct srv *s, int outcome)
{
    uint64_t n = 0;
    for (int i = 0; i < SRV_COUNTER_SLOTS; i++)
        n += atomic_load_explicit(&s->counters[i].posts[outcome], memory_order_relaxed);
    return n;
}

uint64_t srv_statuses(struct srv *s, int cls)
{
    uint64_t n = 0;
    for (int i = 0; i < SRV_COUNTER_SLOTS; i++)
        n += atomic_load_explicit(&s->counters[i].statuses[cls], memory_order_relaxed);
    return n;
}

uint64_t srv_mutations(struct srv *s)
{
    uint64_t n = 0;
    for (int i = 0; i < SRV_COUNTER_SLOTS; i++)
        n += atomic_load_explicit(&s->counters[i].mutations, memory_order_relaxed);
    return n;
}

int srv_handle(struct mg_connection *c, void *cbdata)
{
    struct srv *s = cbdata;
    struct timespec t0, t1;
    if (s->access_log) /* timing is for the access log only */
        clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = dispatch(s, c);
    struct srv_counters *k = srv_slot(s);
    atomic_fetch_add_explicit(&k->requests, 1, memory_order_relaxed);
    if (status >= 200 && status < 600)
        atomic_fetch_add_explicit(&k->statuses[status / 100], 1, memory_order_relaxed);
    if (s->access_log) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        srv_access_log(s, c, status,
                       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    return status;
}

/* ---- /metrics (Prometheus text format 0.0.4) ----------------------------------------------- */

struct text {
    char buf[8192];
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

static void metric(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int get_metrics(struct srv *s, struct mg_connection *c)
{
    static const char *outcome[POST_OUTCOMES] = {
        "stored", "expired", "invalid_json", "invalid_field", "future", "too_large", "unavailable"};
    txstats_summary_t sum;
    txstats_summary_text_t x;
    struct text t = {.n = 0};
    txstats_stats(s->stats, &sum);
    txstats_summary_text(&sum, &x);
    metric(&t, "txstats_build_info", "gauge", "Build information.");
    put(&t, "txstats_build_info{version=\"%s\"} 1\n", txstats_version());
    metric(&t, "txstats_window_transactions", "gauge", "Transactions in the window.");
    put(&t, "txstats_window_transactions %llu\n", (unsigned long long)x.count);
    const char *names[4] = {"sum", "avg", "max", "min"};
    const char *values[4] = {x.sum, x.avg, x.max, x.min};
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof(name), "txstats_window_%s", names[i]);
        metric(&t, name, "gauge", "Statistic of the amounts in the window (currency units).");
        put(&t, "%s %s\n", name, values[i]);
    }
    metric(&t, "txstats_posts_total", "counter", "POST /transactions by outcome.");
    for (int i = 0; i < POST_OUTCOMES; i++)
        put(&t, "txstats_posts_total{outcome=\"%s\"} %llu\n", outcome[i],
            (unsigned long long)srv_posts(s, i));
    metric(&t, "txstats_http_requests_total", "counter", "HTTP requests by status class.");
    for (int k = 2; k <= 5; k++)
        put(&t, "txstats_http_requests_total{code=\"%dxx\"} %llu\n", k,
            (unsigned long long)srv_statuses(s, k));
    metric(&t, "txstats_snapshots_total", "counter", "Snapshots written, by result.");
    put(&t, "txstats_snapshots_total{result=\"ok\"} %llu\n",
        (unsigned long long)atomic_load(&s->snapshots_ok));
    put(&t, "txstats_snapshots_total{result=\"error\"} %llu\n",
        (unsigned long long)atomic_load(&s->snapshots_failed));
    txstats_journal_stats_t js;
    txstats_journal_stats(s->stats, &js);
    metric(&t, "txstats_journal_records_total", "counter", "Journal records written.");
    put(&t, "txstats_journal_records_total %llu\n", (unsigned long long)js.records);
    metric(&t, "txstats_journal_written_bytes_total", "counter", "Journal bytes written.");
    put(&t, "txstats_journal_written_bytes_total %llu\n", (unsigned long long)js.bytes);
    metric(&t, "txstats_journal_syncs_total", "counter", "Journal fdatasync calls.");
    put(&t, "txstats_journal_syncs_total %llu\n", (unsigned long long)js.syncs);
    metric(&t, "txstats_journal_write_errors_total", "counter",
           "Journal writes that failed (the request got a 503).");
    put(&t, "txstats_journal_write_errors_total %llu\n", (unsigned long long)js.write_errors);
    metric(&t, "txstats_journal_segments", "gauge", "Live journal segment files.");
    put(&t, "txstats_journal_segments %llu\n", (unsigned long long)js.segments);
    metric(&t, "txstats_recovery_duration_seconds", "gauge",
           "Time the last start-up recovery took.");
    put(&t, "txstats_recovery_duration_seconds %.3f\n", (double)s->recovery.duration_ms / 1000);
    return srv_reply_as(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, t.buf, t.n);
}
