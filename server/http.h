/* SPDX-License-Identifier: MIT */
/* Replies and request bodies over civetweb (http.c). */
#ifndef TXSTATS_SERVER_HTTP_H
#define TXSTATS_SERVER_HTTP_H

#include <stdbool.h>
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
 * escaped, a byte that is not well-formed UTF-8 (RFC 3629) written as U+FFFD, so that the text
 * stays JSON (§8.1) whatever a client sent; stops before `cap` (out is NUL-terminated). Returns
 * the length written. */
size_t srv_json_escape(const char *in, char *out, size_t cap);
int srv_error(struct mg_connection *c, int status, const char *headers, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Read the whole request body: 0 and a malloc'd buffer; 413 past `max` (a declared length at once,
 * before any "100 Continue", RFC 9110 §10.1.1); 408 when the client stops sending (request
 * timeout); 400 when it closes or the chunked framing is bad (RFC 9112 §7.1). */
int srv_read_body(struct mg_connection *c, int64_t max, char **body, size_t *len);
/* The body as it arrives (POST /transactions/batch): each piece, read into buf (size bytes),
 * goes to `sink`, which returns 0 to go on or an HTTP status to stop. Returns 0 once the body was
 * read to its end, 413 past `max`, 408, 400 (as srv_read_body), or the sink's status. */
typedef int (*srv_body_sink)(void *ctx, const char *data, size_t len);
int srv_read_body_stream(struct mg_connection *c, int64_t max, char *buf, size_t size,
                         srv_body_sink sink, void *ctx);
/* Per request: srv_request_begin before the handler (HEAD: every reply is headers only, RFC 9110
 * §9.3.2); srv_request_end after it closes the connection when the body was not read to its end
 * (RFC 9112 §9.6, §6.3), since civetweb would otherwise keep it open. Replies sent while the body
 * is unread carry "Connection: close". */
void srv_request_begin(struct mg_connection *c, bool head);
void srv_request_end(struct mg_connection *c);
/* After the access log: when a response said "Connection: close", civetweb reads no further
 * request on the connection, not even one it already buffered (RFC 9112 §9.6). */
void srv_request_finish(struct mg_connection *c);
/* RFC 9112 §9.6: FIN after the response, what the client still sends discarded (up to 1 s or
 * 1 MiB), then the reading side ended so that civetweb closes the connection. */
void srv_close_lingering(int fd);
/* edge.c, civetweb's http_error callback: its own refusals (made before any handler runs) as the
 * server's JSON errors with nosniff and "Connection: close", logged and counted (0: handled). */
int srv_http_error(struct mg_connection *c, int status, const char *msg);
bool srv_body_unread(const struct mg_connection *c);
/* RFC 9110 §10.1.1: 0, or 417 (sent) for an expectation other than 100-continue. */
int srv_expectation(struct mg_connection *c);
/* coding.c, RFC 9110 §15.5.16: 0, or 415 (sent, with Accept-Encoding: identity) for request
 * content with a Content-Encoding other than identity. */
int srv_content_coding(struct mg_connection *c);
/* Chunked responses: the header, then chunks, then the end. Each is one write. */
int srv_chunked_start(struct mg_connection *c, int status, const char *content_type);
int srv_chunk(struct mg_connection *c, const char *data, size_t len);

#endif
