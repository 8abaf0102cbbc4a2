/* The pure request parsing (http/request_parse.h): If-Match lists, Accept, Content-Type,
 * X-Request-Id, Idempotency-Key and the path's percent-decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "http/request_parse.h"

/* Parses h with room for cap tags; returns the count and leaves the tags in out. */
static int if_match(const char *h, long long *out, int cap, bool *present)
{
    *present = !h; /* the opposite of what an absent header gives: the parser must set it */
    return http_parse_if_match(h, out, cap, present);
}

static void test_if_match_absent_and_star(void **state)
{
    long long v[4];
    bool present;
    assert_int_equal(if_match(NULL, v, 4, &present), 0);
    assert_false(present);
    assert_int_equal(if_match("*", v, 4, &present), 0);
    assert_false(present);
    assert_int_equal(if_match("  *", v, 4, &present), 0);
    assert_false(present);
    /* a "*" among tags is not the wildcard */
    assert_int_equal(if_match("\"1\", *", v, 4, &present), -1);
    assert_true(http_if_match_allows(NULL, 7));
    assert_true(http_if_match_allows("*", 7));
    assert_true(http_if_match_allows("   *", 0));
}

static void test_if_match_strong_weak_opaque(void **state)
{
    long long v[4] = {-9, -9, -9, -9};
    bool present;
    assert_int_equal(if_match("\"42\"", v, 4, &present), 1);
    assert_true(present);
    assert_int_equal(v[0], 42);
    assert_int_equal(if_match("\"007\"", v, 4, &present), 1);
    assert_int_equal(v[0], 7);
    /* weak, opaque and empty tags are present but name no version */
    v[0] = -9;
    assert_int_equal(if_match("W/\"42\"", v, 4, &present), 0);
    assert_true(present);
    assert_int_equal(if_match("\"abc\"", v, 4, &present), 0);
    assert_true(present);
    assert_int_equal(if_match("\"42abc\"", v, 4, &present), 0);
    assert_int_equal(if_match("\"\"", v, 4, &present), 0);
    assert_true(present);
    assert_int_equal(v[0], -9);

    assert_true(http_if_match_allows("\"42\"", 42));
    assert_false(http_if_match_allows("\"42\"", 43));
    assert_false(http_if_match_allows("\"42\"", 4));
    assert_false(http_if_match_allows("W/\"42\"", 42));
    assert_false(http_if_match_allows("\"42abc\"", 42));
    assert_false(http_if_match_allows("\"\"", 0));
}

static void test_if_match_lists(void **state)
{
    long long v[4] = {0};
    bool present;
    assert_int_equal(if_match("\"1\",\"2\"", v, 4, &present), 2);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 2);
    assert_int_equal(if_match(" \"3\" ,  W/\"4\",\"x\" ,\"5\"  ", v, 4, &present), 2);
    assert_true(present);
    assert_int_equal(v[0], 3);
    assert_int_equal(v[1], 5);

    assert_true(http_if_match_allows("\"1\", \"5\"", 5));
    assert_true(http_if_match_allows("W/\"5\", \"x\" , \"5\"", 5));
    assert_false(http_if_match_allows("W/\"5\", \"x\" , \"6\"", 5));
}

static void test_if_match_malformed(void **state)
{
    long long v[4];
    bool present;
    const char *bad[] = {"5", "\"5", "W/5", "\"1\" \"2\"", "\"1\";", "\"1\",x", ",\"1\"",
                         "w/\"1\"", "\"1\"x", "* "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (if_match(bad[i], v, 4, &present) != -1)
            fail_msg("If-Match %s was not refused", bad[i]);
    }
    assert_false(http_if_match_allows("5", 5));
    assert_false(http_if_match_allows("\"5", 5));
    assert_false(http_if_match_allows("junk, \"5\"", 5));
    /* the reader that allows is as strict as the parser: a malformed list allows nothing */
    assert_false(http_if_match_allows("\"5\" junk", 5));
    assert_false(http_if_match_allows("\"1\" \"5\"", 5));
    assert_false(http_if_match_allows("W/5", -1));
    assert_true(http_if_match_allows("\"1\", \"5\"", 5));
}

static void test_if_match_cap(void **state)
{
    long long v[3] = {0, 0, 0};
    bool present;
    assert_int_equal(if_match("\"1\",\"2\"", v, 2, &present), 2);
    assert_int_equal(if_match("\"1\",\"2\",\"3\"", v, 2, &present), -1);
    /* tags that name no version do not count against the cap */
    assert_int_equal(if_match("\"1\",W/\"2\",\"x\",\"3\"", v, 2, &present), 2);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 3);
    assert_int_equal(if_match("\"1\"", v, 0, &present), -1);
    assert_int_equal(if_match("W/\"1\"", v, 0, &present), 0);
}

static void test_if_match_eighteen_digits(void **state)
{
    long long v[2] = {0, 0};
    bool present;
    assert_int_equal(if_match("\"999999999999999999\"", v, 2, &present), 1);
    assert_int_equal(v[0], 999999999999999999LL);
    /* a 19th digit makes it a tag we never issued: no overflow, no match */
    assert_int_equal(if_match("\"1234567890123456789\"", v, 2, &present), 0);
    assert_true(present);
    assert_int_equal(if_match("\"99999999999999999999999\",\"8\"", v, 2, &present), 1);
    assert_int_equal(v[0], 8);
    assert_true(http_if_match_allows("\"999999999999999999\"", 999999999999999999LL));
    assert_false(http_if_match_allows("\"1234567890123456789\"", 123456789012345678LL));
}

/* A header value, the media type asked about, and the answer. */
typedef struct media_case {
    const char *header, *type;
    bool want;
} media_case;

#define J "application/json"

static void test_accept(void **state)
{
    static const media_case cases[] = {
        {NULL, J, true},
        {"application/json", J, true},
        {"Application/JSON", J, true},
        {"*/*", J, true},
        {"application/*", J, true},
        {"text/html, application/json;q=0.9", J, true},
        {"text/html,application/json", J, true},
        {"  application/json ; charset=utf-8", J, true},
        {"text/html;level=1, */*;q=0.1", J, true},
        {"text/plain;q=0.5 , application/*;q=0.2", J, true},
        {"text/plain, application/problem+json", "application/problem+json", true},
        {"", J, false},
        {"text/plain", J, false},
        {"text/*", J, false},
        {"application/jsonx", J, false},
        {"application/js", J, false},
        {"application/*+json", J, false},
        {"*/json", J, false},
        {"*", J, false},
        {"application/x", J, false},                /* as long as a wildcard, but none */
        {"text/plain;application/json", J, false},  /* a parameter, not a type */
        {"application/json", "application/problem+json", false},
        {"application/json;q=0", J, false},           /* q=0: not acceptable (RFC 9110 12.4.2) */
        {"application/json; q=0.000, text/plain", J, false},
        {"*/*;q=0, application/json;q=0.001", J, true},
        {"application/json;q=0.5", J, true},
        {"application/json;level=1;q=0", J, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (http_accept_allows(cases[i].header, cases[i].type) != cases[i].want)
            fail_msg("Accept: %s, %s: expected %d", cases[i].header ? cases[i].header : "(none)",
                     cases[i].type, cases[i].want);
}

static void test_content_type(void **state)
{
    static const media_case cases[] = {
        {"application/json", J, true},
        {"Application/JSON", J, true},
        {"application/json; charset=utf-8", J, true},
        {"  application/json ;charset=UTF-8", J, true},
        {"application/merge-patch+json", "application/merge-patch+json", true},
        {NULL, J, false},
        {"", J, false},
        {"text/plain", J, false},
        {"application/jsonl", J, false},
        {"application/js", J, false},
        {"application/merge-patch+json", J, false},
        {"application/json, text/plain", J, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (http_content_type_is(cases[i].header, cases[i].type) != cases[i].want)
            fail_msg("Content-Type: %s, %s: expected %d",
                     cases[i].header ? cases[i].header : "(none)", cases[i].type, cases[i].want);
}

/* Idempotency-Key: 1 to 255 printable ASCII characters, space included. */
static void test_idempotency_key(void **state)
{
    char k[300];
    assert_true(http_idempotency_key_ok("a"));
    assert_true(http_idempotency_key_ok("order 42/retry ~!"));
    assert_false(http_idempotency_key_ok(""));
    assert_false(http_idempotency_key_ok("tab\there"));
    assert_false(http_idempotency_key_ok("caf\xc3\xa9"));
    assert_false(http_idempotency_key_ok("del\x7f"));
    memset(k, 'k', 255);
    k[255] = '\0';
    assert_true(http_idempotency_key_ok(k));
    k[255] = 'k';
    k[256] = '\0';
    assert_false(http_idempotency_key_ok(k));
}

static void test_request_id(void **state)
{
    char id[80];
    memset(id, 'a', sizeof id);
    id[64] = '\0';
    assert_true(http_request_id_ok(id));
    id[64] = 'a';
    id[65] = '\0';
    assert_false(http_request_id_ok(id));
    assert_true(http_request_id_ok("x"));
    assert_true(http_request_id_ok("AZaz09-_.:"));
    assert_true(http_request_id_ok("3f2c1a9e-0b7d-4e1a-9c55-2d8e6f1b7a40"));

    const char *bad[] = {"", "a b", "a/b", "a\tb", "id\n", "a\"b",
                         "a%20", "a+b", "a,b", "{id}", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (http_request_id_ok(bad[i]))
            fail_msg("request id \"%s\" was taken", bad[i]);
}

/* Unescapes a copy of in and compares it (and the returned length) with want. */
static void unescaped(const char *in, const char *want)
{
    char buf[128];
    strcpy(buf, in);
    size_t n = http_unescape(buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_unescape(void **state)
{
    unescaped("/v1/segments", "/v1/segments");
    unescaped("", "");
    unescaped("/a%2Fb", "/a/b");
    unescaped("/a%2fb", "/a/b");
    unescaped("%41%42c", "ABc");
    unescaped("a+b", "a+b");
    unescaped("a%2Bb", "a+b");
    unescaped("%00", "%00"); /* never a NUL byte */
    unescaped("x%00y%41", "x%00yA");
    unescaped("%zz", "%zz");
    unescaped("%g1", "%g1");
    unescaped("%1g", "%1g");
    unescaped("% 41", "% 41");
    unescaped("%+1", "%+1");
    unescaped("%-1", "%-1");
    unescaped("%0x", "%0x");
    unescaped("%", "%");
    unescaped("a%", "a%");
    unescaped("a%4", "a%4");
    unescaped("%%41", "%A");
    unescaped("%2541", "%41"); /* decoded once */
    unescaped("/caf%C3%A9", "/caf\xc3\xa9");

    char hi[] = "%e9%FF";
    assert_int_equal(http_unescape(hi), 2);
    assert_int_equal((unsigned char)hi[0], 0xe9);
    assert_int_equal((unsigned char)hi[1], 0xff);
    assert_int_equal(hi[2], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_if_match_absent_and_star),
        cmocka_unit_test(test_if_match_strong_weak_opaque),
        cmocka_unit_test(test_if_match_lists),
        cmocka_unit_test(test_if_match_malformed),
        cmocka_unit_test(test_if_match_cap),
        cmocka_unit_test(test_if_match_eighteen_digits),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_idempotency_key),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_unescape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
