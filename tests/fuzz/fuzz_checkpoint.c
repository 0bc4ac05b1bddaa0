/* SPDX-License-Identifier: MIT */
/* The binary checkpoint decoder on arbitrary bytes: no crash, no leak; what it accepts encodes
 * back to the same bytes. Links the static library's internal codec (snapshot.h). */
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

struct buf {
    char *data;
    size_t len, cap;
};

static int emit(void *ctx, const void *data, size_t len)
{
    struct buf *b = ctx;
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            abort();
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct txstats__mem mem = {NULL, NULL, NULL};
    struct txstats__snap sn;
    txstats__snap_init(&sn, &mem);
    if (txstats__snap_decode_bin(&sn, (const char *)data, size) != TXSTATS_OK)
        return 0;
    struct buf out = {0};
    if (txstats__snap_encode_bin(&sn, emit, &out) != 0 || out.len != size ||
        memcmp(out.data, data, size) != 0)
        abort(); /* accepted, but not what it would write */
    free(out.data);
    txstats__snap_free(&sn);
    return 0;
}
