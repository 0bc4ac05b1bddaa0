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
 * A transaction may name a key (the library's entity): it then counts in the global window and
 * in that key's window, which key_stats and top answer.
 *
 * Every window is kept in each of the spans of --window-ms (options.h, spans.h), created alike
 * by both backends; the queries name one by its index in that list (`span`, 0 the default), as
 * the library's *_span functions do.
 */
#ifndef TXSTATS_SERVER_BACKEND_H
#define TXSTATS_SERVER_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include <txstats/txstats.h>

#include "text.h"

struct srv_backend_ops {
    const char *name;
    /* Record one transaction as txstats_add_ex() does: in->entity names the key whose window it
     * also counts in (or none), in->idem_key its idempotency key (or none). Statuses: also
     * TXSTATS_DUPLICATE (with *first, the first outcome), TXSTATS_ECONFLICT, TXSTATS_EFULL with
     * an idempotency key, TXSTATS_ELIMIT (a new key past --max-active-keys) with an entity.
     * `err` (n bytes) gets a reason when the status is an error. */
    int (*add)(void *self, const txstats_input_t *in, int *first, char *err, size_t n);
    /* Record `n` transactions, each judged on its own as `add` judges it, in order: results[i]
     * is in[i]'s status, firsts[i] the first outcome of a duplicate. What is stored is durable
     * (journaled, or confirmed by Kafka) when this returns. */
    int (*add_batch)(void *self, const txstats_input_t *in, size_t n, int *results, int *firsts,
                     char *err, size_t errn);
    /* Remove every transaction (DELETE): TXSTATS_OK, or an error with `err` filled. */
    int (*clear)(void *self, char *err, size_t n);
    /* As txstats_stats_span(). */
    int (*stats)(void *self, unsigned span, txstats_summary_t *out);
    /* As txstats_get_span(): oldest first, the first `cap` into buf (cap 0: counts only). */
    int (*list)(void *self, unsigned span, txstats_tx_t *buf, size_t cap,
                txstats_list_info_t *info);
    /* Ready to serve (a cluster node has read its partitions back). */
    bool (*ready)(void *self);
    /* Its own metric families. */
    void (*metrics)(void *self, struct srv_text *t);
    /* SIGTERM arrived, before the HTTP server finishes the requests in flight: they wait no
     * longer on anything outside this node (cluster: Kafka); NULL when nothing waits. */
    void (*stopping)(void *self);
    /* Stop, write what must be written, free. 0, or 1 when the final write failed. */
    int (*stop)(void *self);
    /* Add the window's distribution of amounts into `out` (txstats_dist_collect_span()). */
    int (*dist)(void *self, unsigned span, txstats_dist_t *out);
    /* One key's statistics now, as txstats_entity_stats_span(): an unknown key gets count 0. */
    int (*key_stats)(void *self, unsigned span, const void *key, size_t len,
                     txstats_summary_t *out);
    /* The `cap` keys with the largest sum (or count) now, as txstats_top_span(): largest first,
     * ties by the key's bytes. */
    int (*top)(void *self, unsigned span, txstats_top_by_t by, txstats_top_entry_t *buf, size_t cap,
               size_t *n);
    /* Keys active now, the limit, transactions refused by it (for /metrics). */
    void (*key_info)(void *self, txstats_entity_info_t *out);
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
