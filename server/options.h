/* SPDX-License-Identifier: MIT */
/* Command-line options and their environment twins (options.c). */
#ifndef TXSTATS_SERVER_OPTIONS_H
#define TXSTATS_SERVER_OPTIONS_H

#include <stdint.h>

#include "spans.h"

enum srv_log_format { ACCESS_LOG_TEXT, ACCESS_LOG_COMBINED, ACCESS_LOG_JSON };
enum srv_kafka_ack { KAFKA_ACK_KAFKA, KAFKA_ACK_LOCAL };

#define SRV_LIST_MAX 64

/* A repeatable option's values, in command-line order; they point into argv. */
struct srv_list {
    const char *item[SRV_LIST_MAX];
    int n;
};

struct srv_options {
    char listen[128];
    int threads;
    struct srv_spans spans; /* --window-ms: the windows kept, spans.ms[0] the default */
    int64_t longest_ms;     /* the longest span: how long a transaction is kept */
    int64_t max_skew_ms;
    int64_t max_retained;
    int64_t max_body_bytes;
    int64_t max_batch;       /* lines of one POST /transactions/batch */
    int64_t max_batch_bytes; /* body of one POST /transactions/batch */
    int64_t max_idempotency_keys;
    int64_t idempotency_ttl_ms; /* 0: window + skew */
    int64_t max_active_keys;    /* per-key windows (the "key" member) active at once */
    char data_dir[1024];
    int64_t save_interval_ms;
    char admin_token_file[1024];
    char access_log[1024];
    int access_log_format; /* enum srv_log_format */
    int log_level;
    int fsync; /* txstats_fsync_t */
    int64_t fsync_interval_ms;
    int recover; /* 0 strict, 1 skip-corrupt */
    int64_t request_timeout_ms;
    int64_t keep_alive_timeout_ms;
    int64_t max_list;
    char port_file[1024];
    int64_t stream_interval_ms;
    int max_streams;
    int64_t stream_max_seconds;
    char kafka_brokers[1024];
    char kafka_topic[256];
    int64_t kafka_timeout_ms;
    int kafka_ack; /* enum srv_kafka_ack */
    char kafka_properties_file[1024];
    struct srv_list kafka_property; /* KEY=VALUE, librdkafka's (kafka_conf.c) */

    int64_t kafka_checkpoint_interval_ms; /* 0: no partition checkpoints */
};

/* 0, or 2 after printing why (bad option); 1 after --help/--version (exit 0). */
int srv_parse_options(int argc, char **argv, struct srv_options *o);

#endif
