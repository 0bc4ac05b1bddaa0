/* SPDX-License-Identifier: MIT */
/* txstats_timestamp_parse: no crash; an accepted instant formats and parses back to itself. */
#include <stdlib.h>
#include <string.h>

#include <txstats/txstats.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    int64_t ms, back;
    if (txstats_timestamp_parse((const char *)data, size, &ms) != TXSTATS_OK)
        return 0;
    char text[32];
    int rc = txstats_timestamp_format(ms, text, sizeof(text));
    if (rc == TXSTATS_ERANGE) /* an offset moved it out of 0000-9999 */
        return 0;
    if (rc != TXSTATS_OK || txstats_timestamp_parse(text, strlen(text), &back) != TXSTATS_OK ||
        back != ms)
        abort();
    return 0;
}
