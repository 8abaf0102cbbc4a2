/* Unit tests for validate/validate (uuid, RFC 3339, JSON Pointer, UTF-8) and core/ids. */
/* The body parser, the /audiences/segments validator and the merge patch are cases in
 * tests/cases/{parse_body,aud_segment,merge_patch}, run by test_validator_cases. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/ids.h"
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
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_path_escaping_and_utf8),
        cmocka_unit_test(test_ids_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
