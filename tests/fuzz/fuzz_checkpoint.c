/* SPDX-License-Identifier: MIT */
/* The decoder of libtxstats 0.x binary checkpoints (TXCKPT01) on arbitrary bytes: no crash, no
 * leak; what it accepts becomes an image that the image format's own record parser walks to its
 * end. Links the static library's internal codec (snapshot.h, image.h). */
#include <stdlib.h>
#include <string.h>

#include "image.h"

#include "snapshot.h"

/* Every record of every block parses. */
static void walk(const uint8_t *img, size_t len)
{
    struct txstats__img_in in;
    const uint8_t *p;
    size_t n;
    int r;
    if (txstats__img_in_mem(&in, img, len) != TXSTATS_OK)
        abort();
    while ((r = txstats__img_block(&in, &p, &n)) == 1) {
        struct txstats__img_rec rec;
        const uint8_t *end = p + n;
        int k;
        while ((k = txstats__img_next(&p, end, &rec)) == 1)
            ;
        if (k < 0)
            abort();
    }
    if (r != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct txstats__mem mem = {NULL, NULL, NULL};
    struct txstats__snap sn;
    txstats__snap_init(&sn, &mem);
    if (txstats__snap_decode_bin(&sn, (const char *)data, size) != TXSTATS_OK)
        return 0;
    uint8_t *img;
    size_t len;
    uint64_t approx;
    if (txstats__snap_to_image(&sn, 2, &img, &len, &approx) != TXSTATS_OK)
        abort();
    walk(img, len);
    free(img);
    txstats__snap_free(&sn);
    return 0;
}
