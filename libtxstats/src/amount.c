/* SPDX-License-Identifier: MIT */
/* Exact decimal text: amounts in micro-units, 128-bit sums, HALF_UP rounding to cents. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "amount.h"
#include "txstats/txstats.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The significant digits of a mantissa: its digit characters with the dot skipped. */
struct mantissa {
    const char *p, *end; /* the characters, '.' included */
    int64_t nfrac;       /* digits after the dot */
    int64_t first;       /* index (among digits) of the first non-zero digit, or -1 */
    int64_t ndigits;
};

/* Digit number `k` (0-based among all digits, dot skipped). */
static int digit_at(const struct mantissa *m, int64_t k)
{
    const char *dot = memchr(m->p, '.', (size_t)(m->end - m->p));
    const char *c = m->p + k;
    if (dot && c >= dot)
        c++;
    return *c - '0';
}

static int scan_mantissa(const char *s, size_t len, size_t *i, struct mantissa *m)
{
    bool dot = false;
    m->p = s + *i;
    m->nfrac = m->ndigits = 0;
    m->first = -1;
    for (; *i < len; (*i)++) {
        char c = s[*i];
        if (c == '.' && !dot) {
            dot = true;
        } else if (is_digit(c)) {
            if (c != '0' && m->first < 0)
                m->first = m->ndigits;
            m->ndigits++;
            m->nfrac += dot;
        } else {
            break;
        }
    }
    m->end = s + *i;
    return m->ndigits > 0 ? TXSTATS_OK : TXSTATS_EINVAL;
}

/* Exponent part after 'e'/'E': sign and digits, a Java int (-2^31 .. 2^31 - 1), as
 * new BigDecimal(String) requires. */
static int scan_exponent(const char *s, size_t len, size_t *i, int64_t *exp)
{
    bool neg = false;
    *exp = 0;
    if (*i < len && (s[*i] == '+' || s[*i] == '-'))
        neg = s[(*i)++] == '-';
    if (*i >= len || !is_digit(s[*i]))
        return TXSTATS_EINVAL;
    for (; *i < len && is_digit(s[*i]); (*i)++) {
        *exp = *exp * 10 + (s[*i] - '0');
        if (*exp > (int64_t)INT32_MAX + neg)
            return TXSTATS_EINVAL;
    }
    if (neg)
        *exp = -*exp;
    return TXSTATS_OK;
}

/* |value| * 10^6 rounded HALF_UP, from the significant digits and a decimal shift. */
static int scale_digits(const struct mantissa *m, int64_t shift, int64_t *out)
{
    if (m->first < 0) {
        *out = 0;
        return TXSTATS_OK;
    }
    int64_t n = m->ndigits - m->first; /* significant digits */
    int64_t keep = n + shift;          /* digits left of the micro-unit point */
    if (keep > 18)
        return TXSTATS_ERANGE;
    uint64_t q = 0;
    for (int64_t k = 0; k < keep && k < n; k++)
        q = q * 10 + (uint64_t)digit_at(m, m->first + k);
    for (int64_t k = n; k < keep; k++)
        q *= 10;
    if (keep >= 0 && keep < n && digit_at(m, m->first + keep) >= 5)
        q++;
    if (q >= (uint64_t)TXSTATS_AMOUNT_LIMIT)
        return TXSTATS_ERANGE;
    *out = (int64_t)q;
    return TXSTATS_OK;
}

int txstats_amount_parse(const char *text, size_t len, txstats_amount_t *out)
{
    size_t i = 0;
    bool neg = false;
    struct mantissa m;
    int64_t exp = 0, mag;
    if (!text || !out || len == 0)
        return TXSTATS_EINVAL;
    if (text[0] == '+' || text[0] == '-')
        neg = text[i++] == '-';
    if (scan_mantissa(text, len, &i, &m) != TXSTATS_OK)
        return TXSTATS_EINVAL;
    if (i < len && (text[i] == 'e' || text[i] == 'E')) {
        i++;
        if (scan_exponent(text, len, &i, &exp) != TXSTATS_OK)
            return TXSTATS_EINVAL;
    }
    if (i != len || m.nfrac - exp > INT32_MAX || m.nfrac - exp < INT32_MIN)
        return TXSTATS_EINVAL; /* BigDecimal's scale (fraction digits - exponent) is an int too */
    int rc = scale_digits(&m, exp - m.nfrac + 6, &mag);
    if (rc != TXSTATS_OK)
        return rc;
    *out = neg ? -mag : mag;
    return TXSTATS_OK;
}

/* Decimal digits of an unsigned 128-bit value; returns the length written (no NUL). */
static size_t put_u128(unsigned __int128 v, char *buf)
{
    char tmp[40];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    for (size_t k = 0; k < n; k++)
        buf[k] = tmp[n - 1 - k];
    return n;
}

/* sign, integer part, '.', `places` fraction digits of |v| / 10^places; then trims trailing zeros
 * down to `min_places`. */
static int put_fixed(txstats__i128 v, unsigned places, unsigned min_places, char *buf)
{
    unsigned __int128 u = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
    uint64_t div = 1;
    for (unsigned k = 0; k < places; k++)
        div *= 10;
    size_t n = 0;
    if (v < 0)
        buf[n++] = '-';
    n += put_u128(u / div, buf + n);
    buf[n++] = '.';
    uint64_t frac = (uint64_t)(u % div);
    for (unsigned k = places; k-- > 0;) {
        buf[n + k] = (char)('0' + frac % 10);
        frac /= 10;
    }
    size_t end = n + places;
    while (end > n + min_places && buf[end - 1] == '0')
        end--;
    buf[end] = '\0';
    return (int)end;
}

int txstats__format_micros(txstats__i128 v, char *buf)
{
    return put_fixed(v, 6, 2, buf);
}

int txstats_amount_format(txstats_amount_t a, char *buf, size_t len)
{
    char tmp[48];
    if (!buf)
        return TXSTATS_EINVAL;
    txstats__format_micros(a, tmp);
    size_t n = strlen(tmp);
    if (n + 1 > len) {
        if (len > 0)
            buf[0] = '\0';
        return TXSTATS_ENOBUFS;
    }
    memcpy(buf, tmp, n + 1);
    return TXSTATS_OK;
}

int txstats__parse_micros(const char *s, txstats__i128 *out)
{
    bool neg = *s == '-';
    txstats__i128 v = 0;
    int ndig = 0, nfrac = 0;
    s += neg;
    for (; is_digit(*s); s++, ndig++) {
        if (ndig >= 32)
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (ndig == 0)
        return -1;
    if (*s == '.') {
        for (s++; is_digit(*s); s++, nfrac++) {
            if (nfrac >= 6)
                return -1;
            v = v * 10 + (*s - '0');
        }
        if (nfrac == 0)
            return -1;
    }
    if (*s != '\0')
        return -1;
    for (; nfrac < 6; nfrac++)
        v *= 10;
    *out = neg ? -v : v;
    return 0;
}

/* num / den rounded HALF_UP (ties away from zero); den > 0. */
static txstats__i128 div_half_up(txstats__i128 num, txstats__i128 den)
{
    unsigned __int128 u = num < 0 ? -(unsigned __int128)num : (unsigned __int128)num;
    unsigned __int128 q = u / (unsigned __int128)den, r = u % (unsigned __int128)den;
    if (2 * r >= (unsigned __int128)den)
        q++;
    return num < 0 ? -(txstats__i128)q : (txstats__i128)q;
}

/* Micro-units to text with exactly 2 decimals, HALF_UP; zero is never negative. */
static void put_cents(txstats__i128 micros, txstats__i128 divisor, char *buf)
{
    txstats__i128 cents = div_half_up(micros, divisor * 10000);
    put_fixed(cents, 2, 2, buf);
}

int txstats_summary_text(const txstats_summary_t *s, txstats_summary_text_t *out)
{
    if (!s || !out)
        return TXSTATS_EINVAL;
    txstats__i128 sum = (txstats__i128)(((unsigned __int128)(uint64_t)s->sum_hi << 64) | s->sum_lo);
    memset(out, 0, sizeof(*out));
    out->count = s->count;
    put_cents(sum, 1, out->sum);
    put_cents(s->count ? sum : 0, s->count ? (txstats__i128)s->count : 1, out->avg);
    put_cents(s->max, 1, out->max);
    put_cents(s->min, 1, out->min);
    return TXSTATS_OK;
}

int txstats_summary_merge(txstats_summary_t *acc, const txstats_summary_t *part)
{
    if (!acc || !part)
        return TXSTATS_EINVAL;
    acc->now_ms = part->now_ms > acc->now_ms ? part->now_ms : acc->now_ms;
    if (part->count == 0)
        return TXSTATS_OK;
    if (acc->count == 0 || part->min < acc->min)
        acc->min = part->min;
    if (acc->count == 0 || part->max > acc->max)
        acc->max = part->max;
    acc->count += part->count;
    unsigned __int128 a = ((unsigned __int128)(uint64_t)acc->sum_hi << 64) | acc->sum_lo;
    unsigned __int128 b = ((unsigned __int128)(uint64_t)part->sum_hi << 64) | part->sum_lo;
    a += b; /* two's complement: the same bits as the signed sum */
    acc->sum_hi = (int64_t)(uint64_t)(a >> 64);
    acc->sum_lo = (uint64_t)a;
    return TXSTATS_OK;
}
