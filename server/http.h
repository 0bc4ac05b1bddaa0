/* SPDX-License-Identifier: MIT */
/* Replies and request bodies over civetweb (http.c). */
#ifndef TXSTATS_SERVER_HTTP_H
#define TXSTATS_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <civetweb.h>

struct srv;

/* http.c: every response is built in one buffer and sent with one write, with Content-Length
 * (or chunked framing), so keep-alive works and Nagle never delays a reply. */
int srv_reply(struct mg_connection *c, int status, const char *headers, const char *body,
              size_t len);
int srv_reply_as(struct mg_connection *c, int status, const char *type, const char *headers,
                 const char *body, size_t len);
/* 201 or 204 with no body: a constant, one write. */
int srv_reply_empty(struct mg_connection *c, int status);
int srv_reply_json(struct mg_connection *c, int status, const char *json);
/* `in` as the inside of a JSON string (RFC 8259 §7): quote, backslash and control characters
 * escaped; stops before `cap` (out is NUL-terminated). Returns the length written. */
size_t srv_json_escape(const char *in, char *out, size_t cap);
int srv_error(struct mg_connection *c, int status, const char *headers, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Read the whole request body: 0 and a malloc'd buffer; 413 past `max`; 400 on a short read. */
int srv_read_body(struct mg_connection *c, int64_t max, char **body, size_t *len);
/* Chunked responses: the header, then chunks, then the end. Each is one write. */
int srv_chunked_start(struct mg_connection *c, int status, const char *content_type);
int srv_chunk(struct mg_connection *c, const char *data, size_t len);

#endif
