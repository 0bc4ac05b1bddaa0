/* SPDX-License-Identifier: MIT */
/*
 * A Kafka cluster for tests: librdkafka's mock cluster (the real Kafka protocol over TCP on
 * loopback), 3 brokers, a topic with 3 partitions (or PARTITIONS). Prints the bootstrap servers on
 * one line, then obeys commands on stdin, one per line, answering "ok": down N     broker N stops
 * accepting connections      up N   it accepts them again garbage P  produce a malformed record to
 * partition P It exits on end of input. usage: kafka_mock TOPIC [PARTITIONS]
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rd_kafka_t *producer_for(const char *bootstraps)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, err, sizeof(err));
    return rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
}

int main(int argc, char **argv)
{
    const char *topic = argc > 1 ? argv[1] : "transactions";
    int partitions = argc > 2 ? atoi(argv[2]) : 3;
    char err[256], line[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "kafka_mock: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 3);
    if (!mc || rd_kafka_mock_topic_create(mc, topic, partitions > 0 ? partitions : 3, 3) !=
                   RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka_mock: cannot create the cluster or the topic\n");
        return 1;
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    printf("%s\n", bootstraps);
    fflush(stdout);
    rd_kafka_t *p = producer_for(bootstraps);
    rd_kafka_topic_t *t = rd_kafka_topic_new(p, topic, NULL);
    while (fgets(line, sizeof(line), stdin)) {
        int n;
        if (sscanf(line, "down %d", &n) == 1)
            rd_kafka_mock_broker_set_down(mc, n);
        else if (sscanf(line, "up %d", &n) == 1)
            rd_kafka_mock_broker_set_up(mc, n);
        else if (sscanf(line, "garbage %d", &n) == 1) {
            static const char junk[] = "\x01this is not a transaction";
            rd_kafka_produce(t, n, RD_KAFKA_MSG_F_COPY, (void *)junk, sizeof(junk) - 1, NULL, 0,
                             NULL);
            rd_kafka_flush(p, 5000);
        }
        printf("ok\n");
        fflush(stdout);
    }
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(p);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
