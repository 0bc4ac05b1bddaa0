/* SPDX-License-Identifier: MIT */
/*
 * Cluster mode, --kafka-ack kafka: a request's transactions are produced (idempotent producer,
 * acks=all) and answered once every delivery report succeeded (durable in Kafka); a keyed one
 * then waits until this node has read it back, to answer what the cluster made of its key. A
 * DELETE produces a clear marker to every partition.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_cluster.h"
#include "kafka_ship.h"
#include "log.h"

/* One record to produce; the delivery report fills in where it went. */
struct kmsg {
    struct waiter *w;
    char value[SRV_RECORD_MAX];
    int32_t partition; /* asked for (or RD_KAFKA_PARTITION_UA), then the actual one */
    int64_t offset;    /* -1 until delivered */
    rd_kafka_resp_err_t err;
    txstats_key_t key; /* the message key (an idempotency key or the key), or none */
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

void srv_kafka_ack_delivered(const rd_kafka_message_t *m)
{
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

/* Wait for the delivery reports of `w` (its lock held): until after message.timeout.ms, or no
 * longer once the node is stopping (looked at every 50 ms). */
static void wait_reports(struct srv_cluster *k, struct waiter *w)
{
    int64_t until = srv_now_ms() + k->opt.kafka_timeout_ms + 2000;
    while (w->pending > 0 && !atomic_load(&k->closing) && srv_now_ms() < until) {
        struct timespec slice;
        clock_gettime(CLOCK_REALTIME, &slice);
        slice.tv_nsec += 50 * 1000000L;
        if (slice.tv_nsec >= 1000000000L) {
            slice.tv_sec++;
            slice.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->done_cond, &w->lock, &slice);
    }
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
    pthread_mutex_lock(&w->lock);
    wait_reports(k, w);
    if (!fail && w->pending > 0)
        fail = atomic_load(&k->closing) ? "this node is stopping" : "no delivery report in time";
    if (!fail && w->err)
        fail = rd_kafka_err2str(w->err);
    pthread_mutex_unlock(&w->lock);
    return fail;
}

static bool wait_applied(struct srv_cluster *k, int32_t partition, int64_t offset)
{
    return srv_kafka_wait_reaches(k, &k->next_offset[partition], offset + 1,
                                  srv_now_ms() + k->opt.kafka_timeout_ms +
                                      2000); /* as long as a delivery */
}

static int keyed_outcome(struct srv_cluster *k, const struct kmsg *m, const txstats_input_t *in,
                         int *first)
{
    if (!wait_applied(k, m->partition, m->offset))
        return TXSTATS_EIO;
    return srv_kafka_key_outcome(k, m->partition, in, first);
}

/* The record of an admitted transaction (no identity: node 0); its message key and partition. */
static void fill(struct kmsg *m, const txstats_input_t *in, size_t which)
{
    int len = snprintf(m->value, sizeof(m->value), "A %" PRId64 " %" PRId64 " 0 0 %" PRId64,
                       in->timestamp_ms, in->amount, srv_now_ms());
    if (in->entity_len)
        srv_record_key_text(m->value, len, sizeof(m->value), in->entity, in->entity_len,
                            in->idem_key_len > 0);
    m->key = srv_kafka_message_key(in);
    m->which = which;
}

/* Judge each transaction; fill the waiter with the ones to produce. */
static int prepare(struct srv_cluster *k, const txstats_input_t *in, size_t n, int *results,
                   int *firsts, struct waiter *w)
{
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        results[i] = srv_kafka_judge(k, &in[i], &firsts[i]);
        if (results[i] != TXSTATS_OK)
            continue;
        fill(&w->msg[m], &in[i], i);
        w->msg[m].partition =
            w->msg[m].key.len ? srv_kafka_partition_of(k, &w->msg[m].key) : RD_KAFKA_PARTITION_UA;
        m++;
    }
    w->n = m;
    return m;
}

/* Produce the admitted transactions and wait for all their delivery reports: when any fails,
 * every one of them is reported TXSTATS_EIO (some may have been delivered: with keys, a retry
 * is safe). One with an idempotency key then waits until this node has applied it, to answer
 * what the cluster made of it. */
void srv_kafka_ack_add(struct srv_cluster *k, const txstats_input_t *in, size_t n, int *results,
                       int *firsts, char *err, size_t errn)
{
    struct waiter *w = waiter_new((int)n); /* the request's one allocation */
    const char *fail = NULL;
    if (!w) {
        for (size_t i = 0; i < n; i++)
            results[i] = TXSTATS_ENOMEM;
        fail = "out of memory";
    } else if (prepare(k, in, n, results, firsts, w) > 0) {
        fail = produce_and_wait(k, w);
        for (int j = 0; j < w->n; j++) {
            const struct kmsg *m = &w->msg[j];
            if (fail)
                results[m->which] = TXSTATS_EIO;
            else if (in[m->which].idem_key_len)
                results[m->which] = keyed_outcome(k, m, &in[m->which], &firsts[m->which]);
        }
    }
    if (fail)
        snprintf(err, errn, "Kafka did not confirm it (%s)", fail);
    if (w)
        waiter_release(w);
}

/* DELETE: a clear marker produced to every partition, answered once Kafka has them all. */
int srv_kafka_ack_clear(struct srv_cluster *k, char *err, size_t n)
{
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
