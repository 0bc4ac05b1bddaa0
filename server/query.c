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

/* The index of `key` in names, or -1. */
static int index_of(const char *const *names, const char *key)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], key))
            return i;
    return -1;
}

static void unknown(const char *key, const char *const *names, char *err, size_t n)
{
    char list[128] = "";
    for (int i = 0; names[i]; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", names[i]);
    snprintf(err, n, "unknown query parameter '%.32s' (%s%s)", key,
             names[0] ? "only " : "this route takes none", list);
}

/* One "name[=value]" segment of `len` bytes: the index of its name in names (its value decoded
 * into `value` when it is `name`), or -1 (err). */
static int segment(const char *seg, size_t len, const char *const *names, const char *name,
                   char *value, size_t cap, char *err, size_t n)
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
    int at = index_of(names, key);
    if (at < 0) {
        unknown(key, names, err, n);
        return -1;
    }
    if (!name || strcmp(key, name) != 0)
        return at;
    const char *v = klen < len ? seg + klen + 1 : seg + len;
    int d = decode(v, (size_t)(seg + len - v), value, cap);
    if (d == -1)
        snprintf(err, n,
                 "bad query: an invalid percent-escape in '%s' (RFC 3986 §2.1: '%%' and "
                 "two hex digits, not a control character)",
                 name);
    if (d == -2)
        snprintf(err, n, "bad query: '%s' is longer than %zu bytes", name, cap - 1);
    return d < 0 ? -1 : at;
}

int srv_query_get(const char *query, const char *const *names, const char *name, char *value,
                  size_t cap, char *err, size_t n)
{
    unsigned seen = 0; /* bit i: names[i] given */
    for (const char *q = query; q && *q; q += *q == '&') {
        size_t len = strcspn(q, "&");
        if (len) {
            int at = segment(q, len, names, name, value, cap, err, n);
            if (at < 0)
                return -1;
            if (seen & 1u << at) {
                snprintf(err, n, "bad query: '%s' is given twice", names[at]);
                return -1;
            }
            seen |= 1u << at;
        }
        q += len;
    }
    int want = name ? index_of(names, name) : -1;
    return want >= 0 && (seen & 1u << want) ? 1 : 0;
}

int srv_query_param(const char *query, const char *name, char *value, size_t cap, char *err,
                    size_t n)
{
    const char *const names[] = {name, NULL};
    return srv_query_get(query, names, name, value, cap, err, n);
}
