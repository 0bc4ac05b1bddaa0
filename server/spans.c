/* SPDX-License-Identifier: MIT */
/* Spans as text: parsed, named, looked up (spans.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "spans.h"

static const struct {
    const char *name;
    int64_t ms;
} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
#define NUNITS (sizeof(units) / sizeof(units[0]))

/* The unit named by `len` bytes of text (none: ms), or 0. */
static int64_t unit_of(const char *text, size_t len)
{
    if (len == 0)
        return 1;
    for (size_t i = 0; i < NUNITS; i++)
        if (strlen(units[i].name) == len && !memcmp(units[i].name, text, len))
            return units[i].ms;
    return 0;
}

static void too_long(const char *text, int shown, int64_t max, char *err, size_t n)
{
    char name[SRV_SPAN_NAME];
    srv_span_name(max, name);
    snprintf(err, n, "'%.*s' is longer than the longest span allowed, %s (%lld ms)", shown, text,
             name, (long long)max);
}

int srv_span_parse(const char *text, size_t len, int64_t max, int64_t *ms, char *err, size_t n)
{
    size_t digits = 0, letters = 0;
    int64_t v = 0; /* stops growing past max: no overflow however many digits */
    for (; digits < len && text[digits] >= '0' && text[digits] <= '9'; digits++)
        v = v > max ? v : v * 10 + (text[digits] - '0');
    while (digits + letters < len && isalpha((unsigned char)text[digits + letters]))
        letters++;
    int64_t unit = unit_of(text + digits, letters);
    int shown = len > 32 ? 32 : (int)len;
    if (len == 0)
        snprintf(err, n, "an empty span");
    else if (digits == 0 || digits + letters != len)
        snprintf(err, n,
                 "'%.*s' is not a span: a whole number of milliseconds, or one with a unit "
                 "(ms, s, m, h or d), e.g. 60000, 60s, 5m, 1h, 24h",
                 shown, text);
    else if (unit == 0)
        snprintf(err, n, "'%.*s': unknown unit '%.*s' (ms, s, m, h or d, lower case)", shown, text,
                 (int)letters > 8 ? 8 : (int)letters, text + digits);
    else if (v == 0)
        snprintf(err, n, "'%.*s': a span is at least 1 ms", shown, text);
    else if (v > max / unit)
        too_long(text, shown, max, err, n);
    else {
        *ms = v * unit;
        return 0;
    }
    return -1;
}

int srv_spans_parse(const char *list, int64_t max, struct srv_spans *out, char *err, size_t n)
{
    out->n = 0;
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        int64_t ms = 0;
        char why[200];
        if (out->n == TXSTATS_MAX_SPANS) {
            snprintf(err, n, "at most %d spans", TXSTATS_MAX_SPANS);
            return -1;
        }
        if (len == 0) {
            snprintf(err, n, "an empty span (two commas in a row, or one at an end)");
            return -1;
        }
        if (srv_span_parse(p, len, max, &ms, why, sizeof(why)) != 0) {
            snprintf(err, n, "%s", why);
            return -1;
        }
        for (unsigned i = 0; i < out->n; i++)
            if (out->ms[i] == ms) {
                char name[SRV_SPAN_NAME];
                srv_span_name(ms, name);
                snprintf(err, n, "'%.*s' is listed twice: it is %s, like span %u",
                         len > 32 ? 32 : (int)len, p, name, i + 1);
                return -1;
            }
        out->ms[out->n++] = ms;
        p += len;
        if (!*p)
            return 0;
    }
}

void srv_span_name(int64_t ms, char *out)
{
    size_t u = NUNITS - 1;
    while (u > 0 && ms % units[u].ms != 0)
        u--;
    snprintf(out, SRV_SPAN_NAME, "%lld%s", (long long)(ms / units[u].ms), units[u].name);
}

void srv_spans_names(const struct srv_spans *s, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < s->n && used < cap; i++) {
        char name[SRV_SPAN_NAME];
        srv_span_name(s->ms[i], name);
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? ", " : "", name);
    }
}

int64_t srv_spans_longest(const struct srv_spans *s)
{
    int64_t longest = 0;
    for (unsigned i = 0; i < s->n; i++)
        longest = s->ms[i] > longest ? s->ms[i] : longest;
    return longest;
}

int srv_span_find(const struct srv_spans *s, const char *text, unsigned *index, char *err, size_t n)
{
    int64_t ms = 0;
    char why[200], names[TXSTATS_MAX_SPANS * SRV_SPAN_NAME];
    if (srv_span_parse(text, strlen(text), TXSTATS_MAX_SPAN_MS, &ms, why, sizeof(why)) == 0)
        for (unsigned i = 0; i < s->n; i++)
            if (s->ms[i] == ms) {
                *index = i;
                return 0;
            }
    srv_spans_names(s, names, sizeof(names));
    snprintf(err, n,
             "bad query: unknown window '%.32s': this server keeps %s (the first is the "
             "default), each written in ms, s, m, h or d (5m = 300s = 300000)",
             text, names);
    return -1;
}
