/* SPDX-License-Identifier: MIT */
/* RFC 8259 at the door: every class of invalid JSON, at every position of a POST body, is 400;
 * the matching valid documents still pass the JSON stage. server/json.c and json_check.c. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "helpers.h"
#include "json.h"
#include "json_check.h"

#define TS "\"2018-07-17T09:59:51.312Z\""

struct frag {
    const char *text;
    size_t len; /* fragments may hold NUL bytes */
};
#define F(s)                                                                                       \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

struct class
{
    const char *name;
    const struct frag *bad, *good;
    size_t nbad, ngood;
    bool whitespace; /* fragments go where whitespace may be, not where a value goes */
};

static const struct frag bad_numbers[] = {
    F("012"),      F("-01"), F("2."),    F("0.e1"),  F(".5"),   F("+1"),    F("-"),
    F("1e"),       F("1e+"), F("0x10"),  F("1.5.2"), F("01.5"), F("-.5"),   F("--1"),
    F("Infinity"), F("NaN"), F("1_000"), F("00"),    F("1E"),   F("-0.e1"),
};
static const struct frag good_numbers[] = {
    F("0"), F("-0"), F("12"), F("-0.5"), F("0.5e3"), F("1E+2"), F("1e-2"), F("10"), F("-0.0E-0"),
};
static const struct frag bad_strings[] = {
    F("\"a\tb\""), F("\"a\nb\""), F("\"a\rb\""), F("\"7\0001\""), F("\"\x1f\""),
    F("\"\x01\""), F("\"abc"),    F("'a'"),      F("\"a\"\""),
};
static const struct frag good_strings[] = {
    F("\"a b\""), F("\"\""), F("\"\x7f\""), F("\"12.5\""), F("\"}{][,:\""),
};
static const struct frag bad_escapes[] = {
    F("\"\\uX000\""),
    F("\"\\u12\""),
    F("\"\\x41\""),
    F("\"\\a\""),
    F("\"\\U0041\""),
    F("\"\\'\""),
    F("\"\\ud800\""),
    F("\"\\udc00\""),
    F("\"\\\""),
    F("\"\\ud800\\u0041\""),
    F("\"\\ud800\\ud800\""),
    F("\"\\u 123\""),
    F("\"\\0\""),
    F("\"\\\0\""),
};
static const struct frag good_escapes[] = {
    F("\"\\u0041\""),        F("\"\\u00e9\""),
    F("\"\\ud83d\\ude00\""), F("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""),
    F("\"\\u0000\""),        F("\"\\uFFFF\""),
    F("\"\\uDBFF\\uDFFF\""),
};
static const struct frag bad_structure[] = {
    F("[1,]"),     F("{\"a\":1,}"), F("[1 2]"),   F("{\"a\" 1}"),
    F("{\"a\":}"), F("{1:2}"),      F("["),       F("{\"a\":1"),
    F("[1]]"),     F("{,}"),        F("[,1]"),    F("{\"a\":1 \"b\":2}"),
    F("{'a':1}"),  F("[1,,2]"),     F("{\"a\"}"), F("{\"a\"::1}"),
    F("[1}"),      F("{\"a\":1]"),
};
static const struct frag good_structure[] = {
    F("[]"), F("{}"), F("[1,[2,{}]]"), F("{\"a\":{\"b\":[]}}"), F("[ 1 , 2 ]"), F("{\"\":0}"),
};
static const struct frag bad_literals[] = {
    F("True"), F("NULL"), F("nul"), F("tru"), F("falsey"), F("undefined"), F("nulll"), F("t"),
};
static const struct frag good_literals[] = {F("true"), F("false"), F("null")};
static const struct frag bad_utf8[] = {
    F("\"\xff\""),         F("\"\xc0\x80\""),         F("\"\xe0\x80\x80\""),
    F("\"\xed\xa0\x80\""), F("\"\xf4\x90\x80\x80\""), F("\"\xc3\""),
    F("\"\x80\""),         F("\"\xf5\x80\x80\x80\""), F("\xc3\xa9"),
    F("\"\xc1\xbf\""),     F("\"\xf0\x80\x80\x80\""), F("\"\xe2\x82\""),
    F("\"\xfe\""),
};
static const struct frag good_utf8[] = {
    F("\"\xc3\xa9\""),     F("\"\xe2\x82\xac\""),     F("\"\xf0\x9f\x98\x80\""),
    F("\"\xef\xbf\xbf\""), F("\"\xf4\x8f\xbf\xbf\""), F("\"\xc2\x80\""),
};
static const struct frag bad_ws[] = {
    F("\f"),   F("\v"),       F("\0"),           F("\x01"), F("\x1f"),
    F("\x7f"), F("\xc2\xa0"), F("\xef\xbb\xbf"), F(" \f "),
};
static const struct frag good_ws[] = {F(""), F(" "), F("\t"), F("\r\n"), F(" \t\r\n ")};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define CLASS(name, b, g, ws)                                                                      \
    {                                                                                              \
        name, b, g, N(b), N(g), ws                                                                 \
    }
static const struct class classes[] = {
    CLASS("numbers", bad_numbers, good_numbers, false),
    CLASS("strings", bad_strings, good_strings, false),
    CLASS("escapes", bad_escapes, good_escapes, false),
    CLASS("structure", bad_structure, good_structure, false),
    CLASS("literals", bad_literals, good_literals, false),
    CLASS("UTF-8", bad_utf8, good_utf8, false),
    CLASS("whitespace", bad_ws, good_ws, true),
};

/* Where a fragment goes: "@" marks the spot. */
enum { TOP, AMOUNT, TIMESTAMP, IGNORED, IGNORED_DEEP, POSITIONS };
static const char *const value_spots[POSITIONS] = {
    [TOP] = "@",
    [AMOUNT] = "{\"amount\":@,\"timestamp\":" TS "}",
    [TIMESTAMP] = "{\"amount\":\"7\",\"timestamp\":@}",
    [IGNORED] = "{\"amount\":\"7\",\"x\":@,\"timestamp\":" TS "}",
    [IGNORED_DEEP] = "{\"amount\":\"7\",\"timestamp\":" TS ",\"x\":[{\"y\":[@]}]}",
};
static const char *const ws_spots[POSITIONS] = {
    [TOP] = "{\"amount\":\"7\",\"timestamp\":" TS "}@",
    [AMOUNT] = "{\"amount\":@\"7\"@,\"timestamp\":" TS "}",
    [TIMESTAMP] = "{\"amount\":\"7\",\"timestamp\"@:" TS "@}",
    [IGNORED] = "@{\"amount\":\"7\",\"x\":[@1@,@2],\"timestamp\":" TS "}",
    [IGNORED_DEEP] = "{\"amount\":\"7\",\"timestamp\":" TS ",\"x\":{\"y\":@{@}}}",
};

/* The template with every "@" replaced by the fragment; returns the length. */
static size_t build(char *out, const char *tpl, const struct frag *f)
{
    size_t n = 0;
    for (; *tpl; tpl++) {
        if (*tpl != '@') {
            out[n++] = *tpl;
            continue;
        }
        memcpy(out + n, f->text, f->len);
        n += f->len;
    }
    return n;
}

static int parse(const char *body, size_t len, char *err)
{
    struct srv_tx tx;
    err[0] = '\0';
    char *exact = malloc(len ? len : 1); /* exactly sized: ASan sees any overread */
    memcpy(exact, body, len);
    int st = srv_parse_transaction(exact, len, &tx, err, 256);
    free(exact);
    return st;
}

/* Invalid: 400 "not JSON" wherever it sits. Valid: past the JSON stage; 0 when ignored. */
static int check(const struct class *k, int pos, const struct frag *f, bool valid)
{
    char body[512], err[256];
    size_t len = build(body, (k->whitespace ? ws_spots : value_spots)[pos], f);
    int st = parse(body, len, err);
    bool ok;
    if (!valid)
        ok = st == 400 && (strstr(err, "not JSON") || strstr(err, "nested"));
    else if (pos == TOP && !k->whitespace)
        ok = json_check(body, len, SRV_MAX_NESTING, NULL) == JSON_VALID;
    else if (pos == AMOUNT || pos == TIMESTAMP)
        ok = k->whitespace ? st == 0 : st != 400;
    else
        ok = st == 0;
    if (!ok)
        print_error("%s, %s fragment at position %d: status %d (%s) body %.*s\n", k->name,
                    valid ? "valid" : "invalid", pos, st, err, (int)len, body);
    return ok;
}

static void test_classes(void **state)
{
    int failures = 0, total_bad = 0, total_good = 0;
    for (size_t c = 0; c < N(classes); c++) {
        const struct class *k = &classes[c];
        int bad = 0, good = 0;
        for (int pos = 0; pos < POSITIONS; pos++) {
            for (size_t i = 0; i < k->nbad; i++, bad++)
                failures += !check(k, pos, &k->bad[i], false);
            for (size_t i = 0; i < k->ngood; i++, good++)
                failures += !check(k, pos, &k->good[i], true);
        }
        print_message("%-10s %3d invalid documents (%zu fragments x %d positions), %3d valid\n",
                      k->name, bad, k->nbad, POSITIONS, good);
        total_bad += bad;
        total_good += good;
    }
    print_message("all classes: %d invalid documents, %d valid, %d wrong verdicts\n", total_bad,
                  total_good, failures);
    assert_int_equal(failures, 0);
}

/* A control character inside amount or timestamp is valid JSON but no amount: 422. */
static void test_control_in_fields(void **state)
{
    static const struct frag bodies[] = {
        F("{\"amount\":\"7\\u00001\",\"timestamp\":" TS "}"),
        F("{\"amount\":\"7\\u0000\",\"timestamp\":" TS "}"),
        F("{\"amount\":\"7\\n\",\"timestamp\":" TS "}"),
        F("{\"amount\":\"7\\u007f\",\"timestamp\":" TS "}"),
        F("{\"amount\":\"7\\u0085\",\"timestamp\":" TS "}"),
        F("{\"amount\":\"7\xc2\x85\",\"timestamp\":" TS "}"),
        F("{\"amount\":\"7\x7f\",\"timestamp\":" TS "}"),
        F("{\"amount\":\"7\",\"timestamp\":\"2018-07-17T09:59:51.312Z\\u0000\"}"),
        F("{\"amount\":\"7\",\"timestamp\":\"2018-07-17T09:59:51\\u0000.312Z\"}"),
        F("{\"amount\":\"7\",\"timestamp\":\"2018-07-17\\t09:59:51.312Z\"}"),
    };
    for (size_t i = 0; i < N(bodies); i++) {
        char err[256];
        int st = parse(bodies[i].text, bodies[i].len, err);
        if (st != 422)
            fail_msg("%s: %d (%s)", bodies[i].text, st, err);
    }
    char err[256]; /* escapes that decode to ordinary characters are fine */
    static const char ok[] = "{\"amount\":\"\\u0037.5\",\"timestamp\":" TS "}";
    assert_int_equal(parse(ok, sizeof(ok) - 1, err), 0);
}

/* The examples of the issue, through the same function the server calls. */
static void test_issue_examples(void **state)
{
    static const struct {
        struct frag body;
        int status;
    } cases[] = {
        {F("{\"amount\":\"7\\u00001\",\"timestamp\":" TS "}"), 422},
        {F("{\"amount\":\"7\\uX000\",\"timestamp\":" TS "}"), 400},
        {F("{\"amount\":012,\"timestamp\":" TS "}"), 400},
        {F("{\"amount\":2.,\"timestamp\":" TS "}"), 400},
        {F("{\"amount\":-01,\"timestamp\":" TS "}"), 400},
        {F("{\"amount\":0.e1,\"timestamp\":" TS "}"), 400},
        {F("{\"amount\":\"7\",\"timestamp\":" TS "}\0"), 400},
        {F("{\"amount\":\"7\",\"timestamp\":" TS ",\"x\":\"a\tb\"}"), 400},
        {F("{\"amount\":\"7\",\"timestamp\":\"2016-12-31T23:59:60Z\"}"), 0},
        {F("{\"amount\":\"7\",\"timestamp\":\"2016-12-31T23:58:60Z\"}"), 422},
        {F("{\"amount\":\"7\",\"timestamp\":\"2018-07-17 09:59:51.312Z\"}"), 0},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char err[256];
        int st = parse(cases[i].body.text, cases[i].body.len, err);
        if (st != cases[i].status)
            fail_msg("case %zu: %d, want %d (%s)", i, st, cases[i].status, err);
    }
}

/* 32 levels pass, 33 do not, and the error names the byte. */
static void test_depth_and_offset(void **state)
{
    char doc[128];
    struct json_check_error e;
    memset(doc, '[', 33);
    memset(doc + 33, ']', 33);
    assert_int_equal(json_check(doc, 66, 32, &e), JSON_TOO_DEEP);
    assert_int_equal(json_check(doc + 1, 64, 32, &e), JSON_VALID);
    assert_int_equal(json_check("[012]", 5, 32, &e), JSON_INVALID);
    assert_int_equal(e.offset, 2);
    assert_non_null(strstr(e.what, "leading zero"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_control_in_fields),
        cmocka_unit_test(test_issue_examples),
        cmocka_unit_test(test_depth_and_offset),
    };
    return cmocka_run_group_tests_name("json_strict", tests, NULL, NULL);
}
