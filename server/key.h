/* SPDX-License-Identifier: MIT */
/*
 * The key of a per-key window (key.c): the "key" member of a POST body or batch line and the
 * `key` parameter of GET /statistics. The server passes the library UTF-8 text: 1 to
 * TXSTATS_MAX_ENTITY_BYTES bytes of valid UTF-8 (RFC 3629: no overlong forms, no surrogates),
 * without control characters (U+0000-U+001F, U+007F-U+009F): a key must be sayable in a query
 * string, where control characters are refused on every route, and none of them belongs in a
 * card, account, merchant or IP address; U+0000 would also end cJSON's copy of the string.
 */
#ifndef TXSTATS_SERVER_KEY_H
#define TXSTATS_SERVER_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <txstats/txstats.h>

/* A transaction refused with TXSTATS_ELIMIT (503 with Retry-After). Short enough for a batch
 * line's rejection (121 bytes) whole. */
#define SRV_KEY_LIMIT_MESSAGE                                                                      \
    "transaction not recorded: --max-active-keys keys are active and this key is new; retry "      \
    "once keys leave the window"

/* The length of the well-formed UTF-8 sequence (RFC 3629 §4) at p, of at most n bytes, its code
 * point in *cp; 0 when there is none. */
size_t srv_utf8_seq(const unsigned char *p, size_t n, uint32_t *cp);
/* Whether `n` bytes at `p` are valid UTF-8 (RFC 3629 §4). */
bool srv_utf8_valid(const char *p, size_t n);

/* 0 when `n` bytes at `k` are a valid key; else -1 with a reason naming `what` ("'key'") in err. */
int srv_key_check(const char *k, size_t n, const char *what, char *err, size_t errlen);

#endif
