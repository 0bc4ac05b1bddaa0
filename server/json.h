/* SPDX-License-Identifier: MIT */
/* The POST /transactions body: JSON text -> a validated transaction. */
#ifndef TXSTATS_SERVER_JSON_H
#define TXSTATS_SERVER_JSON_H

#include <stddef.h>

#include <txstats/txstats.h>

/* Deepest JSON nesting a body may have (400 beyond). */
#define SRV_MAX_NESTING 32

struct srv_tx {
    txstats_amount_t amount;
    int64_t timestamp_ms;
    /* The "idempotency_key" member (POST /transactions/batch lines): 0 absent, 1 present (in
     * key, key_len bytes: 1 to 255 printable ASCII characters), -1 present but not such a string.
     */
    int key_state;
    size_t key_len;
    char key[TXSTATS_MAX_KEY_BYTES + 1];
    /* The "key" member (key.h): the per-key window it also counts in; entity_len 0: none. */
    size_t entity_len;
    char entity[TXSTATS_MAX_ENTITY_BYTES];
};

/* Parse and validate a body. Returns 0 (ok), 400 (not JSON, or JSON that is not an object) or
 * 422 (missing, null or wrong-typed field, bad amount, bad timestamp, a "key" that is not a valid
 * key: not a string, empty, too long, a control character); `err` receives a reason a
 * person can act on. Unknown fields are ignored; with duplicate keys the first wins. A JSON number
 * is taken from its own text, never through a double. */
int srv_parse_transaction(const char *body, size_t len, struct srv_tx *out, char *err,
                          size_t errlen);

#endif
