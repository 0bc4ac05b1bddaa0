/* SPDX-License-Identifier: MIT */
/*
 * GET /statistics/distribution: the strict `q` list and the JSON answer (quantiles.c, no HTTP;
 * shared with the tests), and the route and its /metrics family (distribution.c).
 */
#ifndef TXSTATS_SERVER_QUANTILES_H
#define TXSTATS_SERVER_QUANTILES_H

#include <stddef.h>
#include <stdint.h>

#include <txstats/txstats.h>

#define SRV_MAX_QUANTILES 32

struct srv_qlist {
    size_t n;
    uint32_t q_ppb[SRV_MAX_QUANTILES];
    char text[SRV_MAX_QUANTILES][16]; /* canonical: "0.5", "0.999", "0", "1" */
};

/* The query string, decoded by srv_query_get (RFC 3986 §2.1): no q gives 0.5, 0.9, 0.99; else
 * q (besides it only window, which windows.h reads), 1 to 32 distinct levels separated by ',' (or
 * %2C), each "0", "1", "0.d..." or "1.0..." with at most 9 fraction digits. 0, or -1 with a reason
 * in err. */
int srv_quantiles_parse(const char *query, struct srv_qlist *out, char *err, size_t n);

/* An amount as money text: HALF_UP to 2 places, never "-0.00" (as in /statistics). */
void srv_money(txstats_amount_t a, char out[48]);

/* {"count":N,"quantiles":{"0.5":"12.34",...},"histogram":[{"le":"10.00","count":N},...]}: the
 * histogram is cumulative, at the powers of ten (and their negatives, and 0) between the minimum
 * and the maximum, the last bound being the maximum. The length, or -1 when buf is too small. */
int srv_distribution_json(const txstats_dist_t *d, const struct srv_qlist *q, char *buf, size_t n);

struct srv;
struct mg_connection;
struct srv_text;
/* distribution.c */
int srv_get_distribution(struct srv *s, struct mg_connection *c);
void srv_metrics_quantiles(struct srv *s, struct srv_text *t);

#endif
