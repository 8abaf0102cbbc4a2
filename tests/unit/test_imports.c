/* Unit tests for store/imports: the COPY text a staged line becomes (the module is included
 * to reach its statics; nothing here talks to PostgreSQL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../src/store/imports.c"

/* An import with no session whose buffer is big enough that nothing is sent. */
static store_import *offline(void)
{
    store_import *im = calloc(1, sizeof *im);
    assert_non_null(im);
    im->cap = 1 << 20;
    im->buf = malloc(im->cap);
    assert_non_null(im->buf);
    im->copying = true; /* as if the COPY were open: store_import_row writes only */
    snprintf(im->seq, sizeof im->seq, "42");
    return im;
}

static void offline_free(store_import *im)
{
    free(im->buf);
    free(im);
}

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
    store_import *im = offline();
    device_row row;
    memset(&row, 0, sizeof row);
    const char *tags[] = {"vip", "a\"b", "c\\d", "x\ty"};
    row.scalar[0] = "FR";
    row.scalar[4] = "120";
    row.tags = tags;
    row.n_tags = 4;
    row.attributes_json = "{\"k\":[\"a\\nb\"]}";
    seg_error err;
    err_clear(&err);
    assert_int_equal(store_import_row(im, 7, "dev-1", &row, &err), 0);
    const char *want = "42\t7\tdev-1\tFR\t\\N\t\\N\t\\N\t120\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t"
                       "\\N\t\\N\t\\N\t\\N\t\\N\t"
                       "{\"vip\",\"a\\\\\"b\",\"c\\\\\\\\d\",\"x\\ty\"}\t{\"k\":[\"a\\\\nb\"]}\n";
    assert_int_equal(im->len, strlen(want));
    assert_memory_equal(im->buf, want, im->len);
    offline_free(im);
}

static void test_row_no_tags(void **state)
{
    (void)state;
    store_import *im = offline();
    device_row row;
    memset(&row, 0, sizeof row);
    row.attributes_json = "{}";
    seg_error err;
    err_clear(&err);
    assert_int_equal(store_import_row(im, 1, "d", &row, &err), 0);
    /* 3 + 18 scalars + tags + attributes = 23 fields */
    size_t tabs = 0;
    for (size_t i = 0; i < im->len; i++)
        tabs += im->buf[i] == '\t';
    assert_int_equal(tabs, 22);
    assert_memory_equal(im->buf + im->len - 6, "{}\t{}\n", 6);
    offline_free(im);
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
