/* Unit tests for eval/segment_cache: what is kept and when it is dropped. */
/* Not listening: nothing kept. Listening: a put after get is kept unless word came for the
 * tenant (or anyone's, or the listening stopped) in between; word for another tenant changes
 * nothing. Sets are counted: one dropped by the cache while a caller holds it stays valid
 * until released (ASan in CI sees a use after free). Sets sort /audiences first, then by id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eval/segment_cache.h"

/* Segments for a put: ids "<prefix>-<i>" of the /v1 dialect when v1[i], else /audiences,
 * with a rule of their dialect. */
static ev_segment *make(const char *const *ids, const bool *v1, size_t n)
{
    ev_segment *s = calloc(n ? n : 1, sizeof *s);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        seg_error err;
        err_clear(&err);
        s[i].v1 = v1[i];
        s[i].id = strdup(ids[i]);
        assert_non_null(s[i].id);
        s[i].active = true;
        if (v1[i]) {
            const char *rule = "[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\","
                               "\"relation\":\"==\",\"value\":\"US\"}]}]";
            assert_int_equal(ev_rule_v1(rule, strlen(rule), &s[i].rule, &err), 0);
        } else {
            const char *props = i % 2 ? "{}" : "{\"color\":[4,\"x\"]}";
            assert_int_equal(ev_rule_aud(props, strlen(props), &s[i].rule, &err), 0);
        }
    }
    return s;
}

static ev_segment *two(void)
{
    static const char *const ids[] = {"seg_a", "0f0e0d0c-0000-4000-8000-000000000001"};
    static const bool v1[] = {true, false};
    return make(ids, v1, 2);
}

/* Gets and puts a fresh set for tenant; returns the put's reference. */
static ev_segment_set *load(const char *tenant)
{
    uint64_t stamp;
    ev_segment_set *s = ev_cache_get(tenant, &stamp);
    assert_null(s);
    return ev_cache_put(tenant, stamp, "fp1", two(), 2);
}

/* Whether the cache holds a set for tenant (a hit releases its reference). */
static bool kept(const char *tenant)
{
    uint64_t stamp;
    ev_segment_set *s = ev_cache_get(tenant, &stamp);
    if (!s)
        return false;
    ev_cache_release(s);
    return true;
}

static int reset(void **state)
{
    (void)state;
    ev_cache_watching(false);
    return 0;
}

static void test_not_listening(void **state)
{
    (void)state;
    uint64_t stamp = 0;
    assert_null(ev_cache_get("t1", &stamp));
    assert_int_equal(stamp, UINT64_MAX);
    ev_segment_set *s = ev_cache_put("t1", stamp, "fp1", two(), 2);
    assert_non_null(s);
    assert_int_equal(s->n, 2);
    assert_int_equal(s->refs, 1); /* the caller's only */
    ev_cache_release(s);
    assert_false(kept("t1"));
    /* a stamp from a listening time, put after listening stopped: not kept either */
    ev_cache_watching(true);
    assert_null(ev_cache_get("t1", &stamp));
    assert_int_not_equal(stamp, UINT64_MAX);
    ev_cache_watching(false);
    s = ev_cache_put("t1", stamp, "fp1", two(), 2);
    assert_non_null(s);
    ev_cache_release(s);
    assert_false(kept("t1"));
}

static void test_put_then_get(void **state)
{
    (void)state;
    ev_cache_watching(true);
    unsigned long long h0, l0, h1, l1;
    ev_cache_stats(&h0, &l0);
    ev_segment_set *s = load("t1");
    assert_non_null(s);
    assert_int_equal(s->refs, 2); /* the caller's and the cache's */
    uint64_t stamp;
    ev_segment_set *again = ev_cache_get("t1", &stamp);
    assert_ptr_equal(again, s);
    assert_int_equal(s->refs, 3);
    ev_cache_release(again);
    ev_cache_release(s);
    assert_true(kept("t1"));
    ev_cache_stats(&h1, &l1);
    assert_int_equal(l1 - l0, 1);
    assert_int_equal(h1 - h0, 2);
    /* another tenant is its own */
    assert_false(kept("t2"));
    /* a tenant without segments is kept too */
    assert_null(ev_cache_get("empty", &stamp));
    ev_segment *none = calloc(1, sizeof *none); /* as device_segments.c allocates for 0 */
    assert_non_null(none);
    s = ev_cache_put("empty", stamp, "fp1", none, 0);
    assert_non_null(s);
    assert_int_equal(s->n, 0);
    ev_cache_release(s);
    assert_true(kept("empty"));
}

static void test_word_between_get_and_put(void **state)
{
    (void)state;
    ev_cache_watching(true);
    uint64_t stamp;
    assert_null(ev_cache_get("t1", &stamp));
    ev_cache_changed("t1");
    ev_segment_set *s = ev_cache_put("t1", stamp, "fp1", two(), 2);
    assert_non_null(s); /* the request that loaded it uses it */
    assert_int_equal(s->refs, 1);
    ev_cache_release(s);
    assert_false(kept("t1"));

    /* a later get gives a stamp that holds again */
    uint64_t old;
    assert_null(ev_cache_get("t1", &old));
    ev_cache_changed("t1");
    assert_null(ev_cache_get("t1", &stamp));
    s = ev_cache_put("t1", old, "fp1", two(), 2); /* stale */
    ev_cache_release(s);
    assert_false(kept("t1"));
    assert_null(ev_cache_get("t1", &stamp));
    s = ev_cache_put("t1", stamp, "fp1", two(), 2);
    ev_cache_release(s);
    assert_true(kept("t1"));

    /* word for another tenant between get and put: kept */
    assert_null(ev_cache_get("t3", &stamp));
    ev_cache_changed("t4");
    ev_cache_changed("t1");
    s = ev_cache_put("t3", stamp, "fp1", two(), 2);
    ev_cache_release(s);
    assert_true(kept("t3"));

    /* anyone's word between get and put: not kept */
    assert_null(ev_cache_get("t5", &stamp));
    ev_cache_changed(NULL);
    s = ev_cache_put("t5", stamp, "fp1", two(), 2);
    ev_cache_release(s);
    assert_false(kept("t5"));

    /* listening stopped and started again between get and put: not kept */
    assert_null(ev_cache_get("t6", &stamp));
    ev_cache_watching(false);
    ev_cache_watching(true);
    s = ev_cache_put("t6", stamp, "fp1", two(), 2);
    ev_cache_release(s);
    assert_false(kept("t6"));
}

/* A set loaded before anyone's word (or a stop of the listening) must not be kept even when
 * another request's get made the tenant's entry again in between: the stamp of the first
 * get is from before the word. */
static void test_stale_stamp_after_forget(void **state)
{
    (void)state;
    ev_cache_watching(true);
    uint64_t before, after;
    assert_null(ev_cache_get("t1", &before)); /* request A starts loading */
    ev_cache_changed(NULL);                    /* word for everyone: A's load may be stale */
    assert_null(ev_cache_get("t1", &after));  /* request B starts loading, after the word */
    ev_segment_set *a = ev_cache_put("t1", before, "fp1", two(), 2);
    assert_non_null(a);
    ev_cache_release(a);
    if (kept("t1"))
        fail_msg("a set loaded before ev_cache_changed(NULL) was kept (stamp %llu, entry made again "
                 "by a later get with stamp %llu)", (unsigned long long)before, (unsigned long long)after);
    ev_cache_release(ev_cache_put("t1", after, "fp1", two(), 2)); /* B's is kept */
    assert_true(kept("t1"));
}

/* The same with the listening stopped and started again between the two gets. */
static void test_stale_stamp_after_relisten(void **state)
{
    (void)state;
    ev_cache_watching(true);
    uint64_t before, after;
    ev_segment_set *a;
    assert_null(ev_cache_get("t2", &before));
    ev_cache_watching(false);
    ev_cache_watching(true);
    assert_null(ev_cache_get("t2", &after));
    a = ev_cache_put("t2", before, "fp1", two(), 2);
    ev_cache_release(a);
    if (kept("t2"))
        fail_msg("a set loaded before the listening stopped was kept once it started again");
}

static void test_changed_drops(void **state)
{
    (void)state;
    ev_cache_watching(true);
    ev_cache_release(load("t1"));
    ev_cache_release(load("t2"));
    assert_true(kept("t1"));
    assert_true(kept("t2"));
    ev_cache_changed("t2");
    assert_true(kept("t1")); /* another tenant's word */
    assert_false(kept("t2"));
    ev_cache_changed("never-seen"); /* word for a tenant not in the cache */
    assert_true(kept("t1"));
    ev_cache_release(load("t2"));
    ev_cache_changed(NULL);
    assert_false(kept("t1"));
    assert_false(kept("t2"));
    ev_cache_release(load("t1"));
    ev_cache_release(load("t2"));
    ev_cache_watching(false);
    assert_false(kept("t1"));
    assert_false(kept("t2"));
    ev_cache_watching(true);
    assert_false(kept("t1")); /* listening again starts empty */
    assert_false(kept("t2"));
}

/* A set the cache lets go while a caller holds it stays whole until released. */
static void test_references(void **state)
{
    (void)state;
    ev_cache_watching(true);
    ev_segment_set *mine = load("t1");
    uint64_t stamp;
    ev_segment_set *hit = ev_cache_get("t1", &stamp);
    assert_ptr_equal(hit, mine);
    ev_cache_changed("t1"); /* the cache's reference goes */
    assert_int_equal(mine->refs, 2);
    assert_string_equal(mine->segs[0].id, "0f0e0d0c-0000-4000-8000-000000000001");
    assert_string_equal(mine->segs[1].id, "seg_a");
    ev_cache_release(hit);
    assert_int_equal(mine->refs, 1);
    assert_int_equal(mine->n, 2);
    assert_string_equal(mine->segs[1].id, "seg_a");
    assert_int_equal(mine->segs[1].rule.kind, EV_RULE_V1);
    ev_cache_release(mine); /* the last: freed (ASan: no leak, no use after) */

    /* the same when the cache forgets everyone, and when listening stops */
    mine = load("t2");
    ev_cache_changed(NULL);
    assert_int_equal(mine->refs, 1);
    assert_string_equal(mine->segs[0].id, "0f0e0d0c-0000-4000-8000-000000000001");
    ev_cache_release(mine);
    mine = load("t2");
    ev_cache_watching(false);
    assert_int_equal(mine->refs, 1);
    assert_int_equal(mine->segs[1].rule.n, 1);
    ev_cache_release(mine);

    /* a new put replaces the kept set; the old one lives on with its holder */
    ev_cache_watching(true);
    ev_segment_set *first = load("t3");
    ev_cache_changed("t3");
    assert_null(ev_cache_get("t3", &stamp));
    ev_segment_set *second = ev_cache_put("t3", stamp, "fp1", two(), 2);
    assert_ptr_not_equal(first, second);
    assert_int_equal(first->refs, 1);
    assert_string_equal(first->segs[1].id, "seg_a");
    ev_cache_release(first);
    ev_cache_release(second);
    assert_true(kept("t3"));
}

static void test_sorted(void **state)
{
    (void)state;
    static const char *const ids[] = {"seg_b", "uuid-2", "seg_A", "uuid-1", "seg_a", "Uuid-0"};
    static const bool v1[] = {true, false, true, false, true, false};
    ev_cache_watching(true);
    uint64_t stamp;
    assert_null(ev_cache_get("t1", &stamp));
    ev_segment_set *s = ev_cache_put("t1", stamp, "fp1", make(ids, v1, 6), 6);
    assert_non_null(s);
    assert_int_equal(s->n, 6);
    static const char *const want[] = {"Uuid-0", "uuid-1", "uuid-2", "seg_A", "seg_a", "seg_b"};
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(s->segs[i].id, want[i]);
        assert_int_equal(s->segs[i].v1, i >= 3);
        /* each segment's rule moved with it */
        assert_int_equal(s->segs[i].rule.kind == EV_RULE_V1, i >= 3);
    }
    ev_cache_release(s);
    /* the kept set is the sorted one */
    s = ev_cache_get("t1", &stamp);
    assert_non_null(s);
    assert_string_equal(s->segs[0].id, "Uuid-0");
    assert_string_equal(s->segs[5].id, "seg_b");
    ev_cache_release(s);
}

/* Past the tenants the cache holds, it starts again empty: kept sets go, nothing leaks. */
static void test_many_tenants(void **state)
{
    (void)state;
    ev_cache_watching(true);
    ev_cache_release(load("first"));
    assert_true(kept("first"));
    char t[32];
    uint64_t stamp;
    for (int i = 0; i < 9000; i++) {
        snprintf(t, sizeof t, "tenant-%d", i);
        assert_null(ev_cache_get(t, &stamp));
        assert_int_not_equal(stamp, UINT64_MAX);
    }
    assert_false(kept("first"));
    ev_cache_release(load("first"));
    assert_true(kept("first"));
}

/* The watch: a fingerprint other than the one read with the set drops it; the same keeps it;
 * another tenant's changes nothing. */
static void test_seen(void **state)
{
    (void)state;
    ev_cache_watching(true);
    ev_cache_release(load("t1"));
    ev_cache_release(load("t2"));
    ev_cache_seen("t1", "fp1");
    assert_true(kept("t1"));
    ev_cache_seen("t1", "fp2");
    assert_false(kept("t1"));
    assert_true(kept("t2"));
    ev_cache_seen("nobody", "fp9");
    assert_true(kept("t2"));
}

/* The tenants the watch reads: those with a set, as a quoted, escaped text[] literal. */
static void test_tenants(void **state)
{
    (void)state;
    ev_cache_watching(true);
    assert_null(ev_cache_tenants());
    ev_cache_release(load("a\"b\\c"));
    char *t = ev_cache_tenants();
    assert_non_null(t);
    assert_string_equal(t, "{\"a\\\"b\\\\c\"}");
    free(t);
    ev_cache_changed("a\"b\\c");
    assert_null(ev_cache_tenants());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_not_listening, reset, reset),
        cmocka_unit_test_setup_teardown(test_put_then_get, reset, reset),
        cmocka_unit_test_setup_teardown(test_word_between_get_and_put, reset, reset),
        cmocka_unit_test_setup_teardown(test_stale_stamp_after_forget, reset, reset),
        cmocka_unit_test_setup_teardown(test_stale_stamp_after_relisten, reset, reset),
        cmocka_unit_test_setup_teardown(test_changed_drops, reset, reset),
        cmocka_unit_test_setup_teardown(test_references, reset, reset),
        cmocka_unit_test_setup_teardown(test_sorted, reset, reset),
        cmocka_unit_test_setup_teardown(test_many_tenants, reset, reset),
        cmocka_unit_test_setup_teardown(test_seen, reset, reset),
        cmocka_unit_test_setup_teardown(test_tenants, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
