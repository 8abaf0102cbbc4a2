/* The answer's helpers: the ETag of a version, formatted without snprintf; a request's
 * error as its problem document, and the fallback when it cannot be written. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/request.h"
#include "http/response.h"

static void check_etag(long long v)
{
    http_request rq;
    char want[48];
    memset(&rq, 0, sizeof rq);
    snprintf(want, sizeof want, "\"%lld\"", v);
    http_set_etag(&rq, v);
    assert_string_equal(rq.etag, want);
}

static void test_etag_as_printf(void **state)
{
    static const long long edges[] = {0, 1, 9, 10, 99, 100, 12345, 1000000007LL,
                                      LLONG_MAX, -1, -10, LLONG_MIN};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        check_etag(edges[i]);
    for (long long v = 1; v < LLONG_MAX / 3; v = v * 3 + 1) /* every length of digits */
        check_etag(v);
}

static void test_problem_document(void **state)
{
    seg_error e;
    size_t len;
    err_clear(&e);
    err_set(&e, 422, "validation_failed", "the request body is not valid; see errors");
    err_add(&e, "/name", "expected a string, got \"\x01\"");
    char *s = http_problem_render(&e, "0123456789abcdef", &len);
    assert_string_equal(s, "{\"type\":\"https://segmentd.dev/problems/validation_failed\",\"title\":"
                           "\"Unprocessable Content\",\"status\":422,\"detail\":\"the request body is not valid; "
                           "see errors\",\"code\":\"validation_failed\",\"request_id\":\"0123456789abcdef\","
                           "\"errors\":[{\"pointer\":\"/name\",\"detail\":\"expected a string, got \\\"\\u0001\\\"\"}]}");
    assert_int_equal(len, strlen(s));
    free(s);
}

/* A detail that is not UTF-8 (set around err_set) gives the fixed internal problem. */
static void test_problem_fallback(void **state)
{
    seg_error e;
    size_t len;
    err_clear(&e);
    err_set(&e, 400, "bad", "x");
    memcpy(e.detail, "cut \xe2\x82", 7);
    char *s = http_problem_render(&e, "r", &len);
    assert_non_null(strstr(s, "\"status\":500"));
    assert_non_null(strstr(s, "the error could not be encoded"));
    assert_int_equal(len, strlen(s));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag_as_printf),
        cmocka_unit_test(test_problem_document),
        cmocka_unit_test(test_problem_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
