/* SPDX-License-Identifier: MIT */
/* The `window` query parameter and GET /statistics/windows (windows.h). */
#include <stdio.h>

#include "query.h"
#include "spans.h"
#include "windows.h"

int srv_window_of(const struct srv *s, const char *query, const char *const *names, unsigned *span,
                  char *err, size_t n)
{
    char v[64];
    *span = 0;
    int has = srv_query_get(query, names, "window", v, sizeof(v), err, n);
    if (has <= 0)
        return has;
    return srv_span_find(&s->opt.spans, v, span, err, n);
}

int srv_get_windows(struct srv *s, struct mg_connection *c)
{
    char body[96 + TXSTATS_MAX_SPANS * (SRV_SPAN_NAME + 48)], name[SRV_SPAN_NAME];
    const struct srv_spans *sp = &s->opt.spans;
    srv_span_name(sp->ms[0], name);
    size_t used = (size_t)snprintf(body, sizeof(body), "{\"default\":\"%s\",\"windows\":[", name);
    for (unsigned i = 0; i < sp->n; i++) {
        srv_span_name(sp->ms[i], name);
        used +=
            (size_t)snprintf(body + used, sizeof(body) - used, "%s{\"name\":\"%s\",\"ms\":%lld}",
                             i ? "," : "", name, (long long)sp->ms[i]);
    }
    used += (size_t)snprintf(body + used, sizeof(body) - used, "]}");
    return srv_reply(c, 200, NULL, body, used);
}
