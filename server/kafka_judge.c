/* SPDX-License-Identifier: MIT */
/*
 * Cluster mode, what both acknowledgement modes judge alike: a transaction is admitted by this
 * node's clock and, with an idempotency key, by what this node already knows of the key before
 * it is sent on; once this node has read it back, the partition's window says what the cluster
 * made of the key.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <time.h>

#include "kafka_cluster.h"
#include "log.h"

static int admit(const struct srv_cluster *k, txstats_amount_t amount, int64_t ts)
{
    return txstats_admit(&k->admission, amount, ts, srv_now_ms());
}

/* A key's partition: the same on every node (librdkafka's murmur2, as Java clients use). */
int32_t srv_kafka_partition_of(const struct srv_cluster *k, const txstats_key_t *key)
{
    return rd_kafka_msg_partitioner_murmur2(k->topic, key->key, key->len, k->partitions, NULL,
                                            NULL);
}

/* Wait (polling each ms) until the reader has moved *v to at least `want`, or `until` (ms). */
bool srv_kafka_wait_reaches(struct srv_cluster *k, _Atomic int64_t *v, int64_t want, int64_t until)
{
    while (atomic_load(v) < want) {
        if (srv_now_ms() > until || atomic_load(&k->closing))
            return false;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return true;
}

/* Before producing: a key this node already knows is answered here. TXSTATS_OK to produce. */
static int known_key(struct srv_cluster *k, const txstats_input_t *in, const txstats_key_t *key,
                     int *first)
{
    if (key->len > TXSTATS_MAX_KEY_BYTES)
        return TXSTATS_EINVAL;
    txstats_t *w = k->part[srv_kafka_partition_of(k, key)];
    txstats_input_t q = *in; /* the entity is part of what the key remembers */
    q.idem_key = key->key;
    q.idem_key_len = key->len;
    return txstats_key_check_ex(w, &q, first);
}

/* Room for the transaction's key: it is active in some partition, or fewer than
 * --max-active-keys keys are active in all (a key spread over partitions by idempotency keys
 * counts once in each: the check errs on the side of refusing). */
static int key_room(struct srv_cluster *k, const txstats_input_t *in)
{
    uint64_t active = 0;
    for (int p = 0; p < k->partitions; p++) {
        txstats_summary_t s;
        txstats_entity_info_t info;
        if (txstats_entity_stats(k->part[p], in->entity, in->entity_len, &s) == TXSTATS_OK &&
            s.count > 0)
            return TXSTATS_OK;
        txstats_entity_info(k->part[p], &info);
        active += info.active;
    }
    if (active < (uint64_t)k->opt.max_active_keys)
        return TXSTATS_OK;
    atomic_fetch_add(&k->keys_refused, 1);
    return TXSTATS_ELIMIT;
}

/* Once this node has read a keyed record back: what the partition's window made of it (the
 * first record of a key in offset order wins, on every node alike). */
int srv_kafka_key_outcome(struct srv_cluster *k, int32_t partition, const txstats_input_t *in,
                          int *first)
{
    int rc = txstats_key_check_ex(k->part[partition], in, first);
    if (rc == TXSTATS_DUPLICATE) /* ours, or an identical one first: the first's outcome */
        return *first;
    return rc == TXSTATS_OK ? TXSTATS_OK : rc; /* unknown: counted without a key (table full) */
}

/* Admission by this node's clock and, with an idempotency key, what this node already knows of
 * it, then room for a new key: TXSTATS_OK to send the transaction on. */
int srv_kafka_judge(struct srv_cluster *k, const txstats_input_t *in, int *first)
{
    txstats_key_t idem;
    const txstats_key_t *key = srv_kafka_idem_of(in, &idem);
    int rc = admit(k, in->amount, in->timestamp_ms);
    if (key && rc != TXSTATS_ERANGE) {
        int known = known_key(k, in, key, first);
        rc = known != TXSTATS_OK ? known : rc;
    }
    if (rc == TXSTATS_OK && in->entity_len)
        rc = key_room(k, in);
    return rc;
}

const txstats_key_t *srv_kafka_idem_of(const txstats_input_t *in, txstats_key_t *out)
{
    if (!in->idem_key || !in->idem_key_len)
        return NULL;
    *out = (txstats_key_t){in->idem_key, in->idem_key_len};
    return out;
}

txstats_key_t srv_kafka_message_key(const txstats_input_t *in)
{
    if (in->idem_key && in->idem_key_len)
        return (txstats_key_t){in->idem_key, in->idem_key_len};
    if (in->entity && in->entity_len)
        return (txstats_key_t){in->entity, in->entity_len};
    return (txstats_key_t){NULL, 0};
}
