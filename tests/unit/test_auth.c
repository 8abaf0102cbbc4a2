/* Token verification: algorithm pinning, typed time claims, tenant and scopes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jwt.h>

#include "auth/auth.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define NOW 1800000000LL

static seg_config cfg;

static int setup(void **state)
{
    seg_error e;
    err_clear(&e);
    if (config_load_from_string(&cfg, "SEGMENTD_JWT_SECRET=" SECRET "\nSEGMENTD_JWT_LEEWAY=30\n", &e))
        return -1;
    auth_init(&cfg);
    return 0;
}

static int teardown(void **state)
{
    config_free(&cfg);
    return 0;
}

/* Builds "Bearer <token>" with the given claims JSON, algorithm and key. */
static char *bearer(const char *claims, jwt_alg_t alg, const char *key)
{
    jwt_t *j = NULL;
    char *tok, *out;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_grants_json(j, claims), 0);
    assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0), 0);
    tok = jwt_encode_str(j);
    jwt_free(j);
    assert_non_null(tok);
    out = malloc(strlen(tok) + 8);
    sprintf(out, "Bearer %s", tok);
    free(tok);
    return out;
}

static int verify(const char *header, auth_principal *p, seg_error *e)
{
    err_clear(e);
    return auth_verify(header, NOW, p, e);
}

static void test_good_token(void **state)
{
    auth_principal p;
    seg_error e;
    char *h = bearer("{\"tenant\":\"acme\",\"sub\":\"u1\",\"exp\":1800000100,\"scope\":\"segments:read segments:write\"}",
                     JWT_ALG_HS256, SECRET);
    assert_int_equal(verify(h, &p, &e), 0);
    assert_string_equal(p.tenant, "acme");
    assert_string_equal(p.subject, "u1");
    assert_int_equal(p.scopes, AUTH_SCOPE_READ | AUTH_SCOPE_WRITE);
    assert_int_equal(auth_require(&p, AUTH_SCOPE_WRITE, &e), 0);
    free(h);
}

static void expect_refused(const char *claims, jwt_alg_t alg, const char *key, const char *why)
{
    auth_principal p;
    seg_error e;
    char *h = bearer(claims, alg, key);
    assert_int_equal(verify(h, &p, &e), -1);
    assert_int_equal(e.status, 401);
    assert_string_equal(e.code, "invalid_token");
    if (!strstr(e.log_detail, why))
        fail_msg("log detail \"%s\" lacks \"%s\"", e.log_detail, why);
    /* the client learns no more than RFC 6750 allows: one fixed sentence */
    assert_string_equal(e.detail, "the access token is malformed, badly signed or expired");
    free(h);
}

static void test_refusals(void **state)
{
    expect_refused("{\"tenant\":\"a\",\"exp\":1800000100}", JWT_ALG_HS512, SECRET, "algorithm");
    expect_refused("{\"tenant\":\"a\",\"exp\":1800000100}", JWT_ALG_HS256, "another-secret-another-secret-xx",
                   "signature");
    expect_refused("{\"tenant\":\"a\",\"exp\":1799999900}", JWT_ALG_HS256, SECRET, "expired");
    expect_refused("{\"tenant\":\"a\"}", JWT_ALG_HS256, SECRET, "exp is missing");
    expect_refused("{\"tenant\":\"a\",\"exp\":\"1800000100\"}", JWT_ALG_HS256, SECRET, "exp is not an integer");
    expect_refused("{\"tenant\":\"a\",\"exp\":1800000100.0}", JWT_ALG_HS256, SECRET, "exp is not an integer");
    expect_refused("{\"tenant\":\"a\",\"exp\":1800000100,\"nbf\":1800000500}", JWT_ALG_HS256, SECRET, "nbf");
    expect_refused("{\"tenant\":\"a\",\"exp\":1800000100,\"nbf\":1.5}", JWT_ALG_HS256, SECRET, "nbf");
    expect_refused("{\"tenant\":\"a\",\"exp\":1800000100,\"iat\":1800000500}", JWT_ALG_HS256, SECRET, "iat");
    expect_refused("{\"exp\":1800000100}", JWT_ALG_HS256, SECRET, "tenant");
    expect_refused("{\"tenant\":\"\",\"exp\":1800000100}", JWT_ALG_HS256, SECRET, "tenant");
    expect_refused("{\"tenant\":7,\"exp\":1800000100}", JWT_ALG_HS256, SECRET, "tenant");
    expect_refused("{\"tenant\":\"a\",\"exp\":1800000100,\"scope\":[\"x\"]}", JWT_ALG_HS256, SECRET, "scope");
}

static void test_leeway(void **state)
{
    auth_principal p;
    seg_error e;
    char *h = bearer("{\"tenant\":\"a\",\"exp\":1799999980}", JWT_ALG_HS256, SECRET); /* 20 s ago */
    assert_int_equal(verify(h, &p, &e), 0);
    free(h);
}

static void test_alg_none_and_garbage(void **state)
{
    auth_principal p;
    seg_error e;
    const char *bad[] = {
        "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ0ZW5hbnQiOiJhIiwiZXhwIjo5OTk5OTk5OTk5fQ.",
        "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ0ZW5hbnQiOiJhIiwiZXhwIjo5OTk5OTk5OTk5fQ.AAAA",
        "Bearer a.b", "Bearer ...", "Bearer", "Basic dXNlcjpwYXNz", "Bearer a b.c.d",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(verify(bad[i], &p, &e), -1);
        assert_int_equal(e.status, 401);
        assert_non_null(e.www_authenticate);
    }
    assert_int_equal(verify(NULL, &p, &e), -1);
    assert_string_equal(e.code, "unauthorized");
}

static void test_oversized_token(void **state)
{
    auth_principal p;
    seg_error e;
    char *h = malloc(AUTH_MAX_TOKEN + 64);
    strcpy(h, "Bearer ");
    memset(h + 7, 'a', AUTH_MAX_TOKEN + 10);
    h[7 + AUTH_MAX_TOKEN + 10] = '\0';
    h[20] = '.';
    h[40] = '.';
    assert_int_equal(verify(h, &p, &e), -1);
    assert_non_null(strstr(e.log_detail, "longer"));
    free(h);
}

static void test_scopes(void **state)
{
    auth_principal p;
    seg_error e;
    char *h = bearer("{\"tenant\":\"a\",\"exp\":1800000100,\"scp\":[\"segments:read\"]}", JWT_ALG_HS256, SECRET);
    assert_int_equal(verify(h, &p, &e), 0);
    assert_int_equal(p.scopes, AUTH_SCOPE_READ);
    err_clear(&e);
    assert_int_equal(auth_require(&p, AUTH_SCOPE_WRITE, &e), -1);
    assert_int_equal(e.status, 403);
    assert_non_null(strstr(e.www_authenticate, "insufficient_scope"));
    free(h);
    h = bearer("{\"tenant\":\"a\",\"exp\":1800000100,\"scope\":\"segments:readx segments:writ\"}", JWT_ALG_HS256, SECRET);
    assert_int_equal(verify(h, &p, &e), 0);
    assert_int_equal(p.scopes, 0);
    free(h);
    /* the device scopes: ingest without any right on segments, and each refusal names the
     * scope that is missing */
    h = bearer("{\"tenant\":\"a\",\"exp\":1800000100,\"scope\":\"devices:write other:thing devices:read\"}",
               JWT_ALG_HS256, SECRET);
    assert_int_equal(verify(h, &p, &e), 0);
    assert_int_equal(p.scopes, AUTH_SCOPE_DEVICES_READ | AUTH_SCOPE_DEVICES_WRITE);
    err_clear(&e);
    assert_int_equal(auth_require(&p, AUTH_SCOPE_DEVICES_WRITE, &e), 0);
    assert_int_equal(auth_require(&p, AUTH_SCOPE_READ, &e), -1);
    assert_non_null(strstr(e.detail, "segments:read"));
    assert_non_null(strstr(e.www_authenticate, "scope=\"segments:read\""));
    free(h);
    h = bearer("{\"tenant\":\"a\",\"exp\":1800000100,\"scp\":[\"devices:read\", 7, \"segments:write\"]}",
               JWT_ALG_HS256, SECRET);
    assert_int_equal(verify(h, &p, &e), 0);
    assert_int_equal(p.scopes, AUTH_SCOPE_DEVICES_READ | AUTH_SCOPE_WRITE);
    err_clear(&e);
    assert_int_equal(auth_require(&p, AUTH_SCOPE_DEVICES_WRITE, &e), -1);
    assert_non_null(strstr(e.detail, "devices:write"));
    assert_non_null(strstr(e.www_authenticate, "scope=\"devices:write\""));
    free(h);
}

static void test_mint_round_trip(void **state)
{
    auth_principal p;
    seg_error e;
    err_clear(&e);
    char *tok = auth_mint("acme", "dev", "segments:read", 60, NOW, &e);
    assert_non_null(tok);
    char *h = malloc(strlen(tok) + 8);
    sprintf(h, "Bearer %s", tok);
    assert_int_equal(verify(h, &p, &e), 0);
    assert_string_equal(p.tenant, "acme");
    assert_int_equal(p.scopes, AUTH_SCOPE_READ);
    err_clear(&e);
    assert_int_equal(auth_verify(h, NOW + 120, &p, &e), -1); /* 60 s ttl + 30 s leeway */
    free(h);
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_token),      cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_leeway),          cmocka_unit_test(test_alg_none_and_garbage),
        cmocka_unit_test(test_oversized_token), cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_mint_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
