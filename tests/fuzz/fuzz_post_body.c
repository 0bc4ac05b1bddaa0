/* SPDX-License-Identifier: MIT */
/* The server's POST /transactions body parser (server/json.c), exactly as the server runs it. */
#include <stdlib.h>
#include <string.h>

#include "json.h"

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
    return 0;
}
