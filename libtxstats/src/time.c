/* SPDX-License-Identifier: MIT */
/* RFC 3339 timestamps <-> milliseconds since the Unix epoch (proleptic Gregorian, UTC). */
#include <stdbool.h>

#include "txstats/txstats.h"

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int64_t m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* Exactly `n` digits at s[*i]. */
static bool digits(const char *s, size_t len, size_t *i, int n, int64_t *out)
{
    *out = 0;
    for (int k = 0; k < n; k++, (*i)++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return false;
        *out = *out * 10 + (s[*i] - '0');
    }
    return true;
}

static bool expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return false;
    (*i)++;
    return true;
}

/* ".ddddddddd" (1 to 9 digits), truncated to milliseconds; absent is 0. */
static bool fraction(const char *s, size_t len, size_t *i, int64_t *ms)
{
    *ms = 0;
    if (*i >= len || s[*i] != '.')
        return true;
    (*i)++;
    int n = 0;
    for (; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++, n++) {
        if (n < 3)
            *ms = *ms * 10 + (s[*i] - '0');
    }
    if (n == 0 || n > 9)
        return false;
    for (; n < 3; n++)
        *ms *= 10;
    return true;
}

/* "Z", "z" or "+hh:mm" / "-hh:mm"; the offset in minutes east of UTC. */
static bool zone(const char *s, size_t len, size_t *i, int64_t *minutes)
{
    int64_t hh, mm;
    *minutes = 0;
    if (*i < len && (s[*i] == 'Z' || s[*i] == 'z')) {
        (*i)++;
        return true;
    }
    if (*i >= len || (s[*i] != '+' && s[*i] != '-'))
        return false;
    bool neg = s[(*i)++] == '-';
    if (!digits(s, len, i, 2, &hh) || !expect(s, len, i, ':') || !digits(s, len, i, 2, &mm) ||
        hh > 23 || mm > 59)
        return false;
    *minutes = (neg ? -1 : 1) * (hh * 60 + mm);
    return true;
}

/* RFC 3339 §5.6: "T" (or "t"), or a space as the NOTE there permits. */
static bool date_time_separator(const char *s, size_t len, size_t *i)
{
    if (*i >= len || (s[*i] != 'T' && s[*i] != 't' && s[*i] != ' '))
        return false;
    (*i)++;
    return true;
}

/* RFC 3339 §5.7: second 60 exists only as a leap second, i.e. at 23:59:60 UTC (whatever the
 * offset says locally). It is counted as the last millisecond of 23:59:59 so that the time line
 * stays monotonic. Which days really had one is not checked: no table is kept (§5.7 leaves that
 * to the application). Returns false for a second 60 at any other time. */
static bool leap_second(int64_t *secs, int64_t *ms)
{
    int64_t at59 = *secs - 1; /* the same instant with second 59 */
    if (((at59 % 86400) + 86400) % 86400 != 86399)
        return false;
    *secs = at59;
    *ms = 999;
    return true;
}

int txstats_timestamp_parse(const char *s, size_t len, int64_t *out_ms)
{
    int64_t y, mo, d, h, mi, se, ms, off;
    size_t i = 0;
    if (!s || !out_ms)
        return TXSTATS_EINVAL;
    bool ok = digits(s, len, &i, 4, &y) && expect(s, len, &i, '-') && digits(s, len, &i, 2, &mo) &&
              expect(s, len, &i, '-') && digits(s, len, &i, 2, &d);
    ok = ok && date_time_separator(s, len, &i);
    ok = ok && digits(s, len, &i, 2, &h) && expect(s, len, &i, ':') && digits(s, len, &i, 2, &mi) &&
         expect(s, len, &i, ':') && digits(s, len, &i, 2, &se);
    ok = ok && fraction(s, len, &i, &ms) && zone(s, len, &i, &off) && i == len;
    if (!ok || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        se > 60)
        return TXSTATS_EINVAL;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off * 60;
    if (se == 60 && !leap_second(&secs, &ms))
        return TXSTATS_EINVAL;
    *out_ms = secs * 1000 + ms;
    return TXSTATS_OK;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int txstats_timestamp_format(int64_t ms, char *buf, size_t len)
{
    if (!buf)
        return TXSTATS_EINVAL;
    if (len > 0)
        buf[0] = '\0';
    int64_t days = floor_div(ms, 86400000), rem = ms - days * 86400000;
    int64_t y, m, d;
    if (days < days_from_civil(0, 1, 1) || days > days_from_civil(9999, 12, 31))
        return TXSTATS_ERANGE;
    if (len < 25)
        return TXSTATS_ENOBUFS;
    civil_from_days(days, &y, &m, &d);
    int64_t f[7] = {y, m, d, rem / 3600000, rem / 60000 % 60, rem / 1000 % 60, rem % 1000};
    static const int width[7] = {4, 2, 2, 2, 2, 2, 3};
    static const char sep[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
    size_t n = 0;
    for (int k = 0; k < 7; k++) {
        for (int w = width[k]; w-- > 0;) {
            buf[n + (size_t)w] = (char)('0' + f[k] % 10);
            f[k] /= 10;
        }
        n += (size_t)width[k];
        buf[n++] = sep[k];
    }
    buf[n] = '\0';
    return TXSTATS_OK;
}
