/* SPDX-License-Identifier: MIT */
/* CRC32C (Castagnoli), with SSE4.2 where the CPU has it. A leaf. */
#include <string.h>

#include "crc32c.h"

static uint32_t crc32c_sw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t c0, const uint8_t *p, size_t n)
{
    uint64_t c = c0;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t txstats__crc32c_update(uint32_t state, const uint8_t *p, size_t n)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_hw(state, p, n);
#endif
    return crc32c_sw(state, p, n);
}

uint32_t txstats__crc32c(const uint8_t *p, size_t n)
{
    return ~txstats__crc32c_update(0xFFFFFFFFu, p, n);
}
