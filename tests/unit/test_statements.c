/* Unit tests for store/statements: every statement of the table has its SQL, and its
 * parameter count is the highest $n its SQL names (a statement left out of the table, or a
 * parameter added without its count, fails here rather than at the first request). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* History (migrations/0006_history.sql): every statement that changes a segment writes its
 * revision itself. The segment writes of requests (stmt_writes_segments), the sweeper's
 * renewals and the member changes; a new write path without one fails here. */
static void test_segment_writes_write_a_revision(void **state)
{
    (void)state;
    static const stmt_id others[] = {STMT_AUD_RENEW, STMT_V1_RENEW, STMT_MEMBERS_AUD, STMT_MEMBERS_V1};
    for (int i = 0; i < STMT__COUNT; i++) {
        bool writes = stmt_writes_segments((stmt_id)i);
        for (size_t k = 0; k < sizeof others / sizeof others[0]; k++)
            writes = writes || others[k] == (stmt_id)i;
        bool revises = strstr(store_statements[i].sql, "INSERT INTO segment_revisions") != NULL;
        if (writes != revises)
            fail_msg("statement %d (%s) %s segments but %s a revision", i,
                     store_statements[i].name ? store_statements[i].name : "unnamed",
                     writes ? "writes" : "does not write", revises ? "writes" : "writes no");
    }
    /* counts (STMT_SIZE_*) move no field of the document: no revision */
    assert_null(strstr(store_statements[STMT_SIZE_AUD].sql, "segment_revisions"));
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
        cmocka_unit_test(test_segment_writes_write_a_revision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
