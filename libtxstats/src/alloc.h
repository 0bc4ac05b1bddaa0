/* SPDX-License-Identifier: MIT */
/* Internal: allocation through an instance's allocator (leaf: calls nothing of the library). */
#ifndef TXSTATS_ALLOC_H
#define TXSTATS_ALLOC_H

#include <stddef.h>

/* The allocator of txstats_config_t; NULL functions mean malloc/free. */
struct txstats__mem {
    void *(*alloc)(size_t size, void *ud);
    void (*free)(void *ptr, void *ud);
    void *ud;
};

void *txstats__alloc(const struct txstats__mem *m, size_t size);
/* Zeroed n * size bytes; NULL on overflow or failure. */
void *txstats__calloc(const struct txstats__mem *m, size_t n, size_t size);
/* Room for `n` elements of `size` bytes at *p, which holds *cap: doubles the array (copying the
 * old contents) when needed. 0, or -1 with *p unchanged. */
int txstats__reserve(const struct txstats__mem *m, void **p, size_t *cap, size_t n, size_t size);
void txstats__free(const struct txstats__mem *m, void *p); /* NULL ok */
/* A copy of the string s; NULL on failure. */
char *txstats__strdup(const struct txstats__mem *m, const char *s);

#endif
