/* SPDX-License-Identifier: MIT */
/* The Idempotency-Key request header (idempotency.c). */
#ifndef TXSTATS_SERVER_IDEMPOTENCY_H
#define TXSTATS_SERVER_IDEMPOTENCY_H

#include <stddef.h>

#include <civetweb.h>
#include <txstats/txstats.h>

/* The key of a header value, in either form clients send: the IETF HTTPAPI draft "The
 * Idempotency-Key HTTP Header Field" makes it a Structured Field string (RFC 8941 §3.3.3:
 * "abc", with \" and \\ escapes, printable ASCII 0x20-0x7E inside); Stripe's clients send the
 * bare token (abc: visible ASCII 0x21-0x7E, no quote first). Both name the key abc. 1 to
 * TXSTATS_MAX_KEY_BYTES characters. Returns 0 and key (NUL-terminated, key_len bytes), or -1
 * with a reason in err. */
int srv_parse_idempotency_key(const char *value, char *key, size_t *key_len, char *err,
                              size_t errlen);

/* The request's Idempotency-Key: 0 none, 1 found (key set), -1 invalid or sent twice (err). */
int srv_idempotency_key(const struct mg_connection *c, char *key, size_t *key_len, char *err,
                        size_t errlen);

#endif
