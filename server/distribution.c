/* SPDX-License-Identifier: MIT */
/* GET /statistics/distribution and the txstats_window_amount_quantile gauges, per span. */
#include <stdio.h>
#include <stdlib.h>

#include "quantiles.h"
#include "server.h"
#include "spans.h"
#include "windows.h"
#include "text.h"

/* The backend's distribution (all partitions in cluster mode), or NULL when out of memory; give
 * it back with release(). One is kept for scrapes (433 KB made once): made and freed at every
 * scrape it was mapped and unmapped each time (glibc maps blocks of 256 KiB and more, see
 * main.c), and every unmap interrupts each core running the server's threads (a TLB shootdown),
 * which writers felt (bench/scrape.sh). A scrape that finds it in use makes its own; main.c makes
 * it before the first request and frees it after the last. */
static txstats_dist_t *collect(struct srv *s, unsigned span)
{
    txstats_dist_t *d = NULL;
    if (s->scrape_dist && !atomic_exchange(&s->scrape_busy, true)) {
        d = s->scrape_dist;
        txstats_dist_clear(d);
    }
    if (!d && txstats_dist_create(&d, NULL) != TXSTATS_OK)
        return NULL;
    s->backend.ops->dist(s->backend.self, span, d);
    return d;
}

static void release(struct srv *s, txstats_dist_t *d)
{
    if (d && d == s->scrape_dist)
        atomic_store(&s->scrape_busy, false);
    else
        txstats_dist_destroy(d);
}

int srv_get_distribution(struct srv *s, struct mg_connection *c)
{
    static const char *const params[] = {"q", "window", NULL};
    struct srv_qlist q;
    char err[400];
    unsigned span;
    const char *query = mg_get_request_info(c)->query_string;
    if (srv_quantiles_parse(query, &q, err, sizeof(err)) != 0 ||
        srv_window_of(s, query, params, &span, err, sizeof(err)) != 0)
        return srv_error(c, 400, NULL, "%s", err);
    enum { SIZE = 8192 }; /* 32 quantiles and 30 bounds fit in under 4 KiB */
    char *body = malloc(SIZE);
    txstats_dist_t *d = body ? collect(s, span) : NULL;
    int n = d ? srv_distribution_json(d, &q, body, SIZE) : -1;
    int st = n < 0 ? srv_error(c, 503, "Retry-After: 1\r\n", "out of memory")
                   : srv_reply(c, 200, NULL, body, (size_t)n);
    release(s, d);
    free(body);
    return st;
}

/* One span's quantiles; false when out of memory. */
static bool span_quantiles(struct srv *s, unsigned span, struct srv_text *t)
{
    static const uint32_t q[3] = {500000000, 900000000, 990000000};
    static const char *const names[3] = {"0.5", "0.9", "0.99"};
    txstats_amount_t v[3] = {0, 0, 0};
    char window[SRV_SPAN_NAME];
    txstats_dist_t *d = collect(s, span);
    if (!d)
        return false;
    txstats_dist_quantiles(d, q, 3, v);
    release(s, d);
    srv_span_name(s->opt.spans.ms[span], window);
    for (int i = 0; i < 3; i++) {
        char m[48];
        srv_money(v[i], m);
        srv_text_put(t, "txstats_window_amount_quantile{window=\"%s\",quantile=\"%s\"} %s\n",
                     window, names[i], m);
    }
    return true;
}

void srv_metrics_quantiles(struct srv *s, struct srv_text *t)
{
    /* Gauges in meaning (the window's current quantiles), typed summary: Prometheus reserves the
     * `quantile` label for summaries (promtool rejects it on a gauge); no _sum and _count. */
    srv_text_family(t, "txstats_window_amount_quantile", "summary",
                    "Quantiles of the amounts in each window (currency units, within 0.1 %).");
    for (unsigned i = 0; i < s->opt.spans.n && span_quantiles(s, i, t); i++)
        ;
}
