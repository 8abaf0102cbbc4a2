/* JSON Web Keys: a JWK into a key and the algorithms it may verify (kty, crv, alg, use,
 * key_ops, private members, sizes), JWK Sets, signatures made here with OpenSSL checked
 * by jwk_verify, and auth_verify on an installed set (a newer set drops cached tokens). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jose/openssl.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>

#include "auth/auth.h"
#include "auth/jwk.h"
#include "auth/jwks.h"
#include "core/ids.h"

#define NOW 1800000000LL

enum { K_RSA, K_RSA1024, K_EC256, K_EC384, K_EC521, K_ED, N_KEYS };
static EVP_PKEY *priv[N_KEYS];
static json_t *pub[N_KEYS]; /* public JWKs, no kid */

static json_t *public_jwk(EVP_PKEY *k)
{
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
        unsigned char raw[32];
        char x[64];
        size_t len = sizeof raw;
        assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &len), 1);
        ids_b64url_encode(raw, len, x);
        return json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x", x);
    }
    json_t *j = jose_openssl_jwk_from_EVP_PKEY(NULL, k);
    assert_non_null(j);
    const char *private_members[] = {"d", "p", "q", "dp", "dq", "qi"};
    for (size_t i = 0; i < 6; i++)
        json_object_del(j, private_members[i]);
    return j;
}

static int setup(void **state)
{
    priv[K_RSA] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    priv[K_RSA1024] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    priv[K_EC256] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    priv[K_EC384] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    priv[K_EC521] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    priv[K_ED] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    for (int i = 0; i < N_KEYS; i++) {
        if (!priv[i])
            return -1;
        pub[i] = public_jwk(priv[i]);
    }
    return 0;
}

static int teardown(void **state)
{
    for (int i = 0; i < N_KEYS; i++) {
        EVP_PKEY_free(priv[i]);
        json_decref(pub[i]);
    }
    auth_jwks_stop();
    return 0;
}

/* A copy of pub[k] with the members of the JSON object text extra set on it. */
static json_t *with(int k, const char *extra)
{
    json_t *j = json_deep_copy(pub[k]);
    if (extra) {
        json_t *e = json_loads(extra, 0, NULL);
        assert_non_null(e);
        json_object_update(j, e);
        json_decref(e);
    }
    return j;
}

static json_t *oct(size_t n)
{
    unsigned char k[64];
    char b[100];
    memset(k, 'k', n);
    ids_b64url_encode(k, n, b);
    return json_pack("{s:s, s:s}", "kty", "oct", "k", b);
}

/* Reads owned_jwk; expects the algorithms algs (0: refused with why containing refusal). */
static void expect(json_t *owned_jwk, bool allow_secret, unsigned algs, const char *refusal)
{
    jwk_key k;
    char why[160] = "";
    int rc = jwk_key_read(owned_jwk, allow_secret, &k, why, sizeof why);
    char *text = json_dumps(owned_jwk, JSON_COMPACT);
    if (algs) {
        if (rc != 0)
            fail_msg("%.120s refused: %s", text, why);
        if (k.algs != algs)
            fail_msg("%.120s: algs %#x, expected %#x", text, k.algs, algs);
        for (int a = 1; a < JWK_N_ALGS; a++)
            assert_int_equal(jwk_key_allows(&k, (jwk_alg)a), !!(algs & JWK_BIT(a)));
        assert_false(jwk_key_allows(&k, JWK_ALG_UNKNOWN));
        jwk_key_clear(&k);
    } else {
        if (rc != -1)
            fail_msg("%.120s accepted", text);
        if (!strstr(why, refusal))
            fail_msg("%.120s: \"%s\" lacks \"%s\"", text, why, refusal);
        assert_null(k.pkey);
        assert_null(k.secret);
    }
    free(text);
    json_decref(owned_jwk);
}

#define RS (JWK_BIT(JWK_RS256) | JWK_BIT(JWK_RS384) | JWK_BIT(JWK_RS512))
#define HS (JWK_BIT(JWK_HS256) | JWK_BIT(JWK_HS384) | JWK_BIT(JWK_HS512))

static void test_kty_alg_use_rules(void **state)
{
    expect(with(K_RSA, NULL), false, RS, NULL);
    expect(with(K_RSA, "{\"alg\":\"RS384\",\"use\":\"sig\",\"kid\":\"a\"}"), false, JWK_BIT(JWK_RS384), NULL);
    expect(with(K_RSA, "{\"key_ops\":[\"verify\"]}"), false, RS, NULL);
    expect(with(K_RSA, "{\"alg\":\"ES256\"}"), false, 0, "does not fit kty");
    expect(with(K_RSA, "{\"alg\":\"HS256\"}"), false, 0, "does not fit kty");
    expect(with(K_RSA, "{\"alg\":\"PS256\"}"), false, 0, "alg is not one of");
    expect(with(K_RSA, "{\"alg\":\"rs256\"}"), false, 0, "alg is not one of");
    expect(with(K_RSA, "{\"alg\":\"none\"}"), false, 0, "alg is not one of");
    expect(with(K_RSA, "{\"use\":\"enc\"}"), false, 0, "use is not");
    expect(with(K_RSA, "{\"use\":1}"), false, 0, "use is not");
    expect(with(K_RSA, "{\"key_ops\":[\"encrypt\"]}"), false, 0, "key_ops lacks");
    expect(with(K_RSA, "{\"key_ops\":\"verify\"}"), false, 0, "key_ops is not an array");
    expect(with(K_RSA, "{\"d\":\"AQAB\"}"), false, 0, "private key material");
    expect(with(K_RSA, "{\"n\":\"!!\"}"), false, 0, "malformed");
    expect(with(K_RSA1024, NULL), false, 0, "at least 2048");
    expect(with(K_RSA, "{\"kid\":7}"), false, 0, "kid is not a string");
    expect(with(K_RSA, "{\"kid\":\"\"}"), false, 0, "kid is not a string");
    expect(with(K_RSA, "{\"kty\":\"rsa\"}"), false, 0, "kty");

    expect(with(K_EC256, NULL), false, JWK_BIT(JWK_ES256), NULL);
    expect(with(K_EC384, NULL), false, JWK_BIT(JWK_ES384), NULL);
    expect(with(K_EC521, NULL), false, JWK_BIT(JWK_ES512), NULL);
    expect(with(K_EC256, "{\"alg\":\"ES256\"}"), false, JWK_BIT(JWK_ES256), NULL);
    expect(with(K_EC256, "{\"alg\":\"ES384\"}"), false, 0, "crv");
    expect(with(K_EC256, "{\"crv\":\"P-192\"}"), false, 0, "crv");
    expect(with(K_EC256, "{\"crv\":\"secp256k1\"}"), false, 0, "crv");
    expect(with(K_EC256, "{\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}"), false, 0,
           "malformed"); /* a point off the curve */
    expect(with(K_EC256, "{\"d\":\"AAAA\"}"), false, 0, "private");

    expect(with(K_ED, NULL), false, JWK_BIT(JWK_EDDSA), NULL);
    expect(with(K_ED, "{\"alg\":\"EdDSA\"}"), false, JWK_BIT(JWK_EDDSA), NULL);
    expect(with(K_ED, "{\"crv\":\"Ed448\"}"), false, 0, "Ed25519");
    expect(with(K_ED, "{\"x\":\"AAAA\"}"), false, 0, "32 bytes");
    expect(with(K_ED, "{\"alg\":\"ES256\"}"), false, 0, "does not fit");

    expect(oct(32), true, JWK_BIT(JWK_HS256), NULL);
    expect(oct(48), true, JWK_BIT(JWK_HS256) | JWK_BIT(JWK_HS384), NULL);
    expect(oct(64), true, HS, NULL);
    expect(oct(16), true, 0, "at least 32");
    expect(oct(64), false, 0, "only a JWKS file");
    json_t *o = oct(64);
    json_object_set_new(o, "alg", json_string("RS256"));
    expect(o, true, 0, "does not fit");
    expect(json_pack("{s:s}", "kty", "oct"), true, 0, "k missing");
    expect(json_string("RSA"), false, 0, "not an object");
}

/* A JWS signature of input by key k with alg, in the JWS form (R || S for ECDSA). */
static size_t sign(int k, jwk_alg alg, const char *input, unsigned char *out)
{
    const EVP_MD *md = alg == JWK_EDDSA ? NULL
                       : (alg == JWK_RS256 || alg == JWK_ES256) ? EVP_sha256()
                       : (alg == JWK_RS384 || alg == JWK_ES384) ? EVP_sha384()
                                                                : EVP_sha512();
    unsigned char der[1024];
    size_t len = sizeof der;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, priv[k]), 1);
    assert_int_equal(EVP_DigestSign(ctx, der, &len, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    if (alg < JWK_ES256 || alg > JWK_ES512) {
        memcpy(out, der, len);
        return len;
    }
    int half = alg == JWK_ES256 ? 32 : alg == JWK_ES384 ? 48 : 66;
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    assert_non_null(es);
    BN_bn2binpad(ECDSA_SIG_get0_r(es), out, half);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), out + half, half);
    ECDSA_SIG_free(es);
    return (size_t)(2 * half);
}

static void test_verify(void **state)
{
    static const struct {
        int k;
        jwk_alg alg;
    } cases[] = {{K_RSA, JWK_RS256}, {K_RSA, JWK_RS384}, {K_RSA, JWK_RS512},
                 {K_EC256, JWK_ES256}, {K_EC384, JWK_ES384}, {K_EC521, JWK_ES512},
                 {K_ED, JWK_EDDSA}};
    const char *input = "eyJhbGciOiJSUzI1NiJ9.eyJ0ZW5hbnQiOiJ0MSJ9";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jwk_key key;
        char why[160];
        unsigned char sig[1024];
        assert_int_equal(jwk_key_read(pub[cases[i].k], false, &key, why, sizeof why), 0);
        size_t n = sign(cases[i].k, cases[i].alg, input, sig);
        assert_true(jwk_verify(&key, cases[i].alg, (const unsigned char *)input, strlen(input), sig, n));
        /* another input, a flipped bit, a cut signature, another alg of the same key */
        assert_false(jwk_verify(&key, cases[i].alg, (const unsigned char *)input, strlen(input) - 1, sig, n));
        sig[n / 2] ^= 1;
        assert_false(jwk_verify(&key, cases[i].alg, (const unsigned char *)input, strlen(input), sig, n));
        sig[n / 2] ^= 1;
        assert_false(jwk_verify(&key, cases[i].alg, (const unsigned char *)input, strlen(input), sig, n - 1));
        assert_false(jwk_verify(&key, cases[i].alg, (const unsigned char *)input, strlen(input), sig, 0));
        for (int a = 1; a < JWK_N_ALGS; a++)
            if (a != (int)cases[i].alg)
                assert_false(jwk_verify(&key, (jwk_alg)a, (const unsigned char *)input, strlen(input), sig, n));
        jwk_key_clear(&key);
    }
    /* HMAC: the secret's own algorithms only */
    json_t *o = oct(48);
    jwk_key key;
    char why[160];
    unsigned char mac[64], secret[48];
    unsigned int mac_len;
    memset(secret, 'k', sizeof secret);
    assert_int_equal(jwk_key_read(o, true, &key, why, sizeof why), 0);
    HMAC(EVP_sha384(), secret, 48, (const unsigned char *)input, strlen(input), mac, &mac_len);
    assert_true(jwk_verify(&key, JWK_HS384, (const unsigned char *)input, strlen(input), mac, mac_len));
    assert_false(jwk_verify(&key, JWK_HS384, (const unsigned char *)input, strlen(input), mac, mac_len - 1));
    HMAC(EVP_sha512(), secret, 48, (const unsigned char *)input, strlen(input), mac, &mac_len);
    assert_false(jwk_verify(&key, JWK_HS512, (const unsigned char *)input, strlen(input), mac, mac_len));
    jwk_key_clear(&key);
    json_decref(o);
}

static char *set_text(int n, ...)
{
    json_t *keys = json_array();
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        json_array_append_new(keys, va_arg(ap, json_t *));
    va_end(ap);
    json_t *doc = json_pack("{s:o}", "keys", keys);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

static void test_sets(void **state)
{
    seg_error e;
    err_clear(&e);
    char *t = set_text(3, with(K_RSA, "{\"kid\":\"a\"}"), with(K_EC256, "{\"kid\":\"a\"}"),
                       with(K_ED, "{\"kid\":\"b\",\"use\":\"enc\"}"));
    jwk_set *s = jwk_set_parse(t, strlen(t), false, &e);
    assert_non_null(s);
    assert_int_equal(s->n, 1);
    assert_int_equal(s->skipped, 2);
    assert_non_null(strstr(s->skipped_why, "repeats"));
    assert_int_equal(jwk_set_find(s, "a")->kty, JWK_KTY_RSA);
    assert_ptr_equal(jwk_set_find(s, NULL), &s->keys[0]); /* the only key */
    assert_null(jwk_set_find(s, "b"));
    jwk_set_free(s);
    free(t);

    t = set_text(2, with(K_RSA, "{\"kid\":\"a\"}"), with(K_EC256, "{\"kid\":\"c\"}"));
    s = jwk_set_parse(t, strlen(t), false, &e);
    assert_null(jwk_set_find(s, NULL)); /* two keys: a token must name one */
    assert_null(jwk_set_find(s, ""));
    jwk_set_free(s);
    free(t);

    static const struct {
        const char *doc, *why;
    } bad[] = {{"", "not JSON"}, {"[]", "\"keys\" array"}, {"{\"keys\":{}}", "\"keys\" array"},
               {"{\"keys\":[],\"keys\":[]}", "not JSON"}, {"{\"keys\":[]}", "no key"},
               {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s\"}]}", "only a JWKS file"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        assert_null(jwk_set_parse(bad[i].doc, strlen(bad[i].doc), false, &e));
        if (!strstr(e.detail, bad[i].why))
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].doc, e.detail, bad[i].why);
    }
    json_t *many = json_array();
    for (int i = 0; i <= JWKS_MAX_KEYS; i++)
        json_array_append_new(many, with(K_ED, NULL));
    json_t *doc = json_pack("{s:o}", "keys", many);
    t = json_dumps(doc, JSON_COMPACT);
    assert_null(jwk_set_parse(t, strlen(t), false, &e));
    assert_non_null(strstr(e.detail, "at most 100"));
    assert_null(jwk_set_parse(t, JWKS_MAX_BYTES + 1, false, &e));
    assert_non_null(strstr(e.detail, "larger than"));
    free(t);
    json_decref(doc);
}

/* "Bearer header.payload.signature" signed by key k with alg, header kid. */
static char *bearer(int k, jwk_alg alg, const char *kid, const char *claims)
{
    char header[200], input[2048], *out = malloc(4096);
    unsigned char sig[1024];
    snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"%s\"}", jwk_alg_name(alg), kid);
    ids_b64url_encode((const unsigned char *)header, strlen(header), input);
    strcat(input, ".");
    ids_b64url_encode((const unsigned char *)claims, strlen(claims), input + strlen(input));
    size_t n = sign(k, alg, input, sig);
    sprintf(out, "Bearer %s.", input);
    ids_b64url_encode(sig, n, out + strlen(out));
    return out;
}

static void test_auth_with_a_set(void **state)
{
    seg_config cfg;
    seg_error e;
    auth_principal p;
    err_clear(&e);
    assert_int_equal(config_load_from_string(&cfg, "SEGMENTD_JWT_JWKS_FILE=/unused\n", &e), 0);
    auth_init(&cfg);
    char *t1 = set_text(2, with(K_RSA, "{\"kid\":\"r\"}"), with(K_ED, "{\"kid\":\"e\"}"));
    char *t2 = set_text(1, with(K_ED, "{\"kid\":\"e\"}"));
    assert_int_equal(auth_jwks_install(t1, strlen(t1), false, &e), 0);
    const char *claims = "{\"tenant\":\"acme\",\"exp\":1800000100,\"scope\":\"segments:read\"}";
    char *rs = bearer(K_RSA, JWK_RS256, "r", claims), *ed = bearer(K_ED, JWK_EDDSA, "e", claims),
         *wrong_kid = bearer(K_RSA, JWK_RS256, "e", claims), *dup = bearer(K_ED, JWK_EDDSA, "e",
         "{\"tenant\":\"acme\",\"tenant\":\"root\",\"exp\":1800000100}");
    assert_int_equal(auth_verify(rs, NOW, &p, &e), 0);
    assert_string_equal(p.tenant, "acme");
    assert_int_equal(auth_verify(ed, NOW, &p, &e), 0);
    err_clear(&e);
    assert_int_equal(auth_verify(wrong_kid, NOW, &p, &e), -1);
    assert_non_null(strstr(e.log_detail, "does not verify the token's alg"));
    err_clear(&e);
    assert_int_equal(auth_verify(dup, NOW, &p, &e), -1); /* a repeated claim is refused */
    /* the RSA key leaves the set: its token, cached a moment ago, is refused now */
    assert_int_equal(auth_jwks_install(t2, strlen(t2), false, &e), 0);
    err_clear(&e);
    assert_int_equal(auth_verify(rs, NOW, &p, &e), -1);
    assert_non_null(strstr(e.log_detail, "kid not in the JWK Set"));
    assert_int_equal(auth_verify(ed, NOW, &p, &e), 0);
    /* a refused document keeps the set */
    assert_int_equal(auth_jwks_install("{}", 2, false, &e), -1);
    assert_int_equal(auth_verify(ed, NOW + 1, &p, &e), 0);
    assert_null(auth_mint("t", "s", "segments:read", 60, NOW, &e));
    assert_non_null(strstr(e.detail, "not a JWK Set"));
    free(rs);
    free(ed);
    free(wrong_kid);
    free(dup);
    free(t1);
    free(t2);
    auth_jwks_stop();
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kty_alg_use_rules),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_sets),
        cmocka_unit_test(test_auth_with_a_set),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
