/* SPDX-License-Identifier: MIT */
/*
 * Cluster mode: Kafka is the log and every node rebuilds the global window from it.
 *
 * - A POST is checked against this node's clock (txstats_admit), then produced (idempotent
 * producer, acks=all). The 201 is sent once the delivery report succeeds: the transaction is
 * durable in Kafka. It enters the window when this node's consumer reads it back, like every other
 * node's: one path into the window.
 * - Every node consumes all partitions (manual assignment, no consumer group balancing) into one
 *   txstats_t per partition; statistics merge them exactly at query time.
 * - DELETE produces a clear marker to every partition; a node clears a partition's window when it
 *   reads that partition's marker, so every node clears the same records.
 * - At start each partition is sought to the first offset at now - window - margin (or, when the
 *   broker cannot tell, the beginning; expired records are skipped). /healthz says 503 until
 *   every partition has been read to its end once.
 *
 * Record values are text: "A <timestamp ms> <amount micros>" or "C <clear id>".
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
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "log.h"
#include "options.h"

#define MARGIN_MS 5000

struct srv_cluster {
    struct srv_options opt;
    rd_kafka_t *producer, *consumer;
    rd_kafka_topic_t *topic;
    int partitions;
    txstats_t **part; /* one window per partition */
    bool *reached_end;
    int64_t *next_offset; /* per partition: records below it were applied already */
    atomic_int ends;      /* partitions read to their end once */
    pthread_t poller, reader;
    atomic_bool stop;
    atomic_uint_fast64_t applied, expired, malformed, clears;
};

/* A POST or DELETE waiting for its delivery report(s); freed by whoever finishes last. */
struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    int pending; /* delivery reports still to come */
    int refs;    /* the request and the reports */
    rd_kafka_resp_err_t err;
};

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
    (void)opaque;
    struct waiter *w = m->_private;
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
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

/* Produce `n` values (to `partition[i]`, or any when RD_KAFKA_PARTITION_UA) and wait for all of
 * their delivery reports. Returns 0 or an error text. */
static const char *produce_and_wait(struct srv_cluster *k, const char *const *values,
                                    const int32_t *partition, int n)
{
    struct waiter *w = calloc(1, sizeof(*w));
    if (!w)
        return "out of memory";
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->done_cond, NULL);
    w->refs = 1;
    const char *fail = NULL;
    for (int i = 0; i < n && !fail; i++) {
        pthread_mutex_lock(&w->lock);
        w->pending++;
        w->refs++;
        pthread_mutex_unlock(&w->lock);
        if (rd_kafka_produce(k->topic, partition[i], RD_KAFKA_MSG_F_COPY, (void *)values[i],
                             strlen(values[i]), NULL, 0, w) != 0) {
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
    waiter_release(w);
    return fail;
}

static int kafka_add(void *self, txstats_amount_t amount, int64_t ts, char *err, size_t n)
{
    struct srv_cluster *k = self;
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.window_ms = k->opt.window_ms;
    cfg.max_skew_ms = k->opt.max_skew_ms;
    int rc = txstats_admit(&cfg, amount, ts, srv_now_ms());
    if (rc != TXSTATS_OK)
        return rc;
    char value[64];
    snprintf(value, sizeof(value), "A %" PRId64 " %" PRId64, ts, amount);
    const char *v = value;
    int32_t any = RD_KAFKA_PARTITION_UA;
    const char *fail = produce_and_wait(k, &v, &any, 1);
    if (fail)
        snprintf(err, n, "Kafka did not confirm it (%s)", fail);
    return fail ? TXSTATS_EIO : TXSTATS_OK;
}

static int kafka_clear(void *self, char *err, size_t n)
{
    struct srv_cluster *k = self;
    char value[64];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(value, sizeof(value), "C %lld%09ld", (long long)now.tv_sec, now.tv_nsec);
    const char **values = calloc((size_t)k->partitions, sizeof(*values));
    int32_t *parts = calloc((size_t)k->partitions, sizeof(*parts));
    const char *fail = values && parts ? NULL : "out of memory";
    for (int i = 0; !fail && i < k->partitions; i++) {
        values[i] = value;
        parts[i] = i;
    }
    if (!fail)
        fail = produce_and_wait(k, values, parts, k->partitions);
    free(values);
    free(parts);
    if (fail)
        snprintf(err, n, "not every partition confirmed the clear (%s); retry", fail);
    else
        srv_log(LOG_INFO, "all transactions deleted (cluster-wide)");
    return fail ? TXSTATS_EIO : TXSTATS_OK;
}

/* ---- consuming ------------------------------------------------------------------------------ */

static void apply(struct srv_cluster *k, const rd_kafka_message_t *m)
{
    char text[80];
    long long ts, amount, id;
    char extra;
    if (m->partition < 0 || m->partition >= k->partitions)
        return;
    /* A consumer can be sent back to an earlier offset (an offset reset after a broker
     * failure): a record is applied once, however often it is read. */
    if (m->offset < k->next_offset[m->partition])
        return;
    k->next_offset[m->partition] = m->offset + 1;
    if (m->len >= sizeof(text)) {
        atomic_fetch_add(&k->malformed, 1);
        return;
    }
    memcpy(text, m->payload, m->len);
    text[m->len] = '\0';
    if (sscanf(text, "A %lld %lld %c", &ts, &amount, &extra) == 2) {
        int rc = txstats_add(k->part[m->partition], amount, ts);
        if (rc == TXSTATS_OK)
            atomic_fetch_add(&k->applied, 1);
        else if (rc == TXSTATS_EXPIRED || rc == TXSTATS_EFUTURE)
            atomic_fetch_add(&k->expired, 1);
        else
            atomic_fetch_add(&k->malformed, 1);
    } else if (sscanf(text, "C %lld %c", &id, &extra) == 1) {
        txstats_clear(k->part[m->partition]);
        atomic_fetch_add(&k->clears, 1);
    } else {
        atomic_fetch_add(&k->malformed, 1);
        srv_log(LOG_WARN, "skipped a malformed record at partition %d offset %lld",
                (int)m->partition, (long long)m->offset);
    }
}

static void *reader_main(void *arg)
{
    struct srv_cluster *k = arg;
    while (!atomic_load(&k->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->consumer, 100);
        if (!m)
            continue;
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
    }
    return NULL;
}

/* Seek every partition to now - window - margin, or the beginning when the broker cannot tell. */
static int assign_all(struct srv_cluster *k)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(k->partitions);
    int64_t from = srv_now_ms() - k->opt.window_ms - MARGIN_MS;
    for (int i = 0; i < k->partitions; i++)
        rd_kafka_topic_partition_list_add(l, k->opt.kafka_topic, i)->offset = from;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(k->consumer, l, 5000);
    int fallback = 0;
    for (int i = 0; i < l->cnt; i++) {
        if (e || l->elems[i].err || l->elems[i].offset < 0) {
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

static rd_kafka_conf_t *conf(const struct srv_options *o, bool producer)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char errstr[256], group[64], timeout[32];
    snprintf(timeout, sizeof(timeout), "%lld", (long long)o->kafka_timeout_ms);
    snprintf(group, sizeof(group), "txstats-%d-%lld", (int)getpid(), (long long)srv_now_ms());
    const char *common[][2] = {{"bootstrap.servers", o->kafka_brokers},
                               {"client.id", "txstats-server"}};
    const char *prod[][2] = {{"enable.idempotence", "true"},
                             {"acks", "all"},
                             {"linger.ms", "5"},
                             {"message.timeout.ms", timeout}};
    const char *cons[][2] = {{"group.id", group},
                             {"enable.auto.commit", "false"},
                             {"auto.offset.reset", "earliest"},
                             {"enable.partition.eof", "true"},
                             {"fetch.wait.max.ms", "10"},
                             {"queued.min.messages", "1000000"}};
    bool ok = true;
    for (size_t i = 0; i < 2; i++)
        ok = ok && rd_kafka_conf_set(c, common[i][0], common[i][1], errstr, sizeof(errstr)) == 0;
    for (size_t i = 0; producer && i < 4; i++)
        ok = ok && rd_kafka_conf_set(c, prod[i][0], prod[i][1], errstr, sizeof(errstr)) == 0;
    for (size_t i = 0; !producer && i < 6; i++)
        ok = ok && rd_kafka_conf_set(c, cons[i][0], cons[i][1], errstr, sizeof(errstr)) == 0;
    if (producer)
        rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    if (!ok) {
        srv_log(LOG_ERROR, "kafka configuration: %s", errstr);
        rd_kafka_conf_destroy(c);
        return NULL;
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
    k->part = calloc((size_t)k->partitions, sizeof(*k->part));
    k->reached_end = calloc((size_t)k->partitions, sizeof(*k->reached_end));
    k->next_offset = calloc((size_t)k->partitions, sizeof(*k->next_offset));
    if (!k->part || !k->reached_end || !k->next_offset)
        return -1;
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
    rd_kafka_conf_t *pc = conf(&k->opt, true), *cc = conf(&k->opt, false);
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
    if (make_windows(k) != 0 || assign_all(k) != 0) {
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
    const char *names[] = {"applied", "expired", "malformed", "clear"};
    uint64_t v[] = {atomic_load(&k->applied), atomic_load(&k->expired), atomic_load(&k->malformed),
                    atomic_load(&k->clears)};
    for (int i = 0; i < 4; i++)
        srv_text_put(t, "txstats_kafka_records_total{result=\"%s\"} %llu\n", names[i],
                     (unsigned long long)v[i]);
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

static const struct srv_backend_ops kafka_ops = {"kafka",       kafka_add,  kafka_clear,
                                                 kafka_stats,   kafka_list, kafka_ready,
                                                 kafka_metrics, kafka_stop, kafka_dist};

int srv_backend_kafka_start(const struct srv_options *o, struct srv_backend *out)
{
    struct srv_cluster *k = calloc(1, sizeof(*k));
    if (!k)
        return -1;
    k->opt = *o;
    if (kafka_connect(k) != 0) {
        kafka_free(k);
        return -1;
    }
    pthread_create(&k->poller, NULL, poller_main, k);
    pthread_create(&k->reader, NULL, reader_main, k);
    srv_log(LOG_INFO, "cluster mode: topic '%s', %d partitions, brokers %s", k->opt.kafka_topic,
            k->partitions, k->opt.kafka_brokers);
    *out = (struct srv_backend){&kafka_ops, k};
    return 0;
}
