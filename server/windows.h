/* SPDX-License-Identifier: MIT */
/*
 * The windows of --window-ms over HTTP (windows.c): the `window` query parameter every statistics
 * route takes, and GET /statistics/windows, which lists them:
 * {"default":"1m","windows":[{"name":"1m","ms":60000},{"name":"1h","ms":3600000}]}, in the
 * order of --window-ms (the first is the default).
 */
#ifndef TXSTATS_SERVER_WINDOWS_H
#define TXSTATS_SERVER_WINDOWS_H

#include <stddef.h>

#include "server.h"

/* The span `query`'s `window` names (written as in --window-ms, any unit: spans.h), 0 (the
 * default) without one. `names` are the parameters the route takes (query.h), "window" among
 * them. 0 with *span, or -1 with the 400's message in err. */
int srv_window_of(const struct srv *s, const char *query, const char *const *names, unsigned *span,
                  char *err, size_t n);

/* GET /statistics/windows */
int srv_get_windows(struct srv *s, struct mg_connection *c);

#endif
