/* Unit tests for validate/members: PATCH …/members bodies. */
/* Valid add / remove and the text[] literal of the ids (quoted, request order, repeats kept,
 * "NULL" an id), reserved ids accepted; every problem at its pointer (/operation, /ids,
 * /ids/N, an unknown key), 0 and 10 001 ids, non-string ids, NUL in an id, a body that is
 * not an object; nothing held after a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "validate/members.h"

/* val_members on the JSON text body; 0 or -1. */
static int run(const char *body, members_in *out, seg_error *err)
{
    json_error_t je;
    json_t *root = json_loads(body, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!root)
        fail_msg("test body is not JSON: %s", body);
    err_clear(err);
    memset(out, 0xab, sizeof *out);
    int rc = val_members(root, out, err);
    json_decref(root);
    return rc;
}

static void expect_ok(const char *body, bool add, size_t n, const char *ids)
{
    members_in in;
    seg_error err;
    if (run(body, &in, &err) != 0)
        fail_msg("%s refused: %s %s", body, err.n_items ? err.items[0].pointer : "", err.n_items ? err.items[0].detail : err.detail);
    assert_int_equal(err.status, 0);
    assert_int_equal(in.add, add);
    assert_int_equal(in.n, n);
    assert_string_equal(in.ids, ids);
    val_members_release(&in);
    assert_null(in.ids);
    val_members_release(&in);
}

/* Refused with 422 and exactly the pointers given, in order; root consumed. */
static void expect_bad_json(json_t *root, const char *const *pointers, int n)
{
    members_in in;
    seg_error err;
    err_clear(&err);
    memset(&in, 0xab, sizeof in);
    int rc = val_members(root, &in, &err);
    char *body = rc == 0 ? json_dumps(root, JSON_ENCODE_ANY) : NULL;
    json_decref(root);
    if (rc == 0) {
        bool add = in.add;
        val_members_release(&in);
        print_message("  accepted as %s: %s\n", add ? "add" : "remove", body ? body : "?");
        free(body);
        fail_msg("expected the body refused");
    }
    assert_int_equal(rc, -1);
    assert_int_equal(err.status, 422);
    assert_null(in.ids);
    if (err.n_items != n) {
        for (int i = 0; i < err.n_items; i++)
            print_message("  %s: %s\n", err.items[i].pointer, err.items[i].detail);
        fail_msg("expected %d problems, got %d", n, err.n_items);
    }
    for (int i = 0; i < n; i++)
        assert_string_equal(err.items[i].pointer, pointers[i]);
    val_members_release(&in);
}

static void expect_bad(const char *body, const char *const *pointers, int n)
{
    json_error_t je;
    json_t *root = json_loads(body, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!root)
        fail_msg("test body is not JSON: %s", body);
    expect_bad_json(root, pointers, n);
}

static void test_valid(void **state)
{
    (void)state;
    expect_ok("{\"operation\":\"add\",\"ids\":[\"a\",\"b\"]}", true, 2, "{\"a\",\"b\"}");
    expect_ok("{\"ids\":[\"a\",\"b\"],\"operation\":\"remove\"}", false, 2, "{\"a\",\"b\"}");
    expect_ok("{\"operation\":\"add\",\"ids\":[\"x\"]}", true, 1, "{\"x\"}");
    /* request order, repeats kept */
    expect_ok("{\"operation\":\"add\",\"ids\":[\"b\",\"a\",\"b\",\"b\"]}", true, 4, "{\"b\",\"a\",\"b\",\"b\"}");
    /* NULL is an id, quoted: never read as a null element */
    expect_ok("{\"operation\":\"remove\",\"ids\":[\"NULL\",\"null\"]}", false, 2, "{\"NULL\",\"null\"}");
    /* the reserved words of the device routes are ids here (unknown ones, not refused) */
    expect_ok("{\"operation\":\"add\",\"ids\":[\"bulk\",\"imports\",\"bulk-delete\"]}", true, 3,
              "{\"bulk\",\"imports\",\"bulk-delete\"}");
    /* every character a device id may hold */
    expect_ok("{\"operation\":\"add\",\"ids\":[\"AZaz09-_.:@\"]}", true, 1, "{\"AZaz09-_.:@\"}");
}

static json_t *with_n_ids(size_t n)
{
    json_t *ids = json_array();
    char s[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(s, sizeof s, "d%zu", i);
        json_array_append_new(ids, json_string(s));
    }
    return json_pack("{s:s, s:o}", "operation", "add", "ids", ids);
}

static void test_limits(void **state)
{
    (void)state;
    /* 10 000 ids: accepted, literal complete */
    json_t *root = with_n_ids(MEMBERS_IDS_MAX);
    members_in in;
    seg_error err;
    err_clear(&err);
    assert_int_equal(val_members(root, &in, &err), 0);
    assert_int_equal(in.n, 10000);
    assert_int_equal(strncmp(in.ids, "{\"d0\",\"d1\",", 11), 0);
    size_t len = strlen(in.ids);
    assert_true(len > 20);
    assert_string_equal(in.ids + len - 16, "\"d9998\",\"d9999\"}");
    val_members_release(&in);
    json_decref(root);
    /* 10 001: refused at /ids */
    root = with_n_ids(MEMBERS_IDS_MAX + 1);
    const char *ids_ptr[] = {"/ids"};
    expect_bad_json(root, ids_ptr, 1);
    /* a 255-character id is one, 256 is not */
    char id[300];
    memset(id, 'x', 256);
    id[255] = '\0';
    root = json_pack("{s:s, s:[s]}", "operation", "add", "ids", id);
    err_clear(&err);
    assert_int_equal(val_members(root, &in, &err), 0);
    assert_int_equal(strlen(in.ids), 255 + 4);
    val_members_release(&in);
    json_decref(root);
    id[255] = 'x';
    id[256] = '\0';
    root = json_pack("{s:s, s:[s,s]}", "operation", "add", "ids", "ok", id);
    const char *one_ptr[] = {"/ids/1"};
    expect_bad_json(root, one_ptr, 1);
}

static void test_pointers(void **state)
{
    (void)state;
    const char *op[] = {"/operation"}, *ids[] = {"/ids"}, *foo[] = {"/foo"};
    /* operation */
    expect_bad("{\"ids\":[\"a\"]}", op, 1);
    expect_bad("{\"operation\":\"ADD\",\"ids\":[\"a\"]}", op, 1);
    expect_bad("{\"operation\":\"delete\",\"ids\":[\"a\"]}", op, 1);
    expect_bad("{\"operation\":\"\",\"ids\":[\"a\"]}", op, 1);
    expect_bad("{\"operation\":\"add \",\"ids\":[\"a\"]}", op, 1);
    expect_bad("{\"operation\":1,\"ids\":[\"a\"]}", op, 1);
    expect_bad("{\"operation\":null,\"ids\":[\"a\"]}", op, 1);
    expect_bad("{\"operation\":[\"add\"],\"ids\":[\"a\"]}", op, 1);
    /* ids */
    expect_bad("{\"operation\":\"add\"}", ids, 1);
    expect_bad("{\"operation\":\"add\",\"ids\":[]}", ids, 1);
    expect_bad("{\"operation\":\"add\",\"ids\":\"a\"}", ids, 1);
    expect_bad("{\"operation\":\"add\",\"ids\":{\"0\":\"a\"}}", ids, 1);
    expect_bad("{\"operation\":\"add\",\"ids\":null}", ids, 1);
    /* each bad id at its index */
    const char *i3[] = {"/ids/3"};
    expect_bad("{\"operation\":\"add\",\"ids\":[\"a\",\"b\",\"c\",1]}", i3, 1);
    expect_bad("{\"operation\":\"add\",\"ids\":[\"a\",\"b\",\"c\",null]}", i3, 1);
    expect_bad("{\"operation\":\"add\",\"ids\":[\"a\",\"b\",\"c\",[\"d\"]]}", i3, 1);
    expect_bad("{\"operation\":\"add\",\"ids\":[\"a\",\"b\",\"c\",\"\"]}", i3, 1);
    expect_bad("{\"operation\":\"add\",\"ids\":[\"a\",\"b\",\"c\",\"a\\u0000b\"]}", i3, 1); /* NUL */
    const char *bad_ids[] = {"a b", "a\"b", "a\\b", "a,b", "{a}", "a/b", "\xc3\xa9", "a'b", "a\tb"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        json_t *root = json_pack("{s:s, s:[s,s,s,s]}", "operation", "remove", "ids", "a", "b", "c", bad_ids[i]);
        assert_non_null(root);
        expect_bad_json(root, i3, 1);
    }
    /* unknown keys, each at its own pointer */
    expect_bad("{\"operation\":\"add\",\"ids\":[\"a\"],\"foo\":1}", foo, 1);
    const char *tilde[] = {"/a~1b~0c"};
    expect_bad("{\"operation\":\"add\",\"ids\":[\"a\"],\"a/b~c\":1}", tilde, 1);
    /* several problems at once, every one reported */
    const char *all[] = {"/foo", "/operation", "/ids/0", "/ids/2"};
    expect_bad("{\"foo\":true,\"operation\":\"x\",\"ids\":[1,\"ok\",\"no pe\"]}", all, 4);
    const char *both[] = {"/operation", "/ids"};
    expect_bad("{}", both, 2);
}

/* An operation with a NUL is neither add nor remove: "add\u0000x" is not "add" (the ids
 * are checked for NUL the same way). */
static void test_operation_nul(void **state)
{
    (void)state;
    const char *op[] = {"/operation"};
    expect_bad("{\"operation\":\"add\\u0000x\",\"ids\":[\"a\"]}", op, 1);
    expect_bad("{\"operation\":\"remove\\u0000\",\"ids\":[\"a\"]}", op, 1);
}

static void test_not_an_object(void **state)
{
    (void)state;
    const char *root[] = {""};
    expect_bad("[]", root, 1);
    expect_bad("[{\"operation\":\"add\",\"ids\":[\"a\"]}]", root, 1);
    expect_bad("\"add\"", root, 1);
    expect_bad("null", root, 1);
    expect_bad("7", root, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_pointers),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_operation_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
