/* SPDX-License-Identifier: MIT */
/*
 * Where transactions go: the window behind the routes, chosen once at start. The routes never ask
 * which one they talk to.
 *
 * - local (backend_local.c): one txstats_t with its journal and checkpoints in --data-dir.
 * - kafka (backend_kafka.c): the topic is the log; every node rebuilds the global window from it.
 *
 * Statuses are the library's: TXSTATS_OK, TXSTATS_EXPIRED, TXSTATS_EFUTURE, TXSTATS_ERANGE, and
 * TXSTATS_EIO (not recorded: the journal or Kafka refused; `err` says why) or TXSTATS_ENOMEM.
 */
#ifndef TXSTATS_SERVER_BACKEND_H
#define TXSTATS_SERVER_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include <txstats/txstats.h>

#include "text.h"

struct srv_backend_ops {
    const char *name;
    /* Record a transaction; `err` (n bytes) gets a reason when the status is an error. */
    int (*add)(void *self, txstats_amount_t amount, int64_t ts, char *err, size_t n);
    /* Record a transaction under an idempotency key: as txstats_add_keyed(), statuses
     * TXSTATS_DUPLICATE (with *first, the first outcome), TXSTATS_ECONFLICT, TXSTATS_EFULL too. */
    int (*add_keyed)(void *self, txstats_amount_t amount, int64_t ts, const char *key,
                     size_t key_len, int *first, char *err, size_t n);
    /* Record `n` transactions, each judged on its own (keys may be NULL; else keys[i] is tx[i]'s
     * idempotency key, or none): results[i] is tx[i]'s status, firsts[i] the first outcome of a
     * duplicate. What is stored is durable (journaled, or confirmed by Kafka) when this
     * returns. */
    int (*add_batch)(void *self, const txstats_tx_t *tx, const txstats_key_t *keys, size_t n,
                     int *results, int *firsts, char *err, size_t errn);
    /* Remove every transaction (DELETE): TXSTATS_OK, or an error with `err` filled. */
    int (*clear)(void *self, char *err, size_t n);
    int (*stats)(void *self, txstats_summary_t *out);
    /* As txstats_get_ex(): oldest first, the first `cap` into buf (cap 0: counts only). */
    int (*list)(void *self, txstats_tx_t *buf, size_t cap, txstats_list_info_t *info);
    /* Ready to serve (a cluster node has read its partitions back). */
    bool (*ready)(void *self);
    /* Its own metric families. */
    void (*metrics)(void *self, struct srv_text *t);
    /* SIGTERM arrived, before the HTTP server finishes the requests in flight: they wait no
     * longer on anything outside this node (cluster: Kafka); NULL when nothing waits. */
    void (*stopping)(void *self);
    /* Stop, write what must be written, free. 0, or 1 when the final write failed. */
    int (*stop)(void *self);
    /* Add the window's distribution of amounts into `out` (txstats_dist_collect()). */
    int (*dist)(void *self, txstats_dist_t *out);
};

struct srv_backend {
    const struct srv_backend_ops *ops;
    void *self;
};

struct srv_options;

/* Start a backend from the options: 0, or -1 after logging why. */
int srv_backend_local_start(const struct srv_options *o, struct srv_backend *out);
int srv_backend_kafka_start(const struct srv_options *o, struct srv_backend *out);

#endif
