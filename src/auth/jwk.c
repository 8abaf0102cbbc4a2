/* JSON Web Keys into OpenSSL keys (libjose for RSA and EC, OpenSSL's raw-key import for
 * Ed25519, which libjose 11 does not know), the kty/alg/use agreement rule, and JWS
 * signature checks with a key parsed once: ~25 µs for RS256 where libjwt 1.10 re-parses
 * a PEM key on every token (~0.5 ms, shared/notes §2.5). */
#include "auth/jwk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jose/openssl.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>

#include "core/ids.h"

static const struct alg_def {
    const char *name;
    jwk_kty kty;
    const char *crv;   /* EC and OKP: the one curve of the algorithm */
    size_t min_secret; /* oct: RFC 7518 3.2, the hash output's size */
} alg_defs[JWK_N_ALGS] = {
    [JWK_HS256] = {"HS256", JWK_KTY_OCT, NULL, 32},
    [JWK_HS384] = {"HS384", JWK_KTY_OCT, NULL, 48},
    [JWK_HS512] = {"HS512", JWK_KTY_OCT, NULL, 64},
    [JWK_RS256] = {"RS256", JWK_KTY_RSA, NULL, 0},
    [JWK_RS384] = {"RS384", JWK_KTY_RSA, NULL, 0},
    [JWK_RS512] = {"RS512", JWK_KTY_RSA, NULL, 0},
    [JWK_ES256] = {"ES256", JWK_KTY_EC, "P-256", 0},
    [JWK_ES384] = {"ES384", JWK_KTY_EC, "P-384", 0},
    [JWK_ES512] = {"ES512", JWK_KTY_EC, "P-521", 0},
    [JWK_EDDSA] = {"EdDSA", JWK_KTY_OKP, "Ed25519", 0},
};

jwk_alg jwk_alg_from_name(const char *name)
{
    for (int a = 1; a < JWK_N_ALGS; a++)
        if (name && !strcmp(name, alg_defs[a].name))
            return (jwk_alg)a;
    return JWK_ALG_UNKNOWN;
}

const char *jwk_alg_name(jwk_alg alg)
{
    return alg > JWK_ALG_UNKNOWN && alg < JWK_N_ALGS ? alg_defs[alg].name : "unknown";
}

bool jwk_key_allows(const jwk_key *key, jwk_alg alg)
{
    return alg > JWK_ALG_UNKNOWN && alg < JWK_N_ALGS && alg_defs[alg].kty == key->kty &&
           (key->algs & JWK_BIT(alg));
}

void jwk_key_clear(jwk_key *k)
{
    EVP_PKEY_free(k->pkey);
    if (k->secret)
        OPENSSL_cleanse(k->secret, k->secret_len);
    free(k->secret);
    memset(k, 0, sizeof *k);
}

#define REFUSE(...)                                   \
    do {                                              \
        snprintf(why, why_len, __VA_ARGS__);          \
        goto fail;                                    \
    } while (0)

/* A base64url member decoded into a malloc'd buffer; NULL when absent or not base64url. */
static unsigned char *b64_member(json_t *jwk, const char *name, size_t *len)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    if (!s)
        return NULL;
    size_t cap = strlen(s) * 3 / 4 + 3;
    unsigned char *out = malloc(cap);
    int n = out ? ids_b64url_decode(s, out, cap) : -1;
    if (n < 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

/* A provider-native copy of a key (through its SubjectPublicKeyInfo): libjose builds
 * legacy RSA/EC_KEY objects, which OpenSSL 3 would otherwise export to its provider
 * lazily on the request threads' first use. */
static EVP_PKEY *native_copy(EVP_PKEY *legacy)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(legacy, &der);
    if (n <= 0)
        return NULL;
    const unsigned char *p = der;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, n);
    OPENSSL_free(der);
    return k;
}

int jwk_key_read(json_t *jwk, bool allow_secret, jwk_key *out, char *why, size_t why_len)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
    EVP_PKEY *legacy = NULL;
    memset(out, 0, sizeof *out);
    if (!json_is_object(jwk))
        REFUSE("not an object");
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    json_t *kid = json_object_get(jwk, "kid"), *use = json_object_get(jwk, "use"),
           *ops = json_object_get(jwk, "key_ops"), *alg = json_object_get(jwk, "alg");
    if (kid) {
        if (!json_is_string(kid) || json_string_length(kid) == 0 ||
            json_string_length(kid) > JWK_KID_MAX || strlen(json_string_value(kid)) != json_string_length(kid))
            REFUSE("kid is not a string of 1 to %d bytes", JWK_KID_MAX);
        snprintf(out->kid, sizeof out->kid, "%s", json_string_value(kid));
    }
    if (!kty)
        REFUSE("kty missing or not a string");
    if (!strcmp(kty, "RSA"))
        out->kty = JWK_KTY_RSA;
    else if (!strcmp(kty, "EC"))
        out->kty = JWK_KTY_EC;
    else if (!strcmp(kty, "OKP"))
        out->kty = JWK_KTY_OKP;
    else if (!strcmp(kty, "oct"))
        out->kty = JWK_KTY_OCT;
    else
        REFUSE("kty \"%.20s\" is not RSA, EC, OKP or oct", kty);
    /* RFC 7517 4.2/4.3: a key for encryption, or for other operations, never verifies */
    if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig")))
        REFUSE("use is not \"sig\"");
    if (ops) {
        bool verify = false;
        size_t i;
        json_t *op;
        if (!json_is_array(ops))
            REFUSE("key_ops is not an array");
        json_array_foreach(ops, i, op) verify = verify || (json_is_string(op) &&
                                                           !strcmp(json_string_value(op), "verify"));
        if (!verify)
            REFUSE("key_ops lacks \"verify\"");
    }
    if (out->kty != JWK_KTY_OCT)
        for (size_t i = 0; i < sizeof private_members / sizeof private_members[0]; i++)
            if (json_object_get(jwk, private_members[i]))
                REFUSE("holds private key material (\"%s\"): publish public keys only",
                       private_members[i]);
    jwk_alg a = JWK_ALG_UNKNOWN;
    if (alg) {
        a = jwk_alg_from_name(json_string_value(alg));
        if (a == JWK_ALG_UNKNOWN)
            REFUSE("alg is not one of HS256/384/512, RS256/384/512, ES256/384/512, EdDSA");
        if (alg_defs[a].kty != out->kty)
            REFUSE("alg %s does not fit kty %s", alg_defs[a].name, kty);
    }
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    for (int i = 1; i < JWK_N_ALGS; i++)
        if (alg_defs[i].kty == out->kty && (!alg_defs[i].crv || (crv && !strcmp(crv, alg_defs[i].crv))))
            out->algs |= JWK_BIT(i);
    if (a)
        out->algs &= JWK_BIT(a);
    if (!out->algs)
        REFUSE(out->kty == JWK_KTY_EC ? "crv is not P-256, P-384 or P-521 (or not the alg's curve)"
                                      : "crv is not Ed25519 (or not the alg's curve)");

    switch (out->kty) {
    case JWK_KTY_OCT:
        if (!allow_secret)
            REFUSE("a symmetric (oct) key: only a JWKS file may hold them");
        out->secret = b64_member(jwk, "k", &out->secret_len);
        if (!out->secret)
            REFUSE("k missing or not base64url");
        for (int i = JWK_HS256; i <= JWK_HS512; i++)
            if (out->secret_len < alg_defs[i].min_secret)
                out->algs &= ~JWK_BIT(i);
        if (!out->algs)
            REFUSE("k is %zu bytes: at least %d needed (and the hash output's size)",
                   out->secret_len, JWK_HMAC_MIN_BYTES);
        return 0;
    case JWK_KTY_OKP: {
        size_t xl = 0;
        unsigned char *x = b64_member(jwk, "x", &xl);
        if (x && xl == 32)
            out->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl);
        free(x);
        if (!out->pkey)
            REFUSE("x is not a base64url Ed25519 public key of 32 bytes");
        return 0;
    }
    default: /* RSA, EC: libjose (it checks that an EC point lies on its curve) */
        legacy = jose_openssl_jwk_to_EVP_PKEY(NULL, jwk);
        if (!legacy)
            REFUSE("%s members missing or malformed", kty);
        out->pkey = native_copy(legacy);
        EVP_PKEY_free(legacy);
        legacy = NULL;
        if (!out->pkey)
            REFUSE("%s key not usable", kty);
        if (out->kty == JWK_KTY_RSA && EVP_PKEY_get_bits(out->pkey) < JWK_RSA_MIN_BITS)
            REFUSE("an RSA key of %d bits: at least %d needed", EVP_PKEY_get_bits(out->pkey),
                   JWK_RSA_MIN_BITS);
        return 0;
    }
fail:
    EVP_PKEY_free(legacy);
    jwk_key_clear(out);
    return -1;
}

void jwk_set_free(jwk_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        jwk_key_clear(&set->keys[i]);
    free(set->keys);
    free(set);
}

jwk_set *jwk_set_parse(const char *doc, size_t len, bool allow_secret, seg_error *err)
{
    json_error_t je;
    json_t *root = NULL, *keys;
    jwk_set *set = NULL;
    if (len > JWKS_MAX_BYTES) {
        err_startup(err, "jwks", "the JWK Set is larger than %d bytes", JWKS_MAX_BYTES);
        return NULL;
    }
    root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        err_startup(err, "jwks", "the JWK Set is not JSON: line %d: %s", je.line, je.text);
        return NULL;
    }
    keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        err_startup(err, "jwks", "the JWK Set has no \"keys\" array");
        goto fail;
    }
    if (json_array_size(keys) > JWKS_MAX_KEYS) {
        err_startup(err, "jwks", "the JWK Set holds %zu keys: at most %d", json_array_size(keys),
                    JWKS_MAX_KEYS);
        goto fail;
    }
    set = calloc(1, sizeof *set);
    if (!set || !(set->keys = calloc(json_array_size(keys) + 1, sizeof *set->keys))) {
        err_startup(err, "jwks", "out of memory");
        goto fail;
    }
    size_t i;
    json_t *jwk;
    json_array_foreach(keys, i, jwk) {
        char why[160];
        jwk_key *k = &set->keys[set->n];
        if (jwk_key_read(jwk, allow_secret, k, why, sizeof why) == 0 && k->kid[0] &&
            jwk_set_find(set, k->kid)) {
            snprintf(why, sizeof why, "kid \"%.40s\" repeats an earlier key's", k->kid);
            jwk_key_clear(k);
        } else if (k->algs) {
            set->n++;
            continue;
        }
        if (!set->skipped++)
            snprintf(set->skipped_why, sizeof set->skipped_why, "key %zu: %s", i, why);
    }
    if (set->n == 0) {
        err_startup(err, "jwks", "the JWK Set has no key that verifies signatures%s%s",
                    set->skipped ? ": " : "", set->skipped_why);
        goto fail;
    }
    json_decref(root);
    return set;
fail:
    jwk_set_free(set);
    json_decref(root);
    return NULL;
}

const jwk_key *jwk_set_find(const jwk_set *set, const char *kid)
{
    if (!kid || !*kid)
        return set->n == 1 ? &set->keys[0] : NULL;
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->keys[i].kid, kid))
            return &set->keys[i];
    return NULL;
}

static const EVP_MD *alg_md(jwk_alg alg)
{
    switch (alg) {
    case JWK_HS256: case JWK_RS256: case JWK_ES256: return EVP_sha256();
    case JWK_HS384: case JWK_RS384: case JWK_ES384: return EVP_sha384();
    case JWK_HS512: case JWK_RS512: case JWK_ES512: return EVP_sha512();
    default: return NULL; /* EdDSA hashes inside the signature scheme */
    }
}

/* JWS carries ECDSA signatures as R || S of the curve's size (RFC 7518 3.4); OpenSSL
 * verifies the DER form. Returns a malloc'd DER signature or NULL. */
static unsigned char *ecdsa_der(jwk_alg alg, const unsigned char *sig, size_t sig_len, int *der_len)
{
    size_t half = alg == JWK_ES256 ? 32 : alg == JWK_ES384 ? 48 : 66;
    unsigned char *der = NULL;
    if (sig_len != 2 * half)
        return NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    *der_len = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (*der_len <= 0) {
        OPENSSL_free(der);
        return NULL;
    }
    return der;
}

bool jwk_verify(const jwk_key *key, jwk_alg alg, const unsigned char *input, size_t input_len,
                const unsigned char *sig, size_t sig_len)
{
    if (!jwk_key_allows(key, alg))
        return false;
    if (key->kty == JWK_KTY_OCT) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        return HMAC(alg_md(alg), key->secret, (int)key->secret_len, input, input_len, mac,
                    &mac_len) &&
               mac_len == sig_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
    }
    unsigned char *der = NULL;
    int der_len = 0;
    if (key->kty == JWK_KTY_EC) {
        der = ecdsa_der(alg, sig, sig_len, &der_len);
        if (!der)
            return false;
        sig = der;
        sig_len = (size_t)der_len;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, alg_md(alg), NULL, key->pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, input, input_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}
