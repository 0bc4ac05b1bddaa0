/* SPDX-License-Identifier: MIT */
/*
 * Cluster mode: Kafka is the log and every node rebuilds the global window from it. This file:
 * the requests, the clients, the merged queries; the consuming side is kafka_reader.c.
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
 * Record values are text: "A <timestamp ms> <amount micros> [<node hex> <seq> <accepted ms>]" or
 * "C <clear id> [<node hex> <seq> <accepted ms>]" (node 0: no identity).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "kafka_checkpoint.h"
#include "kafka_conf.h"
#include "kafka_ship.h"
#include "log.h"
#include "kafka_cluster.h"
#include "options.h"
#include "outbox.h"

/* One record to produce; the delivery report fills in where it went. */
struct kmsg {
    struct waiter *w;
    char value[96];
    int32_t partition; /* asked for (or RD_KAFKA_PARTITION_UA), then the actual one */
    int64_t offset;    /* -1 until delivered */
    rd_kafka_resp_err_t err;
    txstats_key_t key; /* the message key (an idempotency key), or none */
    size_t which;      /* the transaction of the request it carries */
};

/* A POST, batch or DELETE waiting for its delivery reports; freed by whoever finishes last. */
struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    int pending; /* delivery reports still to come */
    int refs;    /* the request and the reports */
    rd_kafka_resp_err_t err;
    int n;
    struct kmsg msg[];
};

static struct waiter *waiter_new(int n)
{
    struct waiter *w = calloc(1, sizeof(*w) + (size_t)(n > 0 ? n : 1) * sizeof(w->msg[0]));
    if (!w)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->done_cond, NULL);
    w->refs = 1;
    w->n = n;
    for (int i = 0; i < n; i++)
        w->msg[i] = (struct kmsg){
            w, "", RD_KAFKA_PARTITION_UA, -1, RD_KAFKA_RESP_ERR_NO_ERROR, {NULL, 0}, 0};
    return w;
}

static void waiter_release(struct waiter *w)
{
    pthread_mutex_lock(&w->lock);
    bool last = --w->refs == 0;
    pthread_mutex_unlock(&w->lock);
    if (last) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->done_cond);
        free(w);
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct srv_cluster *k = opaque;
    if (k->opt.kafka_ack == KAFKA_ACK_LOCAL) { /* every message is the shipper's */
        srv_shipper_delivered(k->ship, m->_private, m->err);
        return;
    }
    struct kmsg *msg = m->_private;
    if (!msg)
        return;
    struct waiter *w = msg->w;
    pthread_mutex_lock(&w->lock);
    msg->err = m->err;
    msg->partition = m->partition;
    msg->offset = m->err ? -1 : m->offset;
    if (m->err && !w->err)
        w->err = m->err;
    w->pending--;
    pthread_cond_signal(&w->done_cond);
    pthread_mutex_unlock(&w->lock);
    waiter_release(w);
}

static void *poller_main(void *arg)
{
    struct srv_cluster *k = arg;
    while (!atomic_load(&k->stop))
        rd_kafka_poll(k->producer, 50); /* serves delivery reports */
    return NULL;
}

/* Produce every message of `w` (keys[i] as the message key, or none) and wait for all of their
 * delivery reports. Returns 0 or an error text; on success every msg has its offset. */
static const char *produce_and_wait(struct srv_cluster *k, struct waiter *w)
{
    const char *fail = NULL;
    for (int i = 0; i < w->n && !fail; i++) {
        pthread_mutex_lock(&w->lock);
        w->pending++;
        w->refs++;
        pthread_mutex_unlock(&w->lock);
        struct kmsg *m = &w->msg[i];
        if (rd_kafka_produce(k->topic, m->partition, RD_KAFKA_MSG_F_COPY, m->value,
                             strlen(m->value), m->key.key, m->key.len, m) != 0) {
            fail = rd_kafka_err2str(rd_kafka_last_error());
            pthread_mutex_lock(&w->lock);
            w->pending--;
            w->refs--;
            pthread_mutex_unlock(&w->lock);
        }
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += k->opt.kafka_timeout_ms / 1000 + 2; /* after message.timeout.ms */
    pthread_mutex_lock(&w->lock);
    while (w->pending > 0 && pthread_cond_timedwait(&w->done_cond, &w->lock, &until) == 0)
        ;
    if (!fail && w->pending > 0)
        fail = "no delivery report in time";
    if (!fail && w->err)
        fail = rd_kafka_err2str(w->err);
    pthread_mutex_unlock(&w->lock);
    return fail;
}

static int admit(const struct srv_cluster *k, txstats_amount_t amount, int64_t ts)
{
    return txstats_admit(&k->admission, amount, ts, srv_now_ms());
}

/* A key's partition: the same on every node (librdkafka's murmur2, as Java clients use). */
static int32_t partition_of(const struct srv_cluster *k, const txstats_key_t *key)
{
    return rd_kafka_msg_partitioner_murmur2(k->topic, key->key, key->len, k->partitions, NULL,
                                            NULL);
}

/* Wait until this node's reader has applied `offset` of `partition` (or the timeout). */
/* Wait (polling each ms) until the reader has moved *v to at least `want`, or `until` (ms). */
static bool wait_reaches(_Atomic int64_t *v, int64_t want, int64_t until)
{
    while (atomic_load(v) < want) {
        if (srv_now_ms() > until)
            return false;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return true;
}

static bool wait_applied(struct srv_cluster *k, int32_t partition, int64_t offset)
{
    return wait_reaches(&k->next_offset[partition], offset + 1,
                        srv_now_ms() + k->opt.kafka_timeout_ms + 2000); /* as long as a delivery */
}

/* Before producing: a key this node already knows is answered here. TXSTATS_OK to produce. */
static int known_key(struct srv_cluster *k, const txstats_tx_t *tx, const txstats_key_t *key,
                     int *first)
{
    if (key->len > TXSTATS_MAX_KEY_BYTES)
        return TXSTATS_EINVAL;
    txstats_t *w = k->part[partition_of(k, key)];
    return txstats_key_check(w, tx->amount, tx->timestamp_ms, key->key, key->len, first);
}

/* Once this node has read a keyed record back: what the partition's window made of it (the
 * first record of a key in offset order wins, on every node alike). */
static int key_outcome(struct srv_cluster *k, int32_t partition, const txstats_tx_t *tx,
                       const txstats_key_t *key, int *first)
{
    int rc = txstats_key_check(k->part[partition], tx->amount, tx->timestamp_ms, key->key, key->len,
                               first);
    if (rc == TXSTATS_DUPLICATE) /* ours, or an identical one first: the first's outcome */
        return *first;
    return rc == TXSTATS_OK ? TXSTATS_OK : rc; /* unknown: counted without a key (table full) */
}

static int keyed_outcome(struct srv_cluster *k, const struct kmsg *m, const txstats_tx_t *tx,
                         const txstats_key_t *key, int *first)
{
    if (!wait_applied(k, m->partition, m->offset))
        return TXSTATS_EIO;
    return key_outcome(k, m->partition, tx, key, first);
}

/* --kafka-ack local: wait until this node has read back its own record `seq` of `partition`. */
static bool wait_mine(struct srv_cluster *k, int32_t partition, uint64_t seq, int64_t until)
{
    return wait_reaches(&k->mine[partition], (int64_t)seq, until);
}

/* Admission by this node's clock and, with a key, what this node already knows of the key:
 * TXSTATS_OK to send the transaction on. */
static int judge(struct srv_cluster *k, const txstats_tx_t *tx, const txstats_key_t *key,
                 int *first)
{
    int rc = admit(k, tx->amount, tx->timestamp_ms);
    if (key && rc != TXSTATS_ERANGE) {
        int known = known_key(k, tx, key, first);
        rc = known != TXSTATS_OK ? known : rc;
    }
    return rc;
}

static const txstats_key_t *key_of(const txstats_key_t *keys, size_t i)
{
    return keys && keys[i].key && keys[i].len ? &keys[i] : NULL;
}

/* Judge each transaction; fill the waiter with the ones to produce. */
static int prepare(struct srv_cluster *k, const txstats_tx_t *tx, const txstats_key_t *keys,
                   size_t n, int *results, int *firsts, struct waiter *w)
{
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        const txstats_key_t *key = key_of(keys, i);
        results[i] = judge(k, &tx[i], key, &firsts[i]);
        if (results[i] != TXSTATS_OK)
            continue;
        snprintf(w->msg[m].value, sizeof(w->msg[m].value), "A %" PRId64 " %" PRId64 " 0 0 %" PRId64,
                 tx[i].timestamp_ms, tx[i].amount, srv_now_ms()); /* no identity: node 0 */
        w->msg[m].partition = key ? partition_of(k, key) : RD_KAFKA_PARTITION_UA;
        w->msg[m].key = key ? *key : (txstats_key_t){NULL, 0};
        w->msg[m++].which = i;
    }
    w->n = m;
    return m;
}

/* --kafka-ack local, after the append: a keyed transaction is answered once this node has read
 * it back (what the cluster made of the key); the others are answered at once. */
static void local_outcomes(struct srv_cluster *k, const txstats_tx_t *tx, const txstats_key_t *keys,
                           const size_t *which, size_t m, uint64_t first_seq, int *results,
                           int *firsts, char *err, size_t errn)
{
    for (size_t j = 0; j < m; j++) {
        size_t i = which[j];
        const txstats_key_t *key = key_of(keys, i);
        if (!key)
            continue;
        int32_t p = partition_of(k, key);
        if (wait_mine(k, p, first_seq + j, srv_now_ms() + k->opt.kafka_timeout_ms)) {
            results[i] = key_outcome(k, p, &tx[i], key, &firsts[i]);
        } else {
            results[i] = TXSTATS_EIO;
            snprintf(err, errn,
                     "it waits in this node's outbox and its outcome is not known yet; "
                     "retry with the same idempotency key (it will not count twice)");
        }
    }
}

/* --kafka-ack local: the admitted transactions go to the outbox in one append; a 201 means they
 * are in this node's journal (as durable as a standalone node's) and will reach Kafka. */
static int local_add_batch(struct srv_cluster *k, const txstats_tx_t *tx, const txstats_key_t *keys,
                           size_t n, int *results, int *firsts, char *err, size_t errn)
{
    struct srv_outbox_rec one, *rec = &one;
    size_t one_which, *which = &one_which, m = 0;
    void *mem = n > 1 ? malloc(n * (sizeof(*rec) + sizeof(*which))) : NULL;
    if (n > 1 && !mem) {
        for (size_t i = 0; i < n; i++)
            results[i] = TXSTATS_ENOMEM;
        snprintf(err, errn, "out of memory");
        return TXSTATS_OK;
    }
    if (mem) {
        rec = mem;
        which = (size_t *)(rec + n);
    }
    int64_t now = srv_now_ms();
    for (size_t i = 0; i < n; i++) {
        const txstats_key_t *key = key_of(keys, i);
        results[i] = judge(k, &tx[i], key, &firsts[i]);
        if (results[i] == TXSTATS_OK) {
            rec[m] = (struct srv_outbox_rec){0,
                                             tx[i].timestamp_ms,
                                             tx[i].amount,
                                             now,
                                             0,
                                             OUTBOX_ADD,
                                             key ? *key : (txstats_key_t){NULL, 0}};
            which[m++] = i;
        }
    }
    uint64_t first = 0;
    if (m && srv_outbox_append(k->outbox, rec, m, &first) != 0) {
        snprintf(err, errn, "this node's outbox journal cannot be written (%s)",
                 srv_os_reason(errno));
        srv_log(LOG_WARN, "%s", err);
        for (size_t j = 0; j < m; j++)
            results[which[j]] = TXSTATS_EIO;
    } else if (m) {
        local_outcomes(k, tx, keys, which, m, first, results, firsts, err, errn);
    }
    free(mem);
    return TXSTATS_OK;
}

/* Produce the admitted transactions and wait for all their delivery reports: when any fails,
 * every one of them is reported TXSTATS_EIO (some may have been delivered: with keys, a retry
 * is safe). A keyed one then waits until this node has applied it, to answer what the cluster
 * made of it. */
static int add_distinct(struct srv_cluster *k, const txstats_tx_t *tx, const txstats_key_t *keys,
                        size_t n, int *results, int *firsts, char *err, size_t errn)
{
    if (k->outbox)
        return local_add_batch(k, tx, keys, n, results, firsts, err, errn);
    struct waiter *w = waiter_new((int)n); /* the request's one allocation */
    const char *fail = NULL;
    if (!w) {
        for (size_t i = 0; i < n; i++)
            results[i] = TXSTATS_ENOMEM;
        fail = "out of memory";
    } else if (prepare(k, tx, keys, n, results, firsts, w) > 0) {
        fail = produce_and_wait(k, w);
        for (int j = 0; j < w->n; j++) {
            const struct kmsg *m = &w->msg[j];
            if (fail)
                results[m->which] = TXSTATS_EIO;
            else if (m->key.key)
                results[m->which] = keyed_outcome(k, m, &tx[m->which], &m->key, &firsts[m->which]);
        }
    }
    if (fail)
        snprintf(err, errn, "Kafka did not confirm it (%s)", fail);
    if (w)
        waiter_release(w);
    return TXSTATS_OK;
}

/* Lines of a batch that repeat the idempotency key of an earlier line: rep[i] is the first line
 * with that key, or -1. Returns how many repeat. */
static size_t find_repeats(const txstats_key_t *keys, size_t n, long *rep, uint64_t *h)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        rep[i] = -1;
        const txstats_key_t *key = key_of(keys, i);
        h[i] = 1469598103934665603u; /* FNV-1a: compare hashes first */
        for (size_t c = 0; key && c < key->len; c++)
            h[i] = (h[i] ^ ((const unsigned char *)key->key)[c]) * 1099511628211u;
        for (size_t j = 0; key && j < i && rep[i] < 0; j++)
            if (h[j] == h[i] && rep[j] < 0 && key_of(keys, j) && keys[j].len == key->len &&
                !memcmp(keys[j].key, key->key, key->len))
                rep[i] = (long)j;
        found += rep[i] >= 0;
    }
    return found;
}

/* A repeated line is answered from its first line, as the library answers a batch: the same
 * transaction is a replay of the first's outcome, another one a conflict. */
static void settle_repeats(const txstats_tx_t *tx, const long *rep, size_t n, int *results,
                           int *firsts)
{
    for (size_t i = 0; i < n; i++) {
        if (rep[i] < 0)
            continue;
        size_t j = (size_t)rep[i];
        int r = results[j];
        bool same = tx[i].amount == tx[j].amount && tx[i].timestamp_ms == tx[j].timestamp_ms;
        bool remembered = r == TXSTATS_OK || r == TXSTATS_EXPIRED || r == TXSTATS_EFUTURE;
        if (r == TXSTATS_DUPLICATE || remembered) {
            results[i] = same ? TXSTATS_DUPLICATE : TXSTATS_ECONFLICT;
            firsts[i] = r == TXSTATS_DUPLICATE ? firsts[j] : r;
        } else {
            results[i] = r; /* not recorded (503), out of range, conflicting: the same answer */
        }
    }
}

/* A batch: lines that repeat a key within it are not sent on (they would count as stored), the
 * others are, then the repeats are answered from their first line. */
static int kafka_add_batch(void *self, const txstats_tx_t *tx, const txstats_key_t *keys, size_t n,
                           int *results, int *firsts, char *err, size_t errn)
{
    struct srv_cluster *k = self;
    long *rep = keys && n > 1 ? malloc(n * (sizeof(long) + sizeof(uint64_t) + sizeof(*tx) +
                                            sizeof(*keys) + 2 * sizeof(int)))
                              : NULL;
    if (!rep || find_repeats(keys, n, rep, (uint64_t *)(rep + n)) == 0) {
        free(rep);
        return add_distinct(k, tx, keys, n, results, firsts, err, errn);
    }
    txstats_tx_t *tx2 = (txstats_tx_t *)((uint64_t *)(rep + n) + n);
    txstats_key_t *keys2 = (txstats_key_t *)(tx2 + n);
    int *res2 = (int *)(keys2 + n), *first2 = res2 + n;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (rep[i] < 0) {
            tx2[m] = tx[i];
            keys2[m++] = keys[i];
        }
    add_distinct(k, tx2, keys2, m, res2, first2, err, errn);
    for (size_t i = 0, j = 0; i < n; i++)
        if (rep[i] < 0) {
            results[i] = res2[j];
            firsts[i] = first2[j++];
        }
    settle_repeats(tx, rep, n, results, firsts);
    free(rep);
    return TXSTATS_OK;
}

static int kafka_add(void *self, txstats_amount_t amount, int64_t ts, char *err, size_t n)
{
    txstats_tx_t tx = {amount, ts};
    int rc, first;
    kafka_add_batch(self, &tx, NULL, 1, &rc, &first, err, n);
    return rc;
}

static int kafka_add_keyed(void *self, txstats_amount_t amount, int64_t ts, const char *key,
                           size_t key_len, int *first, char *err, size_t n)
{
    txstats_tx_t tx = {amount, ts};
    txstats_key_t k = {key, key_len};
    int rc, f = TXSTATS_OK;
    kafka_add_batch(self, &tx, &k, 1, &rc, &f, err, n);
    if (rc == TXSTATS_EIO && !err[0])
        snprintf(err, n, "this node has not read its own record back in time; retry");
    *first = f;
    return rc;
}

/* --kafka-ack local: the clear goes through the outbox, after every transaction accepted before
 * it (on each partition). Answered once in the outbox; waits (up to --kafka-timeout-ms) for this
 * node to read it back from every partition, so that its next GET shows it. */
static int local_clear(struct srv_cluster *k, char *err, size_t n)
{
    struct srv_outbox_rec r = {0, 0, 0, srv_now_ms(), 0, OUTBOX_CLEAR, {NULL, 0}};
    uint64_t seq;
    if (srv_outbox_append(k->outbox, &r, 1, &seq) != 0) {
        snprintf(err, n, "this node's outbox journal cannot be written (%s)", srv_os_reason(errno));
        return TXSTATS_EIO;
    }
    int64_t until = srv_now_ms() + k->opt.kafka_timeout_ms;
    for (int p = 0; p < k->partitions && wait_mine(k, p, seq, until); p++)
        ;
    srv_log(LOG_INFO, "all transactions deleted (cluster-wide, from this node's outbox)");
    return TXSTATS_OK;
}

static int kafka_clear(void *self, char *err, size_t n)
{
    struct srv_cluster *k = self;
    if (k->outbox)
        return local_clear(k, err, n);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct waiter *w = waiter_new(k->partitions);
    const char *fail = w ? NULL : "out of memory";
    for (int i = 0; w && i < k->partitions; i++) {
        snprintf(w->msg[i].value, sizeof(w->msg[i].value), "C %lld%09ld", (long long)now.tv_sec,
                 now.tv_nsec);
        w->msg[i].partition = i;
    }
    int cleared = 0;
    if (w) {
        fail = produce_and_wait(k, w);
        pthread_mutex_lock(&w->lock); /* late reports may still come */
        for (int i = 0; i < w->n; i++)
            cleared += w->msg[i].offset >= 0;
        pthread_mutex_unlock(&w->lock);
        waiter_release(w);
    }
    if (fail) /* Kafka has no all-partitions write: say what happened */
        snprintf(err, n,
                 "the clear reached %d of %d partitions (emptied on every node); the others did "
                 "not confirm it (%s): retry to clear them too (a retry also clears what was "
                 "posted since)",
                 cleared, k->partitions, fail);
    else
        srv_log(LOG_INFO, "all transactions deleted (cluster-wide)");
    return fail ? TXSTATS_EIO : TXSTATS_OK;
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
    cfg.window_ms = k->opt.window_ms;
    cfg.max_skew_ms = k->opt.max_skew_ms + MARGIN_MS; /* producers' clocks differ a little */
    cfg.max_retained = (size_t)k->opt.max_retained / (size_t)k->partitions + 1;
    cfg.shards = 1; /* one reader thread: no contention, and arrival order within a ms */
    cfg.max_keys = (size_t)k->opt.max_idempotency_keys / (size_t)k->partitions + 1;
    cfg.key_ttl_ms = k->opt.idempotency_ttl_ms;
    k->part = calloc((size_t)k->partitions, sizeof(*k->part));
    k->reached_end = calloc((size_t)k->partitions, sizeof(*k->reached_end));
    k->next_offset = calloc((size_t)k->partitions, sizeof(*k->next_offset));
    k->origins = calloc((size_t)k->partitions, sizeof(*k->origins));
    k->mine = calloc((size_t)k->partitions, sizeof(*k->mine));
    k->ckpt_offset = malloc((size_t)k->partitions * sizeof(*k->ckpt_offset));
    k->start_offset = malloc((size_t)k->partitions * sizeof(*k->start_offset));
    if (!k->part || !k->reached_end || !k->next_offset || !k->origins || !k->mine ||
        !k->ckpt_offset || !k->start_offset)
        return -1;
    for (int i = 0; i < k->partitions; i++)
        k->ckpt_offset[i] = k->start_offset[i] = -1;
    for (int i = 0; i < k->partitions; i++)
        if (txstats_create(&k->part[i], &cfg) != TXSTATS_OK)
            return -1;
    return 0;
}

static void kafka_free(struct srv_cluster *k)
{
    atomic_store(&k->stop, true);
    if (k->reader)
        pthread_join(k->reader, NULL);
    srv_shipper_stop(k->ship, 5000); /* first: the flush below would report to it */
    if (k->producer)
        rd_kafka_flush(k->producer, 5000);
    if (k->poller)
        pthread_join(k->poller, NULL);
    if (k->consumer) {
        rd_kafka_consumer_close(k->consumer);
        rd_kafka_destroy(k->consumer);
    }
    if (k->topic)
        rd_kafka_topic_destroy(k->topic);
    if (k->producer)
        rd_kafka_destroy(k->producer);
    for (int i = 0; k->part && i < k->partitions; i++)
        txstats_destroy(k->part[i]);
    free(k->part);
    free(k->reached_end);
    free(k->next_offset);
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

/* --kafka-ack local: what waits in the outbox for Kafka. */
static void outbox_metrics(struct srv_cluster *k, struct srv_text *t)
{
    struct srv_outbox_stats o;
    struct srv_shipper_stats sh;
    srv_outbox_stats(k->outbox, &o);
    srv_shipper_stats(k->ship, &sh);
    srv_text_family(t, "txstats_kafka_outbox_backlog", "gauge",
                    "Records accepted by this node (201) that Kafka has not acknowledged yet.");
    srv_text_put(t, "txstats_kafka_outbox_backlog %llu\n",
                 (unsigned long long)(o.next_seq - 1 - o.acked));
    srv_text_family(t, "txstats_kafka_outbox_bytes", "gauge", "Bytes of the outbox's segments.");
    srv_text_put(t, "txstats_kafka_outbox_bytes %llu\n", (unsigned long long)o.bytes);
    srv_text_family(
        t, "txstats_kafka_outbox_shipped_total", "counter",
        "Messages handed to the Kafka producer from the outbox (a clear once per partition); "
        "the backlog counts those not yet acknowledged.");
    srv_text_put(t, "txstats_kafka_outbox_shipped_total %llu\n", (unsigned long long)sh.shipped);
    srv_text_family(t, "txstats_kafka_outbox_rewinds_total", "counter",
                    "Times shipping restarted from the last acknowledged record after a failure.");
    srv_text_put(t, "txstats_kafka_outbox_rewinds_total %llu\n", (unsigned long long)sh.rewinds);
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
    const char *names[] = {"applied", "expired", "malformed", "clear", "duplicate_key", "resent"};
    uint64_t v[] = {atomic_load(&k->applied),    atomic_load(&k->expired),
                    atomic_load(&k->malformed),  atomic_load(&k->clears),
                    atomic_load(&k->duplicates), atomic_load(&k->resent)};
    for (int i = 0; i < 6; i++)
        srv_text_put(t, "txstats_kafka_records_total{result=\"%s\"} %llu\n", names[i],
                     (unsigned long long)v[i]);
    srv_kafka_lag_metrics(k, t);
    if (k->ckpt_fd >= 0)
        srv_kafka_checkpoint_metrics(k, t);
    if (k->outbox)
        outbox_metrics(k, t);
}

/* ---- the merged window ---------------------------------------------------------------------- */

static int kafka_stats(void *self, txstats_summary_t *out)
{
    struct srv_cluster *k = self;
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < k->partitions; i++) {
        txstats_summary_t p;
        txstats_stats(k->part[i], &p);
        txstats_summary_merge(out, &p);
    }
    return TXSTATS_OK;
}

/* The partitions' distributions add up exactly: the global one. */
static int kafka_dist(void *self, txstats_dist_t *out)
{
    struct srv_cluster *k = self;
    for (int i = 0; i < k->partitions; i++)
        txstats_dist_collect(k->part[i], out);
    return TXSTATS_OK;
}

/* All partitions' listings merged oldest first; the first `cap` go to buf. Each partition's
 * listing is already in order (same-millisecond entries in arrival order), so a k-way merge keeps
 * that order, as a standalone listing does. With cap 0 only the counts are gathered. */
static int kafka_list(void *self, txstats_tx_t *buf, size_t cap, txstats_list_info_t *info)
{
    struct srv_cluster *k = self;
    size_t total = 0, *at = NULL, *end = NULL;
    txstats_tx_t *all = NULL;
    memset(info, 0, sizeof(*info));
    for (int i = 0; i < k->partitions; i++) {
        txstats_list_info_t p;
        txstats_get_ex(k->part[i], NULL, 0, &p);
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
        txstats_get_ex(k->part[i], all + n, total - (size_t)n, &p);
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

static const struct srv_backend_ops kafka_ops = {
    .name = "kafka",
    .add = kafka_add,
    .add_keyed = kafka_add_keyed,
    .add_batch = kafka_add_batch,
    .clear = kafka_clear,
    .stats = kafka_stats,
    .list = kafka_list,
    .ready = kafka_ready,
    .metrics = kafka_metrics,
    .stop = kafka_stop,
    .dist = kafka_dist,
};

/* --kafka-ack kafka: an outbox left by an earlier --kafka-ack local run must be shipped first
 * (its records were answered 201); 0 when there is none or it is empty. */
static int outbox_left(struct srv_cluster *k)
{
    char dir[1100], err[512];
    struct stat st;
    snprintf(dir, sizeof(dir), "%s/outbox", k->opt.data_dir);
    if (stat(dir, &st) != 0)
        return 0;
    struct srv_outbox_config c = {TXSTATS_FSYNC_NEVER, 100, 0};
    struct srv_outbox *o;
    if (srv_outbox_open(&o, dir, &c, err, sizeof(err)) != 0) {
        srv_log(LOG_ERROR, "%s", err);
        return -1;
    }
    struct srv_outbox_stats s;
    srv_outbox_stats(o, &s);
    srv_outbox_close(o);
    if (s.next_seq - 1 <= s.acked)
        return 0;
    srv_log(LOG_ERROR,
            "%s holds up to %" PRIu64 " record(s) answered 201 that may not be in Kafka yet (its "
            "acknowledgement mark lags a little): run with --kafka-ack local until "
            "txstats_kafka_outbox_backlog is 0",
            dir, s.next_seq - 1 - s.acked);
    return -1;
}

/* --kafka-ack local: the outbox in DATA_DIR/outbox, with the journal's fsync settings. */
static int open_outbox(struct srv_cluster *k)
{
    char dir[1100], err[512];
    snprintf(dir, sizeof(dir), "%s/outbox", k->opt.data_dir);
    if (mkdir(k->opt.data_dir, 0700) != 0 && errno != EEXIST) {
        srv_log(LOG_ERROR, "cannot create %s: %s", k->opt.data_dir, srv_os_reason(errno));
        return -1;
    }
    struct srv_outbox_config c = {k->opt.fsync, k->opt.fsync_interval_ms, 0};
    if (srv_outbox_open(&k->outbox, dir, &c, err, sizeof(err)) != 0) {
        srv_log(LOG_ERROR, "%s", err);
        return -1;
    }
    struct srv_outbox_stats st;
    srv_outbox_stats(k->outbox, &st);
    k->node_id = st.origin;
    srv_log(LOG_INFO, "outbox %s: origin %016" PRIx64 ", %" PRIu64 " record(s) to ship", dir,
            st.origin, st.next_seq - 1 - st.acked);
    if (st.torn) /* a record being written when the process died (it got no 201), or damage */
        srv_log(LOG_WARN,
                "outbox %s: cut %" PRIu64
                " byte(s) at its end: an incomplete or damaged last record",
                dir, st.torn);
    return 0;
}

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
    k->admission.window_ms = o->window_ms;
    k->admission.max_skew_ms = o->max_skew_ms;
    k->ckpt_fd = -1;
    k->ckpt_cursor = INT32_MAX; /* the first round after one interval */
    k->ckpt_next_ms = srv_now_ms() + o->kafka_checkpoint_interval_ms;
    bool local = o->kafka_ack == KAFKA_ACK_LOCAL;
    if ((local ? open_outbox(k) : outbox_left(k)) != 0 || open_checkpoints(k) != 0 ||
        kafka_connect(k) != 0) {
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
