/* Unit tests for store/eval_sql: the column of each field, EVAL_DEVICE_COLUMNS, and the SQL
 * predicate a rule compiles to (exact text and parameters for representative rules). */
/* Also: values only ever go in as parameters (quotes and SQL in values never reach the
 * text), parameters are numbered after those already there, EV_RULE_NONE is (false), and
 * /audiences rules past 4000 values take one parameter per code (the EXISTS form). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "eval/rule.h"
#include "store/eval_sql.h"
#include "validate/formats.h"

/* appVersion → app_version */
static void snake(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = name; *p && n + 3 < cap; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            out[n++] = '_';
            out[n++] = (char)(*p - 'A' + 'a');
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

static void test_columns(void **state)
{
    (void)state;
    char want[64];
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++) {
        snake(val_field_at(i)->name, want, sizeof want);
        assert_non_null(eval_sql_column(i));
        assert_string_equal(eval_sql_column(i), want);
    }
    assert_string_equal(eval_sql_column(val_field_index(val_field_find("appVersion"))), "app_version");
    assert_string_equal(eval_sql_column(val_field_index(val_field_find("unRegisteredAt"))), "un_registered_at");
    assert_string_equal(eval_sql_column(val_field_index(val_field_find("id"))), "id");
    assert_string_equal(eval_sql_column(val_field_index(val_field_find("tags"))), "tags");
    assert_null(eval_sql_column(VAL_FIELD_COUNT));
    assert_null(eval_sql_column(SIZE_MAX));
}

/* The macro lists d.<column> of every field in order, tags as to_json(d.tags), then the
 * attributes: what ev_device_read takes. */
static void test_device_columns_macro(void **state)
{
    (void)state;
    char want[1024] = "", col[64];
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++) {
        const val_field *f = val_field_at(i);
        snake(f->name, col, sizeof col);
        if (i)
            strcat(want, ", ");
        if (f->type == VAL_FIELD_STRING_ARRAY) {
            strcat(want, "to_json(d.");
            strcat(want, col);
            strcat(want, ")");
        } else {
            strcat(want, "d.");
            strcat(want, col);
        }
    }
    strcat(want, ", d.attributes");
    assert_string_equal(EVAL_DEVICE_COLUMNS, want);
}

/* ------------------------------------------------------------------ predicates */

typedef struct compiled {
    ev_rule r;
    eval_sql q;
} compiled;

/* Compiles a /v1 (v1 true) or /audiences rule after `fixed` parameters already added. */
static void compile(compiled *c, bool v1, const char *json, int fixed)
{
    seg_error err;
    err_clear(&err);
    memset(c, 0, sizeof *c);
    int rc = v1 ? ev_rule_v1(json, strlen(json), &c->r, &err) : ev_rule_aud(json, strlen(json), &c->r, &err);
    if (rc != 0)
        fail_msg("rule not read: %s", json);
    for (int i = 0; i < fixed; i++)
        assert_int_equal(eval_sql_param(&c->q, "fixed"), i + 1);
    eval_sql_predicate(&c->q, &c->r);
    assert_false(c->q.failed);
    assert_non_null(c->q.text);
    assert_int_equal(strlen(c->q.text), c->q.len);
}

static void release(compiled *c)
{
    eval_sql_free(&c->q);
    assert_null(c->q.text);
    assert_null(c->q.params);
    assert_int_equal(c->q.n, 0);
    ev_rule_free(&c->r);
}

/* The highest $n of the text. */
static int highest_param(const char *sql)
{
    int hi = 0;
    for (const char *p = strchr(sql, '$'); p; p = strchr(p + 1, '$')) {
        int n = atoi(p + 1);
        if (n > hi)
            hi = n;
    }
    return hi;
}

static void expect_sql(bool v1, const char *json, int fixed, const char *want, int nparams,
                       const char *const *params)
{
    compiled c;
    compile(&c, v1, json, fixed);
    if (strcmp(c.q.text, want) != 0)
        fail_msg("%s\n  expected: %s\n  got:      %s", json, want, c.q.text);
    assert_int_equal(c.q.n, fixed + nparams);
    assert_int_equal(highest_param(c.q.text), nparams ? fixed + nparams : 0);
    for (int i = 0; i < nparams; i++)
        assert_string_equal(c.q.params[fixed + i], params[i]);
    release(&c);
}

static const char *one(const char *field, const char *rel, const char *value)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"%s\",\"relation\":\"%s\",\"value\":%s}]}]",
             field, rel, value);
    return buf;
}

static void test_v1_predicates(void **state)
{
    (void)state;
    const char *us[] = {"US"};
    expect_sql(true, one("country", "==", "\"US\""), 0, "((d.country = $1::text))", 1, us);
    expect_sql(true, one("country", "!=", "\"US\""), 0, "((d.country IS DISTINCT FROM $1::text))", 1, us);
    expect_sql(true, one("country", "starts_with", "\"US\""), 0, "((starts_with(d.country, $1::text)))", 1, us);
    expect_sql(true, one("country", "contains", "\"US\""), 0, "((strpos(d.country, $1::text) > 0))", 1, us);
    expect_sql(true, one("deviceModel", "ends_with", "\"US\""), 0,
               "((right(d.device_model, char_length($1::text)) = $1::text))", 1, us);
    expect_sql(true, one("email", "exists", "true"), 0, "((d.email IS NOT NULL))", 0, NULL);
    expect_sql(true, one("unRegisteredAt", "exists", "false"), 0, "((d.un_registered_at IS NULL))", 0, NULL);

    const char *five[] = {"5"}, *neg[] = {"-2147483648"}, *big[] = {"9223372036854775807"};
    expect_sql(true, one("sessionCount", ">", "5"), 0, "((d.session_count > $1::integer))", 1, five);
    expect_sql(true, one("appVersionCode", ">=", "-2147483648"), 0,
               "((d.app_version_code >= $1::integer))", 1, neg);
    expect_sql(true, one("appVersionCode", "==", "5"), 0, "((d.app_version_code = $1::integer))", 1, five);
    expect_sql(true, one("sessionCount", "!=", "5"), 0,
               "((d.session_count IS DISTINCT FROM $1::integer))", 1, five);
    expect_sql(true, one("createdAt", "<", "9223372036854775807"), 0, "((d.created_at < $1::bigint))", 1, big);
    expect_sql(true, one("firstSession", "<=", "5"), 0, "((d.first_session <= $1::bigint))", 1, five);
    expect_sql(true, one("lastSession", "==", "5"), 0, "((d.last_session = $1::bigint))", 1, five);

    const char *vip[] = {"vip"};
    expect_sql(true, one("tags", "==", "\"vip\""), 0, "(((d.tags @> ARRAY[$1::text])))", 1, vip);
    expect_sql(true, one("tags", "contains", "\"vip\""), 0, "(((d.tags @> ARRAY[$1::text])))", 1, vip);
    expect_sql(true, one("tags", "!=", "\"vip\""), 0, "((NOT (d.tags @> ARRAY[$1::text])))", 1, vip);
    expect_sql(true, one("tags", "exists", "true"), 0, "((cardinality(d.tags) > 0))", 0, NULL);
    expect_sql(true, one("tags", "exists", "false"), 0, "((cardinality(d.tags) = 0))", 0, NULL);

    /* numbered after the parameters already there */
    expect_sql(true, one("country", "==", "\"US\""), 2, "((d.country = $3::text))", 1, us);
    expect_sql(true, one("deviceModel", "ends_with", "\"US\""), 1,
               "((right(d.device_model, char_length($2::text)) = $2::text))", 1, us);

    /* groups: OR / AND inside, ANDed between */
    const char *groups =
        "[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"},"
        "{\"field\":\"language\",\"relation\":\"!=\",\"value\":\"eng\"}]},"
        "{\"type\":\"AND\",\"constraints\":[{\"field\":\"tags\",\"relation\":\"==\",\"value\":\"vip\"},"
        "{\"field\":\"sessionCount\",\"relation\":\"<\",\"value\":3},"
        "{\"field\":\"email\",\"relation\":\"exists\",\"value\":true}]}]";
    const char *gp[] = {"US", "eng", "vip", "3"};
    expect_sql(true, groups, 1,
               "((d.country = $2::text OR d.language IS DISTINCT FROM $3::text) AND "
               "((d.tags @> ARRAY[$4::text]) AND d.session_count < $5::integer AND d.email IS NOT NULL))",
               4, gp);
}

static void test_aud_predicates(void **state)
{
    (void)state;
    const char *p1[] = {"{\"color\":[4]}"};
    expect_sql(false, "{\"color\":[4]}", 0, "((d.attributes @> $1::jsonb))", 1, p1);
    const char *p2[] = {"{\"color\":[4]}", "{\"color\":[\"4\"]}", "{\"size\":[\"L\"]}"};
    expect_sql(false, "{\"color\":[4,\"4\"],\"size\":[\"L\"]}", 1,
               "((d.attributes @> $2::jsonb OR d.attributes @> $3::jsonb) AND (d.attributes @> $4::jsonb))",
               3, p2);
    const char *p3[] = {"{\"n\":[4.0]}"};
    expect_sql(false, "{\"n\":[4.0]}", 0, "((d.attributes @> $1::jsonb))", 1, p3);
    /* no rule: false, no parameter */
    expect_sql(false, "{}", 0, "(false)", 0, NULL);
    expect_sql(false, "{}", 3, "(false)", 0, NULL);
}

/* ------------------------------------------------------------------ values stay parameters */

static const char *const evil[] = {
    "it's",
    "'; DROP TABLE x; --",
    "\") OR true --",
    "$1",
    "a\\b",
};

/* json_dumps of a string value (quotes, escapes). */
static char *json_str(const char *s)
{
    json_t *j = json_string(s);
    char *t = json_dumps(j, JSON_ENCODE_ANY);
    json_decref(j);
    return t;
}

/* value is not in the text; in_param (the value, or its JSON text) is in a parameter. */
static void assert_param_only(const compiled *c, const char *value, const char *in_param)
{
    if (strstr(c->q.text, value))
        fail_msg("value %s in the SQL text: %s", value, c->q.text);
    assert_null(strchr(c->q.text, '\''));
    assert_null(strstr(c->q.text, "DROP"));
    assert_null(strstr(c->q.text, "--"));
    assert_null(strchr(c->q.text, '"'));
    assert_null(strchr(c->q.text, '\\'));
    bool found = false;
    for (int i = 0; i < c->q.n; i++)
        found = found || strstr(c->q.params[i], in_param) != NULL;
    assert_true(found);
}

static void test_values_never_in_text(void **state)
{
    (void)state;
    const char *rels[][2] = {{"country", "=="}, {"country", "!="}, {"customUserId", "starts_with"},
                             {"email", "ends_with"}, {"deviceModel", "contains"}, {"tags", "=="},
                             {"tags", "!="}, {"tags", "contains"}};
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        char *v = json_str(evil[i]);
        for (size_t k = 0; k < sizeof rels / sizeof rels[0]; k++) {
            compiled c;
            compile(&c, true, one(rels[k][0], rels[k][1], v), 0);
            if (strcmp(evil[i], "$1") != 0)
                assert_param_only(&c, evil[i], evil[i]);
            else
                assert_string_equal(c.q.params[0], "$1");
            release(&c);
        }
        /* /audiences: as a value, and as a code */
        char props[256];
        snprintf(props, sizeof props, "{\"k\":[%s]}", v);
        compiled c;
        compile(&c, false, props, 0);
        if (strcmp(evil[i], "$1") != 0)
            assert_param_only(&c, evil[i], v);
        release(&c);
        snprintf(props, sizeof props, "{%s:[1]}", v);
        compile(&c, false, props, 0);
        if (strcmp(evil[i], "$1") != 0)
            assert_param_only(&c, evil[i], v);
        release(&c);
        free(v);
    }
}

/* ------------------------------------------------------------------ many values */

/* {"a": [0 … na-1], "b": ["0" … "nb-1"]} */
static char *many_props(size_t na, size_t nb)
{
    json_t *o = json_object(), *a = json_array(), *b = json_array();
    char s[32];
    for (size_t i = 0; i < na; i++)
        json_array_append_new(a, json_integer((json_int_t)i));
    for (size_t i = 0; i < nb; i++) {
        snprintf(s, sizeof s, "%zu", i);
        json_array_append_new(b, json_string(s));
    }
    json_object_set_new(o, "a", a);
    json_object_set_new(o, "b", b);
    char *t = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return t;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_many_values(void **state)
{
    (void)state;
    /* 4000 values: still one parameter each */
    char *json = many_props(2000, 2000);
    compiled c;
    compile(&c, false, json, 1);
    assert_int_equal(c.q.n, 4001);
    assert_int_equal(count(c.q.text, "d.attributes @> $"), 4000);
    assert_null(strstr(c.q.text, "EXISTS"));
    assert_string_equal(c.q.params[1], "{\"a\":[0]}");
    assert_string_equal(c.q.params[4000], "{\"b\":[\"1999\"]}");
    release(&c);
    free(json);

    /* 4001: each code's values as one parameter, the code as another */
    json = many_props(2001, 2000);
    compile(&c, false, json, 1);
    assert_int_equal(c.q.n, 1 + 4);
    assert_int_equal(highest_param(c.q.text), 5);
    assert_null(strstr(c.q.text, "@>"));
    assert_int_equal(count(c.q.text, "EXISTS ("), 2);
    const char *want =
        "((EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(d.attributes -> $2::text) "
        "= 'array' THEN d.attributes -> $2::text END) e WHERE e.value IN (SELECT "
        "jsonb_array_elements($3::jsonb)))) AND "
        "(EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(d.attributes -> $4::text) "
        "= 'array' THEN d.attributes -> $4::text END) e WHERE e.value IN (SELECT "
        "jsonb_array_elements($5::jsonb)))))";
    assert_string_equal(c.q.text, want);
    assert_string_equal(c.q.params[1], "a");
    assert_string_equal(c.q.params[3], "b");
    json_t *va = json_loads(c.q.params[2], 0, NULL), *vb = json_loads(c.q.params[4], 0, NULL);
    assert_int_equal(json_array_size(va), 2001);
    assert_int_equal(json_array_size(vb), 2000);
    assert_int_equal(json_integer_value(json_array_get(va, 2000)), 2000);
    assert_string_equal(json_string_value(json_array_get(vb, 1999)), "1999");
    json_decref(va);
    json_decref(vb);
    release(&c);
    free(json);

    /* an evil code in the EXISTS form stays a parameter too */
    json_t *o = json_object(), *a = json_array();
    for (int i = 0; i < 4001; i++)
        json_array_append_new(a, json_integer(i));
    json_object_set_new(o, "'; DROP TABLE x; --", a);
    json = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    compile(&c, false, json, 0);
    assert_null(strstr(c.q.text, "DROP"));
    assert_null(strstr(c.q.text, "--"));
    assert_string_equal(c.q.params[0], "'; DROP TABLE x; --");
    release(&c);
    free(json);
}

/* eval_sql_put / eval_sql_param by themselves: text grows, parameters number from 1. */
static void test_builder(void **state)
{
    (void)state;
    eval_sql q;
    memset(&q, 0, sizeof q);
    eval_sql_put(&q, "SELECT ");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(eval_sql_param(&q, "v"), i + 1);
    for (int i = 0; i < 200; i++)
        eval_sql_put(&q, "0123456789");
    assert_false(q.failed);
    assert_int_equal(q.len, 7 + 2000);
    assert_int_equal(strlen(q.text), q.len);
    assert_int_equal(strncmp(q.text, "SELECT 0123456789", 17), 0);
    assert_int_equal(q.n, 1000);
    eval_sql_free(&q);
    eval_sql_free(&q);
    /* past PostgreSQL's 65 535 parameters: failed, 0 */
    memset(&q, 0, sizeof q);
    for (int i = 0; i < 65535; i++)
        assert_int_equal(eval_sql_param(&q, "v"), i + 1);
    assert_false(q.failed);
    assert_int_equal(eval_sql_param(&q, "v"), 0);
    assert_true(q.failed);
    eval_sql_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns),         cmocka_unit_test(test_device_columns_macro),
        cmocka_unit_test(test_v1_predicates),   cmocka_unit_test(test_aud_predicates),
        cmocka_unit_test(test_values_never_in_text), cmocka_unit_test(test_many_values),
        cmocka_unit_test(test_builder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
