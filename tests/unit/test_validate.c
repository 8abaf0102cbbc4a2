/* Shared validation helpers and the /audiences/segments validator. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/ids.h"
#include "store/statements.h"
#include "validate/audience.h"
#include "validate/validate.h"

static void test_uuid(void **state)
{
    const char *why;
    assert_true(val_uuid("3c90c3cc-0d44-4b50-8888-8dd25736052a", 36, &why));
    assert_true(val_uuid("3C90C3CC-0D44-4B50-8888-8DD25736052A", 36, &why));
    assert_false(val_uuid("3c90c3cc-0d44-4b50-8888-8dd25736052", 35, &why));
    assert_non_null(strstr(why, "36 characters"));
    assert_false(val_uuid("3c90c3cc0d444b5088888dd25736052aaaaa", 36, &why));
    assert_non_null(strstr(why, "'-'"));
    assert_false(val_uuid("3c90c3cc-0d44-4b50-8888-8dd25736052g", 36, &why));
    assert_non_null(strstr(why, "hexadecimal"));
    /* every byte at a digit's place: accepted exactly when isxdigit (C locale) says so */
    for (int c = 1; c < 256; c++) {
        char u[] = "3c90c3cc-0d44-4b50-8888-8dd25736052a";
        u[35] = (char)c;
        assert_int_equal(val_uuid(u, 36, NULL), isxdigit(c) != 0);
    }
}

static void test_rfc3339(void **state)
{
    int64_t us;
    assert_true(val_rfc3339("2023-11-07T05:31:56Z", &us));
    assert_int_equal(us, 1699335116LL * 1000000);
    assert_true(val_rfc3339("2023-11-07T06:31:56.5+01:00", &us));
    assert_int_equal(us, 1699335116LL * 1000000 + 500000);
    assert_true(val_rfc3339("2024-02-29T00:00:00z", NULL));
    assert_false(val_rfc3339("2023-02-29T00:00:00Z", NULL));
    assert_false(val_rfc3339("2023-11-07 05:31:56Z", NULL));
    assert_false(val_rfc3339("2023-11-07T05:31:56", NULL));
    assert_false(val_rfc3339("2023-11-07T24:00:00Z", NULL));
    assert_false(val_rfc3339("2023-11-07T05:31:56.Z", NULL));
    assert_false(val_rfc3339("2023-11-07T05:31:56Zjunk", NULL));
    assert_false(val_rfc3339("", NULL));
}

static void test_path_escaping_and_utf8(void **state)
{
    seg_error e;
    val_path p;
    err_clear(&e);
    val_path_init(&p, &e);
    size_t a = val_path_push(&p, "a/b~c");
    val_path_push_index(&p, 3);
    assert_string_equal(p.ptr, "/a~1b~0c/3");
    val_path_pop(&p, a);
    assert_string_equal(p.ptr, "");
    /* a long key of 2-byte characters is cut on a character boundary */
    char key[400];
    for (int i = 0; i < 199; i++)
        memcpy(key + 2 * i, "\xc3\xa9", 2);
    key[398] = '\0';
    val_path_push(&p, key);
    assert_true(p.len < ERR_POINTER_MAX);
    assert_int_equal((p.len - 1) % 2, 0);
    assert_int_equal(val_utf8_chars("\xc3\xa9t\xc3\xa9", 5), 3);
    assert_true(val_is_blank(" \t\n"));
    assert_false(val_is_blank(" x "));
}

static void test_parse_body(void **state)
{
    seg_error e;
    err_clear(&e);
    json_t *j = val_parse_body("{\"a\":1}", 7, &e);
    assert_non_null(j);
    json_decref(j);
    const char *bad[] = {"", "[]", "{\"a\":1,\"a\":2}", "{\"a\":1} x", "{\"a\":\"\\u0000\"}", "{\n\"a\":tru}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        assert_null(val_parse_body(bad[i], strlen(bad[i]), &e));
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, "malformed_json");
    }
    assert_non_null(strstr(e.detail, "line 2"));
}

static json_t *load(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &je);
    assert_non_null(j);
    return j;
}

static void test_audience_create_ok(void **state)
{
    seg_error e;
    aud_segment_in in;
    err_clear(&e);
    json_t *j = load("{\"management_type\":\"selfmanaged\",\"name\":\"n\",\"owner_id\":"
                     "\"3C90C3CC-0d44-4b50-8888-8dd25736052a\",\"approximated_size\":5,"
                     "\"properties\":{\"k\":[\"v\",1]},\"created_at\":\"2023-11-07T05:31:56Z\","
                     "\"id\":\"x\",\"no\":1,\"updated_at\":null}");
    assert_int_equal(val_aud_segment(j, AUD_CREATE, &in, &e), 0);
    assert_string_equal(in.owner_id, "3c90c3cc-0d44-4b50-8888-8dd25736052a");
    assert_string_equal(in.size, "5");
    assert_string_equal(in.properties, "{\"k\":[\"v\",1]}");
    assert_string_equal(in.created_at, "2023-11-07T05:31:56Z");
    assert_null(in.deprecated_properties);
    val_aud_release(&in);
    /* the bulk handler's mode: the same checks, the JSON left in the document */
    assert_int_equal(val_aud_segment(j, AUD_CREATE | AUD_NO_TEXT, &in, &e), 0);
    assert_null(in.properties);
    assert_true(in.set & AUD_SET_PROPERTIES);
    assert_string_equal(in.owner_id, "3c90c3cc-0d44-4b50-8888-8dd25736052a");
    val_aud_release(&in);
    json_decref(j);
}

static void test_audience_all_errors(void **state)
{
    seg_error e;
    aud_segment_in in;
    err_clear(&e);
    json_t *j = load("{\"management_type\":\"x\",\"name\":\" \",\"owner_id\":\"nope\",\"bogus\":1,"
                     "\"properties\":{\"k\":[\"v\",\"v\"]}}");
    assert_int_equal(val_aud_segment(j, AUD_CREATE, &in, &e), -1);
    assert_int_equal(e.status, 422);
    assert_int_equal(e.n_items, 5);
    const char *want[] = {"/bogus", "/management_type", "/name", "/owner_id", "/properties/k/1"};
    for (int i = 0; i < 5; i++) {
        int found = 0;
        for (int k = 0; k < e.n_items; k++)
            found |= !strcmp(e.items[k].pointer, want[i]);
        if (!found)
            fail_msg("no error at %s", want[i]);
    }
    val_aud_release(&in);
    json_decref(j);
}

static void test_audience_replace_mask(void **state)
{
    seg_error e;
    aud_segment_in in;
    err_clear(&e);
    json_t *j = load("{\"id\":\"3c90c3cc-0d44-4b50-8888-8dd25736052a\",\"management_type\":\"selfmanaged\","
                     "\"name\":\"n\",\"owner_id\":\"3c90c3cc-0d44-4b50-8888-8dd25736052a\","
                     "\"description\":null,\"created_at\":\"whatever\"}");
    assert_int_equal(val_aud_segment(j, AUD_REPLACE, &in, &e), 0);
    assert_int_equal(in.set, AUD_SET_MANAGEMENT_TYPE | AUD_SET_NAME | AUD_SET_OWNER_ID | AUD_SET_DESCRIPTION);
    assert_null(in.description);
    val_aud_release(&in);
    json_decref(j);
}

static void test_merge_patch(void **state)
{
    json_t *t = load("{\"a\":\"b\",\"c\":{\"d\":\"e\",\"f\":\"g\"}}");
    json_t *p = load("{\"a\":\"z\",\"c\":{\"f\":null},\"n\":{\"x\":1}}");
    json_t *want = load("{\"a\":\"z\",\"c\":{\"d\":\"e\"},\"n\":{\"x\":1}}");
    val_merge_patch(t, p);
    assert_true(json_equal(t, want));
    json_decref(t);
    json_decref(p);
    json_decref(want);
}

/* Server ids across many draws (the random bytes come from a per-thread buffer that is
 * refilled every 256 bytes): well formed, version and variant bits set, all distinct. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_ids_many(void **state)
{
    enum { N = 2000 };
    static char uu[N][37], seg[N][IDS_SEG_LEN + 1];
    for (int i = 0; i < N; i++) {
        assert_int_equal(ids_uuid_v7(uu[i]), 0);
        assert_true(val_uuid(uu[i], strlen(uu[i]), NULL));
        assert_int_equal(uu[i][14], '7');
        assert_non_null(strchr("89ab", uu[i][19]));
        assert_int_equal(ids_seg_id(seg[i]), 0);
        assert_int_equal(strlen(seg[i]), IDS_SEG_LEN);
        assert_memory_equal(seg[i], "seg_", 4);
        for (int k = 4; k < IDS_SEG_LEN; k++)
            assert_true((seg[i][k] >= '0' && seg[i][k] <= '9') || (seg[i][k] >= 'A' && seg[i][k] <= 'Z') ||
                        (seg[i][k] >= 'a' && seg[i][k] <= 'z'));
    }
    qsort(uu, N, sizeof uu[0], cmp_str);
    qsort(seg, N, sizeof seg[0], cmp_str);
    for (int i = 1; i < N; i++) {
        assert_string_not_equal(uu[i - 1], uu[i]);
        assert_string_not_equal(seg[i - 1], seg[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid),          cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_path_escaping_and_utf8), cmocka_unit_test(test_parse_body),
        cmocka_unit_test(test_audience_create_ok), cmocka_unit_test(test_audience_all_errors),
        cmocka_unit_test(test_ids_many),
        cmocka_unit_test(test_audience_replace_mask), cmocka_unit_test(test_merge_patch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
