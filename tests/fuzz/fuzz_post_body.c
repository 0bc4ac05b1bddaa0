/* SPDX-License-Identifier: MIT */
/* The server's POST /transactions body parser (server/json.c), exactly as the server runs it. */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "key.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct srv_tx tx;
    char err[256];
    int st = srv_parse_transaction((const char *)data, size, &tx, err, sizeof(err));
    if (st != 0 && st != 400 && st != 422)
        abort();
    if (st != 0 && (err[0] == '\0' || strlen(err) >= sizeof(err)))
        abort();
    if (st == 0 && (tx.amount <= -TXSTATS_AMOUNT_LIMIT || tx.amount >= TXSTATS_AMOUNT_LIMIT))
        abort();
    /* an accepted "key" is a valid key (key.h): never empty, never too long */
    if (st == 0 && tx.entity_len > 0 &&
        srv_key_check(tx.entity, tx.entity_len, "key", err, sizeof(err)) != 0)
        abort();
    if (st == 0 && tx.entity_len > TXSTATS_MAX_ENTITY_BYTES)
        abort();
    return 0;
}
