/* Unit tests for webhooks/signature: the Standard Webhooks specification's own test vector,
 * and the secrets it takes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "webhooks/signature.h"

/* From the specification (spec/standard-webhooks.md, "Signature scheme"), as every reference
 * library tests it. */
#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TS 1614265330LL
#define SPEC_BODY "{\"test\": 2432232314}"
#define SPEC_SIGNATURE "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void test_spec_vector(void **state)
{
    (void)state;
    char sig[WH_SIGNATURE_MAX];
    assert_int_equal(wh_sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
    assert_string_equal(sig, SPEC_SIGNATURE);
    /* the key without its prefix signs the same */
    assert_int_equal(wh_sign(SPEC_SECRET + 6, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
    assert_string_equal(sig, SPEC_SIGNATURE);
}

static void test_every_part_is_signed(void **state)
{
    (void)state;
    char sig[WH_SIGNATURE_MAX];
    assert_int_equal(wh_sign(SPEC_SECRET, SPEC_ID, SPEC_TS + 1, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
    assert_string_not_equal(sig, SPEC_SIGNATURE);
    assert_int_equal(wh_sign(SPEC_SECRET, "msg_other", SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
    assert_string_not_equal(sig, SPEC_SIGNATURE);
    assert_int_equal(wh_sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY) - 1, sig), 0);
    assert_string_not_equal(sig, SPEC_SIGNATURE);
}

/* A 32-byte key with padding (the secrets segmentd makes): the padding is not key bytes. */
static void test_padded_secret(void **state)
{
    (void)state;
    char a[WH_SIGNATURE_MAX], b[WH_SIGNATURE_MAX];
    /* base64 of 32 bytes 0x00..0x1f */
    const char *padded = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    assert_int_equal(wh_sign(padded, "evt_1", 1, "{}", 2, a), 0);
    assert_int_equal(strlen(a), 3 + 44);
    /* HMAC-SHA256 of "evt_1.1.{}" with that key, computed with Python's hmac module */
    assert_int_equal(wh_sign(padded, "evt_1", 1, "{}", 2, b), 0);
    assert_string_equal(a, b);
    assert_string_equal(a, "v1,XY3P1WFwJIa/rFEXWbHHabpn+hQTvww5q28AaOwEyM8=");
}

static void test_bad_secrets(void **state)
{
    (void)state;
    char sig[WH_SIGNATURE_MAX];
    assert_int_equal(wh_sign("whsec_", "m", 1, "", 0, sig), -1);
    assert_int_equal(wh_sign("whsec_abc", "m", 1, "", 0, sig), -1);     /* not a multiple of 4 */
    assert_int_equal(wh_sign("whsec_ab!d", "m", 1, "", 0, sig), -1);    /* not base64 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vector),
        cmocka_unit_test(test_every_part_is_signed),
        cmocka_unit_test(test_padded_secret),
        cmocka_unit_test(test_bad_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
