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
 * revision itself: a create leaves it pending on the row (create_op), every other write of a
 * request (stmt_writes_segments), the sweeper's renewals and the member changes insert it,
 * and a write that changes the row moves the pending create (clearing create_op). A new write
 * path without its revision fails here. */
static bool creates(stmt_id id)
{
    return id == STMT_AUD_INSERT || id == STMT_V1_INSERT || id == STMT_AUD_BULK_INSERT ||
           id == STMT_V1_BULK_INSERT;
}

/* Whether id is a request's write of segments or one of others[0..n). */
static bool writes_or_listed(stmt_id id, const stmt_id *others, size_t n)
{
    bool yes = stmt_writes_segments(id);
    for (size_t k = 0; k < n; k++)
        yes = yes || others[k] == id;
    return yes;
}

static void test_segment_writes_write_a_revision(void **state)
{
    (void)state;
    static const stmt_id others[] = {STMT_AUD_RENEW, STMT_V1_RENEW, STMT_MEMBERS_AUD, STMT_MEMBERS_V1};
    for (int i = 0; i < STMT__COUNT; i++) {
        const char *sql = store_statements[i].sql, *name = store_statements[i].name;
        bool writes = writes_or_listed((stmt_id)i, others, sizeof others / sizeof others[0]);
        bool revises = strstr(sql, "INSERT INTO segment_revisions") != NULL;
        bool pends = strstr(sql, "create_op, create_actor, create_request_id)") != NULL;
        if (creates((stmt_id)i) ? !pends || revises : writes != revises)
            fail_msg("statement %d (%s) writes segments: %d, a revision: %d, a pending create: %d",
                     i, name ? name : "unnamed", writes, revises, pends);
        bool changes_row = strstr(sql, "UPDATE audience_segments") || strstr(sql, "UPDATE v1_segments") ||
                           strstr(sql, "DELETE FROM audience_segments") || strstr(sql, "DELETE FROM v1_segments");
        if (revises && changes_row && !strstr(sql, "WHERE del.create_op IS NOT NULL") &&
            (!strstr(sql, "create_op = NULL") || !strstr(sql, ".create_op IS NOT NULL UNION ALL")))
            fail_msg("statement %d (%s) changes a row without moving its pending create", i,
                     name ? name : "unnamed");
    }
    /* counts (STMT_SIZE_*) move no field of the document: no revision */
    assert_null(strstr(store_statements[STMT_SIZE_AUD].sql, "segment_revisions"));
}

/* Webhooks (migrations/0008_webhooks.sql): every statement that changes a segment, finishes an
 * import or stores a size writes its events itself (the outbox CTEs of statements_webhooks.h),
 * and none other does: member changes tell nothing (no field of the representation moves). A
 * new write path without its events fails here. */
static void test_changes_write_their_events(void **state)
{
    (void)state;
    static const stmt_id others[] = {STMT_AUD_RENEW, STMT_V1_RENEW, STMT_AUD_EXPIRE, STMT_V1_EXPIRE,
                                     STMT_SIZE_AUD, STMT_SIZE_V1, STMT_IMPORT_RECEIVED,
                                     STMT_IMPORT_FAIL, STMT_IMPORT_MERGE};
    for (int i = 0; i < STMT__COUNT; i++) {
        const char *sql = store_statements[i].sql, *name = store_statements[i].name;
        bool tells = writes_or_listed((stmt_id)i, others, sizeof others / sizeof others[0]);
        bool writes = strstr(sql, "INSERT INTO webhook_events") != NULL;
        bool delivers = strstr(sql, "INSERT INTO webhook_deliveries") != NULL;
        if (tells != writes || writes != delivers)
            fail_msg("statement %d (%s) changes: %d, writes events: %d, deliveries: %d", i,
                     name ? name : "unnamed", tells, writes, delivers);
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
        cmocka_unit_test(test_segment_writes_write_a_revision),
        cmocka_unit_test(test_changes_write_their_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
