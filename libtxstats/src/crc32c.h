/* SPDX-License-Identifier: MIT */
/* Internal: CRC32C (Castagnoli, RFC 3720 B.4) of journal records and checkpoints. */
#ifndef TXSTATS_CRC32C_H
#define TXSTATS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t txstats__crc32c(const uint8_t *p, size_t n);
/* Incremental form: state starts at 0xFFFFFFFF; the CRC is ~state after the last part. */
uint32_t txstats__crc32c_update(uint32_t state, const uint8_t *p, size_t n);

#endif
