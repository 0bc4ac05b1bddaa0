/* SPDX-License-Identifier: MIT */
/* The shipper of `--kafka-ack local` (kafka_ship.h): outbox → Kafka, in order, acknowledged. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_ship.h"
#include "log.h"

#define RING     (1u << 16) /* records in flight at most */
#define READ_MAX 512

struct srv_shipper {
    rd_kafka_t *producer;
    rd_kafka_topic_t *topic;
    int partitions;
    struct srv_outbox *outbox;
    pthread_t thread;
    atomic_bool stop, failed;
    _Atomic uint32_t pending[RING]; /* by seq % RING: deliveries still to come */
    uint64_t next, acked;           /* shipper thread: next seq to ship, contiguous acked */
    _Atomic uint64_t shipped, rewinds, in_flight;
    struct srv_outbox_rec rec[READ_MAX];
};

int srv_record_key_text(char *buf, int len, size_t n, const void *key, size_t key_len,
                        int idempotent)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *k = key;
    if (len < 0 || (size_t)len + 4 + 2 * key_len > n)
        return -1;
    buf[len++] = ' ';
    buf[len++] = idempotent ? 'i' : 'e';
    buf[len++] = ' ';
    for (size_t i = 0; i < key_len; i++) {
        buf[len++] = hex[k[i] >> 4];
        buf[len++] = hex[k[i] & 15];
    }
    buf[len] = '\0';
    return len;
}

int srv_ship_format(char *buf, size_t n, const struct srv_outbox_rec *r)
{
    if (r->kind == OUTBOX_CLEAR)
        return snprintf(buf, n, "C %" PRIu64 " %016" PRIx64 " %" PRIu64 " %" PRId64, r->seq,
                        r->origin, r->seq, r->accepted_ms);
    int len = snprintf(buf, n, "A %" PRId64 " %" PRId64 " %016" PRIx64 " %" PRIu64 " %" PRId64,
                       r->timestamp_ms, r->amount, r->origin, r->seq, r->accepted_ms);
    if (r->entity_len)
        len = srv_record_key_text(buf, len, n, r->entity, r->entity_len, r->key.len > 0);
    return len;
}

void srv_shipper_delivered(struct srv_shipper *s, void *opaque, rd_kafka_resp_err_t err)
{
    uint64_t seq = (uint64_t)(uintptr_t)opaque;
    if (err) {
        if (!atomic_exchange(&s->failed, true) && err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
            err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
            srv_log(LOG_WARN, "kafka: record %" PRIu64 " not delivered (%s): shipping again", seq,
                    rd_kafka_err2str(err));
        return;
    }
    atomic_fetch_sub(&s->pending[seq % RING], 1);
}

/* Produce one message; waits while librdkafka's queue is full. false when stopping or failed. */
static bool produce(struct srv_shipper *s, int32_t partition, const txstats_key_t *key,
                    uint64_t seq, const char *value, size_t len)
{
    for (;;) {
        if (rd_kafka_produce(s->topic, partition, RD_KAFKA_MSG_F_COPY, (void *)value, len, key->key,
                             key->len, (void *)(uintptr_t)seq) == 0) {
            atomic_fetch_add(&s->shipped, 1);
            return true;
        }
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (!atomic_exchange(&s->failed, true))
                srv_log(LOG_WARN, "kafka: cannot produce record %" PRIu64 " (%s)", seq,
                        rd_kafka_err2str(rd_kafka_last_error()));
            return false;
        }
        if (atomic_load(&s->stop) || atomic_load(&s->failed))
            return false;
        rd_kafka_poll(s->producer, 5); /* wait for room */
    }
}

/* Ship one record: one message, or one per partition for a clear. */
static bool ship(struct srv_shipper *s, const struct srv_outbox_rec *r)
{
    char value[SRV_RECORD_MAX];
    int len = srv_ship_format(value, sizeof(value), r);
    int copies = r->kind == OUTBOX_CLEAR ? s->partitions : 1;
    atomic_store(&s->pending[r->seq % RING], (uint32_t)copies);
    if (r->kind == OUTBOX_CLEAR) {
        for (int p = 0; p < s->partitions; p++)
            if (!produce(s, p, &r->key, r->seq, value, (size_t)len))
                return false;
        return true;
    }
    /* The idempotency key decides, else the key (kafka_judge.c decides alike). */
    txstats_key_t mk = r->key.len ? r->key : (txstats_key_t){r->entity, r->entity_len};
    int32_t p = mk.len ? rd_kafka_msg_partitioner_murmur2(s->topic, mk.key, mk.len, s->partitions,
                                                          NULL, NULL)
                       : (int32_t)(r->seq % (uint64_t)s->partitions);
    return produce(s, p, &mk, r->seq, value, (size_t)len);
}

/* Move the contiguous acknowledgement forward; tell the outbox. */
static void advance(struct srv_shipper *s)
{
    uint64_t a = s->acked;
    while (a + 1 < s->next && atomic_load(&s->pending[(a + 1) % RING]) == 0)
        a++;
    if (a != s->acked) {
        s->acked = a;
        srv_outbox_acked(s->outbox, a);
    }
    atomic_store(&s->in_flight, s->next - 1 - s->acked);
}

/* After a failed delivery: drop what is in flight, wait for its reports, ship again from the
 * first record not acknowledged. */
static void rewind_shipping(struct srv_shipper *s)
{
    rd_kafka_purge(s->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    while (rd_kafka_outq_len(s->producer) > 0 && !atomic_load(&s->stop))
        rd_kafka_poll(s->producer, 10);
    advance(s);
    for (uint64_t q = s->acked + 1; q < s->next; q++) /* purged: no report will come */
        atomic_store(&s->pending[q % RING], 0);
    s->next = s->acked + 1;
    atomic_store(&s->failed, false);
    atomic_fetch_add(&s->rewinds, 1);
    for (int i = 0; i < 100 && !atomic_load(&s->stop); i++) /* a second before trying again */
        rd_kafka_poll(s->producer, 10);
}

static void *ship_main(void *arg)
{
    struct srv_shipper *s = arg;
    while (!atomic_load(&s->stop)) {
        if (atomic_load(&s->failed))
            rewind_shipping(s);
        advance(s);
        srv_outbox_sync(s->outbox);
        uint64_t room = RING - (s->next - 1 - s->acked);
        size_t n = room ? srv_outbox_read(s->outbox, s->next, s->rec,
                                          room < READ_MAX ? (size_t)room : READ_MAX)
                        : 0;
        if (n == 0) {
            if (room)
                srv_outbox_wait(s->outbox, s->next, 1);
            else
                rd_kafka_poll(s->producer, 1);
            continue;
        }
        for (size_t i = 0; i < n && ship(s, &s->rec[i]); i++)
            s->next = s->rec[i].seq + 1;
    }
    return NULL;
}

int srv_shipper_start(struct srv_shipper **out, rd_kafka_t *producer, rd_kafka_topic_t *topic,
                      int partitions, struct srv_outbox *outbox)
{
    struct srv_shipper *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    struct srv_outbox_stats st;
    srv_outbox_stats(outbox, &st);
    s->producer = producer;
    s->topic = topic;
    s->partitions = partitions;
    s->outbox = outbox;
    s->acked = st.acked;
    s->next = st.acked + 1;
    *out = s; /* before the first delivery report can look for it */
    if (pthread_create(&s->thread, NULL, ship_main, s) != 0) {
        *out = NULL;
        free(s);
        return -1;
    }
    return 0;
}

void srv_shipper_stop(struct srv_shipper *s, int flush_ms)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    rd_kafka_flush(s->producer, flush_ms); /* its reports still reach s */
    advance(s);
    free(s);
}

void srv_shipper_stats(struct srv_shipper *s, struct srv_shipper_stats *out)
{
    *out = (struct srv_shipper_stats){atomic_load(&s->shipped), atomic_load(&s->rewinds),
                                      atomic_load(&s->in_flight)};
}
