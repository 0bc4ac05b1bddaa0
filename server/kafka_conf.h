/* SPDX-License-Identifier: MIT */
/*
 * librdkafka settings of cluster mode (kafka_conf.c): the backend's own, then the operator's
 * properties passed through (TLS, SASL, tuning), from three places, later ones winning:
 *   1. --kafka-properties-file FILE (TXSTATS_KAFKA_PROPERTIES_FILE): key=value lines;
 *   2. TXSTATS_KAFKA_PROPERTY_<KEY> environment variables (KEY upper-cased, '.' written '_' and
 *      '_' written '__', the convention of Confluent's Docker images);
 *   3. --kafka-property KEY=VALUE, repeatable; never a secret (a name with
 *      "password" or "secret" in it, ssl.key.pem, sasl.oauthbearer.config).
 * A property the backend's guarantees rest on (acks, idempotence, group.id, ...) is refused from
 * all three.
 */
#ifndef TXSTATS_SERVER_KAFKA_CONF_H
#define TXSTATS_SERVER_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

struct srv_options;

/**
 * A new librdkafka configuration: `fixed` (n_fixed {key, value} pairs, the backend's own
 * settings) applied first, then the operator's properties in the order above.
 * @param o       the options (kafka_properties_file, kafka_property[])
 * @param fixed   the backend's settings; may be NULL when n_fixed is 0
 * @param err     on failure, why (NUL-terminated, errn bytes at most): where the property came
 *                from and librdkafka's own text (rd_kafka_conf_set(), rdkafka.h); never a secret
 *                value
 * @return the configuration, owned by the caller (rd_kafka_new() or rd_kafka_conf_destroy()),
 *         or NULL on a refused, unknown or invalid property, an unreadable or malformed file
 */
rd_kafka_conf_t *srv_kafka_conf_new(const struct srv_options *o, const char *const (*fixed)[2],
                                    size_t n_fixed, char *err, size_t errn);

/**
 * Check the operator's properties at start, before anything connects: each property as
 * srv_kafka_conf_new() sets it, then a trial producer and consumer (idempotent, acks=all, no
 * brokers, so nothing connects) catch what librdkafka checks only at rd_kafka_new(): settings
 * that contradict each other or the idempotent producer, unreadable certificate files, SASL
 * without its username.
 * @return 0, or 2 (exit status: bad configuration) with `err` filled as above
 */
int srv_kafka_conf_check(const struct srv_options *o, char *err, size_t errn);

#endif
