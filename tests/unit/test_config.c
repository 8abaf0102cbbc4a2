/* The configuration table: defaults, bounds, one-line errors naming the setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"

#define SECRET "0123456789abcdef0123456789abcdef"

static void test_defaults(void **state)
{
    seg_config c;
    seg_error e;
    err_clear(&e);
    assert_int_equal(config_load_from_string(&c, "SEGMENTD_JWT_SECRET=" SECRET "\n", &e), 0);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8080);
    /* one loop per CPU (at most 8), one pipelined connection each */
    assert_true(c.loops >= 1 && c.loops <= 8 && c.loops <= sysconf(_SC_NPROCESSORS_ONLN));
    assert_int_equal(c.pool_size, c.loops);
    assert_string_equal(c.retired_set, "");
    assert_string_equal(c.jwt_alg, "HS256");
    assert_int_equal(c.jwt_key_len, 32);
    assert_int_equal((int)c.max_body_bytes, 1048576);
    assert_true(c.auto_migrate);
    assert_string_equal(c.tenant_claim, "tenant");
    assert_null(c.jwt_issuer);
    assert_null(c.database_url);
    config_free(&c);
}

static void test_values(void **state)
{
    seg_config c;
    seg_error e;
    err_clear(&e);
    assert_int_equal(config_load_from_string(&c,
                         "SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_LISTEN=0.0.0.0:9000\n"
                         "SEGMENTD_LOOPS=3\nSEGMENTD_JWT_ISSUER=https://i\nSEGMENTD_AUTO_MIGRATE=false\n"
                         "SEGMENTD_DATABASE_URL=postgresql://u@h/db\nSEGMENTD_LOG_LEVEL=warn\n",
                         &e),
                     0);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 9000);
    assert_int_equal(c.loops, 3);
    assert_int_equal(c.pool_size, 3); /* one connection per loop by default */
    assert_string_equal(c.jwt_issuer, "https://i");
    assert_false(c.auto_migrate);
    assert_string_equal(c.database_url, "postgresql://u@h/db");
    assert_int_equal(c.log_level, LOG_WARN);
    config_free(&c);
}

static void expect_error(const char *text, const char *needle)
{
    seg_config c;
    seg_error e;
    err_clear(&e);
    assert_int_equal(config_load_from_string(&c, text, &e), -1);
    if (!strstr(e.detail, needle))
        fail_msg("\"%s\" does not name %s", e.detail, needle);
    assert_null(strchr(e.detail, '\n'));
}

static void test_errors(void **state)
{
    expect_error("", "SEGMENTD_JWT_SECRET");
    expect_error("SEGMENTD_JWT_SECRET=short\n", "SEGMENTD_JWT_SECRET");
    expect_error("SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_POOL_SIZE=0\n", "SEGMENTD_POOL_SIZE");
    expect_error("SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_LOOPS=1e3\n", "SEGMENTD_LOOPS");
    expect_error("SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_AUTO_MIGRATE=2\n", "SEGMENTD_AUTO_MIGRATE");
    expect_error("SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_LISTEN=8080\n", "SEGMENTD_LISTEN");
    expect_error("SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_LISTEN=h:70000\n", "SEGMENTD_LISTEN");
    expect_error("SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_JWT_ALG=none\n", "SEGMENTD_JWT_ALG");
    expect_error("SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_JWT_ALG=hs256\n", "SEGMENTD_JWT_ALG");
    expect_error("SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_JWT_ALG=RS256\n", "SEGMENTD_JWT_SECRET");
    expect_error("SEGMENTD_JWT_ALG=ES256\n", "SEGMENTD_JWT_PUBLIC_KEY_FILE");
    expect_error("SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_MAX_BODY_BYTES=10\n", "SEGMENTD_MAX_BODY_BYTES");
    expect_error("SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_LOG_LEVEL=trace\n", "SEGMENTD_LOG_LEVEL");
    expect_error("SEGMENTD_JWT_SECRET_FILE=/nonexistent/x\n", "SEGMENTD_JWT_SECRET_FILE");
    expect_error("SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_JWT_SECRET_FILE=/etc/hostname\n",
                 "set only one");
}

/* A JWK Set is the one source of keys: no single key, no SEGMENTD_JWT_ALG beside it. */
static void test_jwks_settings(void **state)
{
    seg_config c;
    seg_error e;
    err_clear(&e);
    assert_int_equal(config_load_from_string(&c, "SEGMENTD_JWT_JWKS_URL=https://idp.example/jwks\n", &e), 0);
    assert_string_equal(c.jwt_jwks_url, "https://idp.example/jwks");
    assert_null(c.jwt_key);
    assert_int_equal(c.jwt_jwks_min_refresh_s, 30);
    assert_int_equal(c.jwt_jwks_timeout_ms, 5000);
    config_free(&c);
    assert_int_equal(config_load_from_string(&c, "SEGMENTD_JWT_JWKS_FILE=/k.json\n", &e), 0);
    assert_string_equal(c.jwt_jwks_file, "/k.json");
    config_free(&c);
    expect_error("SEGMENTD_JWT_JWKS_FILE=/k\nSEGMENTD_JWT_JWKS_URL=http://a/\n", "both set");
    expect_error("SEGMENTD_JWT_JWKS_FILE=/k\nSEGMENTD_JWT_SECRET=" SECRET "\n",
                 "SEGMENTD_JWT_SECRET: must not be set with SEGMENTD_JWT_JWKS_FILE");
    expect_error("SEGMENTD_JWT_JWKS_URL=http://a/\nSEGMENTD_JWT_SECRET_FILE=/etc/hostname\n",
                 "SEGMENTD_JWT_SECRET_FILE: must not be set with SEGMENTD_JWT_JWKS_URL");
    expect_error("SEGMENTD_JWT_JWKS_URL=http://a/\nSEGMENTD_JWT_PUBLIC_KEY_FILE=/etc/hostname\n",
                 "SEGMENTD_JWT_PUBLIC_KEY_FILE: must not be set");
    expect_error("SEGMENTD_JWT_JWKS_URL=http://a/\nSEGMENTD_JWT_ALG=RS256\n",
                 "SEGMENTD_JWT_ALG: must not be set");
    expect_error("SEGMENTD_JWT_JWKS_URL=ftp://a/\n", "http:// or https://");
    expect_error("SEGMENTD_JWT_JWKS_URL=http://a/\nSEGMENTD_JWT_JWKS_MIN_REFRESH_S=0\n",
                 "SEGMENTD_JWT_JWKS_MIN_REFRESH_S");
}

static void test_secret_never_in_errors(void **state)
{
    seg_config c;
    seg_error e;
    err_clear(&e);
    assert_int_equal(config_load_from_string(&c, "SEGMENTD_JWT_SECRET=hunter2-hunter2\n", &e), -1);
    assert_null(strstr(e.detail, "hunter2"));
}

static void test_secret_file(void **state)
{
    char path[] = "/tmp/segmentd-secret-XXXXXX", text[128];
    int fd = mkstemp(path);
    seg_config c;
    seg_error e;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, SECRET "\n", sizeof SECRET), (int)sizeof SECRET);
    close(fd);
    snprintf(text, sizeof text, "SEGMENTD_JWT_SECRET_FILE=%s\n", path);
    err_clear(&e);
    assert_int_equal(config_load_from_string(&c, text, &e), 0);
    assert_int_equal(c.jwt_key_len, 32); /* trailing newline stripped */
    config_free(&c);
    unlink(path);
}

static void test_help_lists_settings(void **state)
{
    char buf[8192] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    config_print_help(f);
    fclose(f);
    assert_non_null(strstr(buf, "SEGMENTD_POOL_SIZE"));
    assert_non_null(strstr(buf, "SEGMENTD_TENANT_CLAIM"));
}

static void test_loops_and_pool(void **state)
{
    seg_config c;
    seg_error e;
    err_clear(&e);
    assert_int_equal(config_load_from_string(&c, "SEGMENTD_JWT_SECRET=" SECRET "\n"
                                             "SEGMENTD_LOOPS=6\nSEGMENTD_POOL_SIZE=4\n", &e), 0);
    assert_int_equal(c.loops, 4); /* every loop owns a connection */
    assert_int_equal(c.pool_size, 4);
    config_free(&c);
    assert_int_equal(config_load_from_string(&c, "SEGMENTD_JWT_SECRET=" SECRET "\n"
                                             "SEGMENTD_LOOPS=2\nSEGMENTD_POOL_SIZE=6\n", &e), 0);
    assert_int_equal(c.loops, 2); /* three connections each */
    assert_int_equal(c.pool_size, 6);
    config_free(&c);
    assert_int_equal(config_load_from_string(&c, "SEGMENTD_JWT_SECRET=" SECRET "\n"
                                             "SEGMENTD_LOOPS=4\n", &e), 0);
    assert_int_equal(c.loops, 4);
    assert_int_equal(c.pool_size, 4); /* one lane each by default */
    config_free(&c);
}

/* The settings of the retired threading models are named for a warning, not refused: an
 * upgrade with an old environment still starts. */
static void test_retired_settings(void **state)
{
    seg_config c;
    seg_error e;
    err_clear(&e);
    assert_int_equal(config_load_from_string(&c, "SEGMENTD_JWT_SECRET=" SECRET "\n"
                                             "SEGMENTD_HTTP_MODE=pool\nSEGMENTD_THREADS=3\n"
                                             "SEGMENTD_DB_PIPELINE=0\n", &e), 0);
    assert_string_equal(c.retired_set, "SEGMENTD_HTTP_MODE SEGMENTD_THREADS SEGMENTD_DB_PIPELINE");
    assert_int_equal(c.pool_size, c.loops);
    config_free(&c);
    char buf[16384] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    config_print_help(f);
    fclose(f);
    assert_null(strstr(buf, "SEGMENTD_HTTP_MODE"));
    assert_null(strstr(buf, "SEGMENTD_THREADS"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_values),
        cmocka_unit_test(test_loops_and_pool), cmocka_unit_test(test_retired_settings),
        cmocka_unit_test(test_errors),     cmocka_unit_test(test_secret_never_in_errors),
        cmocka_unit_test(test_jwks_settings),
        cmocka_unit_test(test_secret_file), cmocka_unit_test(test_help_lists_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
