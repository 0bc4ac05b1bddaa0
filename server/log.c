/* SPDX-License-Identifier: MIT */
/* The logs: one line per event on stderr (UTC time, level, message), and the access log. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
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

/* Why a file operation failed, in plain words for an operator (strerror's texts are terse). */
const char *srv_os_reason(int err)
{
    switch (err) {
    case EACCES:
    case EPERM:
        return "permission denied: the user running the server may not write there";
    case ENOTDIR:
        return "it, or a part of its path, is a file and not a directory";
    case ENOENT:
        return "a part of the path does not exist";
    case ENOSPC:
        return "the disk is full";
    case EDQUOT:
        return "the disk quota is exhausted";
    case EROFS:
        return "the file system is mounted read-only";
    case EEXIST:
        return "a file of that name is in the way";
    case ENAMETOOLONG:
        return "the path is too long";
    case EMFILE:
    case ENFILE:
        return "too many open files";
    case ENOMEM:
        return "out of memory";
    default:
        return strerror(err);
    }
}
