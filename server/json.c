/* SPDX-License-Identifier: MIT */
#include "json.h"
#include "json_check.h"
#include "key.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- raw text of a member's value -----------------------------------------------------------
 * cJSON keeps numbers only as doubles. The document has already been validated strictly
 * (json_check.c) and parsed by cJSON, so a small scanner can walk the top-level members in order
 * and return the text of the n-th value. */

struct scan {
    const char *p, *end;
};

/* RFC 8259 §2: the only whitespace json_check lets through. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
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

/* Whether a string token (quotes included) decodes to a control character: C0 (U+0000-U+001F),
 * DEL or C1 (U+007F-U+009F), escaped (\u0000, \n...) or raw (DEL, C1 in UTF-8). RFC 8259 §7 lets
 * a string hold any of them, but none belongs in an amount or a timestamp, and cJSON's valuestring
 * would silently end at a U+0000. */
static bool has_control(const char *tok, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)tok[i];
        if (ch == 0x7f || (ch == 0xc2 && i + 1 < n && (unsigned char)tok[i + 1] <= 0x9f))
            return true;
        if (ch != '\\' || ++i >= n)
            continue;
        if (tok[i] && strchr("bfnrt", tok[i]))
            return true;
        if (tok[i] == 'u' && i + 4 < n) {
            char hex[5] = {tok[i + 1], tok[i + 2], tok[i + 3], tok[i + 4], 0};
            unsigned long u = strtoul(hex, NULL, 16);
            if (u < 0x20 || (u >= 0x7f && u <= 0x9f))
                return true;
        }
    }
    return false;
}

/* 422 when the string member `item` holds a control character (see has_control). */
static int control_check(const cJSON *root, const cJSON *item, const char *body, size_t len,
                         const char *name, char *err, size_t errlen)
{
    const char *tok;
    size_t n;
    if (!member_text(body, len, member_index(root, item), &tok, &n) || !has_control(tok, n))
        return 0;
    snprintf(err, errlen, "'%s' contains a control character (such as \\u0000)", name);
    return 422;
}

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
        int st = control_check(root, a, body, len, "amount", err, errlen);
        if (st != 0)
            return st;
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

/* An integer below 10^11 ms is before 1973-03-03T09:46:40Z: almost surely epoch seconds (today is
 * about 1.8 * 10^9 s), whose data would otherwise be dropped as expired with a 204. */
#define SRV_MIN_EPOCH_MS 100000000000LL

static int epoch_ms_check(int64_t ms, char *err, size_t errlen)
{
    if (ms >= SRV_MIN_EPOCH_MS)
        return 0;
    if (ms <= 0)
        snprintf(err, errlen,
                 "'timestamp' %lld is no recent time: as a number it is epoch milliseconds, at "
                 "least 10^11 (1973-03-03T09:46:40Z)",
                 (long long)ms);
    else
        snprintf(err, errlen,
                 "'timestamp' %lld looks like epoch seconds: as a number it is epoch "
                 "milliseconds, at least 10^11 (1973-03-03T09:46:40Z); send %lld000, or an "
                 "RFC 3339 string",
                 (long long)ms, (long long)ms);
    return 422;
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
        int st = control_check(root, ts, body, len, "timestamp", err, errlen);
        if (st != 0)
            return st;
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
                        "'timestamp' as a number must be an integer of epoch milliseconds "
                        "of at most 16 digits, not epoch seconds with a fraction");
        return epoch_ms_check(*out, err, errlen);
    }
    return fail(err, errlen, 422, "'timestamp' must be an RFC 3339 string or epoch milliseconds");
}

/* RFC 8259 exactly, before cJSON sees the text: cJSON is lenient (leading zeros, raw control
 * characters in strings, bad \u escapes, any byte up to 0x20 as whitespace) and recurses once per
 * level on civetweb's small worker stacks. */
static int strict_json(const char *body, size_t len, char *err, size_t errlen)
{
    struct json_check_error e;
    int rc = json_check(body, len, SRV_MAX_NESTING, &e);
    if (rc == JSON_TOO_DEEP)
        return fail(err, errlen, 400, "request body is nested too deeply (at most 32 levels)");
    if (rc != JSON_VALID) {
        snprintf(err, errlen, "request body is not JSON (RFC 8259): %s at byte %zu", e.what,
                 e.offset);
        return 400;
    }
    return 0;
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

/* The "key" member: absent (entity_len 0), or a valid key (key.h), else 422. The raw text is
 * looked at first: cJSON's copy ends at an escaped U+0000. */
static int parse_entity(const cJSON *root, const char *body, size_t len, struct srv_tx *out,
                        char *err, size_t errlen)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "key");
    out->entity_len = 0;
    if (!k)
        return 0;
    if (!cJSON_IsString(k)) {
        snprintf(err, errlen,
                 "'key' must be a JSON string: 1 to %d bytes of UTF-8 text such as \"card-1234\"",
                 TXSTATS_MAX_ENTITY_BYTES);
        return 422;
    }
    int st = control_check(root, k, body, len, "key", err, errlen);
    if (st != 0)
        return st;
    size_t got = strlen(k->valuestring);
    if (srv_key_check(k->valuestring, got, "'key'", err, errlen) != 0)
        return 422;
    memcpy(out->entity, k->valuestring, got);
    out->entity_len = got;
    return 0;
}

int srv_parse_transaction(const char *body, size_t len, struct srv_tx *out, char *err,
                          size_t errlen)
{
    int status = strict_json(body, len, err, errlen);
    if (status != 0)
        return status;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root) /* valid JSON that cJSON cannot hold, e.g. out of memory */
        return fail(err, errlen, 400, "request body could not be parsed");
    if (!cJSON_IsObject(root))
        status = fail(err, errlen, 400, "request body must be a JSON object");
    if (status == 0)
        status = parse_amount(root, body, len, &out->amount, err, errlen);
    if (status == 0)
        status = parse_timestamp(root, body, len, &out->timestamp_ms, err, errlen);
    if (status == 0)
        status = parse_entity(root, body, len, out, err, errlen);
    if (status == 0)
        parse_key(root, body, len, out);
    cJSON_Delete(root);
    return status;
}
