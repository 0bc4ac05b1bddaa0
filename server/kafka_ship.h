/* SPDX-License-Identifier: MIT */
/*
 * The shipper of `--kafka-ack local` (kafka_ship.c): one thread that sends the outbox's records
 * to Kafka in sequence order and marks them acknowledged once every one before them is.
 *
 * Each record becomes a message with its origin (the run that appended it) and sequence ("A
 * <timestamp ms> <amount micros> <node hex> <seq> <accepted ms>", then " i <key hex>" or
 * " e <key hex>" when it names a key, or "C <seq> <node hex> <seq> <accepted ms>" to every
 * partition for a clear); an idempotency key is the message key and picks the partition
 * (murmur2), else the transaction's key does, else the partition is seq mod partitions. The
 * producer is idempotent with no message timeout, so within a run each partition gets a node's
 * records once and in order. When a delivery fails anyway (a fatal producer error, a purge),
 * everything after the last contiguous acknowledgement is purged and shipped again; after a crash,
 * shipping resumes after the outbox's `acked` mark. Either way a record may reach Kafka twice,
 * always in sequence order per partition: consumers apply a (node, seq) only when seq is above the
 * last one they applied from that node in that partition.
 */
#ifndef TXSTATS_SERVER_KAFKA_SHIP_H
#define TXSTATS_SERVER_KAFKA_SHIP_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "outbox.h"

struct srv_shipper;

/* Start the thread; the producer's delivery reports must reach srv_shipper_delivered() (its
 * dr_msg_cb, served by whoever polls the producer). 0, or -1 (out of memory). */
int srv_shipper_start(struct srv_shipper **out, rd_kafka_t *producer, rd_kafka_topic_t *topic,
                      int partitions, struct srv_outbox *outbox);
/* Stop the thread, wait up to `flush_ms` for the reports of what is in flight, record how far
 * Kafka acknowledged, free. What is still unacknowledged is shipped again at the next start. */
void srv_shipper_stop(struct srv_shipper *s, int flush_ms);

/* From the producer's delivery report callback: the message whose _private is `opaque`. */
void srv_shipper_delivered(struct srv_shipper *s, void *opaque, rd_kafka_resp_err_t err);

/* The longest record value: an add with a key of TXSTATS_MAX_ENTITY_BYTES in hex. */
#define SRV_RECORD_MAX 400

/* The value text of a shipped record (also parsed back by the consumers); its length. */
int srv_ship_format(char *buf, size_t n, const struct srv_outbox_rec *r);

/* The end of an add record's value that names a key (the library's entity): " i <hex>" when the
 * message key is the transaction's idempotency key, " e <hex>" when it is this key itself, the
 * key's bytes in lower-case hex. Appended at buf + len (n bytes in all); the new length. */
int srv_record_key_text(char *buf, int len, size_t n, const void *key, size_t key_len,
                        int idempotent);

/* Counters for /metrics. */
struct srv_shipper_stats {
    uint64_t shipped;   /* messages produced (a clear counts once per partition) */
    uint64_t rewinds;   /* times shipping restarted after a failed delivery */
    uint64_t in_flight; /* records produced and not yet acknowledged */
};
void srv_shipper_stats(struct srv_shipper *s, struct srv_shipper_stats *out);

#endif
