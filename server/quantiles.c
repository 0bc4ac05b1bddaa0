/* SPDX-License-Identifier: MIT */
/* The `q` list of GET /statistics/distribution and its JSON answer. See quantiles.h. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "quantiles.h"
#include "query.h"

/* One level: "0" | "1" | "0." digits{1,9} | "1." zeros{1,9}; its value in parts per billion and
 * its canonical text (no trailing zeros). */
static bool parse_level(const char *s, size_t len, uint32_t *q, char text[16])
{
    if (len == 0 || (s[0] != '0' && s[0] != '1'))
        return false;
    uint32_t frac = 0, scale = 100000000;
    if (len > 1) {
        if (s[1] != '.' || len < 3 || len > 11)
            return false;
        for (size_t i = 2; i < len; i++, scale /= 10) {
            if (s[i] < '0' || s[i] > '9' || (s[0] == '1' && s[i] != '0'))
                return false;
            frac += (uint32_t)(s[i] - '0') * scale;
        }
    }
    *q = s[0] == '1' ? TXSTATS_Q_SCALE : frac;
    if (*q == 0 || *q == TXSTATS_Q_SCALE) {
        snprintf(text, 16, "%c", *q ? '1' : '0');
        return true;
    }
    snprintf(text, 16, "0.%09u", (unsigned)*q);
    for (size_t k = strlen(text); text[k - 1] == '0'; k--)
        text[k - 1] = '\0';
    return true;
}

int srv_quantiles_parse(const char *query, struct srv_qlist *out, char *err, size_t n)
{
    char list[512];
    memset(out, 0, sizeof(*out));
    static const char *const names[] = {"q", "window", NULL}; /* window: windows.h */
    int has = srv_query_get(query, names, "q", list, sizeof(list), err, n);
    if (has < 0)
        return -1;
    const char *p = has ? list : "0.5,0.9,0.99";
    for (;;) {
        const char *end = p + strcspn(p, ",");
        if (out->n == SRV_MAX_QUANTILES) {
            snprintf(err, n, "bad query: at most %d levels in 'q'", SRV_MAX_QUANTILES);
            return -1;
        }
        if (!parse_level(p, (size_t)(end - p), &out->q_ppb[out->n], out->text[out->n])) {
            snprintf(err, n,
                     "bad query: each level in 'q' is a decimal in [0, 1] with at most 9 "
                     "fraction digits, e.g. q=0.5,0.99");
            return -1;
        }
        for (size_t i = 0; i < out->n; i++)
            if (out->q_ppb[i] == out->q_ppb[out->n]) {
                snprintf(err, n, "bad query: level %s is listed twice", out->text[i]);
                return -1;
            }
        out->n++;
        if (!*end)
            return 0;
        p = end + 1;
    }
}

void srv_money(txstats_amount_t a, char out[48])
{
    txstats_summary_t s = {.count = 1, .min = a, .max = a};
    txstats_summary_text_t x;
    s.sum_lo = (uint64_t)a;
    s.sum_hi = a < 0 ? -1 : 0;
    txstats_summary_text(&s, &x);
    memcpy(out, x.min, sizeof(x.min));
}

/* Histogram bounds: -10^12 < ... < -0.01 < 0 < 0.01 < ... < 10^11 (micro-units). */
static size_t bounds(txstats_amount_t *b)
{
    size_t n = 0;
    for (int64_t p = 100000000000000000; p >= 10000; p /= 10)
        b[n++] = -p;
    b[n++] = 0;
    for (int64_t p = 10000; p <= 100000000000000000; p *= 10)
        b[n++] = p;
    return n;
}

int srv_distribution_json(const txstats_dist_t *d, const struct srv_qlist *q, char *buf, size_t n)
{
    txstats_amount_t v[SRV_MAX_QUANTILES], b[40], min, max;
    uint64_t c[40];
    size_t nb = 0, used = 0;
    txstats_dist_quantiles(d, q->q_ppb, q->n, v);
    txstats_dist_extremes(d, &min, &max);
    if (txstats_dist_count(d)) {
        txstats_amount_t all[40];
        size_t na = bounds(all);
        for (size_t i = 0; i < na; i++)
            if (all[i] >= min && all[i] < max)
                b[nb++] = all[i];
        b[nb++] = max;
        txstats_dist_histogram(d, b, nb, c);
    }
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(buf + used, n - used, __VA_ARGS__);                                      \
        if (k_ < 0 || (size_t)k_ >= n - used)                                                      \
            return -1;                                                                             \
        used += (size_t)k_;                                                                        \
    } while (0)
    PUT("{\"count\":%llu,\"quantiles\":{", (unsigned long long)txstats_dist_count(d));
    for (size_t i = 0; i < q->n; i++) {
        char m[48];
        srv_money(v[i], m);
        PUT("%s\"%s\":\"%s\"", i ? "," : "", q->text[i], m);
    }
    PUT("},\"histogram\":[");
    for (size_t i = 0; i < nb; i++) { /* exact: bounds below a cent must not print alike */
        char m[48];
        txstats_amount_format(b[i], m, sizeof(m));
        PUT("%s{\"le\":\"%s\",\"count\":%llu}", i ? "," : "", m, (unsigned long long)c[i]);
    }
    PUT("]}");
#undef PUT
    return (int)used;
}
