/* SPDX-License-Identifier: MIT */
/* Internal: what the JSON snapshot readers (snapshot.c for version 1, image_json.c for version 2)
 * both need of a cJSON value. Header-only: no file of its own in the layers. */
#ifndef TXSTATS_JSON_UTIL_H
#define TXSTATS_JSON_UTIL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* A JSON number that is an integer in [lo, hi], exactly representable. */
static inline bool txstats__json_int(const cJSON *j, double lo, double hi, int64_t *out)
{
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi))
        return false;
    *out = (int64_t)j->valuedouble;
    return (double)*out == j->valuedouble;
}

/* 16 lowercase hex digits at p. */
static inline bool txstats__json_hex64(const char *p, uint64_t *out)
{
    *out = 0;
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        *out = *out << 4 | (uint64_t)d;
    }
    return true;
}

#endif
