/* Unit tests for eval/rule and eval/match: stored rules read into ev_rule and matched against
 * devices read from column texts (EVAL_DEVICE_COLUMNS' order). */
/* Every /v1 relation on every field type (String, Int, Long, tags) with the field present,
 * lacking (NULL) or at an edge (equal, INT32/INT64 limits, empty tag list, a prefix that is
 * the whole string, case, multibyte UTF-8); != as the exact negation of ==; AND / OR groups
 * and several groups; /audiences properties (every code, any value, 4 vs "4", 4 vs 4.0, {});
 * stored JSON that is not a rule or not a device (-1, 500, nothing held); ev_status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "eval/lookup_index.h"
#include "eval/match.h"
#include "eval/rule.h"
#include "validate/formats.h"

static const char *const string_fields[] = {
    "country", "language", "timezone", "appVersion", "osApi", "osVersion", "customUserId",
    "email", "type", "id", "pushToken", "deviceModel", "deviceManufacturer",
};
static const char *const int_fields[] = {"appVersionCode", "sessionCount"};
static const char *const long_fields[] = {"firstSession", "lastSession", "createdAt", "unRegisteredAt"};
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static size_t fi(const char *name)
{
    const val_field *f = val_field_find(name);
    assert_non_null(f);
    return val_field_index(f);
}

/* A device's columns: every field NULL, tags and attributes NULL (read as empty). */
typedef struct cols {
    const char *c[EV_DEVICE_COLUMNS];
} cols;

static cols no_fields(void)
{
    cols d;
    memset(&d, 0, sizeof d);
    return d;
}

static cols with(const char *field, const char *value)
{
    cols d = no_fields();
    d.c[fi(field)] = value;
    return d;
}

/* One AND group with one constraint; value is JSON text. */
static const char *one(const char *field, const char *rel, const char *value)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"%s\",\"relation\":\"%s\",\"value\":%s}]}]",
             field, rel, value);
    return buf;
}

/* The rule matched both ways, which must agree: alone (ev_match), and as the lookup does,
 * through an index of it (eval/lookup_index.h: a candidate, then matched with the marks). */
static bool match_rule(const ev_rule *r, const cols *d)
{
    ev_device dev;
    seg_error err;
    err_clear(&err);
    if (ev_device_read(&dev, d->c, &err) != 0)
        fail_msg("device not read: %s", err.detail);
    bool m = ev_match(r, &dev);
    ev_rule *rules[] = {(ev_rule *)r};
    ev_lookup_index *ix = ev_index_build(rules, 1);
    assert_non_null(ix);
    uint64_t *values = calloc(ev_index_value_words(ix), sizeof *values);
    uint64_t *cands = calloc(ev_index_rule_words(ix), sizeof *cands);
    assert_true(values && cands);
    ev_index_device(ix, &dev, values, cands);
    bool indexed = (cands[0] & 1) && ev_match_with(r, &dev, values);
    assert_int_equal(indexed, m);
    free(values);
    free(cands);
    ev_index_free(ix);
    ev_device_free(&dev);
    return m;
}

static bool v1(const char *rule, const cols *d)
{
    ev_rule r;
    seg_error err;
    err_clear(&err);
    if (ev_rule_v1(rule, strlen(rule), &r, &err) != 0)
        fail_msg("rule not read: %s", rule);
    bool m = match_rule(&r, d);
    ev_rule_free(&r);
    return m;
}

static bool aud(const char *props, const cols *d)
{
    ev_rule r;
    seg_error err;
    err_clear(&err);
    if (ev_rule_aud(props, strlen(props), &r, &err) != 0)
        fail_msg("properties not read: %s", props);
    bool m = match_rule(&r, d);
    ev_rule_free(&r);
    return m;
}

/* v1 with a one-constraint rule, failing with the case's words. */
static void expect(const char *field, const char *rel, const char *value, const cols *d, bool want)
{
    bool got = v1(one(field, rel, value), d);
    if (got != want)
        fail_msg("%s %s %s on %s: expected %s, got %s", field, rel, value,
                 d->c[fi(field)] ? d->c[fi(field)] : "(lacking)", want ? "match" : "no match",
                 got ? "match" : "no match");
}

/* ------------------------------------------------------------------ strings */

static void test_string_fields(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN(string_fields); i++) {
        const char *f = string_fields[i];
        cols d = with(f, "Pixel-7a");
        expect(f, "==", "\"Pixel-7a\"", &d, true);
        expect(f, "==", "\"pixel-7a\"", &d, false); /* case-sensitive */
        expect(f, "==", "\"Pixel-7\"", &d, false);
        expect(f, "==", "\"Pixel-7a \"", &d, false);
        expect(f, "!=", "\"Pixel-7a\"", &d, false);
        expect(f, "!=", "\"pixel-7a\"", &d, true);
        expect(f, "starts_with", "\"Pix\"", &d, true);
        expect(f, "starts_with", "\"Pixel-7a\"", &d, true); /* the whole string */
        expect(f, "starts_with", "\"Pixel-7ab\"", &d, false);
        expect(f, "starts_with", "\"pix\"", &d, false);
        expect(f, "starts_with", "\"7a\"", &d, false);
        expect(f, "ends_with", "\"7a\"", &d, true);
        expect(f, "ends_with", "\"Pixel-7a\"", &d, true);
        expect(f, "ends_with", "\"xPixel-7a\"", &d, false);
        expect(f, "ends_with", "\"7A\"", &d, false);
        expect(f, "ends_with", "\"Pix\"", &d, false);
        expect(f, "contains", "\"el-7\"", &d, true);
        expect(f, "contains", "\"Pixel-7a\"", &d, true);
        expect(f, "contains", "\"EL-7\"", &d, false);
        expect(f, "contains", "\"Pixel-7a!\"", &d, false);
        expect(f, "exists", "true", &d, true);
        expect(f, "exists", "false", &d, false);

        cols none = no_fields();
        expect(f, "==", "\"Pixel-7a\"", &none, false);
        expect(f, "!=", "\"Pixel-7a\"", &none, true);
        expect(f, "starts_with", "\"P\"", &none, false);
        expect(f, "ends_with", "\"a\"", &none, false);
        expect(f, "contains", "\"x\"", &none, false);
        expect(f, "exists", "true", &none, false);
        expect(f, "exists", "false", &none, true);

        /* another field set does not give this one */
        cols other = with(strcmp(f, "country") ? "country" : "language", "Pixel-7a");
        expect(f, "==", "\"Pixel-7a\"", &other, false);
        expect(f, "exists", "true", &other, false);
    }
}

/* Byte for byte over UTF-8: characters of 2, 3 and 4 bytes at either end and inside. */
static void test_string_multibyte(void **state)
{
    (void)state;
    const char *value = "\xc3\xa9t\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80"; /* "été-€-😀" */
    cols d = with("deviceModel", value);
    expect("deviceModel", "starts_with", "\"\xc3\xa9\"", &d, true);
    expect("deviceModel", "starts_with", "\"\xc3\xa9t\xc3\xa9\"", &d, true);
    expect("deviceModel", "starts_with", "\"\xc3\x89\"", &d, false); /* "É" */
    expect("deviceModel", "starts_with", "\"e\"", &d, false);
    expect("deviceModel", "ends_with", "\"\xf0\x9f\x98\x80\"", &d, true);
    expect("deviceModel", "ends_with", "\"\xe2\x82\xac-\xf0\x9f\x98\x80\"", &d, true);
    expect("deviceModel", "ends_with", "\"\xf0\x9f\x98\x81\"", &d, false);
    expect("deviceModel", "contains", "\"\xe2\x82\xac\"", &d, true);
    expect("deviceModel", "contains", "\"t\xc3\xa9-\xe2\x82\xac\"", &d, true);
    expect("deviceModel", "contains", "\"\xe2\x82\xad\"", &d, false);
    char q[64];
    snprintf(q, sizeof q, "\"%s\"", value);
    expect("deviceModel", "==", q, &d, true);
    expect("deviceModel", "starts_with", q, &d, true);
    expect("deviceModel", "ends_with", q, &d, true);
    expect("deviceModel", "contains", q, &d, true);
    /* the same text written with JSON escapes in the stored rule */
    expect("deviceModel", "starts_with", "\"\\u00e9t\\u00e9\"", &d, true);
    expect("deviceModel", "ends_with", "\"\\ud83d\\ude00\"", &d, true);
    expect("deviceModel", "contains", "\"\\u20ac\"", &d, true);
    /* a value longer than the field's */
    cols shorter = with("deviceModel", "\xc3\xa9");
    expect("deviceModel", "ends_with", "\"\xc3\xa9\xc3\xa9\"", &shorter, false);
    expect("deviceModel", "starts_with", "\"\xc3\xa9\xc3\xa9\"", &shorter, false);
    expect("deviceModel", "contains", "\"\xc3\xa9\xc3\xa9\"", &shorter, false);
}

/* ------------------------------------------------------------------ numbers */

static void numeric_relations(const char *f)
{
    cols d = with(f, "10");
    expect(f, "==", "10", &d, true);
    expect(f, "==", "9", &d, false);
    expect(f, "!=", "10", &d, false);
    expect(f, "!=", "9", &d, true);
    expect(f, ">", "9", &d, true); /* as numbers: "10" > "9" would be false as text */
    expect(f, ">", "10", &d, false);
    expect(f, ">=", "10", &d, true);
    expect(f, ">=", "11", &d, false);
    expect(f, "<", "11", &d, true);
    expect(f, "<", "10", &d, false);
    expect(f, "<", "9", &d, false);
    expect(f, "<=", "10", &d, true);
    expect(f, "<=", "9", &d, false);
    expect(f, "<=", "100", &d, true);
    expect(f, "exists", "true", &d, true);
    expect(f, "exists", "false", &d, false);

    cols none = no_fields();
    expect(f, "==", "10", &none, false);
    expect(f, "!=", "10", &none, true);
    expect(f, ">", "-1", &none, false);
    expect(f, ">=", "0", &none, false);
    expect(f, "<", "100", &none, false);
    expect(f, "<=", "100", &none, false);
    expect(f, "exists", "true", &none, false);
    expect(f, "exists", "false", &none, true);

    cols zero = with(f, "0");
    expect(f, "==", "0", &zero, true);
    expect(f, "!=", "0", &zero, false);
    expect(f, "exists", "true", &zero, true); /* 0 is a value, not a lacking field */
    expect(f, ">", "-1", &zero, true);
}

static void test_int_fields(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN(int_fields); i++) {
        const char *f = int_fields[i];
        numeric_relations(f);
        cols lo = with(f, "-2147483648"), hi = with(f, "2147483647");
        expect(f, "==", "-2147483648", &lo, true);
        expect(f, "!=", "-2147483648", &lo, false);
        expect(f, "<", "-2147483647", &lo, true);
        expect(f, "<=", "-2147483648", &lo, true);
        expect(f, "<", "-2147483648", &lo, false);
        expect(f, ">", "-2147483648", &lo, false);
        expect(f, ">=", "-2147483648", &lo, true);
        expect(f, "==", "2147483647", &hi, true);
        expect(f, "!=", "2147483647", &hi, false);
        expect(f, ">", "2147483646", &hi, true);
        expect(f, ">=", "2147483647", &hi, true);
        expect(f, ">", "2147483647", &hi, false);
        expect(f, "<", "2147483647", &hi, false);
        expect(f, "<=", "2147483647", &hi, true);
        expect(f, "==", "-2147483648", &hi, false);
        cols neg = with(f, "-5");
        expect(f, "<", "-4", &neg, true);
        expect(f, ">", "-6", &neg, true);
        expect(f, "==", "-5", &neg, true);
    }
}

static void test_long_fields(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN(long_fields); i++) {
        const char *f = long_fields[i];
        numeric_relations(f);
        cols ms = with(f, "1733497200123"); /* past 2^32: a timestamp in ms */
        expect(f, "==", "1733497200123", &ms, true);
        expect(f, "==", "1733497200122", &ms, false);
        expect(f, ">", "1733497200122", &ms, true);
        expect(f, ">", "2147483647", &ms, true);
        expect(f, "<", "1733497200124", &ms, true);
        expect(f, "!=", "1733497200123", &ms, false);
        cols hi = with(f, "9223372036854775807");
        expect(f, "==", "9223372036854775807", &hi, true);
        expect(f, ">", "9223372036854775806", &hi, true);
        expect(f, ">=", "9223372036854775807", &hi, true);
        expect(f, "<", "9223372036854775807", &hi, false);
        expect(f, "<=", "9223372036854775807", &hi, true);
        expect(f, "!=", "9223372036854775807", &hi, false);
    }
}

/* ------------------------------------------------------------------ tags */

static void test_tags(void **state)
{
    (void)state;
    cols d = with("tags", "[\"vip\",\"beta\",\"\xc3\xa9t\xc3\xa9\"]");
    expect("tags", "==", "\"vip\"", &d, true);
    expect("tags", "==", "\"beta\"", &d, true);
    expect("tags", "==", "\"\xc3\xa9t\xc3\xa9\"", &d, true);
    expect("tags", "==", "\"\\u00e9t\\u00e9\"", &d, true);
    expect("tags", "==", "\"VIP\"", &d, false);
    expect("tags", "==", "\"vi\"", &d, false);   /* a whole tag, not a prefix */
    expect("tags", "==", "\"vipx\"", &d, false);
    expect("tags", "!=", "\"vip\"", &d, false);
    expect("tags", "!=", "\"VIP\"", &d, true);
    expect("tags", "!=", "\"gold\"", &d, true);
    expect("tags", "contains", "\"vip\"", &d, true);  /* contains on tags reads as == */
    expect("tags", "contains", "\"vi\"", &d, false); /* not a substring test */
    expect("tags", "contains", "\"gold\"", &d, false);
    expect("tags", "exists", "true", &d, true);
    expect("tags", "exists", "false", &d, false);

    cols empty = with("tags", "[]");
    expect("tags", "==", "\"vip\"", &empty, false);
    expect("tags", "!=", "\"vip\"", &empty, true);
    expect("tags", "contains", "\"vip\"", &empty, false);
    expect("tags", "exists", "true", &empty, false);
    expect("tags", "exists", "false", &empty, true);

    cols null_tags = no_fields(); /* a NULL column reads as no tags */
    expect("tags", "==", "\"vip\"", &null_tags, false);
    expect("tags", "!=", "\"vip\"", &null_tags, true);
    expect("tags", "exists", "true", &null_tags, false);
    expect("tags", "exists", "false", &null_tags, true);

    cols single = with("tags", "[\"x\"]");
    expect("tags", "exists", "true", &single, true);
    expect("tags", "==", "\"x\"", &single, true);

    /* contains is read as ==: the rule itself holds EV_EQ */
    ev_rule r;
    seg_error err;
    const char *rule = one("tags", "contains", "\"vip\"");
    err_clear(&err);
    assert_int_equal(ev_rule_v1(rule, strlen(rule), &r, &err), 0);
    assert_int_equal(r.groups[0].cons[0].op, EV_EQ);
    ev_rule_free(&r);
}

/* ------------------------------------------------------------------ != is not == */

/* For every field, every device variant (equal value, other value, lacking): != holds exactly
 * when == does not. */
static void test_ne_negates_eq(void **state)
{
    (void)state;
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++) {
        const val_field *f = val_field_at(i);
        const char *value, *same, *other;
        if (f->type == VAL_FIELD_STRING_ARRAY) {
            value = "\"t\"";
            same = "[\"t\"]";
            other = "[\"u\"]";
        } else if (f->type == VAL_FIELD_STRING) {
            value = "\"ab\"";
            same = "ab";
            other = "aB";
        } else {
            value = "7";
            same = "7";
            other = "-7";
        }
        const char *variants[] = {same, other, NULL};
        for (size_t v = 0; v < 3; v++) {
            cols d = no_fields();
            d.c[i] = variants[v];
            char eq_rule[1024];
            snprintf(eq_rule, sizeof eq_rule, "%s", one(f->name, "==", value));
            bool eq = v1(eq_rule, &d), ne = v1(one(f->name, "!=", value), &d);
            if (eq == ne)
                fail_msg("%s on %s: == gives %d and != gives %d", f->name,
                         variants[v] ? variants[v] : "(lacking)", eq, ne);
            assert_int_equal(eq, v == 0);
        }
    }
}

/* ------------------------------------------------------------------ groups */

static void test_groups(void **state)
{
    (void)state;
    cols d = no_fields();
    d.c[fi("country")] = "US";
    d.c[fi("language")] = "eng";
    d.c[fi("sessionCount")] = "3";
    d.c[fi("tags")] = "[\"vip\"]";

    const char *and_both =
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"},"
        "{\"field\":\"language\",\"relation\":\"==\",\"value\":\"eng\"}]}]";
    const char *and_one =
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"},"
        "{\"field\":\"language\",\"relation\":\"==\",\"value\":\"fra\"}]}]";
    const char *or_one =
        "[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"},"
        "{\"field\":\"language\",\"relation\":\"==\",\"value\":\"fra\"}]}]";
    const char *or_none =
        "[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"DE\"},"
        "{\"field\":\"language\",\"relation\":\"==\",\"value\":\"fra\"}]}]";
    const char *or_second =
        "[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"DE\"},"
        "{\"field\":\"sessionCount\",\"relation\":\">\",\"value\":2}]}]";
    assert_true(v1(and_both, &d));
    assert_false(v1(and_one, &d));
    assert_true(v1(or_one, &d));
    assert_false(v1(or_none, &d));
    assert_true(v1(or_second, &d));

    /* several groups are ANDed */
    const char *two_hold =
        "[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"DE\"},"
        "{\"field\":\"language\",\"relation\":\"==\",\"value\":\"eng\"}]},"
        "{\"type\":\"AND\",\"constraints\":[{\"field\":\"tags\",\"relation\":\"==\",\"value\":\"vip\"},"
        "{\"field\":\"sessionCount\",\"relation\":\"<=\",\"value\":3}]}]";
    const char *second_fails =
        "[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"DE\"},"
        "{\"field\":\"language\",\"relation\":\"==\",\"value\":\"eng\"}]},"
        "{\"type\":\"AND\",\"constraints\":[{\"field\":\"tags\",\"relation\":\"==\",\"value\":\"vip\"},"
        "{\"field\":\"sessionCount\",\"relation\":\"<\",\"value\":3}]}]";
    const char *first_fails =
        "[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"DE\"}]},"
        "{\"type\":\"AND\",\"constraints\":[{\"field\":\"tags\",\"relation\":\"==\",\"value\":\"vip\"}]}]";
    const char *three =
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"}]},"
        "{\"type\":\"OR\",\"constraints\":[{\"field\":\"email\",\"relation\":\"exists\",\"value\":true},"
        "{\"field\":\"email\",\"relation\":\"exists\",\"value\":false}]},"
        "{\"type\":\"AND\",\"constraints\":[{\"field\":\"email\",\"relation\":\"!=\",\"value\":\"a@b.c\"}]}]";
    assert_true(v1(two_hold, &d));
    assert_false(v1(second_fails, &d));
    assert_false(v1(first_fails, &d));
    assert_true(v1(three, &d));

    /* a lacking field in an OR group: only != and exists false can carry it */
    cols none = no_fields();
    const char *or_lacking =
        "[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"},"
        "{\"field\":\"country\",\"relation\":\"starts_with\",\"value\":\"U\"},"
        "{\"field\":\"sessionCount\",\"relation\":\">=\",\"value\":0}]}]";
    const char *or_lacking_ne =
        "[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"},"
        "{\"field\":\"sessionCount\",\"relation\":\"!=\",\"value\":0}]}]";
    assert_false(v1(or_lacking, &none));
    assert_true(v1(or_lacking_ne, &none));

    /* the group's type is read: "AND" is not OR, and the rule keeps both kinds */
    ev_rule r;
    seg_error err;
    err_clear(&err);
    assert_int_equal(ev_rule_v1(two_hold, strlen(two_hold), &r, &err), 0);
    assert_int_equal(r.kind, EV_RULE_V1);
    assert_int_equal(r.n, 2);
    assert_true(r.groups[0].is_or);
    assert_false(r.groups[1].is_or);
    assert_int_equal(r.groups[0].n, 2);
    assert_int_equal(r.groups[1].n, 2);
    assert_int_equal(r.groups[1].cons[1].field, fi("sessionCount"));
    assert_int_equal(r.groups[1].cons[1].op, EV_LE);
    assert_int_equal(r.groups[1].cons[1].num, 3);
    assert_string_equal(r.groups[1].cons[1].text, "3");
    assert_int_equal(r.groups[1].cons[1].len, 1);
    ev_rule_free(&r);
}

/* ------------------------------------------------------------------ /audiences */

static cols attrs(const char *json)
{
    cols d = no_fields();
    d.c[VAL_FIELD_COUNT] = json;
    return d;
}

static void test_audiences(void **state)
{
    (void)state;
    const char *props = "{\"color\":[4],\"size\":[\"L\",\"XL\"]}";
    cols both = attrs("{\"color\":[4],\"size\":[\"XL\"]}");
    cols both_more = attrs("{\"color\":[1,4],\"size\":[\"S\",\"L\"],\"other\":[\"x\"]}");
    cols no_size = attrs("{\"color\":[4]}");
    cols wrong_size = attrs("{\"color\":[4],\"size\":[\"M\",\"xl\"]}");
    cols string_four = attrs("{\"color\":[\"4\"],\"size\":[\"L\"]}");
    cols real_four = attrs("{\"color\":[4.0],\"size\":[\"L\"]}");
    cols empty_list = attrs("{\"color\":[],\"size\":[\"L\"]}");
    cols scalar = attrs("{\"color\":4,\"size\":[\"L\"]}"); /* not a list: as jsonb @> [4], no */
    cols none = attrs("{}");
    cols null_col = no_fields();
    assert_true(aud(props, &both));
    assert_true(aud(props, &both_more));
    assert_false(aud(props, &no_size));   /* every code must hold */
    assert_false(aud(props, &wrong_size));
    assert_false(aud(props, &string_four)); /* "4" is not 4 */
    assert_true(aud(props, &real_four));    /* 4.0 is 4 */
    assert_false(aud(props, &empty_list));
    assert_false(aud(props, &scalar));
    assert_false(aud(props, &none));
    assert_false(aud(props, &null_col));

    /* the rule's 4.0 against the device's 4, and "4" against "4" */
    cols four = attrs("{\"n\":[4]}");
    cols four_s = attrs("{\"n\":[\"4\"]}");
    assert_true(aud("{\"n\":[4.0]}", &four));
    assert_false(aud("{\"n\":[\"4\"]}", &four));
    assert_true(aud("{\"n\":[\"4\"]}", &four_s));
    assert_false(aud("{\"n\":[4]}", &four_s));
    assert_false(aud("{\"n\":[5]}", &four));
    assert_false(aud("{\"N\":[4]}", &four)); /* codes are case-sensitive */
    /* several values: any one */
    cols m = attrs("{\"size\":[\"M\"]}");
    assert_true(aud("{\"size\":[\"S\",\"M\",\"L\"]}", &m));
    assert_false(aud("{\"size\":[\"S\",\"L\"]}", &m));
    assert_false(aud("{\"size\":[\"m\"]}", &m));
    /* multibyte values byte for byte */
    cols u = attrs("{\"city\":[\"Z\\u00fcrich\"]}");
    assert_true(aud("{\"city\":[\"Z\xc3\xbcrich\"]}", &u));
    assert_false(aud("{\"city\":[\"Zurich\"]}", &u));

    /* the rule as read: codes, values, containment texts */
    ev_rule r;
    seg_error err;
    err_clear(&err);
    assert_int_equal(ev_rule_aud(props, strlen(props), &r, &err), 0);
    assert_int_equal(r.kind, EV_RULE_AUD);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.props[0].code, "color");
    assert_int_equal(r.props[0].n, 1);
    assert_string_equal(r.props[0].contain[0], "{\"color\":[4]}");
    assert_string_equal(r.props[0].values_json, "[4]");
    assert_string_equal(r.props[1].code, "size");
    assert_int_equal(r.props[1].n, 2);
    assert_string_equal(r.props[1].contain[0], "{\"size\":[\"L\"]}");
    assert_string_equal(r.props[1].contain[1], "{\"size\":[\"XL\"]}");
    assert_string_equal(r.props[1].values_json, "[\"L\",\"XL\"]");
    ev_rule_free(&r);
    ev_rule_free(&r); /* safe on a zeroed rule */
}

/* {} has no rule: nothing matches, whatever the device holds. */
static void test_audiences_no_rule(void **state)
{
    (void)state;
    ev_rule r;
    seg_error err;
    err_clear(&err);
    assert_int_equal(ev_rule_aud("{}", 2, &r, &err), 0);
    assert_int_equal(r.kind, EV_RULE_NONE);
    assert_int_equal(r.n, 0);
    cols d = attrs("{\"color\":[4]}");
    d.c[fi("country")] = "US";
    d.c[fi("tags")] = "[\"a\"]";
    assert_false(match_rule(&r, &d));
    cols e = no_fields();
    assert_false(match_rule(&r, &e));
    ev_rule_free(&r);
    assert_false(aud("{}", &d));
}

/* ------------------------------------------------------------------ what is not a rule */

static bool is_zero_rule(const ev_rule *r)
{
    return r->n == 0 && !r->groups && !r->props && !r->root;
}

static void expect_broken_v1(const char *json)
{
    ev_rule r;
    seg_error err;
    err_clear(&err);
    memset(&r, 0xab, sizeof r);
    if (ev_rule_v1(json, strlen(json), &r, &err) != -1)
        fail_msg("read as a v1 rule: %s", json);
    assert_int_equal(err.status, 500);
    assert_true(is_zero_rule(&r));
    ev_rule_free(&r);
}

static void expect_broken_aud(const char *json)
{
    ev_rule r;
    seg_error err;
    err_clear(&err);
    memset(&r, 0xab, sizeof r);
    if (ev_rule_aud(json, strlen(json), &r, &err) != -1)
        fail_msg("read as properties: %s", json);
    assert_int_equal(err.status, 500);
    assert_true(is_zero_rule(&r));
    ev_rule_free(&r);
}

static void test_broken_rules(void **state)
{
    (void)state;
    const char *v1_bad[] = {
        "", "not json", "[", "{}", "\"x\"", "null", "[1]", "[{}]",
        "[{\"type\":\"AND\"}]",
        "[{\"type\":\"AND\",\"constraints\":[]}]",
        "[{\"type\":\"AND\",\"constraints\":{}}]",
        "[{\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[1]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"nope\",\"relation\":\"==\",\"value\":\"US\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"~\",\"value\":\"US\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"EQUALS\",\"value\":\"US\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"relation\":\"==\",\"value\":\"US\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":1}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\">\",\"value\":\"US\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"U\\u0000S\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"exists\",\"value\":\"true\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"sessionCount\",\"relation\":\"==\",\"value\":\"5\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"sessionCount\",\"relation\":\"==\",\"value\":5.5}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"sessionCount\",\"relation\":\"starts_with\",\"value\":5}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"createdAt\",\"relation\":\"contains\",\"value\":5}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"tags\",\"relation\":\"starts_with\",\"value\":\"a\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"tags\",\"relation\":\">\",\"value\":\"a\"}]}]",
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"tags\",\"relation\":\"==\",\"value\":[\"a\"]}]}]",
        /* the second group broken after the first was read */
        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"}]},"
        "{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"},"
        "{\"field\":\"country\",\"relation\":\"==\",\"value\":null}]}]",
    };
    for (size_t i = 0; i < LEN(v1_bad); i++)
        expect_broken_v1(v1_bad[i]);
    const char *aud_bad[] = {
        "", "not json", "[]", "\"x\"", "null", "{\"a\":[]}", "{\"a\":\"x\"}", "{\"a\":4}",
        "{\"a\":null}", "{\"a\":[true]}", "{\"a\":[null]}", "{\"a\":[{\"x\":1}]}", "{\"a\":[[1]]}",
        "{\"a\":[1,\"b\",false]}",            /* broken after values were read */
        "{\"a\":[1],\"b\":[\"x\"],\"c\":{}}", /* broken after properties were read */
    };
    for (size_t i = 0; i < LEN(aud_bad); i++)
        expect_broken_aud(aud_bad[i]);
    /* the length is honoured: a valid prefix is not read past */
    const char *rule = one("country", "==", "\"US\"");
    ev_rule r;
    seg_error err;
    err_clear(&err);
    assert_int_equal(ev_rule_v1(rule, strlen(rule) - 1, &r, &err), -1);
    assert_int_equal(err.status, 500);
    err_clear(&err);
    assert_int_equal(ev_rule_aud("{\"a\":[1]}xyz", 9, &r, &err), 0);
    ev_rule_free(&r);
}

static void expect_broken_device(const cols *d)
{
    ev_device dev;
    seg_error err;
    err_clear(&err);
    assert_int_equal(ev_device_read(&dev, d->c, &err), -1);
    assert_int_equal(err.status, 500);
    assert_null(dev.tags);
    assert_null(dev.attributes);
    ev_device_free(&dev);
}

static void test_broken_devices(void **state)
{
    (void)state;
    const char *tags_bad[] = {"", "not json", "{}", "\"a\"", "[", "null"};
    for (size_t i = 0; i < LEN(tags_bad); i++) {
        cols d = with("tags", tags_bad[i]);
        d.c[VAL_FIELD_COUNT] = "{\"a\":[1]}";
        expect_broken_device(&d);
    }
    const char *attrs_bad[] = {"", "[]", "\"x\"", "{", "null", "4"};
    for (size_t i = 0; i < LEN(attrs_bad); i++) {
        cols d = with("tags", "[\"x\"]");
        d.c[VAL_FIELD_COUNT] = attrs_bad[i];
        expect_broken_device(&d);
    }
    const char *num_bad[] = {"", "x", "5x", " 5x", "1.5", "99999999999999999999", "-99999999999999999999"};
    for (size_t i = 0; i < LEN(num_bad); i++) {
        cols d = with("sessionCount", num_bad[i]);
        d.c[fi("tags")] = "[\"x\"]";
        d.c[VAL_FIELD_COUNT] = "{\"a\":[1]}";
        expect_broken_device(&d);
        cols l = with("createdAt", num_bad[i]);
        l.c[fi("tags")] = "[\"x\"]";
        expect_broken_device(&l);
    }
    /* what reads: texts borrowed, numbers parsed, NULL tags/attributes as empty */
    cols ok = with("createdAt", "-42");
    ok.c[fi("country")] = "US";
    ev_device dev;
    seg_error err;
    err_clear(&err);
    assert_int_equal(ev_device_read(&dev, ok.c, &err), 0);
    assert_ptr_equal(dev.text[fi("country")], ok.c[fi("country")]);
    assert_int_equal(dev.len[fi("country")], 2);
    assert_int_equal(dev.num[fi("createdAt")], -42);
    assert_null(dev.text[fi("email")]);
    assert_true(json_is_array(dev.tags));
    assert_int_equal(json_array_size(dev.tags), 0);
    assert_true(json_is_object(dev.attributes));
    assert_int_equal(json_object_size(dev.attributes), 0);
    ev_device_free(&dev);
    ev_device_free(&dev); /* safe twice */
}

/* No groups at all is no rule either: ev_rule_v1 refuses [] as it refuses a group without
 * constraints. Read, it would match every device in process while store/eval_sql.c writes
 * "()" for it, which is not SQL: the two evaluators would disagree. */
static void test_no_groups_refused(void **state)
{
    (void)state;
    ev_rule r;
    seg_error err;
    err_clear(&err);
    int rc = ev_rule_v1("[]", 2, &r, &err);
    if (rc == 0) {
        cols d = no_fields();
        bool m = match_rule(&r, &d);
        ev_rule_free(&r);
        fail_msg("ev_rule_v1(\"[]\") read a rule of %s groups that %s a device without fields",
                 "0", m ? "matches" : "does not match");
    }
    assert_int_equal(rc, -1);
    assert_int_equal(err.status, 500);
}

/* ------------------------------------------------------------------ status */

static void test_status(void **state)
{
    (void)state;
    const int64_t now = 1765033200000000; /* 2025-12-06T15:00:00Z */
    /* paused whatever the dates say */
    assert_string_equal(ev_status(false, false, 0, false, 0, false, now), "paused");
    assert_string_equal(ev_status(false, true, now + 1, false, 0, false, now), "paused");
    assert_string_equal(ev_status(false, false, 0, true, now - 1, false, now), "paused");
    assert_string_equal(ev_status(false, true, now - 10, true, now + 10, true, now), "paused");
    /* no dates: active */
    assert_string_equal(ev_status(true, false, 0, false, 0, false, now), "active");
    /* start: future → scheduled; now or past → active */
    assert_string_equal(ev_status(true, true, now + 1, false, 0, false, now), "scheduled");
    assert_string_equal(ev_status(true, true, now, false, 0, false, now), "active");
    assert_string_equal(ev_status(true, true, now - 1, false, 0, false, now), "active");
    /* end: now or past → expired unless extend; future → active */
    assert_string_equal(ev_status(true, false, 0, true, now, false, now), "expired");
    assert_string_equal(ev_status(true, false, 0, true, now - 1, false, now), "expired");
    assert_string_equal(ev_status(true, false, 0, true, now + 1, false, now), "active");
    assert_string_equal(ev_status(true, false, 0, true, now, true, now), "active");
    assert_string_equal(ev_status(true, false, 0, true, now - 1000000, true, now), "active");
    /* both */
    assert_string_equal(ev_status(true, true, now - 10, true, now + 10, false, now), "active");
    assert_string_equal(ev_status(true, true, now + 10, true, now + 20, false, now), "scheduled");
    assert_string_equal(ev_status(true, true, now - 20, true, now - 10, false, now), "expired");
    assert_string_equal(ev_status(true, true, now - 20, true, now - 10, true, now), "active");
    assert_string_equal(ev_status(true, true, now, true, now + 1, false, now), "active");
    /* has_start/has_end false: the dates given are not read */
    assert_string_equal(ev_status(true, false, now + 100, false, now - 100, false, now), "active");
    /* the clock reads microseconds since the epoch: after 2020, before 2100 */
    int64_t t = ev_now_us();
    assert_true(t > INT64_C(1577836800000000));
    assert_true(t < INT64_C(4102444800000000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_fields),   cmocka_unit_test(test_string_multibyte),
        cmocka_unit_test(test_int_fields),      cmocka_unit_test(test_long_fields),
        cmocka_unit_test(test_tags),            cmocka_unit_test(test_ne_negates_eq),
        cmocka_unit_test(test_groups),          cmocka_unit_test(test_audiences),
        cmocka_unit_test(test_audiences_no_rule), cmocka_unit_test(test_broken_rules),
        cmocka_unit_test(test_broken_devices),  cmocka_unit_test(test_no_groups_refused),
        cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
