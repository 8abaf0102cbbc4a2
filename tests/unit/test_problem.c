/* Problems: each kind written byte for byte as the jansson code that wrote it before
 * (http_problem_render, bulk's add_problem, v1's warnings with a bulk traceId), and the
 * start-up kind of the error type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/error.h"
#include "core/problem.h"

/* ---- references: the writers the problem writer replaced, as they were ------------- */

static char *old_request_problem(const seg_error *e, const char *request_id)
{
    json_t *p = json_object(), *errors = NULL;
    char type[96];
    snprintf(type, sizeof type, "https://segmentd.dev/problems/%s", e->code ? e->code : "error");
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "title", json_string(e->title ? e->title : err_title_for(e->status)));
    json_object_set_new(p, "status", json_integer(e->status));
    json_object_set_new(p, "detail", json_string(e->detail[0] ? e->detail : "no detail"));
    json_object_set_new(p, "code", json_string(e->code ? e->code : "error"));
    json_object_set_new(p, "request_id", json_string(request_id));
    if (e->n_items > 0) {
        errors = json_array();
        for (int i = 0; i < e->n_items; i++)
            json_array_append_new(errors, json_pack("{s:s, s:s}", "pointer", e->items[i].pointer,
                                                    "detail", e->items[i].detail));
        json_object_set_new(p, "errors", errors);
        if (e->truncated)
            json_object_set_new(p, "errors_truncated", json_true());
    }
    char *s = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    return s;
}

static char *old_item_problem(size_t i, const char *code, const char *title, const char *pointer,
                              const char *detail, const char *trace)
{
    char ptr[ERR_POINTER_MAX + 24];
    snprintf(ptr, sizeof ptr, "/data/%zu%s", i, pointer);
    json_t *j = json_pack("{s:s, s:s, s:s, s:{s:s}, s:s}", "code", code, "title", title, "detail", detail,
                          "source", "pointer", ptr, "traceId", trace);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* v1's add_warning, then the bulk envelope's copy with its pointer under /data/i and a
 * traceId (i < 0: the single route's, as it is). */
static char *old_warning(long i, const char *code, const char *title, const char *pointer, const char *detail,
                         const char *trace)
{
    json_t *w = json_pack("{s:s, s:s, s:s, s:{s:s}}", "code", code, "title", title, "detail", detail, "source",
                          "pointer", pointer);
    if (i >= 0) {
        json_t *src = json_object_get(w, "source");
        char full[ERR_POINTER_MAX + 24];
        snprintf(full, sizeof full, "/data/%ld%s", i, pointer);
        json_object_set_new(src, "pointer", json_string(full));
        json_object_set_new(w, "traceId", json_string(trace));
    }
    char *s = json_dumps(w, JSON_COMPACT);
    json_decref(w);
    return s;
}

static char *new_problem(const problem *p)
{
    json_text t = {0};
    size_t len;
    problem_write(&t, p);
    char *s = json_text_take(&t, &len);
    assert_non_null(s);
    assert_int_equal(len, strlen(s));
    return s;
}

/* Client text as it reaches an error: controls, quotes, non-ASCII (UTF-8, which
 * err_set and err_add make sure of). */
static const char *const texts[] = {
    "",
    "plain",
    "\"owner_id\" is not a uuid: expected 36 characters, got 35",
    "quote \" backslash \\ slash /",
    "controls \x01\b\t\n\x0b\f\r\x1b\x1f and DEL \x7f",
    "na\xc3\xafve \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf",
    "\xff not UTF-8 before err_set",
};

static void test_request_problem_as_before(void **state)
{
    static const int statuses[] = {400, 401, 404, 409, 413, 422, 429, 500, 503, 599};
    static const char *const codes[] = {"validation_failed", "not_found", NULL};
    static const char *const ids[] = {"0123456789abcdef", "req-1:a.b_c", NULL};
    seg_error e;
    int n = 0;
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++)
        for (size_t s = 0; s < sizeof statuses / sizeof statuses[0]; s++)
            for (int items = 0; items <= ERR_MAX_ITEMS + 1; items += items < 3 ? 1 : ERR_MAX_ITEMS - 2) {
                err_clear(&e);
                err_set(&e, statuses[s], codes[(t + s) % 3], "%s", texts[t]);
                if ((t + s) % 4 == 1)
                    e.title = NULL;
                for (int k = 0; k < items; k++)
                    err_add(&e, k % 2 ? texts[t] : "/constraints/1/constraints/0/relation", "%s #%d",
                            texts[(t + (size_t)k) % (sizeof texts / sizeof texts[0])], k);
                const char *rid = ids[(t + s) % 3];
                char *want = old_request_problem(&e, rid);
                problem p = problem_of_error(&e, rid);
                char *got = new_problem(&p);
                assert_string_equal(got, want);
                free(want);
                free(got);
                n++;
            }
    assert_true(n > 200);
}

static void test_item_problem_as_before(void **state)
{
    static const size_t items[] = {0, 7, 999};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0] - 1; t++)
        for (size_t i = 0; i < 3; i++) {
            const char *ptr = i == 1 ? "" : i == 2 ? "/id" : "/constraints/0/constraints/1/value";
            char *want = old_item_problem(items[i], "validation_failed", "Invalid field", ptr, texts[t],
                                          "0123456789abcdef");
            problem p = {.kind = PROBLEM_ITEM, .code = "validation_failed", .title = "Invalid field",
                         .detail = texts[t], .pointer = ptr, .item = (long)items[i],
                         .trace_id = "0123456789abcdef"};
            char *got = new_problem(&p);
            assert_string_equal(got, want);
            free(want);
            free(got);
        }
}

static void test_warning_as_before(void **state)
{
    for (size_t t = 1; t < sizeof texts / sizeof texts[0] - 1; t++)
        for (long i = -1; i <= 12; i += 13) {
            const char *ptr = "/constraints/2/constraints/0";
            char *want = old_warning(i, "duplicate_constraint", "Duplicate constraint", ptr, texts[t], "abc");
            problem p = {.kind = PROBLEM_WARNING, .code = "duplicate_constraint", .title = "Duplicate constraint",
                         .detail = texts[t], .pointer = ptr, .item = i, .trace_id = i >= 0 ? "abc" : NULL};
            char *got = new_problem(&p);
            assert_string_equal(got, want);
            free(want);
            free(got);
        }
}

/* Problems written one after the other make a JSON array's elements. */
static void test_problems_in_an_array(void **state)
{
    json_text t = {0};
    size_t len;
    problem p = {.kind = PROBLEM_ITEM, .code = "not_found", .title = "Not Found", .detail = "no segment with this id",
                 .pointer = "/id", .item = 3, .trace_id = "r"};
    JSON_TEXT_LIT(&t, "[");
    problem_write(&t, &p);
    p.item = 4;
    problem_write(&t, &p);
    JSON_TEXT_LIT(&t, "]");
    char *s = json_text_take(&t, &len);
    assert_string_equal(s, "[{\"code\":\"not_found\",\"title\":\"Not Found\",\"detail\":\"no segment with this id\","
                           "\"source\":{\"pointer\":\"/data/3/id\"},\"traceId\":\"r\"},{\"code\":\"not_found\","
                           "\"title\":\"Not Found\",\"detail\":\"no segment with this id\",\"source\":{\"pointer\":"
                           "\"/data/4/id\"},\"traceId\":\"r\"}]");
    free(s);
}

/* A string that is not UTF-8 fails the text (jansson left such a member out). */
static void test_not_utf8_fails(void **state)
{
    json_text t = {0};
    size_t len;
    problem p = {.kind = PROBLEM_ITEM, .code = "x", .title = "X", .detail = "cut \xe2\x82", .item = -1};
    problem_write(&t, &p);
    assert_true(t.failed);
    assert_null(json_text_take(&t, &len));
}

static void test_startup_kind(void **state)
{
    seg_error e;
    err_clear(&e);
    assert_false(err_is_set(&e));
    err_startup(&e, "listen", "cannot listen on %s", "[::1]:80");
    assert_true(err_is_set(&e));
    assert_int_equal(e.kind, ERR_STARTUP);
    assert_int_equal(e.status, 0);
    assert_string_equal(e.detail, "cannot listen on [::1]:80");
    err_clear(&e);
    assert_int_equal(e.kind, ERR_REQUEST);
    assert_false(err_is_set(&e));
    err_set(&e, 404, "not_found", "no segment with this id");
    assert_int_equal(e.kind, ERR_REQUEST);
    /* err_add does not turn a start-up error into a 422 */
    err_startup(&e, "config", "bad");
    err_add(&e, "/x", "y");
    assert_int_equal(e.status, 0);
    assert_int_equal(e.kind, ERR_STARTUP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_problem_as_before),
        cmocka_unit_test(test_item_problem_as_before),
        cmocka_unit_test(test_warning_as_before),
        cmocka_unit_test(test_problems_in_an_array),
        cmocka_unit_test(test_not_utf8_fails),
        cmocka_unit_test(test_startup_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
