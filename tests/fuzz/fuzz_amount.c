/* SPDX-License-Identifier: MIT */
/* txstats_amount_parse: no crash; accepted values are in range; parse -> format -> parse is
 * the identity. */
#include <stdlib.h>
#include <string.h>

#include <txstats/txstats.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    txstats_amount_t a, b;
    if (txstats_amount_parse((const char *)data, size, &a) != TXSTATS_OK)
        return 0;
    if (a <= -TXSTATS_AMOUNT_LIMIT || a >= TXSTATS_AMOUNT_LIMIT)
        abort();
    char text[32];
    if (txstats_amount_format(a, text, sizeof(text)) != TXSTATS_OK)
        abort();
    if (txstats_amount_parse(text, strlen(text), &b) != TXSTATS_OK || a != b)
        abort();
    return 0;
}
