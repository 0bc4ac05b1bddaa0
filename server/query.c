/* SPDX-License-Identifier: MIT */
/* Query parameters: split and percent-decoded once, the same way for every route (query.h). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "query.h"

static int hex(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG. `len` bytes of `in` into `out` (cap bytes):
 * the decoded length, -1 for an invalid escape or a control character (RFC 3986 §2.1 does not
 * forbid %00, but no parameter here holds one, and a NUL would end the value early), -2 when it
 * does not fit. */
static int decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)in[i];
        if (ch == '%') {
            int hi = i + 2 < len ? hex(in[i + 1]) : -1;
            int lo = hi >= 0 ? hex(in[i + 2]) : -1;
            if (lo < 0)
                return -1;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch < 0x20 || ch == 0x7f)
            return -1;
        if (o + 1 >= cap)
            return -2;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return (int)o;
}

/* One "name[=value]" segment of `len` bytes: 1 when it is `name` (value decoded), -1 (err). */
static int segment(const char *seg, size_t len, const char *name, char *value, size_t cap,
                   char *err, size_t n)
{
    char key[64];
    size_t klen = strcspn(seg, "=&");
    klen = klen < len ? klen : len;
    int k = decode(seg, klen, key, sizeof(key));
    if (k < 0) {
        snprintf(err, n,
                 "bad query: an invalid percent-escape in a parameter name (RFC 3986 "
                 "§2.1: '%%' and two hex digits)");
        return -1;
    }
    if (!name || strcmp(key, name) != 0) {
        snprintf(err, n, "unknown query parameter '%.32s' (%s%s)", key,
                 name ? "only " : "this route takes none", name ? name : "");
        return -1;
    }
    const char *v = klen < len ? seg + klen + 1 : seg + len;
    int d = decode(v, (size_t)(seg + len - v), value, cap);
    if (d == -1)
        snprintf(err, n,
                 "bad query: an invalid percent-escape in '%s' (RFC 3986 §2.1: '%%' and "
                 "two hex digits, not a control character)",
                 name);
    if (d == -2)
        snprintf(err, n, "bad query: '%s' is longer than %zu bytes", name, cap - 1);
    return d < 0 ? -1 : 1;
}

int srv_query_param(const char *query, const char *name, char *value, size_t cap, char *err,
                    size_t n)
{
    int found = 0;
    for (const char *q = query; q && *q; q += *q == '&') {
        size_t len = strcspn(q, "&");
        if (len) {
            int r = segment(q, len, name, value, cap, err, n);
            if (r < 0)
                return -1;
            if (found++) {
                snprintf(err, n, "bad query: '%s' is given twice", name);
                return -1;
            }
        }
        q += len;
    }
    return found;
}
