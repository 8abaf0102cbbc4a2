/* Idempotency keys' request digest (handlers/idempotency.c): the SHA-256 that tells a repeat
 * of a request from another request under the same key, whole or (imports) piece by piece. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "handlers/common.h"

static void test_sha256_known_values(void **state)
{
    char out[65];
    /* FIPS 180-2's examples */
    assert_int_equal(h_sha256_hex("", 0, out), 0);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(h_sha256_hex(NULL, 0, out), 0); /* a request without a body */
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(h_sha256_hex("abc", 3, out), 0);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_sha256_takes_every_byte(void **state)
{
    char a[65], b[65];
    /* a NUL inside the body counts, and so does a byte past the announced length not */
    assert_int_equal(h_sha256_hex("{}\0x", 4, a), 0);
    assert_int_equal(h_sha256_hex("{}\0y", 4, b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(h_sha256_hex("{}\0y", 3, a), 0);
    assert_int_equal(h_sha256_hex("{}\0x", 3, b), 0);
    assert_string_equal(a, b);
}

/* An import's body digested piece by piece is the digest of the whole: however it is cut. */
static void test_sha256_in_pieces(void **state)
{
    static const char body[] = "{\"id\":\"d1\"}\n{\"id\":\"d2\",\"country\":\"PL\"}\n";
    size_t n = sizeof body - 1;
    char whole[65], part[65];
    assert_int_equal(h_sha256_hex(body, n, whole), 0);
    for (size_t cut = 0; cut <= n; cut++) {
        h_sha256 *x = h_sha256_new();
        assert_non_null(x);
        assert_int_equal(h_sha256_add(x, body, cut), 0);
        assert_int_equal(h_sha256_add(x, body + cut, n - cut), 0);
        assert_int_equal(h_sha256_end(x, part), 0);
        h_sha256_free(x);
        assert_string_equal(part, whole);
    }
    h_sha256 *x = h_sha256_new(); /* nothing added: the empty body's */
    assert_int_equal(h_sha256_end(x, part), 0);
    h_sha256_free(x);
    assert_string_equal(part, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    h_sha256_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_known_values),
        cmocka_unit_test(test_sha256_takes_every_byte),
        cmocka_unit_test(test_sha256_in_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
