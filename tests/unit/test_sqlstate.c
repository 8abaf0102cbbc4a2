/* SQLSTATE → HTTP (store/sqlstate.h): every class the map knows, its status, code,
 * Retry-After and whether the session is given up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "store/sqlstate.h"

typedef struct expect {
    const char *state;
    bool session_lost;
    int status;
    const char *code;
    int retry_after;
    bool give_up;
    const char *detail;
} expect;

static void check(const expect *x)
{
    seg_error e;
    err_clear(&e);
    bool give_up = store_sqlstate_map(x->state, x->session_lost, &e);
    const char *s = x->state ? x->state : "(null)";
    if (give_up != x->give_up)
        fail_msg("%s lost=%d: gives the session up %d, expected %d", s, x->session_lost, give_up,
                 x->give_up);
    if (e.status != x->status)
        fail_msg("%s lost=%d: status %d, expected %d", s, x->session_lost, e.status, x->status);
    if (!e.code || strcmp(e.code, x->code))
        fail_msg("%s lost=%d: code %s, expected %s", s, x->session_lost, e.code ? e.code : "(none)",
                 x->code);
    if (e.retry_after != x->retry_after)
        fail_msg("%s lost=%d: Retry-After %d, expected %d", s, x->session_lost, e.retry_after,
                 x->retry_after);
    if (x->detail && strcmp(e.detail, x->detail))
        fail_msg("%s: detail \"%s\", expected \"%s\"", s, e.detail, x->detail);
    assert_string_equal(e.title, x->status == 503 ? "Service Unavailable"
                                 : x->status == 409 ? "Conflict"
                                 : x->status == 422 ? "Unprocessable Content"
                                                    : "Internal Server Error");
}

static const char lost_detail[] = "the database connection was lost; retry shortly";

static void test_session_lost(void **state)
{
    const expect cases[] = {
        {NULL, false, 503, "database_unavailable", 1, true, lost_detail},
        {NULL, true, 503, "database_unavailable", 1, true, lost_detail},
        /* a lost session wins over whatever state came with it */
        {"23505", true, 503, "database_unavailable", 1, true, lost_detail},
        {"57014", true, 503, "database_unavailable", 1, true, lost_detail},
        {"08000", false, 503, "database_unavailable", 1, true, lost_detail},
        {"08006", false, 503, "database_unavailable", 1, true, lost_detail},
        {"08P01", false, 503, "database_unavailable", 1, true, lost_detail},
        {"57P01", false, 503, "database_unavailable", 1, true, lost_detail},
        {"57P02", false, 503, "database_unavailable", 1, true, lost_detail},
        {"57P03", false, 503, "database_unavailable", 1, true, lost_detail},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(&cases[i]);
}

static void test_retryable(void **state)
{
    const char *busy = "the database is busy; retry shortly";
    const expect cases[] = {
        {"57014", false, 503, "database_timeout", 1, false,
         "the database did not answer in time; retry shortly"},
        {"40001", false, 503, "database_busy", 1, false, busy},
        {"40P01", false, 503, "database_busy", 1, false, busy},
        {"53000", false, 503, "database_busy", 1, false, busy},
        {"53100", false, 503, "database_busy", 1, false, busy},
        {"53200", false, 503, "database_busy", 1, false, busy},
        {"53300", false, 503, "database_busy", 1, false, busy},
        {"55P03", false, 503, "database_busy", 1, false, busy},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(&cases[i]);
}

static void test_client_errors(void **state)
{
    const char *malformed = "the database refused a value: out of range or malformed";
    const char *constraint = "the database refused a value: constraint violated";
    const expect cases[] = {
        {"23505", false, 409, "conflict", 0, false, "a segment with this id already exists"},
        {"22001", false, 422, "rejected_by_database", 0, false, malformed},
        {"22003", false, 422, "rejected_by_database", 0, false, malformed},
        {"22P02", false, 422, "rejected_by_database", 0, false, malformed},
        {"23503", false, 422, "rejected_by_database", 0, false, constraint},
        {"23502", false, 422, "rejected_by_database", 0, false, constraint},
        {"23514", false, 422, "rejected_by_database", 0, false, constraint},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(&cases[i]);
}

static void test_unknown(void **state)
{
    const char *unexpected = "the database reported an unexpected error";
    const expect cases[] = {
        {"42P01", false, 500, "internal", 0, false, unexpected},
        {"XX000", false, 500, "internal", 0, false, unexpected},
        {"40003", false, 500, "internal", 0, false, unexpected}, /* not 40001 / 40P01 */
        {"57000", false, 500, "internal", 0, false, unexpected}, /* not 57014, not 57P */
        {"55000", false, 500, "internal", 0, false, unexpected}, /* not 55P03 */
        {"", false, 500, "internal", 0, false, unexpected},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(&cases[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_lost),
        cmocka_unit_test(test_retryable),
        cmocka_unit_test(test_client_errors),
        cmocka_unit_test(test_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
