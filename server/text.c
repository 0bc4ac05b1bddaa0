/* SPDX-License-Identifier: MIT */
/* Text for /metrics. */
#include <stdarg.h>
#include <stdio.h>

#include "text.h"

void srv_text_put(struct srv_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->buf + t->n, sizeof(t->buf) - t->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        t->n = t->n + (size_t)k < sizeof(t->buf) ? t->n + (size_t)k : sizeof(t->buf) - 1;
}

void srv_text_family(struct srv_text *t, const char *name, const char *type, const char *help)
{
    srv_text_put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}
