/* Unit tests for http/rate_limit: the token bucket drained, refilled and capped at its burst,
 * with the wait it names; per-tenant and per-class buckets (tenant A's burst leaves B and A's
 * other classes untouched); the 429 problem and Retry-After; the RateLimit-Policy and
 * RateLimit field values; settings read from the environment table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "http/rate_limit.h"

#define S 1000000LL /* µs */

static void test_bucket(void **state)
{
    (void)state;
    rate_bucket b = {3, 0}; /* full: burst 3 */
    long wait;
    for (int i = 0; i < 3; i++) {
        assert_true(rate_bucket_take(&b, 2, 3, 0, &wait));
        assert_int_equal(wait, 0);
    }
    assert_false(rate_bucket_take(&b, 2, 3, 0, &wait)); /* drained */
    assert_int_equal(wait, 1);                            /* 0.5 s to a token: rounded up */
    assert_false(rate_bucket_take(&b, 2, 3, S / 4, &wait));
    assert_true(rate_bucket_take(&b, 2, 3, S / 2, &wait)); /* refilled at 2 a second */
    assert_false(rate_bucket_take(&b, 2, 3, S / 2, &wait));
    /* a long pause fills it up to the burst, not beyond */
    for (int i = 0; i < 3; i++)
        assert_true(rate_bucket_take(&b, 2, 3, 100 * S, &wait));
    assert_false(rate_bucket_take(&b, 2, 3, 100 * S, &wait));
    /* a slow rate names a long wait; time going backwards takes nothing */
    rate_bucket slow = {0, 10 * S};
    assert_false(rate_bucket_take(&slow, 0.1, 1, 5 * S, &wait));
    assert_int_equal(wait, 10);
    assert_true(slow.tokens < 1e-9 && slow.tokens > -1e-9);
}

static void configure(const char *text)
{
    seg_config cfg;
    seg_error err;
    err_clear(&err);
    assert_int_equal(config_load_from_string(&cfg, text, &err), 0);
    rate_limits_configure(&cfg);
    config_free(&cfg);
    rate_reset();
}

static const char *const base = "SEGMENTD_JWT_SECRET=0123456789abcdef0123456789abcdef\n";

static void test_take(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "%sSEGMENTD_RATE_LIMIT_READ=1\nSEGMENTD_RATE_LIMIT_READ_BURST=3\n"
                                "SEGMENTD_RATE_LIMIT_EVAL=2\n", base);
    configure(text);
    assert_true(rate_limited(RATE_READ));
    assert_false(rate_limited(RATE_WRITE));
    assert_true(rate_limited(RATE_EVAL));
    rate_state st;
    seg_error err;
    err_clear(&err);
    int64_t t0 = 1000 * S;
    for (long i = 0; i < 3; i++) {
        assert_int_equal(rate_take("A", RATE_READ, t0, &st, &err), 0);
        assert_true(st.limited);
        assert_int_equal(st.remaining, 2 - i);
        assert_int_equal(st.reset_s, i + 1); /* 1 a second back to 3 */
    }
    assert_int_equal(rate_take("A", RATE_READ, t0, &st, &err), -1);
    assert_int_equal(err.status, 429);
    assert_string_equal(err.code, "rate_limited");
    assert_int_equal(err.retry_after, 1);
    assert_int_equal(st.remaining, 0);
    assert_int_equal(st.reset_s, 3);
    /* tenant B, and A's evaluations, have buckets of their own */
    err_clear(&err);
    assert_int_equal(rate_take("B", RATE_READ, t0, &st, &err), 0);
    assert_int_equal(st.remaining, 2);
    assert_int_equal(rate_take("A", RATE_EVAL, t0, &st, &err), 0);
    assert_int_equal(st.remaining, 1); /* burst = the rate when unset */
    /* a second later A may read once more */
    assert_int_equal(rate_take("A", RATE_READ, t0 + S, &st, &err), 0);
    assert_int_equal(rate_take("A", RATE_READ, t0 + S, &st, &err), -1);

    char now[RATE_FIELD_MAX];
    rate_take("C", RATE_READ, t0, &st, &err);
    assert_string_equal(rate_fields(&st, now), "\"read\";q=3;w=3");
    assert_string_equal(now, "\"read\";r=2;t=1");
    rate_take("C", RATE_EVAL, t0, &st, &err);
    assert_string_equal(rate_fields(&st, now), "\"evaluation\";q=2;w=1");
    assert_string_equal(now, "\"evaluation\";r=1;t=1");
    st = (rate_state){true, RATE_EVAL, 12345678901L, 0};
    rate_fields(&st, now);
    assert_string_equal(now, "\"evaluation\";r=12345678901;t=0");
}

static void test_settings(void **state)
{
    (void)state;
    seg_config cfg;
    seg_error err;
    char text[512];
    err_clear(&err);
    assert_int_equal(config_load_from_string(&cfg, base, &err), 0);
    for (int c = 0; c < 3; c++)
        assert_int_equal(cfg.rate_limit[c], 0); /* off by default */
    config_free(&cfg);
    snprintf(text, sizeof text, "%sSEGMENTD_RATE_LIMIT_WRITE=-1\n", base);
    assert_int_equal(config_load_from_string(&cfg, text, &err), -1);
    assert_non_null(strstr(err.detail, "SEGMENTD_RATE_LIMIT_WRITE"));
    snprintf(text, sizeof text, "%sSEGMENTD_RATE_LIMIT_WRITE=50\nSEGMENTD_RATE_LIMIT_WRITE_BURST=500\n", base);
    err_clear(&err);
    assert_int_equal(config_load_from_string(&cfg, text, &err), 0);
    assert_int_equal(cfg.rate_limit[RATE_WRITE], 50);
    assert_int_equal(cfg.rate_burst[RATE_WRITE], 500);
    assert_int_equal(cfg.rate_limit[RATE_READ], 0);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_settings),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rate_reset();
    return rc;
}
