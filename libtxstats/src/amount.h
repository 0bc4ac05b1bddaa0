/* SPDX-License-Identifier: MIT */
/* Internal: exact decimal text of 128-bit micro-unit counts (amount.c, a leaf). */
#ifndef TXSTATS_AMOUNT_H
#define TXSTATS_AMOUNT_H

typedef __int128 txstats__i128;

/* Fixed-point text of a 128-bit count of micro-units: shortest exact, at least 2 decimals.
 * buf needs 48 bytes. Returns the length. */
int txstats__format_micros(txstats__i128 v, char *buf);
/* Parse what txstats__format_micros writes (sign, digits, '.', 1 to 6 digits). 0 or -1. */
int txstats__parse_micros(const char *s, txstats__i128 *out);

#endif
