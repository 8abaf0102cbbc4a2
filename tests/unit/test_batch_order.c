/* The order a batch sends its statements in (batch_lock_order, store/store_private.h):
 * statements locking no existing row first and equal among themselves, then writes by
 * table, tenant and id, so that two batches never take row locks in opposite orders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "store/statements.h"
#include "store/batch.h"

#define UUID_LO "0190a7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6b"
#define UUID_HI "0190a7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6c"

/* Statements and their parameters ($1 tenant, $2 id; the rest is never looked at). */
typedef struct stmt {
    stmt_id id;
    const char *p[3];
} stmt;

static int order(const stmt *a, const stmt *b)
{
    return batch_lock_order(a->id, a->p, b->id, b->p);
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

/* a before b, and b after a. */
static void before(const stmt *a, const stmt *b)
{
    int ab = order(a, b), ba = order(b, a);
    if (ab >= 0 || ba <= 0)
        fail_msg("statement %d (%s, %s) is not before %d (%s, %s): %d / %d", a->id,
                 a->p[0] ? a->p[0] : "-", a->p[1] ? a->p[1] : "-", b->id, b->p[0] ? b->p[0] : "-",
                 b->p[1] ? b->p[1] : "-", ab, ba);
}

static void test_table_data(void **state)
{
    /* the order is read from the statement table: what it says of each statement */
    assert_int_equal(store_statements[STMT_AUD_UPDATE].locks, LOCKS_AUDIENCE_SEGMENTS);
    assert_int_equal(store_statements[STMT_AUD_DELETE].locks, LOCKS_AUDIENCE_SEGMENTS);
    assert_int_equal(store_statements[STMT_V1_UPDATE].locks, LOCKS_V1_SEGMENTS);
    assert_int_equal(store_statements[STMT_V1_DELETE].locks, LOCKS_V1_SEGMENTS);
    const stmt_id none[] = {STMT_AUD_INSERT, STMT_AUD_GET, STMT_AUD_LIST, STMT_V1_INSERT,
                            STMT_V1_GET, STMT_V1_LIST, STMT_BEGIN, STMT_COMMIT};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        assert_int_equal(store_statements[none[i]].locks, LOCKS_NONE);
}

static void test_reads_and_inserts_equal(void **state)
{
    const stmt s[] = {
        {STMT_AUD_GET, {"b", UUID_HI}}, {STMT_AUD_INSERT, {"a", UUID_LO}},
        {STMT_V1_GET, {"z", "seg_b"}},  {STMT_V1_INSERT, {"a", "seg_a"}},
        {STMT_AUD_LIST, {"t", NULL}},   {STMT_V1_LIST, {NULL, NULL}},
    };
    size_t n = sizeof s / sizeof s[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (order(&s[i], &s[j]) != 0)
                fail_msg("statements %d and %d are ordered (%d): they lock nothing", s[i].id,
                         s[j].id, order(&s[i], &s[j]));
}

static void test_reads_before_writes(void **state)
{
    /* even when the read's tenant and id sort after the write's */
    const stmt reads[] = {{STMT_AUD_GET, {"zz", UUID_HI}}, {STMT_V1_INSERT, {"zz", "seg_z"}},
                          {STMT_V1_LIST, {"zz", NULL}}};
    const stmt writes[] = {{STMT_AUD_UPDATE, {"a", UUID_LO}}, {STMT_AUD_DELETE, {"a", UUID_LO}},
                           {STMT_V1_UPDATE, {"a", "seg_a"}}, {STMT_V1_DELETE, {"a", "seg_a"}}};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        for (size_t j = 0; j < sizeof writes / sizeof writes[0]; j++)
            before(&reads[i], &writes[j]);
}

static void test_audience_before_v1(void **state)
{
    const stmt aud[] = {{STMT_AUD_UPDATE, {"zz", UUID_HI}}, {STMT_AUD_DELETE, {"zz", UUID_HI}}};
    const stmt v1[] = {{STMT_V1_UPDATE, {"a", "seg_a"}}, {STMT_V1_DELETE, {"a", "seg_a"}}};
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 2; j++)
            before(&aud[i], &v1[j]);
}

static void test_tenant_then_id(void **state)
{
    const stmt a_hi = {STMT_AUD_UPDATE, {"acme", UUID_HI}};
    const stmt b_lo = {STMT_AUD_DELETE, {"beta", UUID_LO}};
    const stmt a_lo = {STMT_AUD_DELETE, {"acme", UUID_LO}};
    before(&a_hi, &b_lo); /* the tenant first */
    before(&a_lo, &a_hi); /* then the id */
    /* an update and a delete of one row: equal, they keep their arrival order */
    const stmt upd = {STMT_AUD_UPDATE, {"acme", UUID_LO}};
    assert_int_equal(order(&upd, &a_lo), 0);
    assert_int_equal(order(&a_lo, &upd), 0);

    const stmt v_a = {STMT_V1_DELETE, {"t", "seg_0000000000001"}};
    const stmt v_b = {STMT_V1_UPDATE, {"t", "seg_0000000000002"}};
    const stmt v_c = {STMT_V1_UPDATE, {"u", "seg_0000000000000"}};
    before(&v_a, &v_b);
    before(&v_b, &v_c);
    before(&v_a, &v_c);
    /* tenants compare byte for byte */
    const stmt t_upper = {STMT_V1_UPDATE, {"Tenant", "seg_b"}};
    const stmt t_lower = {STMT_V1_UPDATE, {"tenant", "seg_a"}};
    before(&t_upper, &t_lower);
}

static void test_ids_case_insensitive_first(void **state)
{
    /* byte order would put "B…" before "a…"; a uuid in either case is one row */
    const stmt lo = {STMT_AUD_UPDATE, {"t", "a190a7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6b"}};
    const stmt hi = {STMT_AUD_UPDATE, {"t", "B190A7A2-3C4D-7E5F-8A6B-1C2D3E4F5A6B"}};
    before(&lo, &hi);
    /* ids equal but for case: still a total order (byte order decides) */
    const stmt up = {STMT_AUD_DELETE, {"t", "0190A7A2-3C4D-7E5F-8A6B-1C2D3E4F5A6B"}};
    const stmt low = {STMT_AUD_UPDATE, {"t", UUID_LO}};
    before(&up, &low);
    const stmt same = {STMT_AUD_DELETE, {"t", UUID_LO}};
    assert_int_equal(order(&low, &same), 0);
}

/* A batch sorted as batch.c sorts it (stable insertion) lands in the lock order. */
static void test_sorted_batch(void **state)
{
    stmt in[] = {
        {STMT_V1_UPDATE, {"t", "seg_b"}},   {STMT_AUD_GET, {"t", UUID_HI}},
        {STMT_AUD_UPDATE, {"u", UUID_LO}},  {STMT_V1_INSERT, {"t", "seg_x"}},
        {STMT_AUD_DELETE, {"t", UUID_HI}},  {STMT_V1_DELETE, {"t", "seg_a"}},
        {STMT_AUD_UPDATE, {"t", UUID_LO}},  {STMT_AUD_LIST, {"t", NULL}},
    };
    const stmt_id want[] = {STMT_AUD_GET,    STMT_V1_INSERT,  STMT_AUD_LIST,  STMT_AUD_UPDATE,
                            STMT_AUD_DELETE, STMT_AUD_UPDATE, STMT_V1_DELETE, STMT_V1_UPDATE};
    const char *want_tenant[] = {"t", "t", "t", "t", "t", "u", "t", "t"};
    size_t n = sizeof in / sizeof in[0];
    for (size_t i = 1; i < n; i++) {
        stmt x = in[i];
        size_t k = i;
        while (k > 0 && order(&in[k - 1], &x) > 0) {
            in[k] = in[k - 1];
            k--;
        }
        in[k] = x;
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(in[i].id, want[i]);
        assert_string_equal(in[i].p[0], want_tenant[i]);
    }
    for (size_t i = 0; i + 1 < n; i++) /* and the order is consistent both ways */
        assert_int_equal(sign(order(&in[i], &in[i + 1])), -sign(order(&in[i + 1], &in[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_data),
        cmocka_unit_test(test_reads_and_inserts_equal),
        cmocka_unit_test(test_reads_before_writes),
        cmocka_unit_test(test_audience_before_v1),
        cmocka_unit_test(test_tenant_then_id),
        cmocka_unit_test(test_ids_case_insensitive_first),
        cmocka_unit_test(test_sorted_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
