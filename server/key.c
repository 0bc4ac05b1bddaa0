/* SPDX-License-Identifier: MIT */
/* The key of a per-key window: UTF-8 text of 1 to 128 bytes, no control characters (key.h). */
#include <stdint.h>
#include <stdio.h>

#include "key.h"

/* The length of the UTF-8 sequence at p (n bytes left), or 0 when it is not a valid one; the
 * code point in *cp. */
size_t srv_utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char b = p[0];
    size_t len = b < 0x80                 ? 1
                 : b >= 0xC2 && b <= 0xDF ? 2
                 : b >= 0xE0 && b <= 0xEF ? 3
                 : b >= 0xF0 && b <= 0xF4 ? 4
                                          : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t v = len == 1 ? b : b & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000}; /* no overlong form */
    if (v < least[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

bool srv_utf8_valid(const char *p, size_t n)
{
    uint32_t cp;
    for (size_t i = 0, len; i < n; i += len)
        if ((len = srv_utf8_seq((const unsigned char *)p + i, n - i, &cp)) == 0)
            return false;
    return true;
}

int srv_key_check(const char *k, size_t n, const char *what, char *err, size_t errlen)
{
    const char *why = NULL;
    uint32_t cp = 0;
    if (n == 0)
        why = "is empty";
    else if (n > TXSTATS_MAX_ENTITY_BYTES)
        why = "is too long";
    for (size_t i = 0, len; !why && i < n; i += len) {
        len = srv_utf8_seq((const unsigned char *)k + i, n - i, &cp);
        if (len == 0)
            why = "is not valid UTF-8";
        else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            why = cp == 0 ? "contains U+0000" : "contains a control character";
    }
    if (!why)
        return 0;
    snprintf(err, errlen, "%s %s: a key is 1 to %d bytes of UTF-8 text without control characters",
             what, why, TXSTATS_MAX_ENTITY_BYTES);
    return -1;
}
