/* SPDX-License-Identifier: MIT */
/* Cluster mode, the consuming side (kafka_cluster.h): every partition into its window, each
 * record identity once, checkpoints of the windows, and where reading starts. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka_checkpoint.h"
#include "kafka_cluster.h"
#include "kafka_ship.h"
#include "log.h"

/* Replication lag buckets (seconds), from a node's 201 to this node counting the record. */
static const double lag_le[LAG_BUCKETS] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
                                           0.25,  0.5,   1,     2.5,  5,    10};

/* ---- consuming ------------------------------------------------------------------------------ */

/* Every run of a node is an origin: past 64 in a partition, drop those unseen for longer than
 * the window plus the margin. */
static void forget_old_origins(struct srv_cluster *k, struct origins *o)
{
    if (o->n < 64)
        return;
    int64_t old = srv_now_ms() - k->opt.longest_ms - MARGIN_MS;
    size_t kept = 0;
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i].seen_ms >= old)
            o->v[kept++] = o->v[i];
    o->n = kept;
}

/* A record identity (node, seq) seen for the first time in partition p? Records of one node
 * reach a partition in sequence order, however often they are shipped. Node 0: no identity. */
static bool first_time(struct srv_cluster *k, int32_t p, uint64_t node, uint64_t seq)
{
    if (node == 0)
        return true;
    struct origins *o = &k->origins[p];
    size_t i = 0;
    while (i < o->n && o->v[i].node != node)
        i++;
    if (i == o->n) {
        forget_old_origins(k, o);
        if (o->n == o->cap) {
            size_t cap = o->cap ? 2 * o->cap : 8;
            struct origin *v = realloc(o->v, cap * sizeof(*v));
            if (!v)
                return true; /* cannot remember: apply (as before identities) */
            o->v = v;
            o->cap = cap;
        }
        o->v[o->n++] = (struct origin){node, 0, 0};
    }
    o->v[i].seen_ms = srv_now_ms();
    if (node == k->node_id && (int64_t)seq > atomic_load(&k->mine[p]))
        atomic_store(&k->mine[p], (int64_t)seq); /* a keyed POST waits for this */
    if (seq <= o->v[i].last)
        return false;
    o->v[i].last = seq;
    return true;
}

/* From a 201 somewhere to counted here, once this node is caught up (not while reading back). */
static void note_lag(struct srv_cluster *k, long long accepted_ms)
{
    if (accepted_ms <= 0 || atomic_load(&k->ends) < k->partitions)
        return;
    int64_t us = (srv_now_ms() - accepted_ms) * 1000;
    us = us < 0 ? 0 : us;
    size_t b = 0;
    while (b < LAG_BUCKETS && (double)us / 1e6 > lag_le[b])
        b++;
    atomic_fetch_add(&k->lag_count[b], 1);
    atomic_fetch_add(&k->lag_sum_us, (uint64_t)us);
}

/* What an add record says besides its numbers: the key it counts in (the library's entity),
 * and whether its message key is an idempotency key. */
struct rec_key {
    unsigned char entity[TXSTATS_MAX_ENTITY_BYTES];
    size_t len;      /* 0: none */
    bool idempotent; /* the message key is an idempotency key */
};

/* Counted as the first record of its idempotency key, in its key's window; a window that holds
 * --max-active-keys keys counts it without its key (the node that accepted it judged the limit;
 * every node counts it alike), a full idempotency table without its idempotency key. */
static int add_record(struct srv_cluster *k, txstats_t *w, txstats_input_t *in)
{
    int rc = txstats_add_ex(w, in, NULL);
    if (rc == TXSTATS_EFULL) { /* no room to remember the key: still counted, as produced */
        in->idem_key = NULL;
        in->idem_key_len = 0;
        rc = txstats_add_ex(w, in, NULL);
    }
    if (rc == TXSTATS_ELIMIT) {
        atomic_fetch_add(&k->keys_past_limit, 1);
        in->entity = NULL;
        in->entity_len = 0;
        rc = txstats_add_ex(w, in, NULL);
    }
    return rc;
}

/* A key counted away from its home partition (an idempotency key chose the partition): the
 * partition may hold it until its timestamp leaves the window (kafka_keys.c). */
static void note_foreign(struct srv_cluster *k, int32_t p, const txstats_input_t *in)
{
    txstats_key_t home = {in->entity, in->entity_len};
    int64_t until = in->timestamp_ms + k->opt.longest_ms;
    if (srv_kafka_partition_of(k, &home) != p && until > atomic_load(&k->foreign_until[p]))
        atomic_store(&k->foreign_until[p], until);
}

/* An add record; with an idempotency key as its message key, the first record of the key wins
 * (in offset order, the same on every node): later ones are duplicates, not counted. */
static void apply_add(struct srv_cluster *k, const rd_kafka_message_t *m, long long amount,
                      long long ts, const struct rec_key *rk)
{
    bool idem =
        (rk->len == 0 || rk->idempotent) && m->key_len > 0 && m->key_len <= TXSTATS_MAX_KEY_BYTES;
    txstats_input_t in = {amount,
                          ts,
                          rk->len ? rk->entity : NULL,
                          rk->len,
                          idem ? m->key : NULL,
                          idem ? m->key_len : 0};
    int rc = add_record(k, k->part[m->partition], &in);
    if (in.entity_len)
        note_foreign(k, m->partition, &in);
    if (rc == TXSTATS_OK)
        atomic_fetch_add(&k->applied, 1);
    else if (rc == TXSTATS_EXPIRED || rc == TXSTATS_EFUTURE)
        atomic_fetch_add(&k->expired, 1);
    else if (rc == TXSTATS_DUPLICATE || rc == TXSTATS_ECONFLICT)
        atomic_fetch_add(&k->duplicates, 1);
    else
        atomic_fetch_add(&k->malformed, 1);
}

static int unhex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The end of an add record after its numbers: "" or " i|e <key hex>". false when malformed. */
static bool parse_key_text(const char *t, struct rec_key *rk)
{
    rk->len = 0;
    if (!*t)
        return true;
    if (t[0] != ' ' || (t[1] != 'i' && t[1] != 'e') || t[2] != ' ')
        return false;
    rk->idempotent = t[1] == 'i';
    for (t += 3; t[0] && rk->len < TXSTATS_MAX_ENTITY_BYTES; t += 2) {
        int hi = unhex(t[0]), lo = hi >= 0 ? unhex(t[1]) : -1;
        if (lo < 0)
            return false;
        rk->entity[rk->len++] = (unsigned char)(hi << 4 | lo);
    }
    return !*t && rk->len > 0;
}

/* "A ts amount [node seq accepted [i|e key]]" or "C id [node seq accepted]": 'A' or 'C', or 0. */
static char parse_record(const char *text, long long *ts, long long *amount,
                         unsigned long long *node, unsigned long long *seq, long long *accepted,
                         struct rec_key *rk)
{
    char extra;
    int end = 0;
    *node = *seq = 0;
    *accepted = 0;
    rk->len = 0;
    if (sscanf(text, "A %lld %lld %llx %llu %lld%n", ts, amount, node, seq, accepted, &end) == 5 &&
        end > 0)
        return parse_key_text(text + end, rk) ? 'A' : 0;
    if (sscanf(text, "A %lld %lld %c", ts, amount, &extra) == 2)
        return 'A';
    *node = *seq = 0;
    if (sscanf(text, "C %lld %llx %llu %lld %c", ts, node, seq, accepted, &extra) == 4 ||
        sscanf(text, "C %lld %c", ts, &extra) == 1)
        return 'C';
    return 0;
}

static void apply_record(struct srv_cluster *k, const rd_kafka_message_t *m)
{
    char text[SRV_RECORD_MAX];
    long long ts, amount, accepted;
    unsigned long long node, seq;
    struct rec_key rk;
    char kind = 0;
    if (m->len < sizeof(text)) {
        memcpy(text, m->payload, m->len);
        text[m->len] = '\0';
        kind = parse_record(text, &ts, &amount, &node, &seq, &accepted, &rk);
    }
    if (kind && !first_time(k, m->partition, node, seq)) {
        atomic_fetch_add(&k->resent, 1); /* shipped again after a crash or a failed delivery */
    } else if (kind == 'A') {
        apply_add(k, m, amount, ts, &rk);
        note_lag(k, accepted);
    } else if (kind == 'C') {
        txstats_clear(k->part[m->partition]);
        atomic_store(&k->foreign_until[m->partition], 0);
        atomic_fetch_add(&k->clears, 1);
    } else {
        atomic_fetch_add(&k->malformed, 1);
        srv_log(LOG_WARN, "skipped a malformed record at partition %d offset %lld",
                (int)m->partition, (long long)m->offset);
    }
}

static void apply(struct srv_cluster *k, const rd_kafka_message_t *m)
{
    if (m->partition < 0 || m->partition >= k->partitions)
        return;
    /* A consumer can be sent back to an earlier offset (an offset reset after a broker
     * failure): a record is applied once, however often it is read. */
    if (m->offset < atomic_load(&k->next_offset[m->partition]))
        return;
    apply_record(k, m);
    atomic_store(&k->next_offset[m->partition], m->offset + 1); /* applied: wait_applied sees */
}

/* ---- checkpoints (kafka_checkpoint.h) -------------------------------------------------------- */

/* Write partition p's checkpoint when records were applied since its last one. Called by the
 * reader thread between records: the window, the offset and the identities agree exactly. */
static void checkpoint_partition(struct srv_cluster *k, int p)
{
    int64_t off = atomic_load(&k->next_offset[p]);
    if (off == 0 || off == k->ckpt_offset[p])
        return; /* nothing read, or unchanged */
    const struct origins *o = &k->origins[p];
    struct srv_ckpt_meta m = {.partition = p, .offset = off, .window_ms = k->opt.longest_ms};
    snprintf(m.topic, sizeof(m.topic), "%s", k->opt.kafka_topic);
    m.origins = malloc((o->n ? o->n : 1) * sizeof(*m.origins));
    for (size_t i = 0; m.origins && i < o->n; i++)
        m.origins[i] = (struct srv_ckpt_origin){o->v[i].node, o->v[i].last};
    m.norigins = o->n;
    txstats_summary_t sum;
    txstats_stats(k->part[p], &sum);
    m.transactions = sum.count;
    char err[512] = "checkpoint: out of memory";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = m.origins ? srv_ckpt_write(k->ckpt_dir, k->part[p], &m, err, sizeof(err)) : -1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(m.origins);
    uint64_t us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
    if (rc != 0) {
        atomic_fetch_add(&k->ckpt_failed, 1);
        srv_log(LOG_WARN, "partition %d: %s", p, err); /* the previous one stays usable */
        return;
    }
    k->ckpt_offset[p] = off;
    atomic_fetch_add(&k->ckpt_written, 1);
    atomic_store(&k->ckpt_last_us, us);
    atomic_fetch_add(&k->ckpt_total_us, us);
}

/* At clean shutdown: every changed partition, logged. */
static void checkpoint_all(struct srv_cluster *k)
{
    uint64_t before = atomic_load(&k->ckpt_written);
    int64_t t0 = srv_now_ms();
    for (int p = 0; p < k->partitions; p++)
        checkpoint_partition(k, p);
    srv_log(LOG_INFO, "shutdown checkpoints: %llu partition(s) written in %.3f s",
            (unsigned long long)(atomic_load(&k->ckpt_written) - before),
            (double)(srv_now_ms() - t0) / 1000);
}

/* From the reader loop: every --kafka-checkpoint-interval-ms a round over the partitions, one
 * partition per call, so that records keep being applied between two partitions' writes. */
static void checkpoint_tick(struct srv_cluster *k)
{
    if (k->ckpt_fd < 0)
        return;
    if (k->ckpt_cursor < k->partitions) {
        checkpoint_partition(k, k->ckpt_cursor++);
        return;
    }
    int64_t now = srv_now_ms();
    if (now >= k->ckpt_next_ms) {
        k->ckpt_cursor = 0;
        k->ckpt_next_ms = now + k->opt.kafka_checkpoint_interval_ms;
    }
}

void *srv_kafka_reader_main(void *arg)
{
    struct srv_cluster *k = arg;
    while (!atomic_load(&k->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->consumer, 100);
        if (!m) {
            checkpoint_tick(k);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < k->partitions &&
                !k->reached_end[m->partition]) {
                k->reached_end[m->partition] = true;
                if (atomic_fetch_add(&k->ends, 1) + 1 == k->partitions)
                    srv_log(LOG_INFO, "caught up with all %d partitions: ready", k->partitions);
            }
        } else if (m->err) {
            srv_log(LOG_WARN, "kafka consumer: %s", rd_kafka_message_errstr(m));
        } else {
            apply(k, m);
        }
        rd_kafka_message_destroy(m);
        checkpoint_tick(k);
    }
    if (k->ckpt_fd >= 0) /* clean shutdown: everything applied */
        checkpoint_all(k);
    return NULL;
}

/* ---- restoring checkpoints at start ---------------------------------------------------------- */

/* One partition's checkpoint to restore; loaded by a worker thread. */
struct restore {
    struct srv_ckpt_meta meta;
    bool usable;
    int rc;               /* txstats_load_ex's */
    uint64_t approximate; /* its info.approximate */
};
struct restore_set {
    struct srv_cluster *k;
    struct restore *r; /* per partition */
    atomic_int next;   /* the next partition to take */
};

/* Partition p's checkpoint, if it may be used: ours (topic, window), younger than the window
 * plus the margin, and its offset still in the partition (between its watermarks). */
static bool usable(struct srv_cluster *k, int p, struct srv_ckpt_meta *m)
{
    char err[512];
    int rc = srv_ckpt_read(k->ckpt_dir, p, m, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            srv_log(LOG_WARN, "partition %d: %s: reading it from Kafka", p, err);
        return false;
    }
    int64_t lo = -1, hi = -1;
    const char *why = NULL;
    if (strcmp(m->topic, k->opt.kafka_topic) != 0 || m->window_ms != k->opt.longest_ms)
        why = "written for another topic or window";
    else if (m->saved_ms < srv_now_ms() - k->opt.longest_ms - MARGIN_MS)
        why = "older than the window";
    else if (rd_kafka_query_watermark_offsets(k->consumer, k->opt.kafka_topic, p, &lo, &hi, 5000) !=
             RD_KAFKA_RESP_ERR_NO_ERROR)
        why = "the partition's offsets cannot be read";
    else if (m->offset < lo || m->offset > hi)
        why = "its offset is no longer in the partition (topic recreated or records deleted)";
    if (why) {
        srv_log(LOG_WARN,
                "partition %d: checkpoint at offset %lld ignored, %s: reading it from "
                "Kafka",
                p, (long long)m->offset, why);
        srv_ckpt_meta_free(m);
    }
    return !why;
}

/* Worker: load the next usable checkpoint until none is left. */
static void *restore_main(void *arg)
{
    struct restore_set *set = arg;
    struct srv_cluster *k = set->k;
    for (int p; (p = atomic_fetch_add(&set->next, 1)) < k->partitions;)
        if (set->r[p].usable)
            set->r[p].rc =
                srv_ckpt_load(k->ckpt_dir, &set->r[p].meta, k->part[p], &set->r[p].approximate);
    return NULL;
}

/* Partition p resumes after its loaded checkpoint: offset, identities, this node's own seqs. */
static void adopt(struct srv_cluster *k, int p, struct srv_ckpt_meta *m)
{
    struct origins *o = &k->origins[p];
    o->v = malloc((m->norigins ? m->norigins : 1) * sizeof(*o->v));
    if (!o->v) { /* cannot remember who was applied: read the partition again */
        txstats_clear(k->part[p]);
        return;
    }
    o->n = o->cap = m->norigins;
    for (size_t i = 0; i < m->norigins; i++) {
        o->v[i] = (struct origin){m->origins[i].node, m->origins[i].last, srv_now_ms()};
        if (m->origins[i].node == k->node_id && k->node_id != 0)
            atomic_store(&k->mine[p], (int64_t)m->origins[i].last);
    }
    atomic_store(&k->next_offset[p], m->offset);
    /* which of its keys are foreign is not known: as if all might be, for a window */
    atomic_store(&k->foreign_until[p],
                 srv_now_ms() + k->opt.longest_ms + k->opt.max_skew_ms + MARGIN_MS);
    k->start_offset[p] = k->ckpt_offset[p] = m->offset;
    k->restored++;
    k->restored_tx += m->transactions;
    srv_log(LOG_INFO,
            "partition %d: checkpoint restored, %llu transaction(s), resuming at offset %lld", p,
            (unsigned long long)m->transactions, (long long)m->offset);
}

/* Load every usable checkpoint into its partition's window (a few partitions at a time); the
 * others are read from Kafka as before. */
int srv_kafka_restore_all(struct srv_cluster *k)
{
    struct restore *r = calloc((size_t)k->partitions, sizeof(*r));
    if (!r)
        return -1;
    int64_t t0 = srv_now_ms();
    for (int p = 0; p < k->partitions; p++)
        r[p].usable = usable(k, p, &r[p].meta);
    struct restore_set set = {k, r, 0};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n = (int)(cpus < 1 ? 1 : cpus > 4 ? 4 : cpus), started = 0;
    pthread_t th[4];
    for (int i = 0; i < n && i < k->partitions; i++)
        started += pthread_create(&th[started], NULL, restore_main, &set) == 0;
    if (started == 0)
        restore_main(&set);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    uint64_t approximate = 0;
    for (int p = 0; p < k->partitions; p++) {
        if (r[p].usable && r[p].rc == TXSTATS_OK) {
            adopt(k, p, &r[p].meta);
            approximate += r[p].approximate;
        }
        if (r[p].usable && r[p].rc != TXSTATS_OK)
            srv_log(LOG_WARN,
                    "partition %d: checkpoint %s cannot be loaded (%s): reading it from "
                    "Kafka",
                    p, r[p].meta.snapshot, txstats_strerror(r[p].rc));
        srv_ckpt_meta_free(&r[p].meta);
    }
    free(r);
    if (approximate)
        srv_log(LOG_WARN,
                "checkpoints: %llu restored transaction(s) come from files of an older version "
                "that kept neither their amounts nor their buckets: quantiles count them at their "
                "millisecond's mean until they leave the window",
                (unsigned long long)approximate);
    k->restore_ms = srv_now_ms() - t0;
    srv_log(LOG_INFO,
            "checkpoints: %d of %d partition(s) restored from %s, %llu transaction(s), in %.3f s",
            k->restored, k->partitions, k->ckpt_dir, (unsigned long long)k->restored_tx,
            (double)k->restore_ms / 1000);
    return 0;
}

/* Seek every partition to where its checkpoint ends, or else to now - window - margin, or the
 * beginning when the broker cannot tell. */
int srv_kafka_assign_all(struct srv_cluster *k)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(k->partitions);
    int64_t from = srv_now_ms() - k->opt.longest_ms - MARGIN_MS;
    for (int i = 0; i < k->partitions; i++)
        rd_kafka_topic_partition_list_add(l, k->opt.kafka_topic, i)->offset = from;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(k->consumer, l, 5000);
    int fallback = 0;
    for (int i = 0; i < l->cnt; i++) {
        if (k->start_offset[i] >= 0) { /* restored from a checkpoint: resume after it */
            l->elems[i].offset = k->start_offset[i];
        } else if (e || l->elems[i].err || l->elems[i].offset < 0) {
            l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
            fallback++;
        }
    }
    if (fallback)
        srv_log(LOG_INFO,
                "offset lookup by time unavailable for %d partition(s): reading them "
                "from the beginning, skipping expired records",
                fallback);
    e = rd_kafka_assign(k->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    return e ? -1 : 0;
}

void srv_kafka_lag_metrics(struct srv_cluster *k, struct srv_text *t)
{
    srv_text_family(t, "txstats_kafka_replication_lag_seconds", "histogram",
                    "From a node's 201 to this node counting the transaction (once caught up).");
    uint64_t cum = 0;
    for (size_t b = 0; b <= LAG_BUCKETS; b++) {
        cum += atomic_load(&k->lag_count[b]);
        if (b < LAG_BUCKETS)
            srv_text_put(t, "txstats_kafka_replication_lag_seconds_bucket{le=\"%g\"} %llu\n",
                         lag_le[b], (unsigned long long)cum);
        else
            srv_text_put(t, "txstats_kafka_replication_lag_seconds_bucket{le=\"+Inf\"} %llu\n",
                         (unsigned long long)cum);
    }
    srv_text_put(t, "txstats_kafka_replication_lag_seconds_sum %.6f\n",
                 (double)atomic_load(&k->lag_sum_us) / 1e6);
    srv_text_put(t, "txstats_kafka_replication_lag_seconds_count %llu\n", (unsigned long long)cum);
}

/* Checkpoints written by this node, and what the start restored. */
void srv_kafka_checkpoint_metrics(struct srv_cluster *k, struct srv_text *t)
{
    srv_text_family(t, "txstats_kafka_checkpoints_total", "counter",
                    "Partition checkpoints written, by result.");
    srv_text_put(t, "txstats_kafka_checkpoints_total{result=\"written\"} %llu\n",
                 (unsigned long long)atomic_load(&k->ckpt_written));
    srv_text_put(t, "txstats_kafka_checkpoints_total{result=\"failed\"} %llu\n",
                 (unsigned long long)atomic_load(&k->ckpt_failed));
    srv_text_family(t, "txstats_kafka_checkpoint_last_write_seconds", "gauge",
                    "Duration of the last partition checkpoint (the reader waits meanwhile).");
    srv_text_put(t, "txstats_kafka_checkpoint_last_write_seconds %.6f\n",
                 (double)atomic_load(&k->ckpt_last_us) / 1e6);
    srv_text_family(t, "txstats_kafka_checkpoint_seconds_total", "counter",
                    "Time spent writing partition checkpoints.");
    srv_text_put(t, "txstats_kafka_checkpoint_seconds_total %.6f\n",
                 (double)atomic_load(&k->ckpt_total_us) / 1e6);
    srv_text_family(t, "txstats_kafka_checkpoint_restored_partitions", "gauge",
                    "Partitions restored from a checkpoint at start (the others were read from "
                    "Kafka).");
    srv_text_put(t, "txstats_kafka_checkpoint_restored_partitions %d\n", k->restored);
    srv_text_family(t, "txstats_kafka_checkpoint_restored_transactions", "gauge",
                    "Transactions the restored checkpoints held.");
    srv_text_put(t, "txstats_kafka_checkpoint_restored_transactions %llu\n",
                 (unsigned long long)k->restored_tx);
    srv_text_family(t, "txstats_kafka_checkpoint_restore_seconds", "gauge",
                    "Time to read and load the checkpoints at start.");
    srv_text_put(t, "txstats_kafka_checkpoint_restore_seconds %.3f\n",
                 (double)k->restore_ms / 1000);
}
