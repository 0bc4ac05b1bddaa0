/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "guard.h"
#include "key.h"
#include "server.h"

/* The request a worker thread is serving (civetweb serves one per thread at a time). */
static _Thread_local struct {
    bool head;      /* HEAD: headers only (RFC 9110 §9.3.2) */
    bool body_read; /* the request body was read to its end */
    bool closing;   /* a response said "Connection: close" (RFC 9112 §9.6) */
} cur;

/* Every response: the content is what Content-Type says, never sniffed (a JSON error body that
 * quotes request text must not be run as HTML by a browser). */
#define NOSNIFF "X-Content-Type-Options: nosniff\r\n"

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 422:
        return "Unprocessable Entity";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

int srv_reply_empty(struct mg_connection *c, int status)
{
    static const char created[] = "HTTP/1.1 201 Created\r\n" NOSNIFF "Content-Length: 0\r\n\r\n";
    static const char none[] = "HTTP/1.1 204 No Content\r\n" NOSNIFF "Content-Length: 0\r\n\r\n";
    if (srv_body_unread(c)) /* e.g. a DELETE with a body: it says Connection: close */
        return srv_reply(c, status, NULL, NULL, 0);
    if (status == 201)
        mg_write(c, created, sizeof(created) - 1);
    else if (status == 204)
        mg_write(c, none, sizeof(none) - 1);
    else
        return srv_reply(c, status, NULL, NULL, 0);
    return status;
}

int srv_reply(struct mg_connection *c, int status, const char *headers, const char *body,
              size_t len)
{
    return srv_reply_as(c, status, "application/json", headers, body, len);
}

int srv_reply_as(struct mg_connection *c, int status, const char *type, const char *headers,
                 const char *body, size_t len)
{
    char head[1024];
    bool has_body = status != 204 && len > 0;
    bool said_close = headers && strcasestr(headers, "Connection: close");
    bool closing = srv_body_unread(c) && !(headers && strcasestr(headers, "Connection:"));
    cur.closing |= said_close || closing;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n" NOSNIFF "%s%s%s%s%sContent-Length: %zu\r\n\r\n", status,
                     reason(status), has_body ? "Content-Type: " : "", has_body ? type : "",
                     has_body ? "\r\n" : "", headers ? headers : "",
                     closing ? "Connection: close\r\n" : "", has_body ? len : (size_t)0);
    if (n < 0 || (size_t)n >= sizeof(head))
        return 500;
    if (!has_body || cur.head) { /* HEAD: the same header fields, no content */
        mg_write(c, head, (size_t)n);
        return status;
    }
    char stackbuf[4096];
    char *buf = (size_t)n + len <= sizeof(stackbuf) ? stackbuf : malloc((size_t)n + len);
    if (!buf) { /* two writes rather than none */
        mg_write(c, head, (size_t)n);
        if (len)
            mg_write(c, body, len);
        return status;
    }
    memcpy(buf, head, (size_t)n);
    if (len)
        memcpy(buf + n, body, len);
    mg_write(c, buf, (size_t)n + len);
    if (buf != stackbuf)
        free(buf);
    return status;
}

int srv_reply_json(struct mg_connection *c, int status, const char *json)
{
    return srv_reply(c, status, NULL, json, strlen(json));
}

/* JSON string content: quotes, backslashes and control characters escaped. */
size_t srv_json_escape(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)in, *end = p + strlen(in);
    uint32_t cp;
    while (*p && n + 7 < cap) {
        size_t len = srv_utf8_seq(p, (size_t)(end - p), &cp); /* key.c's decoder */
        if (len == 0) { /* a byte that is not UTF-8 (a client's, echoed): U+FFFD */
            n += (size_t)snprintf(out + n, cap - n, "\\ufffd");
            p++;
        } else if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p++;
        } else if (*p < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", *p++);
        } else {
            memcpy(out + n, p, len);
            n += len;
            p += len;
        }
    }
    out[n] = '\0';
    return n;
}

int srv_error(struct mg_connection *c, int status, const char *headers, const char *fmt, ...)
{
    char msg[512], esc[1100], body[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    srv_json_escape(msg, esc, sizeof(esc));
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", esc);
    return srv_reply(c, status, headers, body, (size_t)n);
}

/* RFC 9112 §6.3: a request has content when it declares a Content-Length above 0 or a
 * Transfer-Encoding (chunked); otherwise its length is 0. */
static bool has_content(const struct mg_connection *c)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    return ri->content_length > 0 ||
           (ri->content_length < 0 && mg_get_header(c, "Transfer-Encoding"));
}

bool srv_body_unread(const struct mg_connection *c)
{
    return !cur.body_read && has_content(c);
}

void srv_request_begin(struct mg_connection *c, bool head)
{
    (void)c;
    cur.head = head;
    cur.body_read = false;
    cur.closing = false;
}

/* RFC 9110 §10.1.1: "100-continue" is the only expectation; an HTTP/1.0 request's is ignored. */
static bool expects_continue(const struct mg_connection *c)
{
    const char *e = mg_get_header(c, "Expect");
    return e && strcmp(mg_get_request_info(c)->http_version, "1.0") != 0 &&
           strcasecmp(e, "100-continue") == 0;
}

int srv_expectation(struct mg_connection *c)
{
    const char *e = mg_get_header(c, "Expect");
    if (!e || strcmp(mg_get_request_info(c)->http_version, "1.0") == 0 ||
        strcasecmp(e, "100-continue") == 0)
        return 0;
    return srv_error(c, 417, NULL, "unsupported expectation '%.32s' (only 100-continue)", e);
}

/* mg_read until `declared` bytes (or, chunked, the last chunk), each piece to the sink: 0, an
 * HTTP status (413 past `max`, or the sink's), or -1 (a timeout, the client gone, bad framing). */
/* civetweb 1.15 takes the head's length from the first empty line in its buffer, empty lines
 * before the request line included (read_message), but parses the request after them: with
 * "\r\n\r\n" before the request line it hands out the request's own head as its body, and then
 * frames the next request inside the real body. Such a body starts with optional whitespace and
 * the method that civetweb ended with a NUL; no JSON or NDJSON body does (RFC 9112 §2.2 lets a
 * server ignore empty lines before a request, not count them as one). */
static bool head_as_body(const struct mg_connection *c, const char *p, size_t n)
{
    const char *m = mg_get_request_info(c)->request_method;
    size_t ml = strlen(m) + 1, i = 0;
    while (i < n && p[i] && strchr(" \t\r\n\v\f", p[i]))
        i++;
    return n - i >= ml && memcmp(p + i, m, ml) == 0;
}

static int pump(struct mg_connection *c, int64_t max, long long declared, char *buf, size_t size,
                srv_body_sink sink, void *ctx)
{
    int64_t got = 0;
    while (declared < 0 || got < declared) {
        size_t want =
            declared < 0 || (int64_t)size < declared - got ? size : (size_t)(declared - got);
        int r = mg_read(c, buf, want);
        if (r == 0 && declared < 0)
            return 0; /* the last chunk */
        if (r <= 0)   /* a timeout (guard.c), the client gone, or bad chunked framing */
            return -1;
        if (got == 0 && head_as_body(c, buf, (size_t)r))
            return -2;
        if ((got += r) > max)
            return 413;
        int st = sink(ctx, buf, (size_t)r);
        if (st != 0)
            return st;
    }
    return 0;
}

int srv_read_body_stream(struct mg_connection *c, int64_t max, char *buf, size_t size,
                         srv_body_sink sink, void *ctx)
{
    long long declared = mg_get_request_info(c)->content_length;
    if (declared > max) /* before any 100 Continue: the final status at once */
        return 413;
    if (expects_continue(c)) {
        static const char go[] = "HTTP/1.1 100 Continue\r\n\r\n";
        mg_write(c, go, sizeof(go) - 1);
    }
    struct srv *s = mg_get_user_data(mg_get_context(c));
    int64_t t0 = srv_now_ms();
    srv_guard_body(c, true);
    int st = pump(c, max, declared, buf, size, sink, ctx);
    srv_guard_body(c, false);
    if (st == -1) /* RFC 9110 §15.5.9: 408 when the request timeout ran out */
        st = srv_now_ms() - t0 >= s->opt.request_timeout_ms - 100 ? 408 : 400;
    if (st == -2) /* the head read as its own body: the framing is not civetweb's to trust */
        st = 400;
    if (st == 0)
        cur.body_read = true;
    return st;
}

/* The whole body in one growing buffer. */
struct whole {
    char *buf;
    size_t len, cap;
};

static int append(void *ctx, const char *data, size_t len)
{
    struct whole *w = ctx;
    if (w->len + len + 1 > w->cap) {
        size_t cap = (w->len + len + 1) * 2;
        char *nb = realloc(w->buf, cap);
        if (!nb)
            return 503;
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
    return 0;
}

int srv_read_body(struct mg_connection *c, int64_t max, char **body, size_t *len)
{
    long long declared = mg_get_request_info(c)->content_length;
    struct whole w = {NULL, 0, 0};
    char chunk[4096];
    *body = NULL;
    *len = 0;
    if (declared >= 0 && declared <= max) { /* a declared length: one allocation */
        w.cap = (size_t)declared + 1;
        if (!(w.buf = malloc(w.cap)))
            return 503;
    }
    int st = srv_read_body_stream(c, max, chunk, sizeof(chunk), append, &w);
    if (st == 0 && !w.buf)
        st = append(&w, "", 0);
    if (st != 0) {
        free(w.buf);
        return st;
    }
    w.buf[w.len] = '\0';
    *body = w.buf;
    *len = w.len;
    return 0;
}

/* RFC 9112 §9.6: close in stages, so the client can read the response before a reset: send FIN
 * after the response, discard what the client still sends (up to 1 s or 1 MiB), then end the
 * reading side so that civetweb sees the end of the stream and closes the connection. */
void srv_close_lingering(int fd)
{
    char junk[16384];
    size_t drained = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    shutdown(fd, SHUT_WR);
    for (int64_t left = 1000; left > 0 && drained < (1u << 20);) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
        if (n <= 0)
            break;
        drained += (size_t)n;
        clock_gettime(CLOCK_MONOTONIC, &t);
        left = 1000 - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
    }
    shutdown(fd, SHUT_RD);
}

void srv_request_end(struct mg_connection *c)
{
    if (!srv_body_unread(c) && !cur.closing)
        return;
    cur.closing = true;
    int fd = srv_guard_fd(c);
    if (fd >= 0)
        srv_close_lingering(fd);
}

/* civetweb 1.15 decides after the handler whether to read another request on the connection
 * (should_keep_alive): from the request's own "Connection" field and its HTTP version, never from
 * the response, and it then parses whatever it had already buffered behind this request, even
 * after the socket's reading side was shut down. The request's field table lives in the
 * connection, not in the read-only buffer the const of mg_get_request_info suggests: its first
 * entry is made to say "Connection: close", and civetweb ends the connection (RFC 9112 §9.6: no
 * further request is processed, however many bytes were already read). Called last, once
 * nothing reads the request's fields any more. */
void srv_request_finish(struct mg_connection *c)
{
    if (!cur.closing)
        return;
    struct mg_request_info *ri = (struct mg_request_info *)(uintptr_t)mg_get_request_info(c);
    ri->http_headers[0].name = "Connection";
    ri->http_headers[0].value = "close";
    if (ri->num_headers < 1)
        ri->num_headers = 1;
}

int srv_chunked_start(struct mg_connection *c, int status, const char *content_type)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n" NOSNIFF
                     "Content-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n",
                     status, reason(status), content_type);
    return mg_write(c, head, (size_t)n) == n ? 0 : -1;
}

/* civetweb's worker threads have small stacks: nothing large lives on them. A small chunk goes out
 * in one write; a large one as frame, data and trailer (Nagle is off, so no delay). */
int srv_chunk(struct mg_connection *c, const char *data, size_t len)
{
    if (cur.head)
        return -1; /* HEAD: no content; the producer stops here */
    char buf[4096];
    int n = snprintf(buf, sizeof(buf), "%zx\r\n", len);
    if (len + (size_t)n + 2 <= sizeof(buf)) {
        memcpy(buf + n, data, len);
        memcpy(buf + n + len, "\r\n", 2);
        size_t total = (size_t)n + len + 2;
        return mg_write(c, buf, total) == (int)total ? 0 : -1;
    }
    if (mg_write(c, buf, (size_t)n) != n || mg_write(c, data, len) != (int)len)
        return -1;
    return mg_write(c, "\r\n", 2) == 2 ? 0 : -1;
}
