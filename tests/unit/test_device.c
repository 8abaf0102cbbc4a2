/* Unit tests for validate/device: what the data-driven cases cannot say. */
/* The field rules themselves are cases in tests/cases/device (run by test_validator_cases);
 * here: the id check byte by byte, strings with NUL, lengths counted in characters at the
 * limits, a truncated problem list, an error that holds problems already, and the output's
 * ownership (zeroed on failure, release safe twice). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "validate/device.h"
#include "validate/validate.h"

/* A string of n copies of unit (a UTF-8 character); malloc'd. */
static char *repeat(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[u * n] = '\0';
    return s;
}

/* val_device on body (consumed), returning its result; problems in *err. */
static int run(json_t *body, const char *path_id, device_in *out, seg_error *err)
{
    err_clear(err);
    int rc = val_device(body, path_id, out, err);
    json_decref(body);
    return rc;
}

static bool is_empty(const device_in *in)
{
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++)
        if (in->scalar[i])
            return false;
    return !in->id && !in->tags_json && !in->attributes_json;
}

/* Every byte in every position class: accepted exactly when it is an ASCII letter, digit or
 * one of - _ . : @; and the lengths 0, 1, 255, 256. */
static void test_device_id(void **state)
{
    for (int c = 1; c < 256; c++) {
        char id[] = {'a', (char)c, 'z', '\0'};
        bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    (c != 0 && strchr("-_.:@", c) != NULL);
        assert_int_equal(val_device_id(id), want);
    }
    char *s255 = repeat("x", DEVICE_ID_MAX), *s256 = repeat("x", DEVICE_ID_MAX + 1);
    assert_true(val_device_id(s255));
    assert_false(val_device_id(s256));
    assert_true(val_device_id("a"));
    assert_true(val_device_id("@"));
    assert_false(val_device_id(""));
    assert_false(val_device_id(NULL));
    assert_false(val_device_id("a/b"));
    assert_false(val_device_id("a%2Fb"));
    /* the ids the routes under /v1/devices/ take, exactly: neighbours stay device ids */
    const char *reserved[] = {"bulk", "bulk-delete", "imports"};
    const char *near[] = {"Bulk", "BULK", "bulk-", "bulk-deletes", "bulk_delete", "bulk.delete",
                          "import", "imports.", "Imports", "xbulk", "bulkx", "bulk:delete"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        assert_true(val_device_id_reserved(reserved[i]));
        assert_false(val_device_id(reserved[i]));
    }
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        assert_false(val_device_id_reserved(near[i]));
        assert_true(val_device_id(near[i]));
    }
    assert_false(val_device_id_reserved(NULL));
    free(s255);
    free(s256);
}

/* A NUL inside a string (possible in a document that was built, not parsed) is refused in
 * the id, a string field and a tag alike, each at its pointer. */
static void test_nul_in_strings(void **state)
{
    seg_error err;
    device_in in;
    json_t *body = json_object();
    json_object_set_new(body, "id", json_stringn("a\0b", 3));
    json_object_set_new(body, "deviceModel", json_stringn("x\0", 2));
    json_object_set_new(body, "tags", json_pack("[o]", json_stringn("\0", 1)));
    assert_int_equal(run(body, NULL, &in, &err), -1);
    assert_int_equal(err.n_items, 3);
    assert_string_equal(err.items[0].pointer, "/id");
    assert_string_equal(err.items[1].pointer, "/deviceModel");
    assert_string_equal(err.items[2].pointer, "/tags/0");
    for (int i = 0; i < 3; i++)
        assert_string_equal(err.items[i].detail, "must not contain a NUL character");
    assert_true(is_empty(&in));
}

/* Lengths are characters, not bytes: 1024 four-byte characters are a valid free string and
 * 255 two-byte ones a valid tag; one more of each is refused. */
static void test_lengths_in_characters(void **state)
{
    seg_error err;
    device_in in;
    char *s1024 = repeat("\xf0\x9f\x98\x80", DEVICE_STRING_MAX), *s1025 = repeat("\xf0\x9f\x98\x80", DEVICE_STRING_MAX + 1);
    char *t255 = repeat("\xc3\xa9", DEVICE_TAG_MAX), *t256 = repeat("\xc3\xa9", DEVICE_TAG_MAX + 1);
    json_t *ok = json_pack("{s:s, s:[s]}", "pushToken", s1024, "tags", t255);
    err_clear(&err);
    assert_int_equal(val_device(ok, NULL, &in, &err), 0); /* scalar[] borrows: keep ok alive */
    size_t i = val_field_index(val_field_find("pushToken"));
    assert_string_equal(in.scalar[i], s1024);
    assert_int_equal(strlen(in.tags_json), strlen(t255) + 4); /* ["…"] */
    val_device_release(&in);
    json_decref(ok);
    json_t *bad = json_pack("{s:s, s:[s]}", "pushToken", s1025, "tags", t256);
    assert_int_equal(run(bad, NULL, &in, &err), -1);
    assert_int_equal(err.n_items, 2);
    assert_string_equal(err.items[0].detail, "expected 1 to 1024 characters, got 1025");
    assert_string_equal(err.items[1].detail, "expected 1 to 255 characters, got 256");
    free(s1024);
    free(s1025);
    free(t255);
    free(t256);
}

/* A body that is not an object, or nothing at all, is refused at the root. */
static void test_not_an_object(void **state)
{
    seg_error err;
    device_in in;
    err_clear(&err);
    assert_int_equal(val_device(NULL, "d", &in, &err), -1);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.items[0].pointer, "");
    assert_string_equal(err.items[0].detail, "the request body must be a JSON object, got nothing");
    assert_true(is_empty(&in));
    assert_int_equal(run(json_string("x"), "d", &in, &err), -1);
    assert_string_equal(err.items[0].detail, "the request body must be a JSON object, got string");
}

/* More problems than ERR_MAX_ITEMS: the list is cut and marked, and the call still fails
 * (a failure seen only through n_items would be missed once the list is full). */
static void test_truncated(void **state)
{
    seg_error err;
    device_in in;
    json_t *body = json_object(), *tags = json_array();
    for (int i = 0; i < DEVICE_TAGS_MAX; i++)
        json_array_append_new(tags, json_integer(i));
    json_object_set_new(body, "tags", tags);
    assert_int_equal(run(body, NULL, &in, &err), -1);
    assert_int_equal(err.n_items, ERR_MAX_ITEMS);
    assert_true(err.truncated);
    assert_true(is_empty(&in));

    /* an error already full and truncated before the call (as a caller collecting several
     * bodies' problems might hand in): a new problem leaves no trace in it, and is still seen */
    static const char *const bad[] = {
        "{\"country\":\"xx\"}", "{\"id\":\"a b\"}", "{\"sessionCount\":-2147483649}",
        "{\"tags\":[\"a\",\"a\"]}", "{\"attributes\":{\"k\":[]}}", "{\"nope\":1}",
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        body = json_loads(bad[b], 0, NULL);
        assert_non_null(body);
        err_clear(&err);
        for (int i = 0; i <= ERR_MAX_ITEMS; i++)
            err_add(&err, "/earlier", "an earlier problem");
        assert_int_equal(val_device(body, NULL, &in, &err), -1);
        assert_true(is_empty(&in));
        json_decref(body);
    }
}

/* scalar[i] follows the table's order (val_field_at), numbers[i] holds the integers, and
 * the id and tags fields never get a scalar. */
static void test_scalar_slots(void **state)
{
    seg_error err;
    device_in in;
    json_t *body = json_pack("{s:s, s:i, s:I, s:[s], s:s}", "id", "d", "sessionCount", 7,
                             "unRegisteredAt", (json_int_t)1700000000000, "tags", "t", "type",
                             "tablet");
    err_clear(&err);
    assert_int_equal(val_device(body, "d", &in, &err), 0);
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++) {
        const char *name = val_field_at(i)->name;
        if (!strcmp(name, "sessionCount")) {
            assert_ptr_equal(in.scalar[i], in.numbers[i]);
            assert_string_equal(in.scalar[i], "7");
        } else if (!strcmp(name, "unRegisteredAt")) {
            assert_string_equal(in.scalar[i], "1700000000000");
        } else if (!strcmp(name, "type")) {
            assert_ptr_equal(in.scalar[i], json_string_value(json_object_get(body, "type")));
        } else {
            assert_null(in.scalar[i]); /* id and tags included */
        }
    }
    assert_ptr_equal(in.id, json_string_value(json_object_get(body, "id")));
    assert_string_equal(in.tags_json, "[\"t\"]");
    assert_string_equal(in.attributes_json, "{}");
    val_device_release(&in);
    val_device_release(&in); /* safe twice: release leaves NULLs */
    device_in zero = {0};
    val_device_release(&zero);
    json_decref(body);
}

/* A PATCH merges the stored representation with the patch before validating: what a GET
 * gives back (nulls, [], {}, updatedAt) must validate as it is. */
static void test_representation_round_trip(void **state)
{
    seg_error err;
    device_in in;
    json_t *body = json_loads(
        "{\"id\":\"d\",\"country\":null,\"language\":null,\"timezone\":null,\"appVersion\":null,"
        "\"appVersionCode\":null,\"osApi\":null,\"osVersion\":null,\"customUserId\":null,"
        "\"email\":null,\"type\":null,\"firstSession\":null,\"lastSession\":null,"
        "\"sessionCount\":null,\"createdAt\":null,\"pushToken\":null,\"unRegisteredAt\":null,"
        "\"deviceModel\":null,\"deviceManufacturer\":null,\"tags\":[],\"attributes\":{},"
        "\"updatedAt\":1700000000000}", 0, NULL);
    assert_non_null(body);
    assert_int_equal(run(body, "d", &in, &err), 0);
    assert_string_equal(in.tags_json, "[]");
    assert_string_equal(in.attributes_json, "{}");
    val_device_release(&in);
}

/* val_device_line: one NDJSON line of an import. */
static int line(const char *text, size_t max, device_in *out, seg_error *err)
{
    json_t *root;
    err_clear(err);
    int rc = val_device_line(text, strlen(text), max, &root, out, err);
    if (rc == 0) {
        assert_non_null(root);
        assert_string_equal(out->id, "d-1"); /* borrowed from root: checked before it goes */
    }
    val_device_release(out);
    json_decref(root);
    return rc;
}

static void test_import_line(void **state)
{
    (void)state;
    device_in in;
    seg_error err;
    assert_int_equal(line("{\"id\":\"d-1\",\"tags\":[\"a\",\"b\"]}", 1024, &in, &err), 0);
    /* its own limit, before parsing */
    assert_int_equal(line("{\"id\":\"d-1\"}", 5, &in, &err), -1);
    assert_string_equal(err.items[0].pointer, "");
    assert_non_null(strstr(err.items[0].detail, "at most 5 bytes"));
    /* not JSON, and JSON that is not an object */
    assert_int_equal(line("{\"id\":", 1024, &in, &err), -1);
    assert_string_equal(err.items[0].pointer, "");
    assert_non_null(strstr(err.items[0].detail, "not JSON"));
    assert_int_equal(line("[1]", 1024, &in, &err), -1);
    assert_string_equal(err.items[0].pointer, "");
    /* the id is required, and checked */
    assert_int_equal(line("{\"country\":\"FR\"}", 1024, &in, &err), -1);
    assert_string_equal(err.items[0].pointer, "/id");
    assert_int_equal(line("{\"id\":\"bulk\"}", 1024, &in, &err), -1);
    assert_string_equal(err.items[0].pointer, "/id");
    /* duplicate keys are refused as in a PUT body */
    assert_int_equal(line("{\"id\":\"d-1\",\"id\":\"d-2\"}", 1024, &in, &err), -1);
    /* the tags one by one, as the store stages them */
    json_t *root;
    const char *t = "{\"id\":\"d-1\",\"tags\":[\"x\",\"y\\\"z\"]}";
    err_clear(&err);
    assert_int_equal(val_device_line(t, strlen(t), 1024, &root, &in, &err), 0);
    assert_int_equal(in.n_tags, 2);
    assert_string_equal(in.tag[0], "x");
    assert_string_equal(in.tag[1], "y\"z");
    assert_string_equal(in.tags_json, "[\"x\",\"y\\\"z\"]");
    val_device_release(&in);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_id),
        cmocka_unit_test(test_nul_in_strings),
        cmocka_unit_test(test_lengths_in_characters),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_scalar_slots),
        cmocka_unit_test(test_representation_round_trip),
        cmocka_unit_test(test_import_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
