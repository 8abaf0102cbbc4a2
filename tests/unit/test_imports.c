/* Unit tests for store/imports: the COPY text a staged line becomes (the module is included
 * to reach its statics; nothing here talks to PostgreSQL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../src/store/imports.c"

static void test_escape(void **state)
{
    (void)state;
    char out[64];
    size_t n = escape(out, "a\\b\tc\nd\re", 9, false);
    assert_int_equal(n, 13);
    assert_memory_equal(out, "a\\\\b\\tc\\nd\\re", 13);
    /* inside an array literal '"' and '\' get the literal's backslash, itself escaped */
    n = escape(out, "q\"b\\", 4, true);
    assert_int_equal(n, 9);
    assert_memory_equal(out, "q\\\\\"b\\\\\\\\", 9);
}

static void test_row_text(void **state)
{
    (void)state;
    store_copy_text b = {0};
    device_row row;
    memset(&row, 0, sizeof row);
    const char *tags[] = {"vip", "a\"b", "c\\d", "x\ty"};
    row.scalar[0] = "FR";
    row.scalar[4] = "120";
    row.tags = tags;
    row.n_tags = 4;
    row.attributes_json = "{\"k\":[\"a\\nb\"]}";
    assert_int_equal(store_copy_row(&b, "42", 7, "dev-1", &row), 0);
    const char *want = "42\t7\tdev-1\tFR\t\\N\t\\N\t\\N\t120\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t"
                       "\\N\t\\N\t\\N\t\\N\t\\N\t"
                       "{\"vip\",\"a\\\\\"b\",\"c\\\\\\\\d\",\"x\\ty\"}\t{\"k\":[\"a\\\\nb\"]}\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.p, want, b.len);
    /* a second row follows the first */
    assert_int_equal(store_copy_row(&b, "42", 8, "dev-2", &row), 0);
    assert_int_equal(b.len, 2 * strlen(want));
    free(b.p);
}

static void test_row_no_tags(void **state)
{
    (void)state;
    store_copy_text b = {0};
    device_row row;
    memset(&row, 0, sizeof row);
    row.attributes_json = "{}";
    assert_int_equal(store_copy_row(&b, "42", 1, "d", &row), 0);
    /* 3 + 18 scalars + tags + attributes = 23 fields */
    size_t tabs = 0;
    for (size_t i = 0; i < b.len; i++)
        tabs += b.p[i] == '\t';
    assert_int_equal(tabs, 22);
    assert_memory_equal(b.p + b.len - 6, "{}\t{}\n", 6);
    free(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_row_text),
        cmocka_unit_test(test_row_no_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
