/* Unit tests for validate/formats: the device field table's lookups and invariants. */
/* Each format's verdicts on values are cases in tests/cases/formats (test_validator_cases). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "validate/formats.h"

/* Every field is found by its name, at its own position, and by no other spelling. */
static void test_lookup_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++) {
        const val_field *f = val_field_at(i);
        assert_non_null(f);
        assert_ptr_equal(val_field_find(f->name), f);
        assert_int_equal(val_field_index(f), i);
        assert_ptr_equal(val_field_find_casefold(f->name), f);
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(val_field_at(j)->name, f->name) == 0)
                fail_msg("fields %zu and %zu differ only in case: %s", j, i, f->name);
    }
    assert_null(val_field_at(VAL_FIELD_COUNT));
}

static void test_lookup_is_case_sensitive(void **state)
{
    (void)state;
    assert_non_null(val_field_find("sessionCount"));
    assert_null(val_field_find("SessionCount"));
    assert_null(val_field_find("sessioncount"));
    assert_null(val_field_find(""));
    assert_null(val_field_find("colour"));
    assert_ptr_equal(val_field_find_casefold("SESSIONCOUNT"), val_field_find("sessionCount"));
    assert_ptr_equal(val_field_find_casefold("Country"), val_field_find("country"));
    assert_null(val_field_find_casefold("colour"));
}

/* The documentation's order starts with country and ends with tags; the types are those of
 * its field list. */
static void test_table(void **state)
{
    (void)state;
    assert_string_equal(val_field_at(0)->name, "country");
    assert_string_equal(val_field_at(VAL_FIELD_COUNT - 1)->name, "tags");
    assert_int_equal(val_field_find("tags")->type, VAL_FIELD_STRING_ARRAY);
    assert_int_equal(val_field_find("sessionCount")->type, VAL_FIELD_INT);
    assert_int_equal(val_field_find("appVersionCode")->type, VAL_FIELD_INT);
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++) {
        const val_field *f = val_field_at(i);
        /* a format always has a name for messages, and only strings have formats */
        assert_int_equal(f->format != NULL, f->what != NULL);
        if (f->format)
            assert_int_equal(f->type, VAL_FIELD_STRING);
        /* timestamps are the Long fields */
        assert_int_equal(f->timestamp, f->type == VAL_FIELD_LONG);
    }
}

static void test_types(void **state)
{
    (void)state;
    int64_t min = 0, max = 0;
    assert_string_equal(val_field_type_name(VAL_FIELD_STRING), "String");
    assert_string_equal(val_field_type_name(VAL_FIELD_INT), "Int");
    assert_string_equal(val_field_type_name(VAL_FIELD_LONG), "Long");
    assert_string_equal(val_field_type_name(VAL_FIELD_STRING_ARRAY), "String Array");
    assert_true(val_field_type_range(VAL_FIELD_INT, &min, &max));
    assert_true(min == INT32_MIN && max == INT32_MAX);
    assert_true(val_field_type_range(VAL_FIELD_LONG, &min, &max));
    assert_true(min == INT64_MIN && max == INT64_MAX);
    assert_true(val_field_type_range(VAL_FIELD_INT, NULL, NULL));
    min = max = 7;
    assert_false(val_field_type_range(VAL_FIELD_STRING, &min, &max));
    assert_false(val_field_type_range(VAL_FIELD_STRING_ARRAY, &min, &max));
    assert_true(min == 7 && max == 7);
}

/* A field without a format takes any text and leaves why alone; one with a format says
 * why in a buffer of any size without overrunning it. */
static void test_format_check(void **state)
{
    (void)state;
    char why[8] = "x";
    assert_true(val_field_format_ok(val_field_find("deviceModel"), "", why, sizeof why));
    assert_string_equal(why, "x");
    assert_true(val_field_format_ok(val_field_find("country"), "PL", why, sizeof why));
    assert_false(val_field_format_ok(val_field_find("country"), "pl", why, sizeof why));
    assert_int_equal(strlen(why), sizeof why - 1); /* cut, and terminated */
    char big[160];
    assert_false(val_field_format_ok(val_field_find("timezone"),
                                      "america/argentina/comodrivadavia", big, sizeof big));
    assert_string_equal(big, "time zone names are case-sensitive: expected "
                             "\"America/Argentina/ComodRivadavia\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_round_trip),
        cmocka_unit_test(test_lookup_is_case_sensitive),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_format_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
