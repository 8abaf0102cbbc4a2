/* JSON Web Keys (RFC 7517) read into OpenSSL keys, the rule that says which algorithms a
 * key may verify, and JWS signature checks with those keys (private to src/auth). */
#ifndef SEGMENTD_AUTH_JWK_H
#define SEGMENTD_AUTH_JWK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "core/error.h"

#define JWKS_MAX_BYTES (1024 * 1024) /* a JWK Set document, from a file or the URL */
#define JWKS_MAX_KEYS 100            /* keys in one set; a larger set is refused whole */
#define JWK_KID_MAX 128              /* bytes of a kid, in a key or in a token's header */
#define JWK_RSA_MIN_BITS 2048        /* smaller RSA keys are skipped (NIST SP 800-131A) */
#define JWK_HMAC_MIN_BYTES 32        /* as SEGMENTD_JWT_SECRET: RFC 7518 3.2 */

/* The algorithms of JWS signatures that segmentd verifies ("none" is none of them). */
typedef enum jwk_alg {
    JWK_ALG_UNKNOWN = 0,
    JWK_HS256, JWK_HS384, JWK_HS512,
    JWK_RS256, JWK_RS384, JWK_RS512,
    JWK_ES256, JWK_ES384, JWK_ES512,
    JWK_EDDSA,
    JWK_N_ALGS
} jwk_alg;
#define JWK_BIT(a) (1u << (a))

typedef enum jwk_kty { JWK_KTY_RSA = 1, JWK_KTY_EC, JWK_KTY_OKP, JWK_KTY_OCT } jwk_kty;

typedef struct jwk_key {
    char kid[JWK_KID_MAX + 1];   /* "" when the key has none */
    jwk_kty kty;
    unsigned algs;               /* JWK_BIT()s of the algorithms it may verify */
    EVP_PKEY *pkey;              /* RSA, EC, OKP */
    unsigned char *secret;       /* oct */
    size_t secret_len;
} jwk_key;

typedef struct jwk_set {
    jwk_key *keys;
    size_t n;
    size_t skipped;              /* keys of the document that cannot verify signatures */
    char skipped_why[200];       /* the first of them and why, for the log */
    unsigned refs;               /* readers of an installed set (jwks.c, atomic) */
} jwk_set;

/* The algorithm named exactly (case-sensitive, RFC 7515 4.1.1), or JWK_ALG_UNKNOWN. */
jwk_alg jwk_alg_from_name(const char *name);
const char *jwk_alg_name(jwk_alg alg);

/* Reads one JWK into out (released with jwk_key_clear). Returns 0, or -1 with why filled:
 * a key that verifies no signature segmentd accepts (unknown kty/crv/alg, use other than
 * "sig", key_ops without "verify", private members, an alg its kty cannot have, a short
 * RSA or HMAC key, symmetric keys unless allow_secret). */
int jwk_key_read(json_t *jwk, bool allow_secret, jwk_key *out, char *why, size_t why_len);
void jwk_key_clear(jwk_key *k);

/* Whether key may verify a token signed with alg: its kty must be alg's family, its
 * curve alg's curve, and its alg (when it names one) alg itself. RSA, EC and OKP keys
 * never verify HMAC tokens, and oct keys nothing else. */
bool jwk_key_allows(const jwk_key *key, jwk_alg alg);

/* Parses a JWK Set document {"keys": [...]}: the set of the keys that can verify, or
 * NULL with err set (not JSON, duplicate names, no "keys" array, more than JWKS_MAX_KEYS
 * keys, larger than JWKS_MAX_BYTES, no usable key). A later key repeating a kid is skipped.
 * Release with jwk_set_free. */
jwk_set *jwk_set_parse(const char *doc, size_t len, bool allow_secret, seg_error *err);
void jwk_set_free(jwk_set *set);

/* The key of kid; with kid NULL or "" only the set's single key (when it has one). */
const jwk_key *jwk_set_find(const jwk_set *set, const char *kid);

/* Checks a JWS signature over the signing input (header.payload) with key and alg, which
 * must be one key allows. Returns true only for a good signature. */
bool jwk_verify(const jwk_key *key, jwk_alg alg, const unsigned char *input, size_t input_len,
                const unsigned char *sig, size_t sig_len);

#endif
