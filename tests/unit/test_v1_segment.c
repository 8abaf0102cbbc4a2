/* Unit tests for validate/v1_segment: the /v1/segments create and PATCH body rules, the
 * canonical constraint JSON and the warnings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "validate/v1_segment.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- harness ---------------------------------------------------------------------------- */

typedef struct result {
    json_t *root;
    v1_segment_in in;
    seg_error err;
    int rc;
} result;

/* Parses body as the server does and validates it. Free with done(). */
static result *run(const char *body, bool patch)
{
    json_error_t je;
    result *r = test_calloc(1, sizeof *r);
    err_clear(&r->err);
    r->root = json_loads(body, JSON_REJECT_DUPLICATES, &je);
    if (!r->root)
        fail_msg("test body is not JSON (%s): %s", je.text, body);
    r->rc = val_v1_segment(r->root, patch, &r->in, &r->err);
    return r;
}

static void done(result *r)
{
    val_v1_segment_release(&r->in);
    json_decref(r->root);
    test_free(r);
}

static void dump_errors(const result *r)
{
    for (int i = 0; i < r->err.n_items; i++)
        print_message("  %s: %s\n", r->err.items[i].pointer, r->err.items[i].detail);
}

static void expect_ok(const result *r)
{
    if (r->rc != 0) {
        dump_errors(r);
        fail_msg("expected the body to be valid");
    }
    assert_int_equal(r->err.status, 0);
    assert_non_null(r->in.warnings);
    assert_true(json_is_array(r->in.warnings));
}

/* Expects exactly one problem, at pointer, whose detail contains needle (if not NULL). */
static void expect_one(const result *r, const char *pointer, const char *needle)
{
    if (r->rc != -1 || r->err.n_items != 1 || strcmp(r->err.items[0].pointer, pointer) != 0 ||
        (needle && !strstr(r->err.items[0].detail, needle))) {
        dump_errors(r);
        fail_msg("expected one problem at %s containing \"%s\"", pointer, needle ? needle : "");
    }
    assert_int_equal(r->err.status, 422);
    assert_string_equal(r->err.code, "validation_failed");
    assert_null(r->in.constraints_json);
    assert_null(r->in.warnings);
    assert_null(r->in.name);
}

/* Body with one AND group holding the given constraints (JSON text of the array items). */
static result *run_constraints(const char *items, bool patch)
{
    char body[8192];
    snprintf(body, sizeof body,
             "{%s\"name\":\"n\",\"constraints\":[{\"type\":\"AND\",\"constraints\":[%s]}]}",
             patch ? "\"id\":\"seg_jfeZ4NrGegjV9\"," : "", items);
    return run(body, patch);
}

static result *run_one(const char *field, const char *relation, const char *value_json)
{
    char item[4096];
    snprintf(item, sizeof item, "{\"field\":\"%s\",\"relation\":\"%s\",\"value\":%s}", field,
             relation, value_json);
    return run_constraints(item, false);
}

static size_t n_warnings(const result *r)
{
    return r->in.warnings ? json_array_size(r->in.warnings) : 0;
}

static void expect_warning(const result *r, size_t i, const char *code, const char *pointer,
                           const char *detail_needle)
{
    json_t *w = json_array_get(r->in.warnings, i);
    assert_non_null(w);
    assert_string_equal(json_string_value(json_object_get(w, "code")), code);
    assert_non_null(json_string_value(json_object_get(w, "title")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(w, "source"), "pointer")),
                        pointer);
    const char *detail = json_string_value(json_object_get(w, "detail"));
    assert_non_null(detail);
    if (detail_needle && !strstr(detail, detail_needle))
        fail_msg("warning detail \"%s\" lacks \"%s\"", detail, detail_needle);
}

/* ---- the relation x field-type matrix -------------------------------------------------- */

static const struct field_case {
    const char *field;
    const char *type;   /* as in the messages */
    const char *sample; /* a value valid for every relation but exists */
} field_cases[] = {
    {"country", "String", "\"US\""},
    {"language", "String", "\"eng\""},
    {"timezone", "String", "\"Europe/Warsaw\""},
    {"appVersion", "String", "\"1.3.54\""},
    {"appVersionCode", "Int", "5"},
    {"osApi", "String", "\"35\""},
    {"osVersion", "String", "\"13\""},
    {"customUserId", "String", "\"user-42\""},
    {"email", "String", "\"jane@example.com\""},
    {"type", "String", "\"phone\""},
    {"firstSession", "Long", "1771924492768"},
    {"lastSession", "Long", "1771924492782"},
    {"sessionCount", "Int", "12"},
    {"createdAt", "Long", "0"},
    {"id", "String", "\"d-1\""},
    {"pushToken", "String", "\"fcm:abc\""},
    {"unRegisteredAt", "Long", "1700000000000"},
    {"deviceModel", "String", "\"Galaxy S23\""},
    {"deviceManufacturer", "String", "\"Samsung\""},
    {"tags", "String Array", "\"vip\""},
};

static const char *const relations[] = {"exists", "==", "!=", "starts_with", "ends_with",
                                        "contains", ">", ">=", "<", "<="};

static bool allowed(const char *type, const char *rel)
{
    static const char *const string_rels = " exists == != starts_with ends_with contains ";
    static const char *const number_rels = " == != > >= < <= ";
    static const char *const tags_rels = " contains exists ";
    char needle[32];
    snprintf(needle, sizeof needle, " %s ", rel);
    if (strcmp(type, "String") == 0)
        return strstr(string_rels, needle) != NULL;
    if (strcmp(type, "String Array") == 0)
        return strstr(tags_rels, needle) != NULL;
    return strstr(number_rels, needle) != NULL;
}

static void test_relation_matrix(void **state)
{
    (void)state;
    int accepted = 0, refused = 0;
    for (size_t f = 0; f < ARRAY_LEN(field_cases); f++) {
        const struct field_case *fc = &field_cases[f];
        for (size_t i = 0; i < ARRAY_LEN(relations); i++) {
            const char *rel = relations[i];
            result *r = run_one(fc->field, rel, strcmp(rel, "exists") == 0 ? "true" : fc->sample);
            if (allowed(fc->type, rel)) {
                expect_ok(r);
                char want[512];
                snprintf(want, sizeof want,
                         "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"%s\",\"relation\":\"%s\",\"value\":%s}]}]",
                         fc->field, rel, strcmp(rel, "exists") == 0 ? "true" : fc->sample);
                assert_string_equal(r->in.constraints_json, want);
                accepted++;
            } else {
                char needle[200];
                snprintf(needle, sizeof needle,
                         "relation \"%s\" is not valid for field \"%s\" (%s): expected one of ", rel,
                         fc->field, fc->type);
                expect_one(r, "/constraints/0/constraints/0/relation", needle);
                refused++;
            }
            done(r);
        }
    }
    /* 14 String fields x 6 + 4 Int/Long x ... : every cell was visited */
    assert_int_equal(accepted + refused, (int)(ARRAY_LEN(field_cases) * ARRAY_LEN(relations)));
    assert_int_equal(accepted, 13 * 6 + 6 * 6 + 2);
}

static void test_relation_message_exact(void **state)
{
    (void)state;
    result *r = run_one("sessionCount", "starts_with", "\"1\"");
    expect_one(r, "/constraints/0/constraints/0/relation",
               "relation \"starts_with\" is not valid for field \"sessionCount\" (Int): expected one of ==, !=, >, >=, <, <=");
    assert_string_equal(r->err.items[0].detail,
                        "relation \"starts_with\" is not valid for field \"sessionCount\" (Int): expected one of ==, !=, >, >=, <, <=");
    done(r);

    r = run_one("tags", "==", "\"vip\"");
    expect_one(r, "/constraints/0/constraints/0/relation",
               "(String Array): expected one of contains, exists");
    done(r);

    r = run_one("country", "like", "\"US\"");
    expect_one(r, "/constraints/0/constraints/0/relation",
               "expected one of exists, ==, !=, starts_with, ends_with, contains");
    done(r);
}

/* Values of the wrong JSON type for each kind of cell. */
static void test_value_types(void **state)
{
    (void)state;
    static const struct {
        const char *field, *rel, *value, *needle;
    } cases[] = {
        {"sessionCount", "==", "\"5\"", "must be an integer, got string"},
        {"sessionCount", ">", "5.0", "must be an integer, got a real number"},
        {"sessionCount", "<", "1e3", "without a decimal point or exponent"},
        {"appVersionCode", "==", "true", "must be an integer, got boolean"},
        {"firstSession", "<=", "null", "must be an integer, got null"},
        {"lastSession", ">=", "1.5", "(Long) must be an integer, got a real number (1.5)"},
        {"sessionCount", "==", "5.0", "got a real number (5.0)"},
        {"deviceModel", "==", "5", "value for field \"deviceModel\" (String) must be a string, got integer"},
        {"osVersion", "==", "13", "must be a string, got integer"},
        {"email", "contains", "[\"a\"]", "must be a string, got array"},
        {"tags", "contains", "[\"vip\"]", "must be a string (one tag), got array"},
        {"tags", "exists", "\"yes\"", "value for relation \"exists\" must be a boolean"},
        {"country", "exists", "1", "must be a boolean (true: the field is set, false: it is not), got integer"},
        {"deviceModel", "==", "\"\"", "must not be empty: expected 1 to 1024 characters"},
        {"tags", "contains", "\"\"", "must not be empty"},
        {"deviceModel", "==", "{}", "must be a string, got object"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        result *r = run_one(cases[i].field, cases[i].rel, cases[i].value);
        expect_one(r, "/constraints/0/constraints/0/value", cases[i].needle);
        done(r);
    }
    /* exists false is fine too */
    result *r = run_one("pushToken", "exists", "false");
    expect_ok(r);
    done(r);
}

static void test_string_value_length(void **state)
{
    (void)state;
    char *v = malloc(2 * 1024 + 8);
    assert_non_null(v);
    /* 1024 characters of two bytes each: counted as characters, not bytes */
    strcpy(v, "\"");
    for (int i = 0; i < 1024; i++)
        strcat(v, "\xc3\xa9");
    strcat(v, "\"");
    result *r = run_one("customUserId", "==", v);
    expect_ok(r);
    done(r);

    strcpy(v, "\"");
    for (int i = 0; i < 1025; i++)
        strcat(v, "x");
    strcat(v, "\"");
    r = run_one("customUserId", "contains", v);
    expect_one(r, "/constraints/0/constraints/0/value",
               "is too long: expected at most 1024 characters, got 1025");
    done(r);
    free(v);
}

/* ---- numbers ---------------------------------------------------------------------------------- */

static void test_int32_bounds(void **state)
{
    (void)state;
    result *r = run_one("sessionCount", "==", "2147483647");
    expect_ok(r);
    done(r);
    r = run_one("sessionCount", ">=", "-2147483648");
    expect_ok(r);
    done(r);
    r = run_one("sessionCount", "==", "2147483648");
    expect_one(r, "/constraints/0/constraints/0/value",
               "value 2147483648 is out of range for field \"sessionCount\" (Int): expected -2147483648 to 2147483647");
    done(r);
    r = run_one("appVersionCode", "<", "-2147483649");
    expect_one(r, "/constraints/0/constraints/0/value", "out of range");
    done(r);
}

static void test_long_values(void **state)
{
    (void)state;
    result *r = run_one("firstSession", "<=", "9223372036854775807");
    expect_ok(r);
    done(r);
    r = run_one("createdAt", ">", "0");
    expect_ok(r);
    done(r);
    static const char *const time_fields[] = {"firstSession", "lastSession", "createdAt",
                                              "unRegisteredAt"};
    for (size_t i = 0; i < ARRAY_LEN(time_fields); i++) {
        r = run_one(time_fields[i], ">=", "-1");
        char needle[128];
        snprintf(needle, sizeof needle,
                 "value -1 for field \"%s\" is negative: expected a Unix timestamp in milliseconds",
                 time_fields[i]);
        expect_one(r, "/constraints/0/constraints/0/value", needle);
        done(r);
    }
}

/* ---- formats ------------------------------------------------------------------------------------ */

static const struct format_case {
    const char *field;
    const char *value; /* JSON string */
    bool ok;
    const char *needle; /* in the message when refused */
} format_cases[] = {
    {"country", "\"US\"", true, NULL},
    {"country", "\"PL\"", true, NULL},
    {"country", "\"UK\"", true, NULL},
    {"country", "\"GB\"", true, NULL},
    {"country", "\"XX\"", false, "value \"XX\" is not an ISO 3166-1 alpha-2 country code: expected two upper-case letters such as US, PL or UK"},
    {"country", "\"us\"", false, "country codes are upper case: expected \"US\""},
    {"country", "\"USA\"", false, "expected two upper-case letters"},
    {"language", "\"eng\"", true, NULL},
    {"language", "\"pol\"", true, NULL},
    {"language", "\"fre\"", true, NULL},
    {"language", "\"fra\"", true, NULL},
    {"language", "\"en\"", false, "is not an ISO 639-2 alpha-3 language code: expected a three-letter ISO 639-2 code such as eng or pol"},
    {"language", "\"xyz\"", false, "expected three lower-case letters such as eng or pol"},
    {"language", "\"ENG\"", false, "language codes are lower case: expected \"eng\""},
    {"timezone", "\"Europe/Warsaw\"", true, NULL},
    {"timezone", "\"UTC\"", true, NULL},
    {"timezone", "\"Europe/Kiev\"", true, NULL},
    {"timezone", "\"America/Argentina/Buenos_Aires\"", true, NULL},
    {"timezone", "\"Europe/Nowhere\"", false, "is not an IANA time zone name: expected an Area/Location name such as Europe/Warsaw, or UTC"},
    {"timezone", "\"europe/warsaw\"", false, "time zone names are case-sensitive: expected \"Europe/Warsaw\""},
    {"timezone", "\"+02:00\"", false, "is not an IANA time zone name"},
    {"type", "\"phone\"", true, NULL},
    {"type", "\"tablet\"", true, NULL},
    {"type", "\"smartwatch\"", true, NULL},
    {"type", "\"desktop\"", true, NULL},
    {"type", "\"laptop\"", false, "value \"laptop\" is not a device type: expected one of phone, tablet, smartwatch, desktop"},
    {"type", "\"Phone\"", false, "is not a device type"},
    {"email", "\"jane.doe@example.com\"", true, NULL},
    {"email", "\"first.last+tag@mail.example.co.uk\"", true, NULL},
    {"email", "\"X_Y-z@sub-domain.example.org\"", true, NULL},
    {"email", "\"user\"", false, "expected exactly one @"},
    {"email", "\"a@b@example.com\"", false, "expected exactly one @"},
    {"email", "\"@example.com\"", false, "expected 1 to 64 characters before the @, got 0"},
    {"email", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com\"", false, "got 65"},
    {"email", "\"john doe@example.com\"", false, "expected no spaces or control characters"},
    {"email", "\".jane@example.com\"", false, "no dot at the start or end"},
    {"email", "\"a@localhost\"", false, "expected a domain with a dot"},
    {"email", "\"a@exa mple.com\"", false, "labels of letters, digits and hyphens"},
    {"email", "\"a@example..com\"", false, "labels of letters, digits and hyphens"},
    {"email", "\"a@-example.com\"", false, "labels of letters, digits and hyphens"},
    {"email", "\"a@\"", false, "expected a domain of 1 to 253 characters"},
    {"appVersion", "\"13\"", true, NULL},
    {"appVersion", "\"1.3.54\"", true, NULL},
    {"appVersion", "\"1.0.1.7\"", true, NULL},
    {"osVersion", "\"1.0.1\"", true, NULL},
    {"osVersion", "\"1.0.1.2.3\"", false, "value \"1.0.1.2.3\" is not a version: expected 1 to 4 numbers separated by dots, such as 13, 1.0.1 or 1.3.54"},
    {"osVersion", "\"1..2\"", false, "is not a version"},
    {"osVersion", "\"v13\"", false, "is not a version"},
    {"appVersion", "\"1.2.\"", false, "is not a version"},
    {"appVersion", "\"1.2-beta\"", false, "is not a version"},
    {"osApi", "\"35\"", true, NULL},
    {"osApi", "\"35a\"", false, "value \"35a\" is not an OS API level: expected digits only, such as 35"},
    {"osApi", "\"-1\"", false, "expected digits only"},
};

static void test_formats(void **state)
{
    (void)state;
    static const char *const rels[] = {"==", "!=", "EQUALS", "not_equals"};
    for (size_t i = 0; i < ARRAY_LEN(format_cases); i++) {
        const struct format_case *fc = &format_cases[i];
        for (size_t k = 0; k < ARRAY_LEN(rels); k++) {
            result *r = run_one(fc->field, rels[k], fc->value);
            if (fc->ok)
                expect_ok(r);
            else
                expect_one(r, "/constraints/0/constraints/0/value", fc->needle);
            done(r);
        }
    }
}

/* Formats bind == and != only: a prefix of a country code is a fine starts_with. */
static void test_formats_only_for_equality(void **state)
{
    (void)state;
    static const struct {
        const char *field, *rel, *value;
    } cases[] = {
        {"country", "starts_with", "\"U\""}, {"language", "ends_with", "\"ng\""},
        {"timezone", "starts_with", "\"Europe/\""}, {"email", "ends_with", "\"@example.com\""},
        {"osVersion", "starts_with", "\"13.\""}, {"type", "contains", "\"phon\""},
        {"osApi", "contains", "\"3\""},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        result *r = run_one(cases[i].field, cases[i].rel, cases[i].value);
        expect_ok(r);
        done(r);
    }
}

/* ---- normalisation ----------------------------------------------------------------------------- */

static void test_aliases(void **state)
{
    (void)state;
    static const struct {
        const char *field, *given, *canonical, *value;
    } cases[] = {
        {"deviceModel", "EQUALS", "==", "\"x\""},
        {"deviceModel", "equals", "==", "\"x\""},
        {"deviceModel", "Not_Equals", "!=", "\"x\""},
        {"deviceModel", "STARTS_WITH", "starts_with", "\"x\""},
        {"deviceModel", "ends_with", "ends_with", "\"x\""},
        {"deviceModel", "CONTAINS", "contains", "\"x\""},
        {"deviceModel", "EXISTS", "exists", "true"},
        {"sessionCount", "greater_than", ">", "1"},
        {"sessionCount", "GREATER_THAN_OR_EQUALS", ">=", "1"},
        {"sessionCount", "Less_Than", "<", "1"},
        {"sessionCount", "LESS_THAN_OR_EQUALS", "<=", "1"},
        {"sessionCount", "<=", "<=", "1"},
        {"tags", "Contains", "contains", "\"vip\""},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        result *r = run_one(cases[i].field, cases[i].given, cases[i].value);
        expect_ok(r);
        char want[256];
        snprintf(want, sizeof want,
                 "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"%s\",\"relation\":\"%s\",\"value\":%s}]}]",
                 cases[i].field, cases[i].canonical, cases[i].value);
        assert_string_equal(r->in.constraints_json, want);
        done(r);
    }

    /* group types in any case; key order canonical whatever the input order */
    result *r = run("{\"constraints\":[{\"constraints\":[{\"value\":3,\"relation\":\"greater_than\",\"field\":\"sessionCount\"}],\"type\":\"and\"},"
                    "{\"type\":\"Or\",\"constraints\":[{\"relation\":\"exists\",\"field\":\"tags\",\"value\":false}]}],\"name\":\"x\"}",
                    false);
    expect_ok(r);
    assert_string_equal(r->in.constraints_json,
                        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"sessionCount\",\"relation\":\">\",\"value\":3}]},"
                        "{\"type\":\"OR\",\"constraints\":[{\"field\":\"tags\",\"relation\":\"exists\",\"value\":false}]}]");
    done(r);

    r = run("{\"name\":\"x\",\"constraints\":[{\"type\":\"XOR\",\"constraints\":[{\"field\":\"tags\",\"relation\":\"exists\",\"value\":true}]}]}",
            false);
    expect_one(r, "/constraints/0/type", "group type \"XOR\" is not valid: expected AND or OR");
    done(r);
}

/* ---- the documentation's examples --------------------------------------------------------------- */

static const char seed_update_example[] =
    "{\"id\":\"seg_jfeZ4NrGegjV9\",\"constraints\":"
    "[\n"
    "    {\n"
    "        \"type\": \"AND\",\n"
    "        \"constraints\": [\n"
    "        { \"field\": \"deviceManufacturer\", \"value\": \"Xiaomi\", \"relation\": \"==\" },\n"
    "        { \"field\": \"deviceModel\", \"value\": \"Redmi Note XXXXX\", \"relation\": \"==\" }\n"
    "        ]\n"
    "    },\n"
    "    {\n"
    "        \"type\": \"AND\",\n"
    "        \"constraints\": [\n"
    "        { \"field\": \"osVersion\", \"value\": \"13\", \"relation\": \"EQUALS\" }\n"
    "        ]\n"
    "    }\n"
    "]}";

static const char seed_example_1[] =
    "{\"name\":\"Recent\",\"constraints\":"
    "[\n"
    "    {\n"
    "        \"type\": \"AND\",\n"
    "        \"constraints\": [\n"
    "        {\n"
    "            \"field\": \"firstSession\",\n"
    "            \"value\": 1771924492768,\n"
    "            \"relation\": \"<=\"\n"
    "        }\n"
    "        ]\n"
    "    },\n"
    "    {\n"
    "        \"type\": \"AND\",\n"
    "        \"constraints\": [\n"
    "        {\n"
    "            \"field\": \"lastSession\",\n"
    "            \"value\": 1771924492782,\n"
    "            \"relation\": \">=\"\n"
    "        }\n"
    "        ]\n"
    "    }\n"
    "]}";

static const char seed_example_2[] =
    "{\"name\":\"Phones\",\"constraints\":"
    "[\n"
    "    {\n"
    "        \"type\": \"AND\",\n"
    "        \"constraints\": \n"
    "        [\n"
    "            {\n"
    "                \"field\": \"deviceModel\",\n"
    "                \"value\": \"Redmi Note XXXXX\",\n"
    "                \"relation\": \"==\"\n"
    "            },\n"
    "            {\n"
    "                \"field\": \"deviceModel\",\n"
    "                \"value\": \"Galaxy S23\",\n"
    "                \"relation\": \"==\"\n"
    "            }\n"
    "        ]\n"
    "    },\n"
    "    {\n"
    "        \"type\": \"AND\",\n"
    "        \"constraints\": \n"
    "        [\n"
    "            {\n"
    "                \"field\": \"deviceManufacturer\",\n"
    "                \"value\": \"Xiaomi\",\n"
    "                \"relation\": \"==\"\n"
    "            },\n"
    "            {\n"
    "                \"field\": \"deviceManufacturer\",\n"
    "                \"value\": \"Samsung\",\n"
    "                \"relation\": \"==\"\n"
    "            },\n"
    "            {\n"
    "                \"field\": \"type\",\n"
    "                \"value\": \"phone\",\n"
    "                \"relation\": \"==\"\n"
    "            }\n"
    "        ]\n"
    "    }\n"
    "]}";

static void test_seed_update_example(void **state)
{
    (void)state;
    result *r = run(seed_update_example, true);
    expect_ok(r);
    assert_string_equal(r->in.id, "seg_jfeZ4NrGegjV9");
    assert_null(r->in.name);
    assert_false(r->in.has_description);
    assert_string_equal(r->in.constraints_json,
                        "[{\"type\":\"AND\",\"constraints\":["
                        "{\"field\":\"deviceManufacturer\",\"relation\":\"==\",\"value\":\"Xiaomi\"},"
                        "{\"field\":\"deviceModel\",\"relation\":\"==\",\"value\":\"Redmi Note XXXXX\"}]},"
                        "{\"type\":\"AND\",\"constraints\":["
                        "{\"field\":\"osVersion\",\"relation\":\"==\",\"value\":\"13\"}]}]");
    assert_int_equal(n_warnings(r), 0);
    done(r);
}

static void test_seed_example_1(void **state)
{
    (void)state;
    result *r = run(seed_example_1, false);
    expect_ok(r);
    assert_string_equal(r->in.name, "Recent");
    assert_null(r->in.id);
    assert_string_equal(r->in.constraints_json,
                        "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"firstSession\",\"relation\":\"<=\",\"value\":1771924492768}]},"
                        "{\"type\":\"AND\",\"constraints\":[{\"field\":\"lastSession\",\"relation\":\">=\",\"value\":1771924492782}]}]");
    assert_int_equal(n_warnings(r), 0);
    done(r);
}

static void test_seed_example_2_warns(void **state)
{
    (void)state;
    result *r = run(seed_example_2, false);
    expect_ok(r);
    assert_non_null(r->in.constraints_json);
    assert_int_equal(n_warnings(r), 2);
    expect_warning(r, 0, "unsatisfiable_group", "/constraints/0/constraints/1", NULL);
    expect_warning(r, 1, "unsatisfiable_group", "/constraints/1/constraints/1",
                   "field \"deviceManufacturer\" cannot equal both \"Xiaomi\" and \"Samsung\"");
    json_t *w = json_array_get(r->in.warnings, 0);
    assert_string_equal(json_string_value(json_object_get(w, "detail")),
                        "field \"deviceModel\" cannot equal both \"Redmi Note XXXXX\" and \"Galaxy S23\" in an AND group; this group never matches");
    assert_string_equal(json_string_value(json_object_get(w, "title")), "Group never matches");
    /* the shape is exactly code, title, detail, source{pointer} */
    assert_int_equal(json_object_size(w), 4);
    assert_int_equal(json_object_size(json_object_get(w, "source")), 1);
    done(r);
}

/* ---- limits --------------------------------------------------------------------------------------- */

static char *body_with(size_t groups, size_t per_group)
{
    size_t cap = 256 + groups * (64 + per_group * 80);
    char *b = malloc(cap);
    assert_non_null(b);
    size_t n = (size_t)snprintf(b, cap, "{\"name\":\"limits\",\"constraints\":[");
    for (size_t g = 0; g < groups; g++) {
        n += (size_t)snprintf(b + n, cap - n, "%s{\"type\":\"OR\",\"constraints\":[", g ? "," : "");
        for (size_t c = 0; c < per_group; c++)
            n += (size_t)snprintf(b + n, cap - n,
                                  "%s{\"field\":\"sessionCount\",\"relation\":\"==\",\"value\":%zu}",
                                  c ? "," : "", c);
        n += (size_t)snprintf(b + n, cap - n, "]}");
    }
    snprintf(b + n, cap - n, "]}");
    return b;
}

static void test_limits(void **state)
{
    (void)state;
    char *b = body_with(10, 10);
    result *r = run(b, false);
    expect_ok(r);
    assert_int_equal(n_warnings(r), 0);
    done(r);
    free(b);

    b = body_with(11, 1);
    r = run(b, false);
    expect_one(r, "/constraints", "\"constraints\" must contain at most 10 constraint groups, got 11");
    done(r);
    free(b);

    b = body_with(1, 11);
    r = run(b, false);
    expect_one(r, "/constraints/0/constraints",
               "\"constraints\" must contain at most 10 constraints, got 11");
    done(r);
    free(b);

    r = run("{\"name\":\"x\",\"constraints\":[]}", false);
    expect_one(r, "/constraints", "must not be empty: expected 1 to 10 constraint groups");
    done(r);

    r = run("{\"name\":\"x\",\"constraints\":[{\"type\":\"AND\",\"constraints\":[]}]}", false);
    expect_one(r, "/constraints/0/constraints", "must not be empty: expected 1 to 10 constraints");
    done(r);

    /* errors beyond the limit are still reported, with their own pointers */
    r = run("{\"name\":\"x\",\"constraints\":[{\"type\":\"AND\",\"constraints\":["
            "{\"field\":\"a\",\"relation\":\"==\",\"value\":1},{\"field\":\"a\",\"relation\":\"==\",\"value\":1},"
            "{\"field\":\"a\",\"relation\":\"==\",\"value\":1},{\"field\":\"a\",\"relation\":\"==\",\"value\":1},"
            "{\"field\":\"a\",\"relation\":\"==\",\"value\":1},{\"field\":\"a\",\"relation\":\"==\",\"value\":1},"
            "{\"field\":\"a\",\"relation\":\"==\",\"value\":1},{\"field\":\"a\",\"relation\":\"==\",\"value\":1},"
            "{\"field\":\"a\",\"relation\":\"==\",\"value\":1},{\"field\":\"a\",\"relation\":\"==\",\"value\":1},"
            "{\"field\":\"a\",\"relation\":\"==\",\"value\":1}]}]}",
            false);
    assert_int_equal(r->rc, -1);
    assert_int_equal(r->err.n_items, 12);
    assert_string_equal(r->err.items[0].pointer, "/constraints/0/constraints");
    assert_string_equal(r->err.items[11].pointer, "/constraints/0/constraints/10/field");
    done(r);
}

/* ---- many problems at once, unknown keys ------------------------------------------------------------- */

static void test_many_errors(void **state)
{
    (void)state;
    result *r = run("{\"name\":\"  \",\"description\":7,\"colour\":\"red\",\"constraints\":["
                    "{\"type\":\"AND\",\"constraints\":["
                    "{\"field\":\"sessionCount\",\"relation\":\"==\",\"value\":1},"
                    "{\"field\":\"sessionCount\",\"relation\":\"starts_with\",\"value\":\"1\"}]},"
                    "{\"type\":\"NAND\",\"extra\":1,\"constraints\":["
                    "{\"field\":\"colour\",\"relation\":\"==\",\"value\":\"red\"},"
                    "{\"field\":\"country\",\"relation\":\"==\",\"value\":\"XX\",\"note\":\"x\"},"
                    "{\"relation\":\"==\"},"
                    "\"nope\"]}]}",
                    false);
    static const char *const want[] = {
        "/colour",
        "/name",
        "/description",
        "/constraints/0/constraints/1/relation",
        "/constraints/1/extra",
        "/constraints/1/type",
        "/constraints/1/constraints/0/field",
        "/constraints/1/constraints/1/note",
        "/constraints/1/constraints/1/value",
        "/constraints/1/constraints/2/field",
        "/constraints/1/constraints/2/value",
        "/constraints/1/constraints/3",
    };
    if (r->rc != -1 || r->err.n_items != (int)ARRAY_LEN(want)) {
        dump_errors(r);
        fail_msg("expected %zu problems", ARRAY_LEN(want));
    }
    for (size_t i = 0; i < ARRAY_LEN(want); i++)
        assert_string_equal(r->err.items[i].pointer, want[i]);
    assert_string_equal(r->err.items[0].detail,
                        "unknown field \"colour\": expected id, name, description, constraints");
    assert_string_equal(r->err.items[1].detail,
                        "\"name\" must not be blank: expected 1 to 255 characters, not only white space");
    assert_true(strstr(r->err.items[4].detail, "unknown field \"extra\" in a constraint group: expected type, constraints"));
    assert_true(strstr(r->err.items[6].detail, "field \"colour\" is not a device field: expected one of country, language,"));
    assert_true(strstr(r->err.items[7].detail, "unknown field \"note\" in a constraint: expected field, relation, value"));
    assert_true(strstr(r->err.items[9].detail, "\"field\" is required"));
    assert_true(strstr(r->err.items[10].detail, "\"value\" is required"));
    assert_true(strstr(r->err.items[11].detail, "a constraint must be an object"));
    assert_int_equal(r->err.status, 422);
    assert_string_equal(r->err.code, "validation_failed");
    done(r);
}

static void test_unknown_field_message_fits(void **state)
{
    (void)state;
    result *r = run_one("foo", "==", "1");
    expect_one(r, "/constraints/0/constraints/0/field", "field \"foo\" is not a device field: expected one of country");
    const char *d = r->err.items[0].detail;
    assert_true(strlen(d) < ERR_DETAIL_MAX - 1); /* not cut by the fixed buffer */
    assert_non_null(strstr(d, " more"));
    done(r);

    r = run_one("SessionCount", "==", "1");
    expect_one(r, "/constraints/0/constraints/0/field", "names are case-sensitive, expected \"sessionCount\"");
    done(r);

    /* the relation of an unknown field is still checked for being a relation at all */
    r = run_one("foo", "like", "1");
    assert_int_equal(r->err.n_items, 2);
    assert_string_equal(r->err.items[1].pointer, "/constraints/0/constraints/0/relation");
    done(r);
}

/* Long or multi-byte client text is quoted cut at a character boundary, so every detail
 * stays valid UTF-8 (json_string refuses anything else). */
static void test_messages_stay_utf8(void **state)
{
    (void)state;
    char body[4096], field[600] = "";
    for (int i = 0; i < 100; i++)
        strcat(field, "\xe2\x82\xac"); /* euro sign */
    snprintf(body, sizeof body,
             "{\"name\":\"x\",\"constraints\":[{\"type\":\"%s\",\"constraints\":[{\"field\":\"%s\",\"relation\":\"%s\",\"value\":1}]}]}",
             field, field, field);
    result *r = run(body, false);
    assert_int_equal(r->rc, -1);
    assert_int_equal(r->err.n_items, 3);
    for (int i = 0; i < r->err.n_items; i++) {
        json_t *s = json_string(r->err.items[i].detail);
        assert_non_null(s);
        json_decref(s);
        assert_non_null(strstr(r->err.items[i].detail, "...\""));
    }
    done(r);

    r = run_one("deviceModel", "==", "\"a\\\"b\\\\c\\u0001\"");
    expect_ok(r);
    done(r);
}

/* ---- top level, create and PATCH ----------------------------------------------------------------------- */

static void test_create_rules(void **state)
{
    (void)state;
    result *r = run("{}", false);
    assert_int_equal(r->rc, -1);
    assert_int_equal(r->err.n_items, 2);
    assert_string_equal(r->err.items[0].pointer, "/name");
    assert_string_equal(r->err.items[0].detail, "\"name\" is required: expected 1 to 255 characters");
    assert_string_equal(r->err.items[1].pointer, "/constraints");
    assert_true(strstr(r->err.items[1].detail, "\"constraints\" is required"));
    done(r);

    /* null is "no description" on create; name and constraints may not be null */
    r = run("{\"name\":null,\"description\":null,\"constraints\":null}", false);
    assert_int_equal(r->err.n_items, 2);
    assert_string_equal(r->err.items[0].pointer, "/name");
    assert_true(strstr(r->err.items[0].detail, "must be a string, got null"));
    assert_string_equal(r->err.items[1].pointer, "/constraints");
    assert_true(strstr(r->err.items[1].detail, "must be an array of 1 to 10 constraint groups, got null"));
    done(r);

    /* read-only keys of a fetched segment are ignored, whatever they hold */
    r = run("{\"id\":42,\"createdAt\":\"2024-01-01\",\"updatedAt\":{\"x\":1},\"name\":\"Sent back\","
            "\"description\":\"d\",\"constraints\":[{\"type\":\"AND\",\"constraints\":[{\"field\":\"tags\",\"relation\":\"contains\",\"value\":\"vip\"}]}]}",
            false);
    expect_ok(r);
    assert_null(r->in.id);
    assert_string_equal(r->in.name, "Sent back");
    assert_true(r->in.has_description);
    assert_string_equal(r->in.description, "d");
    done(r);

    r = run("{\"name\":\"x\",\"description\":null,\"constraints\":[{\"type\":\"AND\",\"constraints\":[{\"field\":\"tags\",\"relation\":\"exists\",\"value\":true}]}]}",
            false);
    expect_ok(r);
    assert_false(r->in.has_description);
    assert_null(r->in.description);
    done(r);

    r = run("{\"name\":5,\"constraints\":{}}", false);
    assert_int_equal(r->err.n_items, 2);
    assert_true(strstr(r->err.items[0].detail, "\"name\" must be a string, got integer"));
    assert_true(strstr(r->err.items[1].detail, "must be an array of 1 to 10 constraint groups, got object"));
    done(r);
}

static void test_name_and_description_limits(void **state)
{
    (void)state;
    char body[20000], text[16400];
    /* 255 multi-byte characters: fine; 256: too long */
    text[0] = '\0';
    for (int i = 0; i < 255; i++)
        strcat(text, "\xc5\x82"); /* l with stroke */
    snprintf(body, sizeof body, "{\"id\":\"seg_jfeZ4NrGegjV9\",\"name\":\"%s\"}", text);
    result *r = run(body, true);
    expect_ok(r);
    done(r);
    strcat(text, "x");
    snprintf(body, sizeof body, "{\"id\":\"seg_jfeZ4NrGegjV9\",\"name\":\"%s\"}", text);
    r = run(body, true);
    expect_one(r, "/name", "\"name\" is too long: expected at most 255 characters, got 256");
    done(r);

    memset(text, 'd', 4096);
    text[4096] = '\0';
    snprintf(body, sizeof body, "{\"id\":\"seg_jfeZ4NrGegjV9\",\"description\":\"%s\"}", text);
    r = run(body, true);
    expect_ok(r);
    assert_true(r->in.has_description);
    done(r);
    strcat(text, "d");
    snprintf(body, sizeof body, "{\"id\":\"seg_jfeZ4NrGegjV9\",\"description\":\"%s\"}", text);
    r = run(body, true);
    expect_one(r, "/description", "expected at most 4096 characters, got 4097");
    done(r);

    r = run("{\"id\":\"seg_jfeZ4NrGegjV9\",\"description\":\"\"}", true);
    expect_ok(r);
    assert_true(r->in.has_description);
    assert_string_equal(r->in.description, "");
    done(r);

    r = run("{\"id\":\"seg_jfeZ4NrGegjV9\",\"name\":\"\"}", true);
    expect_one(r, "/name", "must not be blank");
    done(r);
}

static void test_patch_rules(void **state)
{
    (void)state;
    result *r = run("{\"name\":\"x\"}", true);
    expect_one(r, "/id", "\"id\" is required when updating a segment: expected a segment id such as seg_jfeZ4NrGegjV9");
    done(r);

    r = run("{\"id\":null}", true);
    expect_one(r, "/id", "\"id\" is required");
    done(r);

    r = run("{\"id\":17}", true);
    expect_one(r, "/id", "\"id\" must be a string, got integer");
    done(r);

    static const char *const bad_ids[] = {"seg_jfeZ4NrGegjV", "seg_jfeZ4NrGegjV9x", "SEG_jfeZ4NrGegjV9",
                                          "seg-jfeZ4NrGegjV9", "seg_jfeZ4NrGeg_V9", ""};
    for (size_t i = 0; i < ARRAY_LEN(bad_ids); i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"id\":\"%s\"}", bad_ids[i]);
        r = run(body, true);
        expect_one(r, "/id", "is not a segment id: expected \"seg_\" followed by 13 letters or digits");
        done(r);
    }

    /* nulls mean "not updated"; only the id is required */
    r = run("{\"id\":\"seg_jfeZ4NrGegjV9\",\"name\":null,\"description\":null,\"constraints\":null}", true);
    expect_ok(r);
    assert_string_equal(r->in.id, "seg_jfeZ4NrGegjV9");
    assert_null(r->in.name);
    assert_null(r->in.description);
    assert_false(r->in.has_description);
    assert_null(r->in.constraints_json);
    assert_int_equal(n_warnings(r), 0);
    done(r);

    r = run("{\"id\":\"seg_jfeZ4NrGegjV9\"}", true);
    expect_ok(r);
    done(r);

    /* constraints sent on PATCH are checked like on create */
    r = run_constraints("{\"field\":\"sessionCount\",\"relation\":\"==\",\"value\":2147483648}", true);
    expect_one(r, "/constraints/0/constraints/0/value", "out of range");
    done(r);

    r = run("{\"id\":\"seg_jfeZ4NrGegjV9\",\"constraints\":[]}", true);
    expect_one(r, "/constraints", "must not be empty");
    done(r);

    r = run("{\"id\":\"seg_jfeZ4NrGegjV9\",\"name\":\"New name\",\"bogus\":true}", true);
    expect_one(r, "/bogus", "unknown field \"bogus\"");
    done(r);
}

static void test_val_v1_id(void **state)
{
    (void)state;
    assert_true(val_v1_id("seg_jfeZ4NrGegjV9"));
    assert_true(val_v1_id("seg_jfe34NrGegjL3"));
    assert_true(val_v1_id("seg_0000000000000"));
    assert_false(val_v1_id(NULL));
    assert_false(val_v1_id("seg_"));
    assert_false(val_v1_id("seg_jfeZ4NrGegjV"));
    assert_false(val_v1_id("seg_jfeZ4NrGegjV99"));
    assert_false(val_v1_id("seg_jfeZ4NrGegj\xc3\xa9"));
    assert_false(val_v1_id("xeg_jfeZ4NrGegjV9"));
}

/* ---- warnings --------------------------------------------------------------------------------------- */

static void test_duplicate_warning(void **state)
{
    (void)state;
    result *r = run_constraints("{\"field\":\"deviceModel\",\"relation\":\"==\",\"value\":\"Pixel 9\"},"
                                "{\"field\":\"country\",\"relation\":\"==\",\"value\":\"PL\"},"
                                "{\"field\":\"deviceModel\",\"relation\":\"EQUALS\",\"value\":\"Pixel 9\"}",
                                false);
    expect_ok(r);
    assert_int_equal(n_warnings(r), 1);
    expect_warning(r, 0, "duplicate_constraint", "/constraints/0/constraints/2",
                   "constraint repeats /constraints/0/constraints/0 (deviceModel == \"Pixel 9\")");
    done(r);

    /* different relation or value: not a duplicate */
    r = run_constraints("{\"field\":\"tags\",\"relation\":\"contains\",\"value\":\"a\"},"
                        "{\"field\":\"tags\",\"relation\":\"contains\",\"value\":\"b\"},"
                        "{\"field\":\"tags\",\"relation\":\"exists\",\"value\":true}",
                        false);
    expect_ok(r);
    assert_int_equal(n_warnings(r), 0);
    done(r);

    /* duplicates across groups are fine; inside an OR group they are reported */
    r = run("{\"name\":\"x\",\"constraints\":["
            "{\"type\":\"OR\",\"constraints\":[{\"field\":\"sessionCount\",\"relation\":\">\",\"value\":1},{\"field\":\"sessionCount\",\"relation\":\">\",\"value\":1}]},"
            "{\"type\":\"AND\",\"constraints\":[{\"field\":\"sessionCount\",\"relation\":\">\",\"value\":1}]}]}",
            false);
    expect_ok(r);
    assert_int_equal(n_warnings(r), 1);
    expect_warning(r, 0, "duplicate_constraint", "/constraints/0/constraints/1", NULL);
    done(r);
}

static void test_unsatisfiable_groups(void **state)
{
    (void)state;
    static const struct {
        const char *items;
        const char *pointer; /* NULL: no warning */
        const char *needle;
    } cases[] = {
        {"{\"field\":\"sessionCount\",\"relation\":\">\",\"value\":10},{\"field\":\"sessionCount\",\"relation\":\"<\",\"value\":5}",
         "/constraints/0/constraints/1",
         "field \"sessionCount\" cannot be > 10 and < 5 at once in an AND group; this group never matches"},
        {"{\"field\":\"sessionCount\",\"relation\":\"==\",\"value\":3},{\"field\":\"sessionCount\",\"relation\":\"!=\",\"value\":3}",
         "/constraints/0/constraints/1", "field \"sessionCount\" cannot both equal and not equal 3"},
        {"{\"field\":\"sessionCount\",\"relation\":\"!=\",\"value\":3},{\"field\":\"sessionCount\",\"relation\":\"==\",\"value\":3}",
         "/constraints/0/constraints/1", "cannot both equal and not equal 3"},
        {"{\"field\":\"firstSession\",\"relation\":\">=\",\"value\":100},{\"field\":\"firstSession\",\"relation\":\"<=\",\"value\":100}",
         NULL, NULL},
        {"{\"field\":\"firstSession\",\"relation\":\">\",\"value\":100},{\"field\":\"firstSession\",\"relation\":\"<=\",\"value\":100}",
         "/constraints/0/constraints/1", "cannot be > 100 and <= 100 at once"},
        {"{\"field\":\"sessionCount\",\"relation\":\">=\",\"value\":1},{\"field\":\"sessionCount\",\"relation\":\"<=\",\"value\":2},"
         "{\"field\":\"sessionCount\",\"relation\":\"!=\",\"value\":1},{\"field\":\"sessionCount\",\"relation\":\"!=\",\"value\":2}",
         "/constraints/0/constraints/3", "no value of field \"sessionCount\" is left"},
        {"{\"field\":\"sessionCount\",\"relation\":\">=\",\"value\":1},{\"field\":\"sessionCount\",\"relation\":\"<=\",\"value\":3},"
         "{\"field\":\"sessionCount\",\"relation\":\"!=\",\"value\":1},{\"field\":\"sessionCount\",\"relation\":\"!=\",\"value\":2}",
         NULL, NULL},
        {"{\"field\":\"sessionCount\",\"relation\":\">\",\"value\":2147483647}",
         "/constraints/0/constraints/0", "no Int value of field \"sessionCount\" is > 2147483647"},
        {"{\"field\":\"lastSession\",\"relation\":\">\",\"value\":9223372036854775807}",
         "/constraints/0/constraints/0", "no Long value of field \"lastSession\""},
        {"{\"field\":\"sessionCount\",\"relation\":\"==\",\"value\":3},{\"field\":\"sessionCount\",\"relation\":\">\",\"value\":5}",
         "/constraints/0/constraints/1", "cannot be > 5 and == 3 at once"},
        {"{\"field\":\"country\",\"relation\":\"==\",\"value\":\"PL\"},{\"field\":\"country\",\"relation\":\"!=\",\"value\":\"PL\"}",
         "/constraints/0/constraints/1", "cannot both equal and not equal \"PL\""},
        {"{\"field\":\"country\",\"relation\":\"==\",\"value\":\"PL\"},{\"field\":\"country\",\"relation\":\"!=\",\"value\":\"DE\"}",
         NULL, NULL},
        {"{\"field\":\"email\",\"relation\":\"exists\",\"value\":true},{\"field\":\"email\",\"relation\":\"exists\",\"value\":false}",
         "/constraints/0/constraints/1", "cannot both exist and not exist"},
        {"{\"field\":\"email\",\"relation\":\"exists\",\"value\":false},{\"field\":\"email\",\"relation\":\"==\",\"value\":\"a@example.com\"}",
         "/constraints/0/constraints/1", "cannot be missing and equal \"a@example.com\""},
        {"{\"field\":\"deviceModel\",\"relation\":\"==\",\"value\":\"A\"},{\"field\":\"deviceManufacturer\",\"relation\":\"==\",\"value\":\"B\"}",
         NULL, NULL},
        /* one warning per field, however many contradictions follow */
        {"{\"field\":\"type\",\"relation\":\"==\",\"value\":\"phone\"},{\"field\":\"type\",\"relation\":\"==\",\"value\":\"tablet\"},"
         "{\"field\":\"type\",\"relation\":\"==\",\"value\":\"desktop\"}",
         "/constraints/0/constraints/1", "cannot equal both \"phone\" and \"tablet\""},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        result *r = run_constraints(cases[i].items, false);
        expect_ok(r);
        if (!cases[i].pointer) {
            assert_int_equal(n_warnings(r), 0);
        } else {
            if (n_warnings(r) != 1)
                fail_msg("case %zu: expected one warning, got %zu", i, n_warnings(r));
            expect_warning(r, 0, "unsatisfiable_group", cases[i].pointer, cases[i].needle);
        }
        done(r);
    }

    /* OR groups are never unsatisfiable by these rules */
    result *r = run("{\"name\":\"x\",\"constraints\":[{\"type\":\"OR\",\"constraints\":["
                    "{\"field\":\"sessionCount\",\"relation\":\">\",\"value\":10},{\"field\":\"sessionCount\",\"relation\":\"<\",\"value\":5}]}]}",
                    false);
    expect_ok(r);
    assert_int_equal(n_warnings(r), 0);
    done(r);
}

/* ---- misc -------------------------------------------------------------------------------------------- */

static void test_not_an_object(void **state)
{
    (void)state;
    seg_error err;
    v1_segment_in in;
    err_clear(&err);
    json_t *arr = json_array();
    assert_int_equal(val_v1_segment(arr, false, &in, &err), -1);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.items[0].pointer, "");
    assert_null(in.warnings);
    json_decref(arr);

    err_clear(&err);
    assert_int_equal(val_v1_segment(NULL, true, &in, &err), -1);
    assert_int_equal(err.n_items, 1);
}

static void test_release_zeroed(void **state)
{
    (void)state;
    v1_segment_in in;
    memset(&in, 0, sizeof in);
    val_v1_segment_release(&in);
    val_v1_segment_release(&in);
    val_v1_segment_release(NULL);
}

/* A body that is all mistakes stops at ERR_MAX_ITEMS and says so. */
static void test_error_cap(void **state)
{
    (void)state;
    static char b[16 * 1024];
    size_t n = (size_t)snprintf(b, sizeof b, "{\"name\":\"x\",\"constraints\":[");
    for (int g = 0; g < 200; g++)
        n += (size_t)snprintf(b + n, sizeof b - n, "%s{\"type\":1,\"constraints\":[{\"bad\":1}]}",
                              g ? "," : "");
    snprintf(b + n, sizeof b - n, "]}");
    assert_true(strlen(b) < sizeof b - 1);
    result *r = run(b, false);
    assert_int_equal(r->rc, -1);
    assert_int_equal(r->err.n_items, ERR_MAX_ITEMS);
    assert_true(r->err.truncated);
    done(r);
}

/* Every allocation failure ends in -1 with 500 "internal" and leaks nothing
 * (AddressSanitizer's leak check runs at exit). */
static int alloc_budget;

static void *failing_malloc(size_t n)
{
    if (alloc_budget-- <= 0)
        return NULL;
    return malloc(n);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    json_error_t je;
    json_t *root = json_loads(seed_example_2, 0, &je);
    assert_non_null(root);
    bool succeeded = false;
    for (int budget = 0; budget < 1000 && !succeeded; budget++) {
        seg_error err;
        v1_segment_in in;
        err_clear(&err);
        alloc_budget = budget;
        json_set_alloc_funcs(failing_malloc, free);
        int rc = val_v1_segment(root, false, &in, &err);
        json_set_alloc_funcs(malloc, free);
        if (rc == 0) {
            succeeded = true;
            assert_int_equal(json_array_size(in.warnings), 2);
        } else {
            assert_int_equal(err.status, 500);
            assert_string_equal(err.code, "internal");
            assert_null(in.constraints_json);
            assert_null(in.warnings);
        }
        val_v1_segment_release(&in);
    }
    assert_true(succeeded);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relation_matrix),
        cmocka_unit_test(test_relation_message_exact),
        cmocka_unit_test(test_value_types),
        cmocka_unit_test(test_string_value_length),
        cmocka_unit_test(test_int32_bounds),
        cmocka_unit_test(test_long_values),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_formats_only_for_equality),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_seed_update_example),
        cmocka_unit_test(test_seed_example_1),
        cmocka_unit_test(test_seed_example_2_warns),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_many_errors),
        cmocka_unit_test(test_unknown_field_message_fits),
        cmocka_unit_test(test_messages_stay_utf8),
        cmocka_unit_test(test_create_rules),
        cmocka_unit_test(test_name_and_description_limits),
        cmocka_unit_test(test_patch_rules),
        cmocka_unit_test(test_val_v1_id),
        cmocka_unit_test(test_duplicate_warning),
        cmocka_unit_test(test_unsatisfiable_groups),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_release_zeroed),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
