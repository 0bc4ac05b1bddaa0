/* SPDX-License-Identifier: MIT */
/*
 * Cluster mode, --kafka-ack local: a request's admitted transactions are appended to this node's
 * outbox (outbox.h) and answered 201 at once (durable in the node's journal); the shipper thread
 * (kafka_ship.h) sends them on in order. A keyed one is answered once this node has read it back.
 * Also the outbox itself: opening it, its metrics, and the check that a --kafka-ack kafka run
 * does not start over an outbox still holding records.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "kafka_cluster.h"
#include "kafka_ship.h"
#include "log.h"
#include "outbox.h"
#include "refusals.h"

/* --kafka-ack local: wait until this node has read back its own record `seq` of `partition`. */
static bool wait_mine(struct srv_cluster *k, int32_t partition, uint64_t seq, int64_t until)
{
    return srv_kafka_wait_reaches(k, &k->mine[partition], (int64_t)seq, until);
}

/* --kafka-ack local, after the append: a transaction with an idempotency key is answered once
 * this node has read it back (what the cluster made of the key); the others are answered at
 * once. */
static void local_outcomes(struct srv_cluster *k, const txstats_input_t *in, const size_t *which,
                           size_t m, uint64_t first_seq, int *results, int *firsts, char *err,
                           size_t errn)
{
    for (size_t j = 0; j < m; j++) {
        size_t i = which[j];
        txstats_key_t idem;
        const txstats_key_t *key = srv_kafka_idem_of(&in[i], &idem);
        if (!key)
            continue;
        int32_t p = srv_kafka_partition_of(k, key);
        if (wait_mine(k, p, first_seq + j, srv_now_ms() + k->opt.kafka_timeout_ms)) {
            results[i] = srv_kafka_key_outcome(k, p, &in[i], &firsts[i]);
        } else {
            results[i] = TXSTATS_EIO;
            snprintf(err, errn,
                     "it waits in this node's outbox and its outcome is not known yet; "
                     "retry with the same idempotency key (it will not count twice)");
        }
    }
}

/* The outbox record of an admitted transaction. */
static struct srv_outbox_rec record_of(const txstats_input_t *in, int64_t now)
{
    txstats_key_t idem = {NULL, 0};
    srv_kafka_idem_of(in, &idem);
    return (struct srv_outbox_rec){.timestamp_ms = in->timestamp_ms,
                                   .amount = in->amount,
                                   .accepted_ms = now,
                                   .kind = OUTBOX_ADD,
                                   .key = idem,
                                   .entity = in->entity_len ? in->entity : NULL,
                                   .entity_len = in->entity_len};
}

/* --kafka-ack local: the admitted transactions go to the outbox in one append; a 201 means they
 * are in this node's journal (as durable as a standalone node's) and will reach Kafka. */
void srv_kafka_local_add(struct srv_cluster *k, const txstats_input_t *in, size_t n, int *results,
                         int *firsts, char *err, size_t errn)
{
    struct srv_outbox_rec one, *rec = &one;
    size_t one_which, *which = &one_which, m = 0;
    void *mem = n > 1 ? malloc(n * (sizeof(*rec) + sizeof(*which))) : NULL;
    if (n > 1 && !mem) {
        for (size_t i = 0; i < n; i++)
            results[i] = TXSTATS_ENOMEM;
        snprintf(err, errn, "out of memory");
        return;
    }
    if (mem) {
        rec = mem;
        which = (size_t *)(rec + n);
    }
    int64_t now = srv_now_ms();
    for (size_t i = 0; i < n; i++) {
        results[i] = srv_kafka_judge(k, &in[i], &firsts[i]);
        if (results[i] == TXSTATS_OK) {
            rec[m] = record_of(&in[i], now);
            which[m++] = i;
        }
    }
    uint64_t first = 0;
    if (m && srv_outbox_append(k->outbox, rec, m, &first) != 0) {
        srv_refused(&k->refused, errno, m);
        snprintf(err, errn, "this node's outbox journal cannot be written (%s)",
                 srv_os_reason(errno));
        srv_log(LOG_WARN, "%s", err);
        for (size_t j = 0; j < m; j++)
            results[which[j]] = TXSTATS_EIO;
    } else if (m) {
        local_outcomes(k, in, which, m, first, results, firsts, err, errn);
    }
    free(mem);
}

/* --kafka-ack local: the clear goes through the outbox, after every transaction accepted before
 * it (on each partition). Answered once in the outbox; waits (up to --kafka-timeout-ms) for this
 * node to read it back from every partition, so that its next GET shows it. */
int srv_kafka_local_clear(struct srv_cluster *k, char *err, size_t n)
{
    struct srv_outbox_rec r = {.accepted_ms = srv_now_ms(), .kind = OUTBOX_CLEAR};
    uint64_t seq;
    if (srv_outbox_append(k->outbox, &r, 1, &seq) != 0) {
        srv_refused(&k->refused, errno, 1);
        snprintf(err, n, "this node's outbox journal cannot be written (%s)", srv_os_reason(errno));
        return TXSTATS_EIO;
    }
    int64_t until = srv_now_ms() + k->opt.kafka_timeout_ms;
    for (int p = 0; p < k->partitions && wait_mine(k, p, seq, until); p++)
        ;
    srv_log(LOG_INFO, "all transactions deleted (cluster-wide, from this node's outbox)");
    return TXSTATS_OK;
}

/* --kafka-ack local: what waits in the outbox for Kafka. */
void srv_kafka_outbox_metrics(struct srv_cluster *k, struct srv_text *t)
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

/* --kafka-ack kafka: an outbox left by an earlier --kafka-ack local run must be shipped first
 * (its records were answered 201); 0 when there is none or it is empty. */
int srv_kafka_outbox_left(struct srv_cluster *k)
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
int srv_kafka_outbox_open(struct srv_cluster *k)
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
