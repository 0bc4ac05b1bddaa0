/* SPDX-License-Identifier: MIT */
/*
 * Cluster mode's shared state (internal to the kafka backend): backend_kafka.c owns the backend
 * interface, the clients, start and stop and the merged queries; the requests go through
 * kafka_ack.c (--kafka-ack kafka: produce, wait for delivery and for the reader) or kafka_local.c
 * (--kafka-ack local: the outbox), judged alike by kafka_judge.c; kafka_reader.c owns the
 * consuming side (records into the partition windows, identities, checkpoints of the windows,
 * where reading starts).
 */
#ifndef TXSTATS_SERVER_KAFKA_CLUSTER_H
#define TXSTATS_SERVER_KAFKA_CLUSTER_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <txstats/txstats.h>

#include "options.h"
#include "refusals.h"
#include "text.h"

struct srv_outbox;
struct srv_shipper;

#define MARGIN_MS 5000
/* Stopping: how long the producer may still deliver (SIGTERM returns within 2 s). */
#define STOP_BUDGET_MS 1000

/* The last sequence applied from one node in one partition (records with an identity). */
struct origin {
    uint64_t node, last;
    int64_t
        seen_ms; /* when a record of it was last read (an origin unseen for longer than the
                    window plus the margin is forgotten: whatever it could resend has expired) */
};
struct origins {
    struct origin *v;
    size_t n, cap;
};

/* Buckets of the replication-lag histogram (kafka_reader.c). */
#define LAG_BUCKETS 13

struct srv_cluster {
    struct srv_options opt;
    txstats_config_t admission; /* this node's window and skew, for txstats_admit() */
    rd_kafka_t *producer, *consumer;
    rd_kafka_topic_t *topic;
    int partitions;
    txstats_t **part; /* one window per partition */
    bool *reached_end;
    _Atomic int64_t *next_offset;   /* per partition: records below it were applied already */
    _Atomic int64_t *foreign_until; /* per partition: until when (ms) it may hold keys whose
                                       home is another partition (kafka_keys.c) */
    atomic_int ends;                /* partitions read to their end once */
    pthread_t poller, reader;
    atomic_bool stop;
    atomic_bool closing; /* stopping: requests in flight wait no longer (503) */
    atomic_uint_fast64_t applied, expired, malformed, clears, duplicates, resent;
    atomic_uint_fast64_t keys_refused;    /* POSTs refused at admission: --max-active-keys */
    atomic_uint_fast64_t keys_past_limit; /* records a partition counted without their key */
    /* --kafka-ack local */
    struct srv_outbox *outbox;
    struct srv_shipper *ship;
    struct srv_refusals refused; /* writes the outbox did not take */
    uint64_t node_id;            /* this run's origin in its records (outbox.h); 0 in kafka mode */
    struct origins *origins;     /* per partition (reader thread) */
    _Atomic int64_t *mine;       /* per partition: the last of this node's seqs read back */
    _Atomic uint64_t lag_count[LAG_BUCKETS + 1], lag_sum_us;
    /* per-partition checkpoints (kafka_checkpoint.h), written by the reader thread */
    char ckpt_dir[1400];
    int ckpt_fd;           /* the lock of DATA_DIR/partitions; -1: checkpoints off */
    int64_t *ckpt_offset;  /* per partition: the offset its last checkpoint covers, or -1 */
    int64_t *start_offset; /* per partition: where a restored checkpoint resumes, or -1 */
    int ckpt_cursor;       /* the next partition of the current round (partitions: none) */
    int64_t ckpt_next_ms;  /* when the next round starts */
    atomic_uint_fast64_t ckpt_written, ckpt_failed, ckpt_last_us, ckpt_total_us;
    int restored;         /* partitions restored from checkpoints at start */
    uint64_t restored_tx; /* transactions they held */
    int64_t restore_ms;   /* how long restoring took */
};

/* The reader thread (arg: the cluster): applies records until k->stop, checkpoints as it goes. */
void *srv_kafka_reader_main(void *arg);
/* At start: load the usable partition checkpoints. 0, or -1 after logging why. */
int srv_kafka_restore_all(struct srv_cluster *k);
/* Assign every partition, from its checkpoint, else now - window - margin, else the start. */
int srv_kafka_assign_all(struct srv_cluster *k);
/* The merged per-key answers (kafka_keys.c): a key's statistics over the partitions, the top
 * keys (both in span `span` of --window-ms), the key counters. */
int srv_kafka_key_stats(struct srv_cluster *k, unsigned span, const void *key, size_t len,
                        txstats_summary_t *out);
int srv_kafka_top(struct srv_cluster *k, unsigned span, txstats_top_by_t by,
                  txstats_top_entry_t *buf, size_t cap, size_t *n);
void srv_kafka_key_info(struct srv_cluster *k, txstats_entity_info_t *out);
/* Metric families of the reading side. */
void srv_kafka_lag_metrics(struct srv_cluster *k, struct srv_text *t);
void srv_kafka_checkpoint_metrics(struct srv_cluster *k, struct srv_text *t);

/* ---- requests, both modes (kafka_judge.c) ---- */
/* in's idempotency key (into *out), or NULL when it has none. */
const txstats_key_t *srv_kafka_idem_of(const txstats_input_t *in, txstats_key_t *out);
/* A message key's partition: the same on every node. */
int32_t srv_kafka_partition_of(const struct srv_cluster *k, const txstats_key_t *key);
/* The message key of a transaction: its idempotency key when it has one (the key's outcome is
 * judged in that partition's window), else its key (all of a key's transactions in one
 * partition), else none ({NULL, 0}). The shipper (kafka_ship.c) chooses alike. */
txstats_key_t srv_kafka_message_key(const txstats_input_t *in);
/* Admission by this node's clock, what it knows of the idempotency key, and room for a new key
 * (--max-active-keys over the partitions): TXSTATS_OK to send it on. */
int srv_kafka_judge(struct srv_cluster *k, const txstats_input_t *in, int *first);
/* Once read back: what `partition`'s window made of the transaction's idempotency key. */
int srv_kafka_key_outcome(struct srv_cluster *k, int32_t partition, const txstats_input_t *in,
                          int *first);
/* Wait (polling each ms) until the reader has moved *v to at least `want`: false at `until` (ms)
 * or once the node is stopping. */
bool srv_kafka_wait_reaches(struct srv_cluster *k, _Atomic int64_t *v, int64_t want, int64_t until);

/* ---- --kafka-ack kafka (kafka_ack.c) ---- */
/* Transactions without repeated idempotency keys, as the backend's add_batch. */
void srv_kafka_ack_add(struct srv_cluster *k, const txstats_input_t *in, size_t n, int *results,
                       int *firsts, char *err, size_t errn);
int srv_kafka_ack_clear(struct srv_cluster *k, char *err, size_t n);
/* The producer's delivery report of a message produced by a request. */
void srv_kafka_ack_delivered(const rd_kafka_message_t *m);

/* ---- --kafka-ack local (kafka_local.c) ---- */
void srv_kafka_local_add(struct srv_cluster *k, const txstats_input_t *in, size_t n, int *results,
                         int *firsts, char *err, size_t errn);
int srv_kafka_local_clear(struct srv_cluster *k, char *err, size_t n);
/* Open DATA_DIR/outbox (local mode), or refuse one still holding records (kafka mode): 0 or -1
 * after logging why. */
int srv_kafka_outbox_open(struct srv_cluster *k);
int srv_kafka_outbox_left(struct srv_cluster *k);
void srv_kafka_outbox_metrics(struct srv_cluster *k, struct srv_text *t);

#endif
