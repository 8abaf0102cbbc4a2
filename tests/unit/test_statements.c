/* Unit tests for store/statements: every statement of the table has its SQL, and its
 * parameter count is the highest $n its SQL names (a statement left out of the table, or a
 * parameter added without its count, fails here rather than at the first request). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/statements.h"

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

static void test_every_statement(void **state)
{
    (void)state;
    for (int i = 0; i < STMT__COUNT; i++) {
        const stmt_def *s = &store_statements[i];
        if (!s->sql)
            fail_msg("statement %d has no SQL", i);
        if (highest_param(s->sql) != s->nparams)
            fail_msg("statement %d (%s) names $%d but counts %d parameters", i,
                     s->name ? s->name : "unnamed", highest_param(s->sql), s->nparams);
    }
}

static void test_names_unique(void **state)
{
    (void)state;
    for (int i = 0; i < STMT__COUNT; i++)
        for (int j = i + 1; j < STMT__COUNT; j++)
            if (store_statements[i].name && store_statements[j].name)
                assert_string_not_equal(store_statements[i].name, store_statements[j].name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_statement),
        cmocka_unit_test(test_names_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
