/* SPDX-License-Identifier: MIT */
/* The REST routes of SPEC §2. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "batch.h"
#include "framing.h"
#include "history.h"
#include "idempotency.h"
#include "json.h"
#include "key.h"
#include "quantiles.h"
#include "query.h"
#include "top.h"
#include "server.h"
#include "windows.h"

#define MAX_LISTINGS 4 /* concurrent GET /transactions, each holding up to max_retained x 16 B */

static void count_post(struct srv *s, int outcome)
{
    srv_count_post(&s->counters, outcome);
}

static int stats_of(struct srv *s, unsigned span, txstats_summary_t *out)
{
    return s->backend.ops->stats(s->backend.self, span, out);
}

static int list_of(struct srv *s, unsigned span, txstats_tx_t *buf, size_t cap,
                   txstats_list_info_t *info)
{
    return s->backend.ops->list(s->backend.self, span, buf, cap, info);
}

/* The answer to a backend's status for a POST; `replayed`: a retry answered as the first
 * request was (draft-ietf-httpapi-idempotency-key-header: same status, Idempotent-Replayed). */
static int post_answer(struct srv *s, struct mg_connection *c, const struct srv_tx *tx, int rc,
                       const char *err, bool replayed)
{
    const char *h = replayed ? "Idempotent-Replayed: true\r\n" : NULL;
    switch (rc) {
    case TXSTATS_OK:
        if (replayed)
            return srv_reply(c, 201, h, NULL, 0);
        count_post(s, POST_STORED);
        srv_history_note(s, tx->amount, tx->timestamp_ms);
        return srv_reply_empty(c, 201);
    case TXSTATS_EXPIRED:
        count_post(s, replayed ? POST_REPLAYED : POST_EXPIRED);
        return replayed ? srv_reply(c, 204, h, NULL, 0) : srv_reply_empty(c, 204);
    case TXSTATS_EFUTURE:
        count_post(s, replayed ? POST_REPLAYED : POST_FUTURE);
        return srv_error(c, 422, h, "'timestamp' is in the future");
    case TXSTATS_ERANGE:
        count_post(s, replayed ? POST_REPLAYED : POST_INVALID_FIELD);
        return srv_error(c, 422, h, "'amount' is out of range: |amount| must be below 10^12");
    case TXSTATS_ELIMIT:
        count_post(s, POST_KEY_LIMIT);
        return srv_error(c, 503, "Retry-After: 1\r\n", "%s", SRV_KEY_LIMIT_MESSAGE);
    default:
        count_post(s, POST_UNAVAILABLE);
        return srv_error(c, 503, "Retry-After: 1\r\n", "transaction not confirmed: %s", err);
    }
}

/* The backend's answer to a POST, with or without an Idempotency-Key or a key. */
static int post_add(struct srv *s, struct mg_connection *c, const struct srv_tx *tx,
                    const txstats_input_t *in)
{
    char why[256] = "";
    int first = TXSTATS_OK;
    int rc = s->backend.ops->add(s->backend.self, in, &first, why, sizeof(why));
    if (rc == TXSTATS_DUPLICATE) {
        if (first == TXSTATS_OK)
            count_post(s, POST_REPLAYED);
        return post_answer(s, c, tx, first, why, true);
    }
    if (rc == TXSTATS_ECONFLICT) {
        count_post(s, POST_CONFLICT);
        return srv_error(c, 422, NULL,
                         "this Idempotency-Key was already used for a different transaction "
                         "(another amount, timestamp or key); use a new key for a new transaction");
    }
    if (rc == TXSTATS_EFULL) {
        count_post(s, POST_UNAVAILABLE);
        return srv_error(c, 503, "Retry-After: 5\r\n",
                         "transaction not recorded: too many idempotency keys are held "
                         "(--max-idempotency-keys); retry later");
    }
    return post_answer(s, c, tx, rc, why, false);
}

static int post_transaction(struct srv *s, struct mg_connection *c)
{
    char *body, err[256], key[TXSTATS_MAX_KEY_BYTES + 1];
    size_t len, key_len = 0;
    struct srv_tx tx;
    int st = srv_read_body(c, s->opt.max_body_bytes, &body, &len);
    if (st == 413) {
        count_post(s, POST_TOO_LARGE);
        return srv_error(c, 413, "Connection: close\r\n", "request body is larger than %lld bytes",
                         (long long)s->opt.max_body_bytes);
    }
    if (st != 0) /* 408, 400 (bad framing), 503 (out of memory) */
        return srv_error(
            c, st, st == 503 ? "Retry-After: 1\r\nConnection: close\r\n" : "Connection: close\r\n",
            "could not read the request body%s", st == 408 ? " in time" : "");
    int keyed = srv_idempotency_key(c, key, &key_len, err, sizeof(err));
    st = keyed < 0 ? 400 : srv_parse_transaction(body, len, &tx, err, sizeof(err));
    free(body);
    if (st != 0) {
        count_post(s, st == 400 ? POST_INVALID_JSON : POST_INVALID_FIELD);
        return srv_error(c, st, NULL, "%s", err);
    }
    txstats_input_t in = {tx.amount,     tx.timestamp_ms,    tx.entity_len ? tx.entity : NULL,
                          tx.entity_len, keyed ? key : NULL, keyed ? key_len : 0};
    return post_add(s, c, &tx, &in);
}

/* A summary as the statistics JSON object of SPEC §2; returns its length. */
static int summary_json(const txstats_summary_t *sum, char *buf, size_t n)
{
    txstats_summary_text_t x;
    txstats_summary_text(sum, &x);
    return snprintf(buf, n,
                    "{\"sum\":\"%s\",\"avg\":\"%s\",\"max\":\"%s\",\"min\":\"%s\",\"count\":%llu}",
                    x.sum, x.avg, x.max, x.min, (unsigned long long)x.count);
}

/* The statistics JSON object of a whole window; returns its length. */
static int srv_stats_json(struct srv *s, unsigned span, char *buf, size_t n)
{
    txstats_summary_t sum;
    stats_of(s, span, &sum);
    return summary_json(&sum, buf, n);
}

static const char *const stats_params[] = {"key", "window", NULL};

/* GET /statistics[?key=K][&window=W]: the whole window's statistics, or key K's (key.h;
 * percent-decoded, 400 when it is no valid key; an unknown key has count 0), in span W. */
static int get_statistics(struct srv *s, struct mg_connection *c)
{
    char body[256], key[TXSTATS_MAX_ENTITY_BYTES + 1], err[400];
    const char *q = mg_get_request_info(c)->query_string;
    unsigned span;
    int has = srv_query_get(q, stats_params, "key", key, sizeof(key), err, sizeof(err));
    if (has < 0 ||
        (has && srv_key_check(key, strlen(key), "bad query: 'key'", err, sizeof(err)) != 0) ||
        srv_window_of(s, q, stats_params, &span, err, sizeof(err)) != 0)
        return srv_error(c, 400, NULL, "%s", err);
    txstats_summary_t sum;
    if (has)
        s->backend.ops->key_stats(s->backend.self, span, key, strlen(key), &sum);
    else
        stats_of(s, span, &sum);
    int n = summary_json(&sum, body, sizeof(body));
    return srv_reply(c, 200, NULL, body, (size_t)n);
}

/* Server-Sent Events: the statistics every --stream-interval-ms, a comment heartbeat every
 * 15 s. Each client holds a worker thread, so there are at most --max-streams of them and each
 * stream ends after --stream-max-seconds (EventSource reconnects by itself) or at shutdown. */
static int get_stream(struct srv *s, struct mg_connection *c)
{
    static const char *const params[] = {"window", NULL};
    char err[400];
    unsigned span;
    if (srv_window_of(s, mg_get_request_info(c)->query_string, params, &span, err, sizeof(err)))
        return srv_error(c, 400, NULL, "%s", err);
    if (atomic_fetch_add(&s->streams, 1) >= s->opt.max_streams) {
        atomic_fetch_sub(&s->streams, 1);
        return srv_error(c, 503, "Retry-After: 5\r\n",
                         "too many statistics streams at once (at most %d); retry later",
                         s->opt.max_streams);
    }
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "X-Content-Type-Options: nosniff\r\n"
                               "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    bool ok = mg_write(c, head, sizeof(head) - 1) > 0 && srv_chunk(c, "retry: 1000\n\n", 13) == 0;
    int64_t start = srv_now_ms(), beat = start, next = start;
    while (ok && !atomic_load(&s->stopping) && next - start < s->opt.stream_max_seconds * 1000) {
        if (srv_now_ms() < next) {
            struct timespec pause = {0, 50 * 1000000L}; /* short naps: shutdown is noticed fast */
            nanosleep(&pause, NULL);
            continue;
        }
        char ev[320];
        int n = snprintf(ev, sizeof(ev), "data: ");
        n += srv_stats_json(s, span, ev + n, sizeof(ev) - (size_t)n);
        n += snprintf(ev + n, sizeof(ev) - (size_t)n, "\n\n");
        if (next - beat >= 15000) {
            n += snprintf(ev + n, sizeof(ev) - (size_t)n, ": heartbeat\n\n");
            beat = next;
        }
        ok = srv_chunk(c, ev, (size_t)n) == 0;
        next += s->opt.stream_interval_ms;
    }
    if (ok)
        srv_chunk(c, "", 0);
    atomic_fetch_sub(&s->streams, 1);
    return 200;
}

static int get_dashboard(struct srv *s, struct mg_connection *c)
{
    (void)s;
    return srv_reply_as(c, 200, "text/html; charset=utf-8", "Cache-Control: no-cache\r\n",
                        (const char *)srv_dashboard_html, srv_dashboard_html_len);
}

static int get_openapi(struct srv *s, struct mg_connection *c)
{
    (void)s;
    return srv_reply(c, 200, NULL, (const char *)srv_openapi_json, srv_openapi_json_len);
}

/* The decoded value of limit: N from 0, capped at max however many digits. -2 when invalid. */
static int64_t parse_limit(const char *q, int64_t max)
{
    int64_t v = 0;
    if (!*q)
        return -2;
    for (; *q; q++) {
        if (*q < '0' || *q > '9')
            return -2;
        v = v > max ? v : v * 10 + (*q - '0');
    }
    return v > max ? max : v;
}

/* Format listing entries into `buf` and send them as chunks of about `chunk` bytes. */
static int stream_into(struct mg_connection *c, const txstats_tx_t *tx, size_t n,
                       const txstats_list_info_t *info, char *buf, size_t size, size_t chunk)
{
    size_t used = (size_t)snprintf(buf, size, "{\"transactions\":[");
    for (size_t i = 0; i < n; i++) {
        char a[48], ts[32];
        txstats_amount_format(tx[i].amount, a, sizeof(a));
        txstats_timestamp_format(tx[i].timestamp_ms, ts, sizeof(ts));
        used += (size_t)snprintf(buf + used, size - used,
                                 "%s{\"amount\":\"%s\",\"timestamp\":\"%s\"}", i ? "," : "", a, ts);
        if (used > chunk) {
            if (srv_chunk(c, buf, used) != 0)
                return -1;
            used = 0;
        }
    }
    used += (size_t)snprintf(buf + used, size - used, "],\"count\":%zu,\"truncated\":%s}", n,
                             n < info->in_window ? "true" : "false");
    if (srv_chunk(c, buf, used) != 0)
        return -1;
    return srv_chunk(c, "", 0);
}

static int stream_list(struct mg_connection *c, const txstats_tx_t *tx, size_t n,
                       const txstats_list_info_t *info)
{
    enum { CHUNK = 32 * 1024, SIZE = CHUNK + 1024 };
    char *buf = malloc(SIZE); /* not on the worker's small stack */
    if (!buf)
        return -1;
    int rc = stream_into(c, tx, n, info, buf, SIZE, CHUNK);
    free(buf);
    return rc;
}

static const char *const list_params[] = {"limit", "window", NULL};

/* The limit of a listing (-1: none) and its span; -2 after answering 400. */
static int64_t listing_query(struct srv *s, struct mg_connection *c, unsigned *span)
{
    char v[32], err[400];
    const char *q = mg_get_request_info(c)->query_string;
    int has = srv_query_get(q, list_params, "limit", v, sizeof(v), err, sizeof(err));
    if (has < 0 || srv_window_of(s, q, list_params, span, err, sizeof(err)) != 0) {
        srv_error(c, 400, NULL, "%s", err);
        return -2;
    }
    int64_t limit = has ? parse_limit(v, s->opt.max_list) : -1;
    if (limit == -2)
        srv_error(c, 400, NULL,
                  "bad query: 'limit=N' (N a non-negative integer) and 'window' only");
    return limit;
}

static int get_transactions(struct srv *s, struct mg_connection *c)
{
    unsigned span;
    int64_t limit = listing_query(s, c, &span);
    if (limit == -2)
        return 400;
    if (atomic_fetch_add(&s->listings, 1) >= MAX_LISTINGS) {
        atomic_fetch_sub(&s->listings, 1);
        return srv_error(c, 503, "Retry-After: 1\r\n", "too many listings at once; retry");
    }
    txstats_list_info_t info;
    list_of(s, span, NULL, 0, &info);
    size_t cap = (size_t)info.retained + 1024; /* room for what arrives meanwhile */
    if (limit < 0 || limit > s->opt.max_list)  /* --max-list bounds every listing */
        limit = s->opt.max_list;
    if ((size_t)limit < cap)
        cap = (size_t)limit;
    txstats_tx_t *tx = malloc((cap ? cap : 1) * sizeof(*tx));
    int st = 503;
    if (!tx) {
        srv_error(c, 503, "Retry-After: 1\r\n", "out of memory");
    } else {
        /* Copy under the engine's locks, then format and write with no lock held. */
        list_of(s, span, tx, cap, &info);
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
        /* credentials = auth-scheme 1*SP token68 (RFC 9110 §11.4); the scheme is
         * case-insensitive (§11.1) */
        if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
            return srv_error(c, 401, "WWW-Authenticate: Bearer\r\n",
                             "DELETE needs 'Authorization: Bearer <admin token>'");
        auth += strspn(auth + 6, " ") + 6;
        if (!token_equal(auth, strlen(auth), s->admin_token, s->admin_token_len))
            return srv_error(c, 403, NULL, "wrong admin token");
    }
    char why[256] = "";
    if (s->backend.ops->clear(s->backend.self, why, sizeof(why)) != TXSTATS_OK)
        return srv_error(c, 503, "Retry-After: 1\r\n", "DELETE not completed: %s", why);
    srv_history_forget(s);
    srv_log(LOG_INFO, "all transactions deleted by %s", mg_get_request_info(c)->remote_addr);
    return srv_reply_empty(c, 204);
}

struct route {
    const char *path;
    int id;
    int (*get)(struct srv *, struct mg_connection *);
    int (*post)(struct srv *, struct mg_connection *);
    int (*del)(struct srv *, struct mg_connection *);
};

static int get_health(struct srv *s, struct mg_connection *c)
{
    if (!s->backend.ops->ready(s->backend.self)) /* a cluster node still reading back */
        return srv_reply_json(c, 503, "{\"status\":\"catching up\"}");
    return srv_reply_json(c, 200, "{\"status\":\"ok\"}");
}

static int get_metrics(struct srv *s, struct mg_connection *c)
{
    return srv_metrics(s, c);
}

static const struct route routes[] = {
    {"/transactions", ROUTE_TRANSACTIONS, get_transactions, post_transaction, delete_transactions},
    {"/statistics", ROUTE_STATISTICS, get_statistics, NULL, NULL},
    {"/transactions/statistics", ROUTE_STATISTICS_ALIAS, get_statistics, NULL, NULL},
    {"/statistics/stream", ROUTE_STREAM, get_stream, NULL, NULL},
    {"/statistics/distribution", ROUTE_DISTRIBUTION, srv_get_distribution, NULL, NULL},
    {"/statistics/top", ROUTE_TOP, srv_get_top, NULL, NULL},
    {"/healthz", ROUTE_HEALTHZ, get_health, NULL, NULL},
    {"/metrics", ROUTE_METRICS, get_metrics, NULL, NULL},
    {"/", ROUTE_DASHBOARD, get_dashboard, NULL, NULL},
    {"/statistics/history", ROUTE_HISTORY, srv_history_get, NULL, NULL},
    {"/statistics/windows", ROUTE_WINDOWS, srv_get_windows, NULL, NULL},
    {"/openapi.json", ROUTE_OPENAPI, get_openapi, NULL, NULL},
    {"/transactions/batch", ROUTE_BATCH, NULL, srv_post_batch, NULL},
};

/* The query parameters a handler takes: GET /transactions limit, GET /statistics key,
 * GET /statistics/top by and limit, GET /statistics/distribution q, and window on each of them
 * and on the stream and the history; the others none. */
static const char *const *params_of(int (*fn)(struct srv *, struct mg_connection *))
{
    static const char *const none[] = {NULL}, *const window[] = {"window", NULL},
                             *const top[] = {"by", "limit", "window", NULL},
                             *const q[] = {"q", "window", NULL};
    return fn == get_transactions                      ? list_params
           : fn == get_statistics                      ? stats_params
           : fn == srv_get_top                         ? top
           : fn == srv_get_distribution                ? q
           : fn == get_stream || fn == srv_history_get ? window
                                                       : none;
}

/* One rule on every route (RFC 3986 §2.1, §3.4): the query is percent-decoded, and a parameter
 * the route does not take, or an invalid escape, is a 400 (query.c). */
static bool query_ok(const char *q, const char *const *names, char *err, size_t n)
{
    char value[1024];
    if (srv_query_get(q, names, NULL, value, sizeof(value), err, n) < 0)
        return false;
    for (int i = 0; names[i]; i++)
        if (srv_query_get(q, names, names[i], value, sizeof(value), err, n) < 0)
            return false;
    return true;
}

/* RFC 9110 §10.2.1: the methods a route allows; HEAD wherever GET is (§9.3.2), OPTIONS always. */
static void allow_of(const struct route *r, char *buf, size_t n)
{
    snprintf(buf, n, "Allow: %s%s%sOPTIONS\r\n", r->get ? "GET, HEAD, " : "",
             r->post ? "POST, " : "", r->del ? "DELETE, " : "");
}

static int dispatch(struct srv *s, struct mg_connection *c, int *route)
{
    *route = ROUTE_OTHER;
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *path = ri->local_uri_raw ? ri->local_uri_raw : "";
    const char *m = ri->request_method;
    bool head = !strcmp(m, "HEAD"), options = !strcmp(m, "OPTIONS");
    srv_request_begin(c, head);
    int st = srv_framing(c);
    if (st == 0)
        st = srv_expectation(c);
    if (st == 0)
        st = srv_content_coding(c);
    if (st != 0)
        return st;
    if (options && ri->request_uri && !strcmp(ri->request_uri, "*")) /* RFC 9110 §9.3.7 */
        return srv_reply(c, 204, "Allow: GET, HEAD, POST, DELETE, OPTIONS\r\n", NULL, 0);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        if (strcmp(path, r->path) != 0)
            continue;
        *route = r->id;
        int (*fn)(struct srv *, struct mg_connection *) = !strcmp(m, "GET") || head ? r->get
                                                          : !strcmp(m, "POST")      ? r->post
                                                          : !strcmp(m, "DELETE")    ? r->del
                                                                                    : NULL;
        char err[200];
        if (fn && !query_ok(ri->query_string, params_of(fn), err, sizeof(err)))
            return srv_error(c, 400, NULL, "%s", err);
        if (fn)
            return fn(s, c);
        char allow[96];
        allow_of(r, allow, sizeof(allow));
        if (options)
            return srv_reply(c, 204, allow, NULL, 0);
        return srv_error(c, 405, allow, "method %s is not allowed on %s (%.*s)", m, r->path,
                         (int)strlen(allow) - 2, allow);
    }
    return srv_error(c, 404, NULL, "no such resource; see GET /statistics, /transactions");
}

int srv_handle(struct mg_connection *c, void *cbdata)
{
    struct srv *s = cbdata;
    struct timespec t0, t1;
    int route;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = dispatch(s, c, &route);
    srv_request_end(c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    /* A stream lasts minutes: not a request duration. */
    srv_count_request(&s->counters, route, status, route == ROUTE_STREAM ? -1 : ns);
    srv_access_log_line(s, c, status, (double)ns / 1e9);
    srv_request_finish(c);
    return status;
}
