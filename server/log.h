/* SPDX-License-Identifier: MIT */
/* The server's log: one line per event on stderr (log.c). */
#ifndef TXSTATS_SERVER_LOG_H
#define TXSTATS_SERVER_LOG_H

#include <stdint.h>

enum srv_log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern int srv_log_threshold;
void srv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* errno in plain words: what it means for the operator. */
const char *srv_os_reason(int err);
/* The real UTC clock, in ms since the epoch. */
int64_t srv_now_ms(void);

#endif
