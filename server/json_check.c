/* SPDX-License-Identifier: MIT */
/* A recursive-descent recognizer for RFC 8259; it builds nothing. Recursion is bounded by the
 * nesting limit, so worker threads' small stacks are safe. */
#include "json_check.h"

#include <stdbool.h>
#include <string.h>

struct cur {
    const unsigned char *p, *end;
    int depth, max_depth;
    bool too_deep;
    const char *what;
    const unsigned char *at;
};

static bool fail(struct cur *c, const char *what)
{
    if (!c->what) {
        c->what = what;
        c->at = c->p;
    }
    return false;
}

static bool at(const struct cur *c, char ch)
{
    return c->p < c->end && *c->p == (unsigned char)ch;
}

/* RFC 8259 §2: ws = *( %x20 / %x09 / %x0A / %x0D ) */
static void skip_ws(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Where something else was expected: name a stray control byte, the usual leniency. */
static bool unexpected(struct cur *c, const char *expected)
{
    if (c->p < c->end && (*c->p < 0x20 || *c->p == 0x7f))
        return fail(c, "a control byte where only JSON whitespace (space, tab, LF, CR) may be");
    return fail(c, expected);
}

static bool is_digit(const struct cur *c)
{
    return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

/* 1*DIGIT */
static bool digits(struct cur *c)
{
    const unsigned char *start = c->p;
    while (is_digit(c))
        c->p++;
    return c->p > start;
}

/* RFC 8259 §6: [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT ) */
static bool number(struct cur *c)
{
    if (at(c, '-'))
        c->p++;
    if (at(c, '0')) {
        c->p++;
        if (is_digit(c))
            return fail(c, "a number with a leading zero");
    } else if (!digits(c)) {
        return fail(c, "a number without digits");
    }
    if (at(c, '.')) {
        c->p++;
        if (!digits(c))
            return fail(c, "a number without a digit after its decimal point");
    }
    if (at(c, 'e') || at(c, 'E')) {
        c->p++;
        if (at(c, '+') || at(c, '-'))
            c->p++;
        if (!digits(c))
            return fail(c, "a number whose exponent has no digits");
    }
    return true;
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "\u" and four hex digits (§7), at c->p. */
static bool u_escape(struct cur *c, unsigned *out)
{
    if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u')
        return false;
    *out = 0;
    for (int i = 2; i < 6; i++) {
        int h = hex_value(c->p[i]);
        if (h < 0)
            return false;
        *out = *out << 4 | (unsigned)h;
    }
    c->p += 6;
    return true;
}

/* One escape at the backslash (§7); surrogates only as a high + low pair. */
static bool escape(struct cur *c)
{
    unsigned u, low;
    if (c->end - c->p >= 2 && c->p[1] != 'u' && c->p[1] && strchr("\"\\/bfnrt", c->p[1])) {
        c->p += 2;
        return true;
    }
    if (c->end - c->p < 2 || c->p[1] != 'u')
        return fail(c, "an unknown escape (RFC 8259 §7 allows \\\" \\\\ \\/ \\b \\f \\n \\r \\t "
                       "\\uXXXX)");
    if (!u_escape(c, &u))
        return fail(c, "a \\u escape without four hex digits");
    if (u >= 0xDC00 && u <= 0xDFFF)
        return fail(c, "a \\u escape of a lone low surrogate");
    if (u >= 0xD800 && u <= 0xDBFF && (!u_escape(c, &low) || low < 0xDC00 || low > 0xDFFF))
        return fail(c, "a \\u escape of a high surrogate not followed by a low one");
    return true;
}

/* One multi-byte UTF-8 sequence (RFC 3629 §4), lead byte >= 0x80 at c->p. */
static bool utf8(struct cur *c)
{
    unsigned char b = c->p[0], lo = 0x80, hi = 0xBF;
    int n;
    if (b >= 0xC2 && b <= 0xDF) {
        n = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 2;
        lo = b == 0xE0 ? 0xA0 : 0x80; /* not overlong */
        hi = b == 0xED ? 0x9F : 0xBF; /* not a surrogate */
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 3;
        lo = b == 0xF0 ? 0x90 : 0x80; /* not overlong */
        hi = b == 0xF4 ? 0x8F : 0xBF; /* not above U+10FFFF */
    } else {
        return fail(c, "invalid UTF-8");
    }
    if (c->end - c->p <= n)
        return fail(c, "truncated UTF-8");
    for (int i = 1; i <= n; i++) {
        unsigned char x = c->p[i];
        if (x < (i == 1 ? lo : 0x80) || x > (i == 1 ? hi : 0xBF))
            return fail(c, "invalid UTF-8");
    }
    c->p += n + 1;
    return true;
}

/* RFC 8259 §7, at the opening quote. */
static bool string(struct cur *c)
{
    for (c->p++; c->p < c->end;) {
        unsigned char ch = *c->p;
        if (ch == '"') {
            c->p++;
            return true;
        }
        if (ch < 0x20)
            return fail(c, "a raw control character inside a string (it must be escaped)");
        if (ch == '\\') {
            if (!escape(c))
                return false;
        } else if (ch >= 0x80) {
            if (!utf8(c))
                return false;
        } else {
            c->p++;
        }
    }
    return fail(c, "an unterminated string");
}

static bool literal(struct cur *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return fail(c, "an unknown literal (RFC 8259 §3 has true, false and null)");
    c->p += n;
    return true;
}

static bool value(struct cur *c);

/* An object or an array (§4, §5), at its opening bracket. */
static bool container(struct cur *c, char close)
{
    bool object = close == '}';
    if (++c->depth > c->max_depth) {
        c->too_deep = true;
        return fail(c, "nesting too deep");
    }
    c->p++;
    skip_ws(c);
    for (bool first = true;; first = false) {
        if (first && at(c, close))
            break;
        if (object && !at(c, '"'))
            return unexpected(c, "expected a member name (a string)");
        if (object && !string(c))
            return false;
        skip_ws(c);
        if (object && !at(c, ':'))
            return unexpected(c, "expected ':' after a member name");
        c->p += object;
        skip_ws(c);
        if (!value(c))
            return false;
        skip_ws(c);
        if (at(c, close))
            break;
        if (!at(c, ','))
            return unexpected(c, object ? "expected ',' or '}'" : "expected ',' or ']'");
        c->p++;
        skip_ws(c);
    }
    c->p++;
    c->depth--;
    return true;
}

static bool value(struct cur *c)
{
    if (c->p >= c->end)
        return fail(c, "expected a value, found the end of the body");
    switch (*c->p) {
    case '{':
        return container(c, '}');
    case '[':
        return container(c, ']');
    case '"':
        return string(c);
    case 't':
        return literal(c, "true");
    case 'f':
        return literal(c, "false");
    case 'n':
        return literal(c, "null");
    default:
        if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))
            return number(c);
        return unexpected(c, "expected a value");
    }
}

int json_check(const char *text, size_t len, int max_depth, struct json_check_error *err)
{
    const unsigned char *start = (const unsigned char *)text;
    struct cur c = {.p = start, .end = start + len, .max_depth = max_depth};
    skip_ws(&c);
    bool ok = value(&c);
    skip_ws(&c);
    if (ok && c.p < c.end)
        ok = unexpected(&c, "data after the JSON value");
    if (ok)
        return JSON_VALID;
    if (err) {
        err->offset = (size_t)(c.at - start);
        err->what = c.what;
    }
    return c.too_deep ? JSON_TOO_DEEP : JSON_INVALID;
}
