/* SPDX-License-Identifier: MIT */
/* GET /statistics/top (top.c). */
#ifndef TXSTATS_SERVER_TOP_H
#define TXSTATS_SERVER_TOP_H

#include "server.h"

/* Most keys one answer lists (?limit=N, 1 to this; 10 without it). */
#define SRV_TOP_MAX 1000

/* The keys with the largest sum or count in the window now: 200, or 400 for a bad query. */
int srv_get_top(struct srv *s, struct mg_connection *c);

#endif
