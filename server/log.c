/* SPDX-License-Identifier: MIT */
/* One line per event on stderr: UTC time, level, message. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "txstats/txstats.h"

int srv_log_threshold = LOG_INFO;

int64_t srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void srv_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    char when[32], msg[1024];
    va_list ap;
    if (level > srv_log_threshold)
        return;
    txstats_timestamp_format(srv_now_ms(), when, sizeof(when));
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %-5s %s\n", when, names[level], msg);
}
