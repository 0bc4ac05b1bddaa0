/* SPDX-License-Identifier: MIT */
/* The last five minutes of statistics (of every span of --window-ms), a point per second, and the
 * last transactions this node accepted: fixed memory, so a dashboard opened now draws the recent
 * past at once. */
#ifndef TXSTATS_HISTORY_H
#define TXSTATS_HISTORY_H

#include "server.h"

#define SRV_HISTORY_POINTS 300 /* seconds kept */
#define SRV_HISTORY_RECENT 10  /* transactions kept */

/* Start the sampler thread (a point at every whole second); 0 or -1 (out of memory, no thread). */
int srv_history_start(struct srv *s);
void srv_history_stop(struct srv *s); /* joins the sampler and frees; safe when not started */
/* Called after a 201: remember the transaction among the most recent ones. */
/* DELETE /transactions: the recent transactions are gone too (the chart's points stay: they are
 * what the statistics were). */
void srv_history_forget(struct srv *s);
void srv_history_note(struct srv *s, txstats_amount_t amount, int64_t timestamp_ms);
/* GET /statistics/history[?window=W]: {"interval_ms":1000,"points":[...],"recent":[...]}, oldest
 * first; the points are of span W (windows.h), the default without it. */
int srv_history_get(struct srv *s, struct mg_connection *c);

#endif
