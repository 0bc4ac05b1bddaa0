/* SPDX-License-Identifier: MIT */
/* Content codings of a request's content (RFC 9110 §8.4): this server decodes none. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* RFC 9110 §8.4: Content-Encoding lists the codings applied, in order, over all its field lines;
 * "identity" (§8.4.1 reserves it: no coding) is the only one this server takes. */
static bool coded(const char *v)
{
    for (;;) {
        v += strspn(v, " \t");
        size_t len = strcspn(v, ","), end = len;
        while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > 0 && !(end == 8 && !strncasecmp(v, "identity", 8)))
            return true;
        if (v[len] != ',')
            return false;
        v += len + 1;
    }
}

int srv_content_coding(struct mg_connection *c)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (!srv_body_unread(c))
        return 0;
    for (int i = 0; i < ri->num_headers; i++)
        if (!strcasecmp(ri->http_headers[i].name, "Content-Encoding") &&
            coded(ri->http_headers[i].value))
            /* RFC 9110 §15.5.16: 415 for a coding not supported; §12.5.3: Accept-Encoding in
             * the response says which are. The body is left unread: the answer closes. */
            return srv_error(c, 415, "Accept-Encoding: identity\r\n",
                             "Content-Encoding not supported: send the content unencoded "
                             "(identity) (RFC 9110 §15.5.16)");
    return 0;
}
