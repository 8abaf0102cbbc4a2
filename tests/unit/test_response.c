/* The answer's helpers: the ETag of a version, formatted without snprintf. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/request.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag_as_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
