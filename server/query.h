/* SPDX-License-Identifier: MIT */
/* Query parameters (query.c): one decoder for every route. */
#ifndef TXSTATS_SERVER_QUERY_H
#define TXSTATS_SERVER_QUERY_H

#include <stddef.h>

/* RFC 3986 §3.4, §2.1: `query` (NULL: none) as '&'-separated name[=value] pairs, names and values
 * percent-decoded ('+' stays '+': RFC 3986 gives it no meaning). Returns 1 with the decoded value
 * of parameter `name` in `value` (cap bytes, NUL-terminated), 0 when it is absent, or -1 with a
 * message in `err`: an invalid escape ('%' not followed by two hex digits, RFC 3986 §2.1), an
 * escape decoding to a control character, a parameter other than `name` (`name` NULL: the route
 * takes none), `name` given twice, or a value longer than cap - 1. */
int srv_query_param(const char *query, const char *name, char *value, size_t cap, char *err,
                    size_t n);

/* As srv_query_param for a route that takes several parameters: `names` (NULL-terminated, at most
 * 8) are those it takes; the value of `name` (one of them, or NULL to only check the query) goes
 * to `value`. Any other parameter, or one of them given twice, is -1. */
int srv_query_get(const char *query, const char *const *names, const char *name, char *value,
                  size_t cap, char *err, size_t n);

#endif
