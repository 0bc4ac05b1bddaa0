/* SPDX-License-Identifier: MIT */
/* Strict JSON text validation (RFC 8259), run before cJSON, which is lenient. */
#ifndef TXSTATS_SERVER_JSON_CHECK_H
#define TXSTATS_SERVER_JSON_CHECK_H

#include <stddef.h>

enum { JSON_VALID = 0, JSON_INVALID = 1, JSON_TOO_DEEP = 2 };

struct json_check_error {
    size_t offset;    /* first byte at which the text stops being JSON */
    const char *what; /* static text, e.g. "a number with a leading zero" */
};

/* Whether `text` (`len` bytes, no NUL needed) is exactly one JSON text of RFC 8259 §2:
 * ws value ws, where whitespace is space, tab, LF and CR only (§2); literals are lower-case
 * true, false, null (§3); numbers follow §6 (no leading zero, no "2.", no "+1", no ".5");
 * strings follow §7 (no raw U+0000-U+001F, only the escapes of §7, \u with four hex digits);
 * UTF-8 is well formed everywhere (§8.1, RFC 3629 §4: no overlong form, no encoded surrogate,
 * nothing above U+10FFFF).
 * Where the RFC leaves room: a \u escape of a UTF-16 surrogate must be a high one followed by a
 * low one; a lone surrogate is refused (§8.2 calls its behaviour unpredictable; cJSON refuses it
 * too). A byte order mark is refused (§8.1 permits ignoring it; nothing here sends one).
 * Objects and arrays nested deeper than `max_depth` give JSON_TOO_DEEP (§9 allows the limit).
 * @return JSON_VALID, JSON_INVALID or JSON_TOO_DEEP; `err` (may be NULL) tells where and why. */
int json_check(const char *text, size_t len, int max_depth, struct json_check_error *err);

#endif
