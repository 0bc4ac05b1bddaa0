/* SPDX-License-Identifier: MIT */
/* The Idempotency-Key request header; see idempotency.h. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "idempotency.h"

static int bad(char *err, size_t n, const char *why)
{
    snprintf(err, n,
             "bad Idempotency-Key: %s (1 to %d printable ASCII characters, bare or as a quoted "
             "string)",
             why, TXSTATS_MAX_KEY_BYTES);
    return -1;
}

/* "...": RFC 8941 §3.3.3 sf-string. */
static int quoted(const char *v, char *key, size_t *len, char *err, size_t n)
{
    size_t k = 0;
    for (v++; *v && *v != '"'; v++) {
        if (*v == '\\') {
            v++;
            if (*v != '"' && *v != '\\')
                return bad(err, n, "only \\\" and \\\\ may be escaped in a quoted key");
        }
        if ((unsigned char)*v < 0x20 || (unsigned char)*v > 0x7E)
            return bad(err, n, "a character outside printable ASCII");
        if (k == TXSTATS_MAX_KEY_BYTES)
            return bad(err, n, "too long");
        key[k++] = *v;
    }
    if (*v != '"' || v[1] != '\0')
        return bad(err, n, "an unterminated quoted string, or text after it");
    key[k] = '\0';
    *len = k;
    return k ? 0 : bad(err, n, "empty");
}

int srv_parse_idempotency_key(const char *value, char *key, size_t *key_len, char *err,
                              size_t errlen)
{
    if (value[0] == '"')
        return quoted(value, key, key_len, err, errlen);
    size_t k = 0;
    for (const char *v = value; *v; v++) {
        if ((unsigned char)*v < 0x21 || (unsigned char)*v > 0x7E)
            return bad(err, errlen, "a space, control or non-ASCII character");
        if (k == TXSTATS_MAX_KEY_BYTES)
            return bad(err, errlen, "too long");
        key[k++] = *v;
    }
    key[k] = '\0';
    *key_len = k;
    return k ? 0 : bad(err, errlen, "empty");
}

int srv_idempotency_key(const struct mg_connection *c, char *key, size_t *key_len, char *err,
                        size_t errlen)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *value = NULL;
    for (int i = 0; i < ri->num_headers; i++) {
        if (strcasecmp(ri->http_headers[i].name, "Idempotency-Key") != 0)
            continue;
        if (value)
            return bad(err, errlen, "sent more than once");
        value = ri->http_headers[i].value;
    }
    if (!value)
        return 0;
    char trimmed[2 * TXSTATS_MAX_KEY_BYTES + 8]; /* RFC 9110 §5.5: no surrounding whitespace */
    size_t n = strlen(value);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n >= sizeof(trimmed))
        return bad(err, errlen, "too long");
    memcpy(trimmed, value, n);
    trimmed[n] = '\0';
    return srv_parse_idempotency_key(trimmed, key, key_len, err, errlen) == 0 ? 1 : -1;
}
