/* The lifecycle members of both dialects (validate/lifecycle.h): the keys each dialect
 * names, and the end-date operation's body. The members inside whole bodies are covered by
 * the validator cases (tests/cases/aud_segment, v1_segment). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "validate/lifecycle.h"

static void test_keys(void **state)
{
    (void)state;
    static const char *const aud[] = {"start_date", "end_date", "active", "extend", "extend_days", "status"};
    static const char *const v1[] = {"startDate", "endDate", "active", "extend", "extendDays", "status"};
    for (size_t i = 0; i < 6; i++) {
        assert_true(val_lifecycle_key(aud[i], false));
        assert_true(val_lifecycle_key(v1[i], true));
    }
    assert_false(val_lifecycle_key("startDate", false));
    assert_false(val_lifecycle_key("end_date", true));
    assert_false(val_lifecycle_key("name", false));
    assert_false(val_lifecycle_key("", true));
}

/* Runs val_end_date_body on text; returns its result, err and out filled. */
static int end_date(const char *text, bool v1, lifecycle_in *out, seg_error *err)
{
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    assert_non_null(root);
    err_clear(err);
    int rc = val_end_date_body(root, v1, out, err);
    json_decref(root);
    return rc;
}

static void test_end_date_ok(void **state)
{
    (void)state;
    lifecycle_in lc;
    seg_error err;
    assert_int_equal(end_date("{\"end_date\": \"2026-12-06T10:00:00+01:00\"}", false, &lc, &err), 0);
    assert_int_equal(lc.set, LC_SET_END);
    assert_true(lc.has_end);
    assert_int_equal(lc.end_us, 1796547600LL * 1000000);
    assert_false(lc.extend);
    assert_int_equal(end_date("{\"end_date\": null, \"extend\": false}", false, &lc, &err), 0);
    assert_int_equal(lc.set, LC_SET_END | LC_SET_EXTEND);
    assert_false(lc.has_end);
    assert_int_equal(end_date("{\"endDate\": 1796547600123, \"extend\": true}", true, &lc, &err), 0);
    assert_int_equal(lc.set, LC_SET_END | LC_SET_EXTEND);
    assert_int_equal(lc.end_us, 1796547600123LL * 1000);
    assert_true(lc.extend);
    /* a past date is allowed: it expires the segment */
    assert_int_equal(end_date("{\"endDate\": 0}", true, &lc, &err), 0);
    assert_int_equal(lc.end_us, 0);
}

/* err holds exactly one problem, at pointer. */
static void one_problem(const seg_error *err, const char *pointer)
{
    assert_int_equal(err->status, 422);
    assert_string_equal(err->code, "validation_failed");
    if (err->n_items != 1)
        fail_msg("%d problems (first %s: %s)", err->n_items, err->n_items ? err->items[0].pointer : "-",
                 err->n_items ? err->items[0].detail : "");
    assert_string_equal(err->items[0].pointer, pointer);
}

static void test_end_date_refused(void **state)
{
    (void)state;
    lifecycle_in lc;
    seg_error err;
    static const struct {
        const char *body;
        bool v1;
        const char *pointer;
    } cases[] = {
        {"{}", false, "/end_date"},
        {"{\"extend\": true}", false, "/end_date"},
        {"{\"end_date\": 1}", false, "/end_date"},         /* not RFC 3339 */
        {"{\"end_date\": \"10000-01-01T00:00:00Z\"}", false, "/end_date"},
        {"{\"endDate\": \"2026-12-06T10:00:00Z\"}", true, "/endDate"},
        {"{\"endDate\": 1.5}", true, "/endDate"},
        {"{\"endDate\": 253402300800000}", true, "/endDate"},
        {"{\"endDate\": -62135596800001}", true, "/endDate"},
        {"{\"endDate\": 1, \"extend\": null}", true, "/extend"},
        {"{\"endDate\": 1, \"extend\": \"yes\"}", true, "/extend"},
        {"{\"endDate\": null, \"extend\": true}", true, "/extend"},
        {"{\"end_date\": null, \"start_date\": null}", false, "/start_date"},
        {"{\"endDate\": 1, \"active\": false}", true, "/active"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(end_date(cases[i].body, cases[i].v1, &lc, &err), -1);
        one_problem(&err, cases[i].pointer);
    }
    /* the other dialect's name: unknown, and the end date is missing */
    assert_int_equal(end_date("{\"endDate\": 1}", false, &lc, &err), -1);
    assert_int_equal(err.n_items, 2);
    assert_string_equal(err.items[0].pointer, "/endDate");
    assert_string_equal(err.items[1].pointer, "/end_date");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_end_date_ok),
        cmocka_unit_test(test_end_date_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
