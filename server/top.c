/* SPDX-License-Identifier: MIT */
/*
 * GET /statistics/top?by=sum|count&limit=N[&window=W]: the N keys (the "key" member of POSTs)
 * with the largest sum, or the most transactions, in window W (windows.h) now, exactly, largest
 * first; ties in the library's order (the key's bytes). 200
 * {"by":"sum","limit":10,"keys":[{"key":"card-1",
 * "sum":"..","avg":"..","max":"..","min":"..","count":3},...]}; 400 for a `by` other than sum or
 * count, a `limit` other than 1 to SRV_TOP_MAX.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "top.h"
#include "windows.h"

static const char *const params[] = {"by", "limit", "window", NULL};

/* ?by= and ?limit=: 0, or -1 with a reason in err. */
static int parse_query(const char *q, txstats_top_by_t *by, size_t *limit, char *err, size_t n)
{
    char v[32];
    int has = srv_query_get(q, params, "by", v, sizeof(v), err, n);
    if (has < 0)
        return -1;
    *by = !has || !strcmp(v, "sum") ? TXSTATS_TOP_SUM : TXSTATS_TOP_COUNT;
    if (has && strcmp(v, "sum") != 0 && strcmp(v, "count") != 0) {
        snprintf(err, n, "bad query: 'by' is sum (the default) or count");
        return -1;
    }
    has = srv_query_get(q, params, "limit", v, sizeof(v), err, n);
    if (has < 0)
        return -1;
    *limit = 10;
    if (!has)
        return 0;
    size_t len = strspn(v, "0123456789");
    *limit = len && len == strlen(v) && len <= 4 ? (size_t)atoi(v) : 0;
    if (*limit < 1 || *limit > SRV_TOP_MAX) {
        snprintf(err, n, "bad query: 'limit' is an integer from 1 to %d (10 by default)",
                 SRV_TOP_MAX);
        return -1;
    }
    return 0;
}

/* One entry: {"key":"...","sum":...,"count":N}; its length. */
static size_t entry_json(const txstats_top_entry_t *e, char *out, size_t cap)
{
    char key[TXSTATS_MAX_ENTITY_BYTES + 1];
    txstats_summary_text_t x;
    memcpy(key, e->entity, e->entity_len);
    key[e->entity_len] = '\0';
    txstats_summary_text(&e->stats, &x);
    size_t n = (size_t)snprintf(out, cap, "{\"key\":\"");
    n += srv_json_escape(key, out + n, cap - n);
    n += (size_t)snprintf(out + n, cap - n,
                          "\",\"sum\":\"%s\",\"avg\":\"%s\",\"max\":\"%s\",\"min\":\"%s\","
                          "\"count\":%llu}",
                          x.sum, x.avg, x.max, x.min, (unsigned long long)x.count);
    return n;
}

/* The answer's body (malloc'd) and its length, or NULL when out of memory. */
static char *body_of(txstats_top_by_t by, size_t limit, const txstats_top_entry_t *e, size_t n,
                     size_t *len)
{
    enum { ENTRY = 6 * TXSTATS_MAX_ENTITY_BYTES + 5 * 48 + 96 }; /* every byte as \u00XX */
    size_t cap = 64 + n * ENTRY;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t used = (size_t)snprintf(out, cap, "{\"by\":\"%s\",\"limit\":%zu,\"keys\":[",
                                   by == TXSTATS_TOP_SUM ? "sum" : "count", limit);
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[used++] = ',';
        used += entry_json(&e[i], out + used, cap - used);
    }
    used += (size_t)snprintf(out + used, cap - used, "]}");
    *len = used;
    return out;
}

int srv_get_top(struct srv *s, struct mg_connection *c)
{
    char err[400];
    txstats_top_by_t by;
    size_t limit, n = 0, len = 0;
    unsigned span;
    const char *q = mg_get_request_info(c)->query_string;
    if (parse_query(q, &by, &limit, err, sizeof(err)) != 0 ||
        srv_window_of(s, q, params, &span, err, sizeof(err)) != 0)
        return srv_error(c, 400, NULL, "%s", err);
    txstats_top_entry_t *e = malloc(limit * sizeof(*e)); /* up to 216 KB: not on the stack */
    int rc = e ? s->backend.ops->top(s->backend.self, span, by, e, limit, &n) : TXSTATS_ENOMEM;
    char *body = rc == TXSTATS_OK ? body_of(by, limit, e, n, &len) : NULL;
    free(e);
    if (!body)
        return srv_error(c, 503, "Retry-After: 1\r\n", "out of memory");
    int st = srv_reply(c, 200, NULL, body, len);
    free(body);
    return st;
}
