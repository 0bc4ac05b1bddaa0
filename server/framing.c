/* SPDX-License-Identifier: MIT */
/* Request framing (RFC 9112 §2-§7): a request head is served only when every conforming parser
 * reads the same request boundaries from it; anything else is refused and the connection closed.
 *
 * civetweb 1.15 parses the head in place (parse_http_request, parse_http_headers): it writes NUL
 * over the spaces of the request line, over every CR and LF it consumed, over each colon and over
 * spaces before a colon, and the last byte of the head. It keeps at most 64 fields and stops at the
 * first line it cannot read as a field (an obs-fold, a line starting with ':'), dropping the rest
 * of the head without an error. The pointers in mg_request_info point into that buffer, so the
 * bytes between them tell what civetweb consumed: that is what this file checks. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "framing.h"
#include "server.h"

#define verdict srv_verdict

static struct verdict refuse(int status, const char *why)
{
    return (struct verdict){status, why};
}

/* RFC 9110 §5.6.2: tchar. */
static bool is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

/* RFC 9112 §3: request-line = method SP request-target SP HTTP-version CRLF, one SP each. civetweb
 * accepts runs of whitespace there and zeroes them, so the gaps between its pointers must be one
 * byte. Returns the NUL that ends the version (the CR of the line end). */
static const char *request_line_end(const struct mg_request_info *ri, struct verdict *v)
{
    const char *m = ri->request_method, *t = ri->request_uri, *ver = ri->http_version;
    /* civetweb cuts the target at '?' (a NUL there) and points query_string after it. */
    const char *q = ri->query_string, *t_end = t + strlen(t);
    if (q && q == t_end + 1)
        t_end = q + strlen(q);
    if (!is_token(m) || t != m + strlen(m) + 1 || ver - 5 != t_end + 1)
        *v = refuse(400, "malformed request line (RFC 9112 §3: one SP between its parts)");
    return ver + strlen(ver);
}

/* RFC 9112 §5.1: field-line = field-name ":" OWS field-value OWS, no whitespace before the colon.
 * civetweb zeroes spaces before the colon and the colon itself, and skips the OWS after it, so the
 * bytes between the name's end and the value are the colon (NUL) and then spaces only. */
static bool field_syntax_ok(const struct mg_header *h)
{
    if (!is_token(h->name))
        return false;
    const char *p = h->name + strlen(h->name) + 1;
    for (; p < h->value; p++)
        if (*p != ' ' && *p != '\t')
            return false; /* a zeroed space: whitespace before the colon (MUST be 400) */
    return p == h->value;
}

/* RFC 9112 §2.2, §5.2: every line ends in CRLF (a bare LF is refused, as llhttp does), the line
 * after the request line starts a field (no leading whitespace), and no line is an obs-fold. The
 * end of line `e` (a zeroed CR, then the zeroed LF) must be followed by the next field's name. */
static struct verdict line_ends(const struct mg_request_info *ri, const char *rl_end)
{
    const char *e = rl_end;
    for (int i = 0; i < ri->num_headers; i++) {
        const char *next = ri->http_headers[i].name;
        if (next == e + 1)
            return refuse(400, "a line ends in a bare LF (RFC 9112 §2.2: CRLF)");
        if (next != e + 2)
            return refuse(400, "whitespace at the start of the first field line (RFC 9112 §2.2)");
        if (!field_syntax_ok(&ri->http_headers[i]))
            return refuse(400, "malformed field line (RFC 9112 §5.1: token \":\" OWS value; no "
                               "whitespace before the colon)");
        e = ri->http_headers[i].value + strlen(ri->http_headers[i].value);
    }
    return refuse(0, NULL);
}

/* After the last field line's CR LF (both zeroed) comes the empty line: CR, then the zeroed LF
 * that ends the head. Anything else is a line civetweb did not read: an obs-fold (RFC 9112 §5.2:
 * 400), a field beyond its 64 (RFC 6585 §5: 431), an empty name, or a head ending in a bare LF.
 * A request line with no fields is followed by four zeroed bytes (CR LF CR LF). */
static struct verdict head_end(const struct mg_request_info *ri, const char *rl_end)
{
    if (ri->num_headers == 0)
        return rl_end[1] == 0 && rl_end[2] == 0 && rl_end[3] == 0
                   ? refuse(0, NULL)
                   : refuse(400, "the head does not end in CRLF CRLF (RFC 9112 §2.1)");
    const char *last = ri->http_headers[ri->num_headers - 1].value;
    const char *t = last + strlen(last) + 2;
    if (t[0] == '\r' && t[1] == 0)
        return refuse(0, NULL);
    if (t[0] == ' ' || t[0] == '\t')
        return refuse(400, "obs-fold: a field line continued on the next line (RFC 9112 §5.2)");
    if (ri->num_headers == MG_MAX_HEADERS && is_tchar((unsigned char)t[0]))
        return refuse(431, "more than 64 header fields (RFC 6585 §5)");
    return refuse(400, "malformed header section (RFC 9112 §2.1, §5)");
}

/* The raw syntax of the head. */
static struct verdict head_syntax(const struct mg_request_info *ri)
{
    struct verdict v = refuse(0, NULL);
    const char *rl_end = request_line_end(ri, &v);
    if (v.status)
        return v;
    if (ri->num_headers > 0 && ri->http_headers[0].name == rl_end + 1)
        return refuse(400, "the request line ends in a bare LF (RFC 9112 §2.2: CRLF)");
    v = line_ends(ri, rl_end);
    return v.status ? v : head_end(ri, rl_end);
}

int srv_framing(struct mg_connection *c)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    struct verdict v = head_syntax(ri);
    if (!v.status)
        v = srv_message_length(ri);
    if (!v.status)
        return 0;
    return srv_error(c, v.status, "Connection: close\r\n", "%s", v.why);
}
