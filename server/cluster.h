/* SPDX-License-Identifier: MIT */
/* Cluster mode: a global window rebuilt on every node from a Kafka topic (cluster.c). */
#ifndef TXSTATS_SERVER_CLUSTER_H
#define TXSTATS_SERVER_CLUSTER_H

#include "server.h"

struct srv_cluster_figures {
    int partitions;
    uint64_t applied, expired, malformed, clears;
    bool ready;
};

int srv_cluster_start(struct srv *s); /* 0, or -1 after logging why */
void srv_cluster_stop(struct srv *s);
bool srv_cluster_ready(struct srv *s);
/* HTTP status: 201, or 503 with `err` filled. */
int srv_cluster_add(struct srv *s, txstats_amount_t amount, int64_t ts, char *err, size_t n);
/* HTTP status: 204, or 503 with `err` filled. */
int srv_cluster_clear(struct srv *s, char *err, size_t n);
int srv_cluster_stats(struct srv *s, txstats_summary_t *out);
int srv_cluster_list(struct srv *s, txstats_tx_t *buf, size_t cap, txstats_list_info_t *info);
void srv_cluster_figures(struct srv *s, struct srv_cluster_figures *f);

#endif
