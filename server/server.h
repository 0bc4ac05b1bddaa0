/* SPDX-License-Identifier: MIT */
/* The server's state, shared by main.c, routes.c and metrics.c. */
#ifndef TXSTATS_SERVER_H
#define TXSTATS_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <civetweb.h>
#include <txstats/txstats.h>

#include "backend.h"
#include "counters.h"
#include "http.h"
#include "log.h"
#include "options.h"

struct srv {
    struct srv_options opt;
    struct srv_counters counters;
    struct srv_backend backend; /* chosen once at start */
    char admin_token[256];      /* empty: DELETE is open */
    size_t admin_token_len;
    FILE *access_log;
    atomic_int listings; /* concurrent GET /transactions */
    atomic_int streams;  /* open /statistics/stream clients */
    atomic_int connections;
    atomic_bool stopping;
    struct srv_history *history; /* history.c: the last minutes, a point per second */
    struct srv_guard *guard;     /* guard.c: held connections never starve the rest */
    txstats_dist_t *scrape_dist; /* distribution.c: kept for scrapes (NULL: none) */
    atomic_bool scrape_busy;     /* scrape_dist in use: a concurrent scrape makes its own */
    int64_t started_ms;
};

/* log.c: one access-log line in --access-log-format (text, combined or json). */
void srv_access_log_line(struct srv *s, const struct mg_connection *c, int status, double seconds);

/* access_log.c: the line of a request civetweb refused before any handler ran (edge.c): the
 * method and target when civetweb read them, else "-". */
void srv_access_log_refused(struct srv *s, const struct mg_connection *c, int status);

/* edge.c: a connection starts (init_connection); a request ended (end_request). */
void srv_edge_open(void);
void srv_edge_request_end(const struct mg_connection *c);

/* routes.c: the request handler of every route. */
int srv_handle(struct mg_connection *c, void *cbdata);

/* metrics.c: GET /metrics. */
int srv_metrics(struct srv *s, struct mg_connection *c);

/* dashboard.c (generated from dashboard/index.html) */
extern const unsigned char srv_dashboard_html[];
extern const size_t srv_dashboard_html_len;
/* openapi.c (generated from openapi.json) */
extern const unsigned char srv_openapi_json[];
extern const size_t srv_openapi_json_len;

#endif
