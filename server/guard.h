/* SPDX-License-Identifier: MIT */
/* Held connections never starve the rest: a watchdog over civetweb's worker threads. */
#ifndef TXSTATS_SERVER_GUARD_H
#define TXSTATS_SERVER_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include <civetweb.h>

struct srv;

/* What a connection's worker is doing. */
enum srv_phase { PHASE_HEADER, PHASE_BODY, PHASE_BUSY };

/* civetweb 1.15 gives each connection a worker thread for as long as it is open, and its only
 * limit on the request head is request_timeout_ms (keep_alive_timeout_ms after the first request),
 * counted per connection. Connections that trickle header bytes therefore hold every worker for
 * that long and nobody else is served. The guard tracks each connection's phase (through
 * civetweb's init_connection, begin_request, end_request and connection_close callbacks) and a
 * watchdog thread, when fewer than `reserve` workers are free, shuts down the sockets of the
 * connections that have waited longest for their request head or body (at least
 * SRV_GUARD_MIN_AGE_MS), so that their workers return to the pool. RFC 9112 §9.5 lets a server
 * close an idle connection at any time; RFC 9110 §15.5.9 (408) is what such a client sees.
 * Returns 0, or -1 (out of memory, no thread). */
int srv_guard_start(struct srv *s);
/* After mg_stop: ends the watchdog and frees the guard. */
void srv_guard_stop(struct srv *s);

#define SRV_GUARD_MIN_AGE_MS 500

struct srv_options;
/* Streams hold a worker each for minutes and are never dropped: they may take at most half of
 * the workers, so that the other half (and the guard's reserve in it) serves everything else.
 * --max-streams -1 (the default) becomes min(16, threads/2). Returns 0, or 2 after printing why
 * (an explicit --max-streams above threads/2). */
int srv_guard_streams(struct srv_options *o);

/* civetweb callbacks (see struct mg_callbacks). */
int srv_guard_open(const struct mg_connection *c, void **conn_data);
void srv_guard_close(const struct mg_connection *c);
int srv_guard_begin(struct mg_connection *c);
void srv_guard_end(const struct mg_connection *c, int status);

/* The handler reads (true) or has finished reading (false) the request body. */
void srv_guard_body(const struct mg_connection *c, bool reading);
/* The connection's socket, or -1. */
int srv_guard_fd(const struct mg_connection *c);
/* Connections dropped by the watchdog since start. */
uint64_t srv_guard_dropped(const struct srv *s);

#endif
