/* SPDX-License-Identifier: MIT */
/* A text being built for /metrics, in Prometheus text exposition format 0.0.4 (text.c). */
#ifndef TXSTATS_SERVER_TEXT_H
#define TXSTATS_SERVER_TEXT_H

#include <stddef.h>

struct srv_text {
    char buf[32768]; /* /metrics with 8 windows, cluster mode and every route: about 15 KB */
    size_t n;        /* what does not fit is cut at the end, never mid-buffer garbage */
};

void srv_text_put(struct srv_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "# HELP name help" and "# TYPE name type". */
void srv_text_family(struct srv_text *t, const char *name, const char *type, const char *help);

#endif
