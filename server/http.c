/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

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
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

int srv_reply_empty(struct mg_connection *c, int status)
{
    static const char created[] = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    static const char none[] = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
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
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s%s%s%sContent-Length: %zu\r\n\r\n",
                     status, reason(status), has_body ? "Content-Type: " : "", has_body ? type : "",
                     has_body ? "\r\n" : "", headers ? headers : "", has_body ? len : (size_t)0);
    if (n < 0 || (size_t)n >= sizeof(head))
        return 500;
    if (!has_body) {
        mg_write(c, head, (size_t)n);
        return status;
    }
    char stackbuf[4096];
    char *buf = (size_t)n + len <= sizeof(stackbuf) ? stackbuf : malloc((size_t)n + len);
    if (!buf) { /* two writes rather than none */
        mg_write(c, head, (size_t)n);
        mg_write(c, body, len);
        return status;
    }
    memcpy(buf, head, (size_t)n);
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
    for (; *in && n + 7 < cap; in++) {
        unsigned char ch = (unsigned char)*in;
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
        } else {
            out[n++] = (char)ch;
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

int srv_read_body(struct mg_connection *c, int64_t max, char **body, size_t *len)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    long long declared = ri->content_length;
    *body = NULL;
    *len = 0;
    if (declared > max)
        return 413;
    size_t cap = declared >= 0 ? (size_t)declared : 4096;
    char *buf = malloc(cap + 1);
    if (!buf)
        return 503;
    for (;;) {
        if (*len == cap) {
            if (declared >= 0)
                break;
            if ((int64_t)cap >= max + 1) { /* chunked body past the limit */
                free(buf);
                return 413;
            }
            size_t ncap = cap * 2 > (size_t)max + 1 ? (size_t)max + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                return 503;
            }
            buf = nb;
            cap = ncap;
        }
        int r = mg_read(c, buf + *len, cap - *len);
        if (r <= 0)
            break;
        *len += (size_t)r;
    }
    if (declared >= 0 && *len != (size_t)declared) {
        free(buf);
        return 400;
    }
    if ((int64_t)*len > max) {
        free(buf);
        return 413;
    }
    buf[*len] = '\0';
    *body = buf;
    return 0;
}

int srv_chunked_start(struct mg_connection *c, int status, const char *content_type)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n",
                     status, reason(status), content_type);
    return mg_write(c, head, (size_t)n) == n ? 0 : -1;
}

/* civetweb's worker threads have small stacks: nothing large lives on them. A small chunk goes out
 * in one write; a large one as frame, data and trailer (Nagle is off, so no delay). */
int srv_chunk(struct mg_connection *c, const char *data, size_t len)
{
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
