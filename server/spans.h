/* SPDX-License-Identifier: MIT */
/*
 * Spans (spans.c): the lengths of the windows one server keeps, as --window-ms and ?window= write
 * them. A span is a whole number, optionally followed by a unit: `ms` (the unit of a bare
 * number), `s`, `m` (minutes), `h` or `d` (86,400,000 ms), lower case, no sign, no space, no
 * fraction: `60000`, `60s`, `1m` and `60000ms` are one span. A list separates up to
 * TXSTATS_MAX_SPANS distinct spans with commas; the first is the default.
 *
 * A span's name is its length in the largest unit that divides it exactly (60000: `1m`, 90000:
 * `90s`, 86400000: `1d`, 1500: `1500ms`), the way Prometheus writes durations: the label of
 * /metrics, the name GET /statistics/windows lists.
 */
#ifndef TXSTATS_SERVER_SPANS_H
#define TXSTATS_SERVER_SPANS_H

#include <stddef.h>
#include <stdint.h>

#include <txstats/txstats.h>

/* The spans of a server, in configuration order: ms[0] is the default. n >= 1 once parsed. */
struct srv_spans {
    int64_t ms[TXSTATS_MAX_SPANS];
    unsigned n;
};

#define SRV_SPAN_NAME 24 /* bytes of a span's name, NUL included */

/* One span of `len` bytes: 0 with *ms (1 to `max`), or -1 with a reason in err (empty, not a
 * whole number, an unknown unit, zero, longer than `max`: no overflow whatever the digits). */
int srv_span_parse(const char *text, size_t len, int64_t max, int64_t *ms, char *err, size_t n);

/* A comma-separated list into `out`: 0, or -1 with a reason in err (an empty item, a bad span,
 * a span listed twice however written, more than TXSTATS_MAX_SPANS). */
int srv_spans_parse(const char *list, int64_t max, struct srv_spans *out, char *err, size_t n);

/* A span's name (see above) into out (SRV_SPAN_NAME bytes). */
void srv_span_name(int64_t ms, char *out);

/* The configured spans' names, ", "-separated, into out (cap bytes). */
void srv_spans_names(const struct srv_spans *s, char *out, size_t cap);

/* The longest span. */
int64_t srv_spans_longest(const struct srv_spans *s);

/* Which configured span `text` names (written as in the option, any unit): 0 with *index, or -1
 * with a reason in err that lists the configured spans. */
int srv_span_find(const struct srv_spans *s, const char *text, unsigned *index, char *err,
                  size_t n);

#endif
