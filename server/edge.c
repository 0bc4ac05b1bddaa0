/* SPDX-License-Identifier: MIT */
/* civetweb's own refusals: the requests civetweb 1.15 refuses before any handler runs
 * (get_request, process_new_connection), answered through its http_error callback as this
 * server's JSON errors, with the status RFC 9110/9112 gives, "Connection: close" (civetweb has
 * not framed the request, so nothing after it can be trusted), an access-log line and a count.
 *
 * civetweb tells the callback only a status (400, 411, 413, 505) and a text; which rule failed is
 * read from what its parser left in mg_request_info (parse_http_request fills the method, target
 * and version before it checks the method, and the fields before get_request reads their
 * framing) and, on a connection's first request, from how many bytes it consumed from the socket.
 */
#define _GNU_SOURCE
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "framing.h"
#include "guard.h"
#include "server.h"

/* Whether the worker's connection has finished a request (set without a system call: request
 * ends are the hot path, refusals are not). */
static _Thread_local bool served_before;

/* Bytes civetweb has read from the socket: received by the kernel minus those still queued. */
static long long consumed(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    int queued = 0;
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received) ||
        ioctl(fd, FIONREAD, &queued) != 0)
        return -1;
    return (long long)ti.tcpi_bytes_received - queued;
}

void srv_edge_open(void)
{
    served_before = false;
}

void srv_edge_request_end(const struct mg_connection *c)
{
    (void)c;
    served_before = true;
}

/* The methods civetweb 1.15 parses (its http_methods table); any other is refused as a 400. */
static bool civetweb_knows(const char *m)
{
    static const char *const known[] = {"GET",     "POST",    "PUT",       "DELETE",   "HEAD",
                                        "OPTIONS", "CONNECT", "PATCH",     "PROPFIND", "MKCOL",
                                        "LOCK",    "UNLOCK",  "PROPPATCH", "REPORT"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(m, known[i]))
            return true;
    return false;
}

/* RFC 9110 §9.1: method names are case-sensitive; a method this server does not implement
 * (TRACE, "get", any other name civetweb refuses) is a 501 (§15.6.2). civetweb left the method,
 * target and version in place and moved the version past "HTTP/": the method check failed. */
static bool method_refused(const struct mg_request_info *ri)
{
    return ri->request_method && ri->request_uri && ri->http_version &&
           strncmp(ri->http_version, "HTTP/", 5) != 0 && !civetweb_knows(ri->request_method);
}

/* The status and reason for civetweb's refusal `status`. */
static struct srv_verdict classify(struct mg_connection *c, int status)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (status == 505)
        return (struct srv_verdict){505, "HTTP version not supported (only HTTP/1.0 and 1.1)"};
    if (method_refused(ri))
        return (struct srv_verdict){501, "method not implemented; methods are case-sensitive: "
                                         "GET, HEAD, POST, DELETE, OPTIONS (RFC 9110 §9.1)"};
    if (ri->request_method && ri->num_headers > 0) { /* parsed: the framing fields failed */
        struct srv_verdict v = srv_message_length(ri);
        if (v.status)
            return v;
    }
    /* civetweb's 413: its 16 KiB buffer filled before the head ended; some heads that long it
     * answers 400: told apart by what it read, on a connection's first request only (after one,
     * the bytes of the earlier requests count too, and a 400 is given). */
    if (status == 413 ||
        (!ri->request_method && !served_before && consumed(srv_guard_fd(c)) >= 16384))
        return (struct srv_verdict){431, "request head larger than 16 KiB (RFC 6585 §5)"};
    if (status == 411)
        return (struct srv_verdict){400, "Content-Length is not 1*DIGIT (RFC 9112 §6.3)"};
    if (!ri->request_method)
        return (struct srv_verdict){400, "malformed request head: a control character "
                                         "(HTAB included, which civetweb 1.15 refuses even in a "
                                         "field value) or DEL in it (RFC 9112 §2.2, §5)"};
    return (struct srv_verdict){400, "malformed request line (RFC 9112 §3): a byte "
                                     "outside VCHAR in the target, or a missing part"};
}

static bool ri_is_head(struct mg_connection *c)
{
    const char *m = mg_get_request_info(c)->request_method;
    return m && !strcmp(m, "HEAD");
}

int srv_http_error(struct mg_connection *c, int status, const char *msg)
{
    (void)msg; /* may quote the request */
    struct srv *s = mg_get_user_data(mg_get_context(c));
    struct srv_verdict v = classify(c, status);
    /* HEAD: the same header fields, no content (RFC 9110 §9.3.2), when civetweb read the method */
    srv_request_begin(c, ri_is_head(c));
    srv_error(c, v.status, "Connection: close\r\n", "%s", v.why);
    srv_count_request(&s->counters, ROUTE_OTHER, v.status, 0);
    srv_access_log_refused(s, c, v.status);
    int fd = srv_guard_fd(c);
    if (fd >= 0)
        srv_close_lingering(fd);
    return 0;
}
