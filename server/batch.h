/* SPDX-License-Identifier: MIT */
/* POST /transactions/batch (batch.c). */
#ifndef TXSTATS_SERVER_BATCH_H
#define TXSTATS_SERVER_BATCH_H

#include "server.h"

/* Read, judge and store an NDJSON batch; answers and returns the HTTP status. */
int srv_post_batch(struct srv *s, struct mg_connection *c);

#endif
