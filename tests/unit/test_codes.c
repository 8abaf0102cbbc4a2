/* Unit tests for validate/codes: the generated country, language and time zone tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "validate/codes.h"

static void test_countries(void **state)
{
    (void)state;
    static const char *const good[] = {"US", "PL", "UK", "DE", "GB", "AD", "ZW", "AX"};
    static const char *const bad[] = {"XX", "us", "USA", "", "U", "Us", "uK", "U1", "EU", "ZZ"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(codes_is_country(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(codes_is_country(bad[i]));
    assert_false(codes_is_country(NULL));
}

static void test_languages(void **state)
{
    (void)state;
    /* fre/fra, ger/deu, chi/zho, cze/ces: bibliographic and terminology codes */
    static const char *const good[] = {"eng", "pol", "fre", "fra", "ger", "deu", "chi",
                                       "zho", "cze", "ces", "aar", "zza", "und", "mul"};
    static const char *const bad[] = {"en", "xyz", "ENG", "Eng", "", "engl", "qaa", "qaa-qtz", "e1g"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(codes_is_language(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(codes_is_language(bad[i]));
    assert_false(codes_is_language(NULL));
}

static void test_timezones(void **state)
{
    (void)state;
    static const char *const good[] = {"Europe/Warsaw", "UTC", "America/Argentina/Buenos_Aires",
                                       "Europe/Kiev", "Europe/Kyiv", "America/Buenos_Aires",
                                       "Etc/GMT+5", "Africa/Abidjan", "Pacific/Wallis",
                                       "Asia/Kolkata", "America/New_York", "Etc/UTC"};
    static const char *const bad[] = {"Europe/Nowhere", "europe/warsaw", "EUROPE/WARSAW", "",
                                      "Europe", "Europe/", "/Europe/Warsaw", "Factory", "utc",
                                      "Europe/Warsaw ", "posixrules"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(codes_is_timezone(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(codes_is_timezone(bad[i]));
    assert_false(codes_is_timezone(NULL));

    char longname[200];
    memset(longname, 'A', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(codes_is_timezone(longname));
}

static void test_timezone_casefold(void **state)
{
    (void)state;
    assert_string_equal(codes_timezone_casefold("europe/warsaw"), "Europe/Warsaw");
    assert_string_equal(codes_timezone_casefold("utc"), "UTC");
    assert_string_equal(codes_timezone_casefold("AMERICA/ARGENTINA/BUENOS_AIRES"),
                        "America/Argentina/Buenos_Aires");
    assert_null(codes_timezone_casefold("europe/nowhere"));
    assert_null(codes_timezone_casefold(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_countries),
        cmocka_unit_test(test_languages),
        cmocka_unit_test(test_timezones),
        cmocka_unit_test(test_timezone_casefold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
