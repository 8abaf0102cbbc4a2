/* Unit tests for validate/v1_segment that data cannot express. */
/* That is the C contract (NULL root, release), val_v1_id and allocation failures; the body
 * rules are cases in tests/cases/v1_segment, run by test_validator_cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "validate/v1_segment.h"

/* The documentation's second example: two AND groups that never match, so both the
 * canonical JSON and the warnings allocate. */
static const char seed_example_2[] =
    "{\"name\":\"Phones\",\"constraints\":"
    "[\n"
    "    {\n"
    "        \"type\": \"AND\",\n"
    "        \"constraints\": \n"
    "        [\n"
    "            {\n"
    "                \"field\": \"deviceModel\",\n"
    "                \"value\": \"Redmi Note XXXXX\",\n"
    "                \"relation\": \"==\"\n"
    "            },\n"
    "            {\n"
    "                \"field\": \"deviceModel\",\n"
    "                \"value\": \"Galaxy S23\",\n"
    "                \"relation\": \"==\"\n"
    "            }\n"
    "        ]\n"
    "    },\n"
    "    {\n"
    "        \"type\": \"AND\",\n"
    "        \"constraints\": \n"
    "        [\n"
    "            {\n"
    "                \"field\": \"deviceManufacturer\",\n"
    "                \"value\": \"Xiaomi\",\n"
    "                \"relation\": \"==\"\n"
    "            },\n"
    "            {\n"
    "                \"field\": \"deviceManufacturer\",\n"
    "                \"value\": \"Samsung\",\n"
    "                \"relation\": \"==\"\n"
    "            },\n"
    "            {\n"
    "                \"field\": \"type\",\n"
    "                \"value\": \"phone\",\n"
    "                \"relation\": \"==\"\n"
    "            }\n"
    "        ]\n"
    "    }\n"
    "]}";

static void test_val_v1_id(void **state)
{
    (void)state;
    assert_true(val_v1_id("seg_jfeZ4NrGegjV9"));
    assert_true(val_v1_id("seg_jfe34NrGegjL3"));
    assert_true(val_v1_id("seg_0000000000000"));
    assert_false(val_v1_id(NULL));
    assert_false(val_v1_id("seg_"));
    assert_false(val_v1_id("seg_jfeZ4NrGegjV"));
    assert_false(val_v1_id("seg_jfeZ4NrGegjV99"));
    assert_false(val_v1_id("seg_jfeZ4NrGegj\xc3\xa9"));
    assert_false(val_v1_id("xeg_jfeZ4NrGegjV9"));
}

/* No body at all (NULL) is one problem at the root, and out is left zeroed. */
static void test_no_body(void **state)
{
    (void)state;
    seg_error err;
    v1_segment_in in;
    memset(&in, 0xA5, sizeof in);
    err_clear(&err);
    assert_int_equal(val_v1_segment(NULL, true, &in, &err), -1);
    assert_int_equal(err.status, 422);
    assert_int_equal(err.n_items, 1);
    assert_string_equal(err.items[0].pointer, "");
    assert_string_equal(err.items[0].detail, "the request body must be a JSON object, got nothing");
    assert_null(in.id);
    assert_null(in.name);
    assert_null(in.constraints_json);
    assert_null(in.warnings);
}

/* Release zeroes what it frees, and is safe on a zeroed struct, twice, and on NULL. */
static void test_release(void **state)
{
    (void)state;
    static const v1_segment_in zero;
    v1_segment_in in;
    seg_error err;
    json_error_t je;
    json_t *root = json_loads(seed_example_2, 0, &je);
    assert_non_null(root);
    err_clear(&err);
    assert_int_equal(val_v1_segment(root, false, &in, &err), 0);
    assert_non_null(in.constraints_json);
    assert_non_null(in.warnings);
    val_v1_segment_release(&in);
    assert_memory_equal(&in, &zero, sizeof in);
    val_v1_segment_release(&in);
    assert_memory_equal(&in, &zero, sizeof in);
    val_v1_segment_release(NULL);
    json_decref(root);
}

/* Every allocation failure ends in -1 with 500 "internal" and leaks nothing
 * (AddressSanitizer's leak check runs at exit). */
static int alloc_budget;

static void *failing_malloc(size_t n)
{
    if (alloc_budget-- <= 0)
        return NULL;
    return malloc(n);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    json_error_t je;
    json_t *root = json_loads(seed_example_2, 0, &je);
    assert_non_null(root);
    bool succeeded = false;
    for (int budget = 0; budget < 1000 && !succeeded; budget++) {
        seg_error err;
        v1_segment_in in;
        err_clear(&err);
        alloc_budget = budget;
        json_set_alloc_funcs(failing_malloc, free);
        int rc = val_v1_segment(root, false, &in, &err);
        json_set_alloc_funcs(malloc, free);
        if (rc == 0) {
            succeeded = true;
            assert_int_equal(json_array_size(in.warnings), 2);
        } else {
            assert_int_equal(err.status, 500);
            assert_string_equal(err.code, "internal");
            assert_null(in.constraints_json);
            assert_null(in.warnings);
        }
        val_v1_segment_release(&in);
    }
    assert_true(succeeded);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_val_v1_id),
        cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
