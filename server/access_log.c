/* SPDX-License-Identifier: MIT */
/* The access log: one line per request in --access-log-format (text, combined or json). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server.h"

/* Client-controlled text for a quoted log field: quotes, backslashes, control and non-ASCII bytes
 * escaped (\" \\ and \xHH, as nginx does; \u00HH in JSON), so one request stays one line. */
static void escape(char *out, size_t n, const char *in, bool json)
{
    size_t o = 0;
    for (; in && *in && o + 7 < n; in++) {
        unsigned char ch = (unsigned char)*in;
        if (ch == '"' || ch == '\\')
            o += (size_t)snprintf(out + o, n - o, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            o += (size_t)snprintf(out + o, n - o, json ? "\\u%04x" : "\\x%02X", ch);
        else
            out[o++] = (char)ch;
    }
    out[o] = '\0';
}

struct access {
    char remote[64], method[64], target[2100], ua[512], referer[512];
    const char *version;
};

/* "1.0", "1.1" or another DIGIT "." DIGIT version civetweb read; else NULL. */
static const char *version_of(const char *v)
{
    return v && v[0] >= '0' && v[0] <= '9' && v[1] == '.' && v[2] >= '0' && v[2] <= '9' && !v[3]
               ? v
               : NULL;
}

/* `refused`: civetweb refused the request before any handler ran, so only what its parser read
 * is there: the method and the whole target (not yet cut at '?'), or nothing. */
static void access_fields(const struct mg_connection *c, struct access *a, bool json, bool refused)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    char target[2100];
    if (refused && ri->request_method && ri->request_uri) /* the target, up to where it ends */
        snprintf(target, sizeof(target), "%.*s", (int)strcspn(ri->request_uri, " \r\n"),
                 ri->request_uri);
    else if (refused)
        snprintf(target, sizeof(target), "-");
    else
        snprintf(target, sizeof(target), "%s%s%s", ri->local_uri_raw ? ri->local_uri_raw : "-",
                 ri->query_string ? "?" : "", ri->query_string ? ri->query_string : "");
    escape(a->remote, sizeof(a->remote), ri->remote_addr, json);
    escape(a->method, sizeof(a->method), ri->request_method ? ri->request_method : "-", json);
    escape(a->target, sizeof(a->target), target, json);
    escape(a->ua, sizeof(a->ua), mg_get_header(c, "User-Agent"), json);
    escape(a->referer, sizeof(a->referer), mg_get_header(c, "Referer"), json);
    a->version = version_of(ri->http_version) ? ri->http_version : "1.1";
}

/* One line per request: `text` (time, client, request line, status, seconds), `combined` (the
 * nginx/Apache format; the body size is not known here, so it is "-") or `json`. */
static void write_line(struct srv *s, const struct access *a, int status, double seconds)
{
    int fmt = s->opt.access_log_format;
    int64_t now = srv_now_ms();
    char when[40];
    if (fmt == ACCESS_LOG_COMBINED) {
        time_t t = (time_t)(now / 1000);
        struct tm tm;
        strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", gmtime_r(&t, &tm));
        fprintf(s->access_log, "%s - - [%s] \"%s %s HTTP/%s\" %d - \"%s\" \"%s\"\n", a->remote,
                when, a->method, a->target, a->version, status, a->referer[0] ? a->referer : "-",
                a->ua[0] ? a->ua : "-");
        return;
    }
    txstats_timestamp_format(now, when, sizeof(when));
    if (fmt == ACCESS_LOG_JSON)
        fprintf(s->access_log,
                "{\"time\":\"%s\",\"remote_addr\":\"%s\",\"method\":\"%s\",\"target\":\"%s\","
                "\"protocol\":\"HTTP/%s\",\"status\":%d,\"duration_seconds\":%.6f,"
                "\"referer\":\"%s\",\"user_agent\":\"%s\"}\n",
                when, a->remote, a->method, a->target, a->version, status, seconds, a->referer,
                a->ua);
    else
        fprintf(s->access_log, "%s %s \"%s %s HTTP/%s\" %d %.6f\n", when, a->remote, a->method,
                a->target, a->version, status, seconds);
}

void srv_access_log_line(struct srv *s, const struct mg_connection *c, int status, double seconds)
{
    if (!s->access_log)
        return;
    struct access a;
    access_fields(c, &a, s->opt.access_log_format == ACCESS_LOG_JSON, false);
    write_line(s, &a, status, seconds);
}

void srv_access_log_refused(struct srv *s, const struct mg_connection *c, int status)
{
    if (!s->access_log)
        return;
    struct access a;
    access_fields(c, &a, s->opt.access_log_format == ACCESS_LOG_JSON, true);
    write_line(s, &a, status, 0.0);
}
