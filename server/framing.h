/* SPDX-License-Identifier: MIT */
/* Request framing checks (framing.c: the head's syntax; length.c: the message body length). */
#ifndef TXSTATS_SERVER_FRAMING_H
#define TXSTATS_SERVER_FRAMING_H

#include <civetweb.h>

/* A check's outcome: status 0 (acceptable), or the status to answer and why (a constant string:
 * no request byte is ever echoed). */
struct srv_verdict {
    int status;
    const char *why;
};

/* RFC 9112 §6.1-§6.3, RFC 9110 §7.2: Content-Length, Transfer-Encoding and Host over all their
 * field lines. */
struct srv_verdict srv_message_length(const struct mg_request_info *ri);

/* framing.c: 0 when the request's head frames the same way for every RFC 9112 parser; else the
 * refusal was sent (400, 431 or 501, "Connection: close") and the connection will be closed. */
int srv_framing(struct mg_connection *c);

#endif
