/* SPDX-License-Identifier: MIT */
/* The message body length of a request (RFC 9112 §6): Content-Length and Transfer-Encoding read
 * over all their field lines, not only the first one as civetweb 1.15 does (get_request), so that
 * this server and any front end agree on where the request ends. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "framing.h"

static struct srv_verdict refuse(int status, const char *why)
{
    return (struct srv_verdict){status, why};
}

/* RFC 9110 §8.6: Content-Length = 1*DIGIT; trailing OWS is not part of the value (civetweb keeps
 * it). A list ("5, 5") or a sign is not 1*DIGIT. 18 digits at most: beyond, no int64 holds it. */
static bool content_length_ok(const char *v)
{
    size_t n = strspn(v, "0123456789");
    return n > 0 && n <= 18 && v[n + strspn(v + n, " \t")] == '\0';
}

struct codings {
    int chunked;       /* how many times "chunked" appears */
    bool last_chunked; /* the final coding is chunked */
    bool other;        /* a coding other than chunked (which this server does not decode) */
    bool empty;        /* an empty list element or field value */
};

/* RFC 9112 §6.1, §7: one Transfer-Encoding field value, a comma-separated list of codings, added
 * to what the earlier lines said (the field lines form one list, RFC 9110 §5.3). */
static void add_codings(const char *v, struct codings *k)
{
    for (;;) {
        v += strspn(v, " \t");
        size_t len = strcspn(v, ",");
        size_t end = len;
        while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        bool chunked = end == 7 && strncasecmp(v, "chunked", 7) == 0;
        k->empty |= end == 0;
        k->chunked += chunked;
        k->other |= !chunked && end > 0;
        k->last_chunked = chunked;
        if (v[len] != ',')
            return;
        v += len + 1;
    }
}

/* RFC 9112 §6.1: chunked must be the final coding and appear once (else 400 and close, §6.3 (4));
 * any other coding is not implemented here (501, §6.1); HTTP/1.0 has no Transfer-Encoding (the
 * framing is faulty, §6.1). */
static struct srv_verdict transfer_codings(const struct codings *k, bool http10)
{
    if (k->empty)
        return refuse(400, "empty Transfer-Encoding list element (RFC 9112 §6.1)");
    if (!k->last_chunked)
        return refuse(400, "Transfer-Encoding whose final coding is not chunked (RFC 9112 §6.3)");
    if (k->chunked > 1)
        return refuse(400, "chunked applied more than once (RFC 9112 §6.1)");
    if (k->other)
        return refuse(501, "transfer coding not implemented; only chunked (RFC 9112 §6.1)");
    if (http10)
        return refuse(400, "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)");
    return refuse(0, NULL);
}

/* RFC 9112 §6.3 (3)-(5), §3.2: the rules over every field line of the head. */
struct srv_verdict srv_message_length(const struct mg_request_info *ri)
{
    struct codings k = {0, false, false, false};
    int te = 0, cl = 0, host = 0;
    bool cl_bad = false;
    for (int i = 0; i < ri->num_headers; i++) {
        const char *name = ri->http_headers[i].name, *v = ri->http_headers[i].value;
        if (!strcasecmp(name, "Transfer-Encoding"))
            te++, add_codings(v, &k);
        else if (!strcasecmp(name, "Content-Length"))
            cl++, cl_bad |= !content_length_ok(v);
        else if (!strcasecmp(name, "Host"))
            host++;
    }
    bool http10 = strcmp(ri->http_version, "1.0") == 0;
    if (te && cl)
        return refuse(400, "ambiguous request framing: both Content-Length and Transfer-Encoding "
                           "(RFC 9112 §6.3)");
    if (cl_bad || cl > 1)
        return refuse(400, cl_bad ? "Content-Length is not 1*DIGIT (RFC 9112 §6.3)"
                                  : "Content-Length given more than once (RFC 9112 §6.3)");
    struct srv_verdict v = te ? transfer_codings(&k, http10) : refuse(0, NULL);
    if (v.status)
        return v;
    if (host > 1 || (host == 0 && !http10))
        return refuse(400, "exactly one Host field is needed (RFC 9112 §3.2)");
    return refuse(0, NULL);
}
