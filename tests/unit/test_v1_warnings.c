/* Unit tests for validate/v1_warnings on groups built by hand, for what no body can reach. */
/* That is the Long lower bound, the append contract and allocation failures; the warnings
 * of real bodies are cases in tests/cases/v1_segment. Also tags in AND groups: holding
 * several tags is no contradiction, holding and lacking one tag is, so is having none and
 * holding one (either order); contains on tags behaves as ==. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "validate/v1_private.h"

/* An AND group of n constraints on one field; the values are new references kept in vals. */
static void group_of(v1_groups *g, const char *field, const v1_relation *rels,
                     const json_int_t *vals, size_t n)
{
    memset(g, 0, sizeof *g);
    g->n = 1;
    g->groups[0].n = n;
    for (size_t i = 0; i < n; i++)
        g->groups[0].cons[i] = (v1_con){val_field_find(field), rels[i], json_integer(vals[i])};
}

static void release(v1_groups *g)
{
    for (size_t i = 0; i < g->groups[0].n; i++)
        json_decref(g->groups[0].cons[i].value);
}

static const char *detail_of(json_t *warnings, size_t i)
{
    return json_string_value(json_object_get(json_array_get(warnings, i), "detail"));
}

/* Below the smallest Long: the walk refuses negative timestamps, and every Long is one. */
static void test_long_below_min(void **state)
{
    (void)state;
    v1_groups g;
    const v1_relation rels[] = {V1_REL_LT};
    const json_int_t vals[] = {INT64_MIN};
    json_t *w = json_array();
    group_of(&g, "lastSession", rels, vals, 1);
    assert_int_equal(val_v1_warnings(&g, w), 0);
    assert_int_equal(json_array_size(w), 1);
    assert_string_equal(detail_of(w, 0), "no Long value of field \"lastSession\" is < "
                                         "-9223372036854775808 in an AND group; this group never matches");
    release(&g);
    json_decref(w);
}

/* Warnings are appended after what the array holds; each names its group and constraint. */
static void test_appends_with_pointers(void **state)
{
    (void)state;
    v1_groups g;
    const v1_relation rels[] = {V1_REL_GE, V1_REL_GE, V1_REL_LE};
    const json_int_t vals[] = {5, 5, 4};
    json_t *w = json_pack("[s]", "kept");
    group_of(&g, "sessionCount", rels, vals, 3);
    g.n = 2;
    g.groups[1] = g.groups[0];
    g.groups[1].is_or = true; /* the same constraints in an OR group: only the repeat */
    assert_int_equal(val_v1_warnings(&g, w), 0);
    assert_int_equal(json_array_size(w), 4);
    assert_string_equal(json_string_value(json_array_get(w, 0)), "kept");
    static const char *const want[][2] = {
        {"duplicate_constraint", "/constraints/0/constraints/1"},
        {"unsatisfiable_group", "/constraints/0/constraints/2"},
        {"duplicate_constraint", "/constraints/1/constraints/1"},
    };
    for (size_t i = 0; i < 3; i++) {
        json_t *o = json_array_get(w, i + 1);
        assert_string_equal(json_string_value(json_object_get(o, "code")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(json_object_get(o, "source"), "pointer")),
                            want[i][1]);
    }
    assert_string_equal(detail_of(w, 2), "field \"sessionCount\" cannot be >= 5 and <= 4 at once "
                                         "in an AND group; this group never matches");
    release(&g);
    json_decref(w);
}

static int alloc_budget;

static void *failing_malloc(size_t n)
{
    return alloc_budget-- > 0 ? malloc(n) : NULL;
}

/* Memory running out while a warning is made gives -1; the array keeps what it had. */
static void test_out_of_memory(void **state)
{
    (void)state;
    v1_groups g;
    const v1_relation rels[] = {V1_REL_EQ, V1_REL_NE};
    const json_int_t vals[] = {3, 3};
    group_of(&g, "sessionCount", rels, vals, 2);
    bool succeeded = false;
    for (int budget = 0; budget < 100 && !succeeded; budget++) {
        json_t *w = json_array();
        assert_non_null(w);
        alloc_budget = budget;
        json_set_alloc_funcs(failing_malloc, free);
        int rc = val_v1_warnings(&g, w);
        json_set_alloc_funcs(malloc, free);
        succeeded = rc == 0;
        assert_int_equal(json_array_size(w), succeeded ? 1 : 0);
        json_decref(w);
    }
    assert_true(succeeded);
    release(&g);
}

/* A group of constraints on tags: rels[i] with value vals[i] (a string, or "true"/"false"
 * for exists). */
static void tags_group(v1_groups *g, bool is_or, const v1_relation *rels, const char *const *vals, size_t n)
{
    memset(g, 0, sizeof *g);
    g->n = 1;
    g->groups[0].is_or = is_or;
    g->groups[0].n = n;
    for (size_t i = 0; i < n; i++) {
        json_t *v = rels[i] == V1_REL_EXISTS ? json_boolean(strcmp(vals[i], "true") == 0) : json_string(vals[i]);
        g->groups[0].cons[i] = (v1_con){val_field_find("tags"), rels[i], v};
    }
}

static size_t count_code(json_t *w, const char *code)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(w); i++)
        n += strcmp(json_string_value(json_object_get(json_array_get(w, i), "code")), code) == 0;
    return n;
}

/* The warnings of a two-constraint group on tags; unsat: unsatisfiable_group warnings
 * expected, at /constraints/0/constraints/1 when one. */
static void expect_tags(bool is_or, v1_relation r0, const char *v0, v1_relation r1, const char *v1,
                        size_t unsat, const char *detail)
{
    v1_groups g;
    const v1_relation rels[] = {r0, r1};
    const char *const vals[] = {v0, v1};
    json_t *w = json_array();
    tags_group(&g, is_or, rels, vals, 2);
    assert_int_equal(val_v1_warnings(&g, w), 0);
    if (count_code(w, "unsatisfiable_group") != unsat) {
        char *t = json_dumps(w, 0);
        fail_msg("tags %s %s / %s %s (%s): expected %zu unsatisfiable_group, got %s",
                 val_v1_relation_name(r0), v0, val_v1_relation_name(r1), v1, is_or ? "OR" : "AND", unsat, t);
    }
    if (unsat == 1) {
        json_t *o = json_array_get(w, json_array_size(w) - 1);
        assert_string_equal(json_string_value(json_object_get(json_object_get(o, "source"), "pointer")),
                            "/constraints/0/constraints/1");
        if (detail)
            assert_string_equal(json_string_value(json_object_get(o, "detail")), detail);
    }
    release(&g);
    json_decref(w);
}

static void test_tags_and_groups(void **state)
{
    (void)state;
    /* several tags held at once: fine */
    expect_tags(false, V1_REL_EQ, "a", V1_REL_EQ, "b", 0, NULL);
    expect_tags(false, V1_REL_NE, "a", V1_REL_NE, "b", 0, NULL);
    expect_tags(false, V1_REL_EQ, "a", V1_REL_NE, "b", 0, NULL);
    expect_tags(false, V1_REL_EQ, "a", V1_REL_NE, "A", 0, NULL); /* tags are case-sensitive */
    /* holding and lacking one tag: never */
    expect_tags(false, V1_REL_EQ, "a", V1_REL_NE, "a", 1,
                "field \"tags\" cannot both hold and lack \"a\" in an AND group; this group never matches");
    expect_tags(false, V1_REL_NE, "a", V1_REL_EQ, "a", 1,
                "field \"tags\" cannot both hold and lack \"a\" in an AND group; this group never matches");
    /* no tags and one tag: never, both orders */
    expect_tags(false, V1_REL_EXISTS, "false", V1_REL_EQ, "a", 1,
                "field \"tags\" cannot be empty and hold \"a\" in an AND group; this group never matches");
    expect_tags(false, V1_REL_EQ, "a", V1_REL_EXISTS, "false", 1,
                "field \"tags\" cannot be empty and hold \"a\" in an AND group; this group never matches");
    /* no tags and lacking one, some tags and one, some tags and lacking one: fine */
    expect_tags(false, V1_REL_EXISTS, "false", V1_REL_NE, "a", 0, NULL);
    expect_tags(false, V1_REL_NE, "a", V1_REL_EXISTS, "false", 0, NULL);
    expect_tags(false, V1_REL_EXISTS, "true", V1_REL_EQ, "a", 0, NULL);
    expect_tags(false, V1_REL_EXISTS, "true", V1_REL_NE, "a", 0, NULL);
    expect_tags(false, V1_REL_EXISTS, "true", V1_REL_EXISTS, "false", 1, NULL);
    /* contains on tags is == */
    expect_tags(false, V1_REL_CONTAINS, "a", V1_REL_CONTAINS, "b", 0, NULL);
    expect_tags(false, V1_REL_CONTAINS, "a", V1_REL_EQ, "b", 0, NULL);
    expect_tags(false, V1_REL_CONTAINS, "a", V1_REL_EQ, "a", 0, NULL);
    expect_tags(false, V1_REL_CONTAINS, "a", V1_REL_NE, "a", 1,
                "field \"tags\" cannot both hold and lack \"a\" in an AND group; this group never matches");
    expect_tags(false, V1_REL_NE, "a", V1_REL_CONTAINS, "a", 1, NULL);
    expect_tags(false, V1_REL_EXISTS, "false", V1_REL_CONTAINS, "a", 1, NULL);
    expect_tags(false, V1_REL_CONTAINS, "a", V1_REL_EXISTS, "false", 1, NULL);
    /* in an OR group nothing contradicts */
    expect_tags(true, V1_REL_EQ, "a", V1_REL_NE, "a", 0, NULL);
    expect_tags(true, V1_REL_EXISTS, "false", V1_REL_EQ, "a", 0, NULL);
    expect_tags(true, V1_REL_CONTAINS, "a", V1_REL_NE, "a", 0, NULL);
}

/* One warning per group for tags: a third contradiction in the same group adds none. */
static void test_tags_one_warning_per_group(void **state)
{
    (void)state;
    v1_groups g;
    const v1_relation rels[] = {V1_REL_EQ, V1_REL_NE, V1_REL_EXISTS, V1_REL_EQ};
    const char *const vals[] = {"a", "a", "false", "b"};
    json_t *w = json_array();
    tags_group(&g, false, rels, vals, 4);
    assert_int_equal(val_v1_warnings(&g, w), 0);
    assert_int_equal(count_code(w, "unsatisfiable_group"), 1);
    release(&g);
    json_decref(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_below_min),
        cmocka_unit_test(test_appends_with_pointers),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_tags_and_groups),
        cmocka_unit_test(test_tags_one_warning_per_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
