/* SPDX-License-Identifier: MIT */
#include "json.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* ---- raw text of a member's value -----------------------------------------------------------
 * cJSON keeps numbers only as doubles. The document has already been validated by cJSON, so a
 * small scanner can walk the top-level members in order and return the text of the n-th value. */

struct scan {
    const char *p, *end;
};

/* cJSON counts every byte up to 0x20 as whitespace (form feed, control characters...): so must
 * this scanner, or it would lose its place among the members cJSON accepted. */
static bool is_space(char c)
{
    return (unsigned char)c <= 0x20;
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && is_space(*s->p))
        s->p++;
}

static void skip_string(struct scan *s)
{
    for (s->p++; s->p < s->end && *s->p != '"'; s->p++)
        if (*s->p == '\\')
            s->p++;
    s->p++;
}

static bool is_delim(char c)
{
    return c == ',' || c == '}' || c == ']' || is_space(c);
}

/* Any value: a string, a container (strings inside may hold brackets), a number or literal. */
static void skip_value(struct scan *s)
{
    if (s->p < s->end && *s->p == '"') {
        skip_string(s);
        return;
    }
    if (s->p < s->end && (*s->p == '{' || *s->p == '[')) {
        int depth = 0;
        while (s->p < s->end) {
            char c = *s->p;
            if (c == '"') {
                skip_string(s);
                continue;
            }
            s->p++;
            if ((c == '{' || c == '[') && ++depth)
                continue;
            if ((c == '}' || c == ']') && --depth == 0)
                return;
        }
        return;
    }
    while (s->p < s->end && !is_delim(*s->p))
        s->p++;
}

/* Text of the value of top-level member number `index` (0-based). */
static bool member_text(const char *body, size_t len, int index, const char **text, size_t *n)
{
    struct scan s = {body, body + len};
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return false;
    s.p++;
    for (int i = 0; s.p < s.end; i++) {
        skip_ws(&s);
        skip_string(&s); /* key */
        skip_ws(&s);
        s.p++; /* ':' */
        skip_ws(&s);
        const char *start = s.p;
        skip_value(&s);
        if (i == index) {
            *text = start;
            *n = (size_t)(s.p - start);
            return *n > 0;
        }
        skip_ws(&s);
        s.p++; /* ',' */
    }
    return false;
}

static int member_index(const cJSON *root, const cJSON *item)
{
    int i = 0;
    for (const cJSON *c = root->child; c; c = c->next, i++)
        if (c == item)
            return i;
    return -1;
}

/* ---- fields --------------------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, int status, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return status;
}

static int parse_amount(const cJSON *root, const char *body, size_t len, txstats_amount_t *out,
                        char *err, size_t errlen)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "amount");
    const char *text;
    size_t n;
    if (!a || cJSON_IsNull(a))
        return fail(err, errlen, 422,
                    "missing field 'amount' (a decimal string such as \"12.34\")");
    if (cJSON_IsString(a)) {
        text = a->valuestring;
        n = strlen(text);
    } else if (cJSON_IsNumber(a)) {
        if (!member_text(body, len, member_index(root, a), &text, &n))
            return fail(err, errlen, 422, "'amount' could not be read");
    } else {
        return fail(err, errlen, 422, "'amount' must be a string or a number");
    }
    int rc = txstats_amount_parse(text, n, out);
    if (rc == TXSTATS_ERANGE)
        return fail(err, errlen, 422, "'amount' is out of range: |amount| must be below 10^12");
    if (rc != TXSTATS_OK)
        return fail(err, errlen, 422,
                    "'amount' is not a decimal number (digits, optional sign, fraction, exponent)");
    return 0;
}

/* Integer text: optional '-', 1 to 16 digits. */
static bool parse_epoch_ms(const char *t, size_t n, int64_t *out)
{
    if (n == 0)
        return false;
    size_t i = t[0] == '-';
    int64_t v = 0;
    if (n <= i || n - i > 16)
        return false;
    for (; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return false;
        v = v * 10 + (t[i] - '0');
    }
    *out = t[0] == '-' ? -v : v;
    return true;
}

static int parse_timestamp(const cJSON *root, const char *body, size_t len, int64_t *out, char *err,
                           size_t errlen)
{
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "timestamp");
    const char *text;
    size_t n;
    if (!ts || cJSON_IsNull(ts))
        return fail(err, errlen, 422,
                    "missing field 'timestamp' (RFC 3339 such as \"2018-07-17T09:59:51.312Z\")");
    if (cJSON_IsString(ts)) {
        if (txstats_timestamp_parse(ts->valuestring, strlen(ts->valuestring), out) != TXSTATS_OK)
            return fail(err, errlen, 422,
                        "'timestamp' is not a valid RFC 3339 date-time with a zone, such as "
                        "\"2018-07-17T09:59:51.312Z\"");
        return 0;
    }
    if (cJSON_IsNumber(ts)) {
        if (!member_text(body, len, member_index(root, ts), &text, &n) ||
            !parse_epoch_ms(text, n, out))
            return fail(err, errlen, 422,
                        "'timestamp' as a number must be an integer of epoch milliseconds");
        return 0;
    }
    return fail(err, errlen, 422, "'timestamp' must be an RFC 3339 string or epoch milliseconds");
}

/* Deepest nesting of [ and { outside strings. cJSON recurses once per level, and civetweb's
 * worker threads have small stacks: a body nested thousands deep must never reach it. */
static int nesting(const char *p, size_t len)
{
    int depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = ++depth > deepest ? depth : deepest;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return deepest;
}

/* A JSON string's raw text holding only printable ASCII (0x20-0x7E), escaped or not: the length
 * it decodes to, or -1. */
static long printable_length(const char *t, size_t n)
{
    long len = 0;
    for (size_t i = 1; i + 1 < n; i++, len++) {
        unsigned char c = (unsigned char)t[i];
        if (c < 0x20 || c > 0x7E)
            return -1;
        if (c != '\\')
            continue;
        c = (unsigned char)t[++i];
        unsigned v;
        if (c == 'u' && i + 4 < n && sscanf(t + i + 1, "%4x", &v) == 1 && v >= 0x20 && v <= 0x7E)
            i += 4;
        else if (c != '"' && c != '\\' && c != '/')
            return -1;
    }
    return n >= 2 && t[0] == '"' && t[n - 1] == '"' ? len : -1;
}

static void parse_key(const cJSON *root, const char *body, size_t len, struct srv_tx *out)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "idempotency_key");
    const char *text;
    size_t n;
    out->key_state = k ? -1 : 0;
    out->key_len = 0;
    if (!cJSON_IsString(k) || !member_text(body, len, member_index(root, k), &text, &n))
        return;
    long want = printable_length(text, n);
    size_t got = strlen(k->valuestring);
    if (want < 1 || want > TXSTATS_MAX_KEY_BYTES || (size_t)want != got)
        return;
    memcpy(out->key, k->valuestring, got + 1);
    out->key_len = got;
    out->key_state = 1;
}

int srv_parse_transaction(const char *body, size_t len, struct srv_tx *out, char *err,
                          size_t errlen)
{
    if (nesting(body, len) > SRV_MAX_NESTING)
        return fail(err, errlen, 400, "request body is nested too deeply (at most 32 levels)");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root)
        return fail(err, errlen, 400, "request body is not valid JSON");
    int status = 0;
    for (const char *p = end; p < body + len; p++)
        if (!is_space(*p))
            status = fail(err, errlen, 400, "request body has data after the JSON value");
    if (status == 0 && !cJSON_IsObject(root))
        status = fail(err, errlen, 400, "request body must be a JSON object");
    if (status == 0)
        status = parse_amount(root, body, len, &out->amount, err, errlen);
    if (status == 0)
        status = parse_timestamp(root, body, len, &out->timestamp_ms, err, errlen);
    if (status == 0)
        parse_key(root, body, len, out);
    cJSON_Delete(root);
    return status;
}
