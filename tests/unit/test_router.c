/* Routing table matching: literal paths, {id} parameters, 404, 405 with Allow, and a
 * pattern with two parameters (both filled, each checked, *second says which is wrong). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "http/router.h"

static void h(http_request *rq) { (void)rq; }

static bool only_digits(const char *v, const char **why)
{
    for (const char *p = v; *p; p++)
        if (*p < '0' || *p > '9') {
            *why = "digits only";
            return false;
        }
    return *v != '\0';
}

static bool only_lower(const char *v, const char **why)
{
    for (const char *p = v; *p; p++)
        if (*p < 'a' || *p > 'z') {
            *why = "lowercase only";
            return false;
        }
    return *v != '\0';
}

static const http_route routes[] = {
    {"GET", "/items", h, 0, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"POST", "/items", h, 0, BODY_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/items/{id}", h, 0, BODY_NONE, only_digits, "item id", NULL, NULL, NULL, NULL, false},
    {"DELETE", "/items/{id}", h, 0, BODY_NONE, only_digits, "item id", NULL, NULL, NULL, NULL, false},
    {"GET", "/healthz", h, 0, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/items/{id}/tags", h, 0, BODY_NONE, only_digits, "item id", NULL, NULL, NULL, NULL, false},
    {"POST", "/items/bulk", h, 0, BODY_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false}, /* after {id}: still wins */
    {"GET", "/items/{id}/subs/{sub}", h, 0, BODY_NONE, only_digits, "item id", NULL, only_lower, "sub id", "sub", false},
    {"PUT", "/items/{id}/subs/{sub}", h, 0, BODY_JSON, only_digits, "item id", NULL, only_lower, "sub id", "sub", false},
};
#define N (sizeof routes / sizeof routes[0])

static route_result match(const char *m, const char *p, const http_route **r, char *param,
                          char *allow, const char **why)
{
    http_router rt;
    char param2[64];
    bool second;
    assert_int_equal(router_init(&rt, routes, N), 0);
    return router_match(&rt, m, p, r, param, param2, 64, allow, 128, why, &second);
}

static void test_literal(void **state)
{
    const http_route *r = NULL;
    char param[64], allow[128];
    const char *why = NULL;
    assert_int_equal(match("GET", "/items", &r, param, allow, &why), ROUTE_FOUND);
    assert_ptr_equal(r, &routes[0]);
    assert_int_equal(match("POST", "/items", &r, param, allow, &why), ROUTE_FOUND);
    assert_ptr_equal(r, &routes[1]);
}

static void test_param(void **state)
{
    const http_route *r = NULL;
    char param[64], allow[128];
    const char *why = NULL;
    assert_int_equal(match("GET", "/items/42", &r, param, allow, &why), ROUTE_FOUND);
    assert_ptr_equal(r, &routes[2]);
    assert_string_equal(param, "42");
    assert_int_equal(match("DELETE", "/items/7", &r, param, allow, &why), ROUTE_FOUND);
    assert_ptr_equal(r, &routes[3]);
}

static void test_bad_param(void **state)
{
    const http_route *r = NULL;
    char param[64], allow[128];
    const char *why = NULL;
    assert_int_equal(match("GET", "/items/4x2", &r, param, allow, &why), ROUTE_BAD_PARAM);
    assert_string_equal(why, "digits only");
    assert_string_equal(param, "4x2");
}

static void test_not_found(void **state)
{
    const http_route *r = NULL;
    char param[64], allow[128];
    const char *why = NULL;
    const char *paths[] = {"/", "", "/item", "/items/", "/items/1/2", "/itemsx", "//items",
                           "/healthz/", "/HEALTHZ"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        assert_int_equal(match("GET", paths[i], &r, param, allow, &why), ROUTE_NOT_FOUND);
}

static void test_method_not_allowed(void **state)
{
    const http_route *r = NULL;
    char param[64], allow[128];
    const char *why = NULL;
    assert_int_equal(match("PUT", "/items", &r, param, allow, &why), ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET, HEAD, POST");
    assert_int_equal(match("PATCH", "/items/1", &r, param, allow, &why), ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET, HEAD, DELETE");
}

static void test_head_is_get(void **state)
{
    const http_route *r = NULL;
    char param[64], allow[128];
    const char *why = NULL;
    assert_int_equal(match("HEAD", "/healthz", &r, param, allow, &why), ROUTE_FOUND);
    assert_ptr_equal(r, &routes[4]);
}

static void test_long_param_truncated_safely(void **state)
{
    const http_route *r = NULL;
    char param[64], allow[128], path[300];
    const char *why = NULL;
    memset(path, '1', sizeof path);
    memcpy(path, "/items/", 7);
    path[sizeof path - 1] = '\0';
    assert_int_equal(match("GET", path, &r, param, allow, &why), ROUTE_FOUND);
    assert_int_equal(strlen(param), 63);
}

static void test_literal_wins_over_param(void **state)
{
    const http_route *r = NULL;
    char param[64], allow[128];
    const char *why = NULL;
    assert_int_equal(match("POST", "/items/bulk", &r, param, allow, &why), ROUTE_FOUND);
    assert_ptr_equal(r, &routes[6]);
    /* the literal path is known: other methods get 405, not the {id} routes' 400 */
    assert_int_equal(match("GET", "/items/bulk", &r, param, allow, &why), ROUTE_BAD_METHOD);
    assert_string_equal(allow, "POST");
}

static void test_param_inside_pattern(void **state)
{
    const http_route *r = NULL;
    char param[64], allow[128];
    const char *why = NULL;
    assert_int_equal(match("GET", "/items/12/tags", &r, param, allow, &why), ROUTE_FOUND);
    assert_ptr_equal(r, &routes[5]);
    assert_string_equal(param, "12");
    assert_int_equal(match("GET", "/items/12/tag", &r, param, allow, &why), ROUTE_NOT_FOUND);
    assert_int_equal(match("GET", "/items//tags", &r, param, allow, &why), ROUTE_NOT_FOUND);
    assert_int_equal(match("GET", "/items/12/tags/", &r, param, allow, &why), ROUTE_NOT_FOUND);
}

/* router_match with both parameters and which one was wrong. */
static route_result match2(const char *m, const char *p, const http_route **r, char *param,
                           char *param2, char *allow, const char **why, bool *second)
{
    http_router rt;
    assert_int_equal(router_init(&rt, routes, N), 0);
    return router_match(&rt, m, p, r, param, param2, 64, allow, 128, why, second);
}

static void test_two_params(void **state)
{
    const http_route *r = NULL;
    char param[64], param2[64], allow[128];
    const char *why = NULL;
    bool second = true;
    assert_int_equal(match2("GET", "/items/12/subs/abc", &r, param, param2, allow, &why, &second), ROUTE_FOUND);
    assert_ptr_equal(r, &routes[7]);
    assert_string_equal(param, "12");
    assert_string_equal(param2, "abc");
    assert_int_equal(match2("PUT", "/items/7/subs/z", &r, param, param2, allow, &why, &second), ROUTE_FOUND);
    assert_ptr_equal(r, &routes[8]);
    assert_string_equal(param, "7");
    assert_string_equal(param2, "z");
    /* HEAD reads as GET */
    assert_int_equal(match2("HEAD", "/items/3/subs/q", &r, param, param2, allow, &why, &second), ROUTE_FOUND);
    assert_ptr_equal(r, &routes[7]);
}

static void test_two_params_bad(void **state)
{
    const http_route *r = NULL;
    char param[64], param2[64], allow[128];
    const char *why = NULL;
    bool second;
    /* the second is wrong */
    second = false;
    assert_int_equal(match2("GET", "/items/12/subs/aBc", &r, param, param2, allow, &why, &second),
                     ROUTE_BAD_PARAM);
    assert_true(second);
    assert_ptr_equal(r, &routes[7]);
    assert_string_equal(why, "lowercase only");
    assert_string_equal(param, "12");
    assert_string_equal(param2, "aBc");
    /* the first is wrong */
    second = true;
    why = NULL;
    assert_int_equal(match2("GET", "/items/1x2/subs/abc", &r, param, param2, allow, &why, &second),
                     ROUTE_BAD_PARAM);
    assert_false(second);
    assert_ptr_equal(r, &routes[7]);
    assert_string_equal(why, "digits only");
    assert_string_equal(param, "1x2");
    /* both wrong: the first is reported */
    second = true;
    assert_int_equal(match2("GET", "/items/x/subs/9", &r, param, param2, allow, &why, &second),
                     ROUTE_BAD_PARAM);
    assert_false(second);
    assert_string_equal(why, "digits only");
    /* the other method's route checks the same way */
    second = false;
    assert_int_equal(match2("PUT", "/items/5/subs/A", &r, param, param2, allow, &why, &second),
                     ROUTE_BAD_PARAM);
    assert_true(second);
    assert_ptr_equal(r, &routes[8]);
}

static void test_two_params_shape(void **state)
{
    const http_route *r = NULL;
    char param[64], param2[64], allow[128], path[300];
    const char *why = NULL;
    bool second;
    const char *paths[] = {"/items/12/subs", "/items/12/subs/", "/items/12/subs/abc/", "/items//subs/abc",
                           "/items/12/subs//", "/items/12/sub/abc", "/items/12/subs/abc/def", "/items/12//abc"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        assert_int_equal(match2("GET", paths[i], &r, param, param2, allow, &why, &second), ROUTE_NOT_FOUND);
    assert_int_equal(match2("DELETE", "/items/12/subs/abc", &r, param, param2, allow, &why, &second),
                     ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET, HEAD, PUT");
    /* an over-long second parameter is cut to the buffer, safely */
    memset(path, 'a', sizeof path);
    memcpy(path, "/items/1/subs/", 14);
    path[sizeof path - 1] = '\0';
    assert_int_equal(match2("GET", path, &r, param, param2, allow, &why, &second), ROUTE_FOUND);
    assert_string_equal(param, "1");
    assert_int_equal(strlen(param2), 63);
}

static void test_table_too_big(void **state)
{
    static http_route many[ROUTER_MAX + 1];
    http_router rt;
    for (size_t i = 0; i < ROUTER_MAX + 1; i++)
        many[i] = routes[0];
    assert_int_equal(router_init(&rt, many, ROUTER_MAX), 0);
    assert_int_equal(router_init(&rt, many, ROUTER_MAX + 1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal),       cmocka_unit_test(test_param),
        cmocka_unit_test(test_bad_param),     cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed), cmocka_unit_test(test_head_is_get),
        cmocka_unit_test(test_long_param_truncated_safely),
        cmocka_unit_test(test_literal_wins_over_param), cmocka_unit_test(test_param_inside_pattern),
        cmocka_unit_test(test_table_too_big),
        cmocka_unit_test(test_two_params),    cmocka_unit_test(test_two_params_bad),
        cmocka_unit_test(test_two_params_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
