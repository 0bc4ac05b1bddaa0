/* SPDX-License-Identifier: MIT */
/* Allocation through an instance's allocator. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

void *txstats__alloc(const struct txstats__mem *m, size_t size)
{
    return m->alloc ? m->alloc(size, m->ud) : malloc(size);
}

void *txstats__calloc(const struct txstats__mem *m, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    if (!m->alloc)
        return calloc(n, size); /* large blocks come as untouched zero pages: no RSS until used */
    void *p = txstats__alloc(m, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

int txstats__reserve(const struct txstats__mem *m, void **p, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return 0;
    size_t want = *cap ? *cap : 16;
    while (want < n) {
        if (want > SIZE_MAX / 2)
            return -1;
        want *= 2;
    }
    if (want > SIZE_MAX / size)
        return -1;
    void *q = txstats__alloc(m, want * size);
    if (!q)
        return -1;
    if (*p)
        memcpy(q, *p, *cap * size);
    txstats__free(m, *p);
    *p = q;
    *cap = want;
    return 0;
}

void txstats__free(const struct txstats__mem *m, void *p)
{
    if (!p)
        return;
    if (m->free)
        m->free(p, m->ud);
    else
        free(p);
}

char *txstats__strdup(const struct txstats__mem *m, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = txstats__alloc(m, n);
    if (d)
        memcpy(d, s, n);
    return d;
}
