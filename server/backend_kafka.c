/* SPDX-License-Identifier: MIT */
/*
 * Cluster mode: Kafka is the log and every node rebuilds the global window from it. This file:
 * the backend interface, the clients, start and stop, the merged queries. The request paths are
 * kafka_ack.c (--kafka-ack kafka) and kafka_local.c (--kafka-ack local), what both judge alike
 * kafka_judge.c; the consuming side is kafka_reader.c.
 *
 * - A POST is checked against this node's clock (txstats_admit), then, with --kafka-ack kafka,
 *   produced (idempotent producer, acks=all) and answered 201 once its delivery report succeeds
 *   (durable in Kafka); with --kafka-ack local, appended to this node's outbox (outbox.h) and
 *   answered 201 at once (durable in the node's journal), a shipper thread (kafka_ship.h) sending
 *   it on in order. Either way it enters the window when this node's consumer reads it back,
 *   like every other node's: one path into the window.
 * - Every node consumes all partitions (manual assignment, no consumer group balancing) into one
 *   txstats_t per partition; statistics merge them exactly at query time.
 * - DELETE produces (or, local, appends) a clear marker for every partition; a node clears a
 *   partition's window when it reads that partition's marker, so every node clears the same
 *   records.
 * - At start each partition resumes from its checkpoint, or the first offset at now - window -
 *   margin, or the beginning; /healthz says 503 until every partition has been read to its end.
 *
 * - A transaction with a key (the "key" member) goes to its key's partition (the message key is
 *   the key), unless an idempotency key decides (its outcome is judged in its partition); the
 *   record carries the key, every node counts it in that partition's window for the key too, and
 *   a key's statistics and the top keys are merged over the partitions (kafka_keys.c).
 *
 * Record values are text: "A <timestamp ms> <amount micros> [<node hex> <seq> <accepted ms>
 * [i|e <key hex>]]" or "C <clear id> [<node hex> <seq> <accepted ms>]" (node 0: no identity);
 * "i": the message key is an idempotency key, "e": it is the key; without either (records of
 * earlier versions) a message key is an idempotency key.
 */
#define _GNU_SOURCE
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "kafka_checkpoint.h"
#include "kafka_cluster.h"
#include "kafka_conf.h"
#include "kafka_ship.h"
#include "log.h"
#include "options.h"
#include "outbox.h"

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct srv_cluster *k = opaque;
    if (k->opt.kafka_ack == KAFKA_ACK_LOCAL) { /* every message is the shipper's */
        if (k->ship) /* none once stopped: what is not acknowledged stays in the outbox */
            srv_shipper_delivered(k->ship, m->_private, m->err);
        return;
    }
    srv_kafka_ack_delivered(m);
}

static void *poller_main(void *arg)
{
    struct srv_cluster *k = arg;
    while (!atomic_load(&k->stop))
        rd_kafka_poll(k->producer, 50); /* serves delivery reports */
    return NULL;
}

/* Both modes: the transactions of a request without repeated idempotency keys. */
static void add_distinct(struct srv_cluster *k, const txstats_input_t *in, size_t n, int *results,
                         int *firsts, char *err, size_t errn)
{
    if (k->outbox)
        srv_kafka_local_add(k, in, n, results, firsts, err, errn);
    else
        srv_kafka_ack_add(k, in, n, results, firsts, err, errn);
}

/* Lines of a batch that repeat the idempotency key of an earlier line: rep[i] is the first line
 * with that key, or -1. Returns how many repeat. */
static size_t find_repeats(const txstats_input_t *in, size_t n, long *rep, uint64_t *h)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        rep[i] = -1;
        txstats_key_t ki, kj;
        const txstats_key_t *key = srv_kafka_idem_of(&in[i], &ki);
        h[i] = 1469598103934665603u; /* FNV-1a: compare hashes first */
        for (size_t c = 0; key && c < key->len; c++)
            h[i] = (h[i] ^ ((const unsigned char *)key->key)[c]) * 1099511628211u;
        for (size_t j = 0; key && j < i && rep[i] < 0; j++)
            if (h[j] == h[i] && rep[j] < 0 && srv_kafka_idem_of(&in[j], &kj) &&
                kj.len == key->len && !memcmp(kj.key, key->key, key->len))
                rep[i] = (long)j;
        found += rep[i] >= 0;
    }
    return found;
}

/* A repeated line is answered from its first line, as the library answers a batch: the same
 * transaction is a replay of the first's outcome, another one a conflict. */
static void settle_repeats(const txstats_input_t *in, const long *rep, size_t n, int *results,
                           int *firsts)
{
    for (size_t i = 0; i < n; i++) {
        if (rep[i] < 0)
            continue;
        size_t j = (size_t)rep[i];
        int r = results[j];
        bool same = in[i].amount == in[j].amount && in[i].timestamp_ms == in[j].timestamp_ms;
        bool remembered = r == TXSTATS_OK || r == TXSTATS_EXPIRED || r == TXSTATS_EFUTURE;
        if (r == TXSTATS_DUPLICATE || remembered) {
            results[i] = same ? TXSTATS_DUPLICATE : TXSTATS_ECONFLICT;
            firsts[i] = r == TXSTATS_DUPLICATE ? firsts[j] : r;
        } else {
            results[i] = r; /* not recorded (503), out of range, conflicting: the same answer */
        }
    }
}

/* A batch: lines that repeat an idempotency key within it are not sent on (they would count as
 * stored), the others are, then the repeats are answered from their first line. */
static int kafka_add_batch(void *self, const txstats_input_t *in, size_t n, int *results,
                           int *firsts, char *err, size_t errn)
{
    struct srv_cluster *k = self;
    long *rep = n > 1
                    ? malloc(n * (sizeof(long) + sizeof(uint64_t) + sizeof(*in) + 2 * sizeof(int)))
                    : NULL;
    if (!rep || find_repeats(in, n, rep, (uint64_t *)(rep + n)) == 0) {
        free(rep);
        add_distinct(k, in, n, results, firsts, err, errn);
        return TXSTATS_OK;
    }
    txstats_input_t *in2 = (txstats_input_t *)((uint64_t *)(rep + n) + n);
    int *res2 = (int *)(in2 + n), *first2 = res2 + n;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (rep[i] < 0)
            in2[m++] = in[i];
    add_distinct(k, in2, m, res2, first2, err, errn);
    for (size_t i = 0, j = 0; i < n; i++)
        if (rep[i] < 0) {
            results[i] = res2[j];
            firsts[i] = first2[j++];
        }
    settle_repeats(in, rep, n, results, firsts);
    free(rep);
    return TXSTATS_OK;
}

static int kafka_add(void *self, const txstats_input_t *in, int *first, char *err, size_t n)
{
    int rc, f = TXSTATS_OK;
    kafka_add_batch(self, in, 1, &rc, &f, err, n);
    if (rc == TXSTATS_EIO && in->idem_key_len && !err[0])
        snprintf(err, n, "this node has not read its own record back in time; retry");
    *first = f;
    return rc;
}

static int kafka_clear(void *self, char *err, size_t n)
{
    struct srv_cluster *k = self;
    return k->outbox ? srv_kafka_local_clear(k, err, n) : srv_kafka_ack_clear(k, err, n);
}

/* The backend's own settings (its guarantees: kafka_conf.c refuses them to the operator), then
 * the operator's properties (srv_kafka_conf_new). */
static rd_kafka_conf_t *conf(struct srv_cluster *k, bool producer)
{
    const struct srv_options *o = &k->opt;
    char errstr[512], group[64], timeout[32];
    snprintf(timeout, sizeof(timeout), "%lld", (long long)o->kafka_timeout_ms);
    snprintf(group, sizeof(group), "txstats-%d-%lld", (int)getpid(), (long long)srv_now_ms());
    /* A broker back from an outage is retried within a second, not librdkafka's 10 s. */
    const char *const prod[][2] = {
        {"bootstrap.servers", o->kafka_brokers},
        {"client.id", "txstats-server"},
        {"reconnect.backoff.max.ms", "1000"},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        /* kafka: a POST waits for its record, so batches stay short (measured at 64 connections
         * on the mock cluster: linger 0 5.3k/s, 1 15.5k/s, 5 10.5k/s); local: nobody waits, so
         * batches grow (fewer produce requests for the broker) */
        {"linger.ms", o->kafka_ack == KAFKA_ACK_LOCAL ? "10" : "1"},
        /* local: the shipper never gives a record up */
        {"message.timeout.ms", o->kafka_ack == KAFKA_ACK_LOCAL ? "0" : timeout}};
    const char *const cons[][2] = {
        {"bootstrap.servers", o->kafka_brokers},
        {"client.id", "txstats-server"},
        {"reconnect.backoff.max.ms", "1000"},
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "true"},
        {"fetch.wait.max.ms", "10"},
        {"queued.min.messages", "1000000"},
        /* under load, fewer and larger fetches; never more than fetch.wait.max.ms of delay */
        {"fetch.min.bytes", "65536"},
    };
    rd_kafka_conf_t *c =
        producer
            ? srv_kafka_conf_new(o, prod, sizeof(prod) / sizeof(prod[0]), errstr, sizeof(errstr))
            : srv_kafka_conf_new(o, cons, sizeof(cons) / sizeof(cons[0]), errstr, sizeof(errstr));
    if (!c) {
        srv_log(LOG_ERROR, "%s", errstr);
        return NULL;
    }
    if (producer) {
        rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
        rd_kafka_conf_set_opaque(c, k);
    }
    return c;
}

static int count_partitions(struct srv_cluster *k)
{
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(k->producer, 0, k->topic, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    int n = md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : -1;
    rd_kafka_metadata_destroy(md);
    return n;
}

static int make_windows(struct srv_cluster *k)
{
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.spans_ms = k->opt.spans.ms; /* every node, every partition: the same spans */
    cfg.nspans = k->opt.spans.n;
    cfg.max_skew_ms = k->opt.max_skew_ms + MARGIN_MS; /* producers' clocks differ a little */
    cfg.max_retained = (size_t)k->opt.max_retained / (size_t)k->partitions + 1;
    cfg.shards = 1; /* one reader thread: no contention, and arrival order within a ms */
    cfg.max_keys = (size_t)k->opt.max_idempotency_keys / (size_t)k->partitions + 1;
    cfg.key_ttl_ms = k->opt.idempotency_ttl_ms;
    /* Each partition may hold every key: --max-active-keys is checked over all of them when a
     * node accepts a transaction (kafka_judge.c), so that no node refuses a record another
     * accepted. */
    cfg.max_entities = (size_t)k->opt.max_active_keys;
    k->part = calloc((size_t)k->partitions, sizeof(*k->part));
    k->reached_end = calloc((size_t)k->partitions, sizeof(*k->reached_end));
    k->next_offset = calloc((size_t)k->partitions, sizeof(*k->next_offset));
    k->foreign_until = calloc((size_t)k->partitions, sizeof(*k->foreign_until));
    k->origins = calloc((size_t)k->partitions, sizeof(*k->origins));
    k->mine = calloc((size_t)k->partitions, sizeof(*k->mine));
    k->ckpt_offset = malloc((size_t)k->partitions * sizeof(*k->ckpt_offset));
    k->start_offset = malloc((size_t)k->partitions * sizeof(*k->start_offset));
    if (!k->part || !k->reached_end || !k->next_offset || !k->foreign_until || !k->origins ||
        !k->mine || !k->ckpt_offset || !k->start_offset)
        return -1;
    for (int i = 0; i < k->partitions; i++)
        k->ckpt_offset[i] = k->start_offset[i] = -1;
    for (int i = 0; i < k->partitions; i++)
        if (txstats_create(&k->part[i], &cfg) != TXSTATS_OK)
            return -1;
    return 0;
}

/* Milliseconds left until `deadline` (ms), at least 0. */
static int left_ms(int64_t deadline)
{
    int64_t left = deadline - srv_now_ms();
    return left > 0 ? (int)left : 0;
}

/* Stop the threads and the clients within STOP_BUDGET_MS whatever the brokers do: what Kafka has
 * not acknowledged by then is given up here (local: it stays in the outbox, shipped at the next
 * start; kafka: every request was answered already, a 503 for what was not confirmed). */
static void close_clients(struct srv_cluster *k)
{
    int64_t deadline = srv_now_ms() + STOP_BUDGET_MS;
    atomic_store(&k->closing, true);
    atomic_store(&k->stop, true);
    if (k->reader)
        pthread_join(k->reader, NULL);
    if (k->poller) /* within 50 ms; from here the flushes below serve the delivery reports */
        pthread_join(k->poller, NULL);
    srv_shipper_stop(k->ship, left_ms(deadline)); /* before the purge: it would rewind */
    k->ship = NULL;
    if (k->producer) {
        rd_kafka_flush(k->producer, left_ms(deadline));
        rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(k->producer, 100); /* the purged messages' reports free their requests */
    }
    if (k->consumer) { /* no group to leave (manual assignment) */
        rd_kafka_consumer_close(k->consumer);
        rd_kafka_destroy(k->consumer);
    }
    if (k->topic)
        rd_kafka_topic_destroy(k->topic);
    if (k->producer)
        rd_kafka_destroy(k->producer);
}

static void kafka_free(struct srv_cluster *k)
{
    close_clients(k);
    for (int i = 0; k->part && i < k->partitions; i++)
        txstats_destroy(k->part[i]);
    free(k->part);
    free(k->reached_end);
    free(k->next_offset);
    free(k->foreign_until);
    for (int i = 0; k->origins && i < k->partitions; i++)
        free(k->origins[i].v);
    free(k->origins);
    free(k->mine);
    free(k->ckpt_offset);
    free(k->start_offset);
    srv_ckpt_unlock(k->ckpt_fd);
    srv_outbox_close(k->outbox);
    free(k);
}

/* SIGTERM: the requests in flight answer now (503 for what Kafka has not confirmed yet). */
static void kafka_stopping(void *self)
{
    struct srv_cluster *k = self;
    atomic_store(&k->closing, true);
}

static int kafka_stop(void *self)
{
    kafka_free(self);
    return 0;
}

/* Clients, partitions, windows; 0 or -1 after logging why. */
static int kafka_connect(struct srv_cluster *k)
{
    char errstr[256];
    rd_kafka_conf_t *pc = conf(k, true), *cc = conf(k, false);
    if (!pc || !cc) {
        if (pc)
            rd_kafka_conf_destroy(pc);
        if (cc)
            rd_kafka_conf_destroy(cc);
        return -1;
    }
    k->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof(errstr));
    k->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof(errstr));
    if (!k->producer || !k->consumer) {
        srv_log(LOG_ERROR, "kafka: %s", errstr);
        return -1;
    }
    k->topic = rd_kafka_topic_new(k->producer, k->opt.kafka_topic, NULL);
    k->partitions = count_partitions(k);
    if (k->partitions <= 0) {
        srv_log(LOG_ERROR, "kafka: cannot read the partitions of topic '%s' at %s",
                k->opt.kafka_topic, k->opt.kafka_brokers);
        return -1;
    }
    if (make_windows(k) != 0 || (k->ckpt_fd >= 0 && srv_kafka_restore_all(k) != 0) ||
        srv_kafka_assign_all(k) != 0) {
        srv_log(LOG_ERROR, "kafka: cannot set up the %d partition windows", k->partitions);
        return -1;
    }
    return 0;
}

static bool kafka_ready(void *self)
{
    struct srv_cluster *k = self;
    return atomic_load(&k->ends) >= k->partitions;
}

static void kafka_metrics(void *self, struct srv_text *t)
{
    struct srv_cluster *k = self;
    srv_text_family(t, "txstats_kafka_partitions", "gauge", "Partitions of the topic.");
    srv_text_put(t, "txstats_kafka_partitions %d\n", k->partitions);
    srv_text_family(t, "txstats_kafka_ready", "gauge",
                    "1 once every partition was read to its end.");
    srv_text_put(t, "txstats_kafka_ready %d\n", kafka_ready(k) ? 1 : 0);
    srv_text_family(t, "txstats_kafka_records_total", "counter",
                    "Records read from the topic, by result.");
    const char *names[] = {"applied",       "expired", "malformed",     "clear",
                           "duplicate_key", "resent",  "key_past_limit"};
    uint64_t v[] = {atomic_load(&k->applied),        atomic_load(&k->expired),
                    atomic_load(&k->malformed),      atomic_load(&k->clears),
                    atomic_load(&k->duplicates),     atomic_load(&k->resent),
                    atomic_load(&k->keys_past_limit)};
    for (int i = 0; i < 7; i++)
        srv_text_put(t, "txstats_kafka_records_total{result=\"%s\"} %llu\n", names[i],
                     (unsigned long long)v[i]);
    srv_kafka_lag_metrics(k, t);
    if (k->ckpt_fd >= 0)
        srv_kafka_checkpoint_metrics(k, t);
    if (k->outbox)
        srv_kafka_outbox_metrics(k, t);
    srv_refusals_metrics(&k->refused, t);
}

/* ---- the merged window ---------------------------------------------------------------------- */

static int kafka_stats(void *self, unsigned span, txstats_summary_t *out)
{
    struct srv_cluster *k = self;
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < k->partitions; i++) {
        txstats_summary_t p;
        int rc = txstats_stats_span(k->part[i], span, &p);
        if (rc != TXSTATS_OK)
            return rc;
        txstats_summary_merge(out, &p);
    }
    return TXSTATS_OK;
}

/* The partitions' distributions add up exactly: the global one. */
static int kafka_dist(void *self, unsigned span, txstats_dist_t *out)
{
    struct srv_cluster *k = self;
    for (int i = 0; i < k->partitions; i++) {
        int rc = txstats_dist_collect_span(k->part[i], span, out);
        if (rc != TXSTATS_OK)
            return rc;
    }
    return TXSTATS_OK;
}

/* All partitions' listings merged oldest first; the first `cap` go to buf. Each partition's
 * listing is already in order (same-millisecond entries in arrival order), so a k-way merge keeps
 * that order, as a standalone listing does. With cap 0 only the counts are gathered. */
static int kafka_list(void *self, unsigned span, txstats_tx_t *buf, size_t cap,
                      txstats_list_info_t *info)
{
    struct srv_cluster *k = self;
    size_t total = 0, *at = NULL, *end = NULL;
    txstats_tx_t *all = NULL;
    memset(info, 0, sizeof(*info));
    for (int i = 0; i < k->partitions; i++) {
        txstats_list_info_t p;
        if (txstats_get_span(k->part[i], span, NULL, 0, &p) == TXSTATS_EINVAL)
            return TXSTATS_EINVAL; /* no such span */
        info->in_window += p.in_window;
        info->retained += p.retained;
        info->now_ms = p.now_ms;
        total += (size_t)p.retained + 1024; /* room for what arrives meanwhile */
    }
    if (cap == 0)
        return TXSTATS_OK;
    all = malloc(total * sizeof(*all));
    at = calloc((size_t)k->partitions, sizeof(*at));
    end = calloc((size_t)k->partitions, sizeof(*end));
    int rc = all && at && end ? TXSTATS_OK : TXSTATS_ENOMEM;
    info->in_window = info->retained = 0;
    for (int i = 0, n = 0; rc == TXSTATS_OK && i < k->partitions; i++) {
        txstats_list_info_t p;
        at[i] = (size_t)n;
        txstats_get_span(k->part[i], span, all + n, total - (size_t)n, &p);
        n += (int)p.written;
        end[i] = (size_t)n;
        info->in_window += p.in_window;
        info->retained += p.retained;
    }
    while (rc == TXSTATS_OK && info->written < cap) {
        int best = -1;
        for (int i = 0; i < k->partitions; i++)
            if (at[i] < end[i] &&
                (best < 0 || all[at[i]].timestamp_ms < all[at[best]].timestamp_ms))
                best = i;
        if (best < 0)
            break;
        buf[info->written++] = all[at[best]++];
    }
    free(all);
    free(at);
    free(end);
    return rc;
}

static int kafka_key_stats(void *self, unsigned span, const void *key, size_t len,
                           txstats_summary_t *out)
{
    return srv_kafka_key_stats(self, span, key, len, out);
}

static int kafka_top(void *self, unsigned span, txstats_top_by_t by, txstats_top_entry_t *buf,
                     size_t cap, size_t *n)
{
    return srv_kafka_top(self, span, by, buf, cap, n);
}

static void kafka_key_info(void *self, txstats_entity_info_t *out)
{
    srv_kafka_key_info(self, out);
}

static const struct srv_backend_ops kafka_ops = {
    .name = "kafka",
    .add = kafka_add,
    .add_batch = kafka_add_batch,
    .clear = kafka_clear,
    .stats = kafka_stats,
    .list = kafka_list,
    .ready = kafka_ready,
    .metrics = kafka_metrics,
    .stopping = kafka_stopping,
    .stop = kafka_stop,
    .dist = kafka_dist,
    .key_stats = kafka_key_stats,
    .top = kafka_top,
    .key_info = kafka_key_info,
};

/* --kafka-checkpoint-interval-ms > 0: checkpoints in DATA_DIR/partitions/TOPIC, locked. */
static int open_checkpoints(struct srv_cluster *k)
{
    char err[1600];
    if (k->opt.kafka_checkpoint_interval_ms <= 0)
        return 0;
    if (srv_ckpt_open(k->opt.data_dir, k->opt.kafka_topic, k->ckpt_dir, sizeof(k->ckpt_dir),
                      &k->ckpt_fd, err, sizeof(err)) != 0) {
        srv_log(LOG_ERROR, "%s", err);
        return -1;
    }
    return 0;
}

int srv_backend_kafka_start(const struct srv_options *o, struct srv_backend *out)
{
    struct srv_cluster *k = calloc(1, sizeof(*k));
    if (!k)
        return -1;
    k->opt = *o;
    txstats_config_init(&k->admission);
    k->admission.window_ms = o->longest_ms; /* stored while inside the longest span */
    k->admission.max_skew_ms = o->max_skew_ms;
    k->ckpt_fd = -1;
    k->ckpt_cursor = INT32_MAX; /* the first round after one interval */
    k->ckpt_next_ms = srv_now_ms() + o->kafka_checkpoint_interval_ms;
    bool local = o->kafka_ack == KAFKA_ACK_LOCAL;
    if ((local ? srv_kafka_outbox_open(k) : srv_kafka_outbox_left(k)) != 0 ||
        open_checkpoints(k) != 0 || kafka_connect(k) != 0) {
        kafka_free(k);
        return -1;
    }
    pthread_create(&k->poller, NULL, poller_main, k);
    pthread_create(&k->reader, NULL, srv_kafka_reader_main, k);
    if (local && srv_shipper_start(&k->ship, k->producer, k->topic, k->partitions, k->outbox)) {
        srv_log(LOG_ERROR, "cannot start the outbox shipper");
        kafka_free(k);
        return -1;
    }
    srv_log(LOG_INFO, "cluster mode: topic '%s', %d partitions, brokers %s, 201 once in %s",
            k->opt.kafka_topic, k->partitions, k->opt.kafka_brokers,
            local ? "this node's outbox" : "Kafka");
    *out = (struct srv_backend){&kafka_ops, k};
    return 0;
}