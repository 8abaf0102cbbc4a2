/* JWT bearer authentication. With one configured key, libjwt 1.10 verifies the signature
 * only; it trusts the token's own "alg" and reads mistyped claims as 0, so everything else
 * happens here (the alg check, the algorithm confusion, the key types). With a JWK Set,
 * the token's kid picks the key, the key decides which alg it verifies (auth/jwk.c), and
 * the signature is checked with the key OpenSSL parsed once. The claims' checks are the
 * same for both. */
#include "auth/auth.h"

#include "auth/jwk.h"
#include "auth/jwks_private.h"
#include "core/ids.h"

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const seg_config *acfg;
static jwt_alg_t pinned_alg;
static bool use_jwks; /* SEGMENTD_JWT_JWKS_FILE or _URL: keys from auth/jwks.c */

static const char *const www_missing = "Bearer realm=\"segmentd\"";
static const char *const www_invalid = "Bearer realm=\"segmentd\", error=\"invalid_token\"";

/* The scopes a token may grant: their names, bits, and the challenge naming each. */
static const struct scope_def {
    const char *name;
    unsigned bit;
    const char *www;
} scope_defs[] = {
    {"segments:read", AUTH_SCOPE_READ,
     "Bearer realm=\"segmentd\", error=\"insufficient_scope\", scope=\"segments:read\""},
    {"segments:write", AUTH_SCOPE_WRITE,
     "Bearer realm=\"segmentd\", error=\"insufficient_scope\", scope=\"segments:write\""},
    {"devices:read", AUTH_SCOPE_DEVICES_READ,
     "Bearer realm=\"segmentd\", error=\"insufficient_scope\", scope=\"devices:read\""},
    {"devices:write", AUTH_SCOPE_DEVICES_WRITE,
     "Bearer realm=\"segmentd\", error=\"insufficient_scope\", scope=\"devices:write\""},
    {"webhooks:write", AUTH_SCOPE_WEBHOOKS,
     "Bearer realm=\"segmentd\", error=\"insufficient_scope\", scope=\"webhooks:write\""},
};
#define N_SCOPES (sizeof scope_defs / sizeof scope_defs[0])

/* The bit of the scope named by the n bytes at name, or 0 for a scope segmentd does not
 * know (ignored, as other services' scopes in a shared token are). */
static unsigned scope_bit(const char *name, size_t n)
{
    for (size_t i = 0; i < N_SCOPES; i++)
        if (strlen(scope_defs[i].name) == n && !strncmp(name, scope_defs[i].name, n))
            return scope_defs[i].bit;
    return 0;
}

void auth_init(const seg_config *cfg)
{
    acfg = cfg;
    pinned_alg = jwt_str_alg(cfg->jwt_alg);
    use_jwks = cfg->jwt_jwks_file || cfg->jwt_jwks_url;
}

static int invalid(seg_error *err, const char *why)
{
    err_set(err, 401, "invalid_token", "the access token is malformed, badly signed or expired");
    err->www_authenticate = www_invalid;
    err_log(err, "token refused: %s", why);
    return -1;
}

static bool token_charset_ok(const char *t, size_t len)
{
    int dots = 0;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (c == '.')
            dots++;
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_'))
            return false;
    }
    return dots == 2;
}

static bool printable_id(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f)
            return false;
    return true;
}

static bool aud_matches(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return !strcmp(json_string_value(aud), want);
    if (json_is_array(aud)) {
        size_t i;
        json_t *v;
        json_array_foreach(aud, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), want))
            return true;
    }
    return false;
}

static unsigned scopes_from(json_t *scope, json_t *scp, bool *ok)
{
    unsigned s = 0;
    *ok = true;
    if (scope) {
        if (!json_is_string(scope)) {
            *ok = false;
            return 0;
        }
        const char *p = json_string_value(scope);
        while (*p) {
            size_t n = strcspn(p, " ");
            s |= scope_bit(p, n);
            p += n;
            while (*p == ' ')
                p++;
        }
    }
    if (scp) {
        size_t i;
        json_t *v;
        if (!json_is_array(scp)) {
            *ok = false;
            return 0;
        }
        json_array_foreach(scp, i, v) {
            if (json_is_string(v))
                s |= scope_bit(json_string_value(v), json_string_length(v));
        }
    }
    return s;
}

/* Verified tokens, per thread: a hit skips the signature check and the claims parse
 * (libjwt re-parses a PEM key on every RS/ES verification: ~0.5 ms, notes §2.5). The
 * whole token is compared, and the time claims are re-checked on every use. */
#define CACHE_SLOTS 8

typedef struct cached_token {
    char *token;
    size_t len;
    uint64_t hash;
    long long exp, nbf;
    uint64_t generation; /* of the JWK Set that verified it: a newer set verifies again */
    auth_principal p;
} cached_token;

typedef struct token_cache {
    cached_token slot[CACHE_SLOTS];
    unsigned next;
} token_cache;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *v)
{
    token_cache *c = v;
    for (int i = 0; i < CACHE_SLOTS; i++)
        free(c->slot[i].token);
    free(c);
}

static void cache_key_init(void)
{
    if (pthread_key_create(&cache_key, cache_free))
        abort(); /* only fails when the process is out of keys at start-up: a bug */
}

static token_cache *thread_cache(void)
{
    pthread_once(&cache_once, cache_key_init);
    token_cache *c = pthread_getspecific(cache_key);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (c && pthread_setspecific(cache_key, c)) {
            free(c);
            c = NULL;
        }
    }
    return c;
}

/* The cache key: FNV-1a over the length and the last 32 characters, the signature's
 * (random to anyone without the key; every token of one issuer shares its first part).
 * A hit is then confirmed by comparing the whole token. */
static uint64_t token_hash(const char *s, size_t len)
{
    uint64_t h = (1469598103934665603ull ^ len) * 1099511628211ull;
    for (size_t i = len > 32 ? len - 32 : 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int verify_token(const char *token, long long now_s, auth_principal *p, long long *exp_out,
                        long long *nbf_out, seg_error *err);

int auth_verify(const char *authorization, long long now_s, auth_principal *p, seg_error *err)
{
    const char *token;
    size_t len;
    long long leeway = acfg->jwt_leeway_s, exp = 0, nbf = 0;

    if (!authorization || !*authorization) {
        err_set(err, 401, "unauthorized", "a bearer token is required");
        err->www_authenticate = www_missing;
        err_log(err, "no Authorization header");
        return -1;
    }
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return invalid(err, "Authorization scheme is not Bearer");
    token = authorization + 7;
    while (*token == ' ')
        token++;
    len = strlen(token);
    if (len > AUTH_MAX_TOKEN)
        return invalid(err, "token longer than 4096 bytes");

    /* a cached token passed every check below when it was cached: an identical one
     * needs only its time claims checked again */
    token_cache *c = thread_cache();
    uint64_t h = token_hash(token, len), generation = use_jwks ? jwks_generation() : 0;
    for (int i = 0; c && i < CACHE_SLOTS; i++) {
        cached_token *e = &c->slot[i];
        if (e->token && e->hash == h && e->len == len && !memcmp(e->token, token, len) &&
            e->generation == generation) {
            if (e->exp <= now_s - leeway) /* not exp + leeway: exp may be near LLONG_MAX */
                return invalid(err, "token expired");
            if (now_s + leeway < e->nbf)
                return invalid(err, "token not yet valid (nbf)");
            *p = e->p;
            return 0;
        }
    }
    if (!token_charset_ok(token, len))
        return invalid(err, "token is not three base64url parts");
    if (verify_token(token, now_s, p, &exp, &nbf, err))
        return -1;
    if (c) {
        cached_token *e = &c->slot[c->next++ % CACHE_SLOTS];
        char *copy = malloc(len + 1);
        if (copy) {
            memcpy(copy, token, len + 1);
            free(e->token);
            *e = (cached_token){copy, len, h, exp, nbf, generation, *p};
        }
    }
    return 0;
}

/* The claims (parsed JSON, maybe not an object) of a token verified by libjwt with the one
 * configured key, or NULL with err set. */
static json_t *single_key_claims(const char *token, seg_error *err)
{
    jwt_t *jwt = NULL;
    char *grants = NULL;
    json_t *claims = NULL;
    json_error_t je;

    if (jwt_decode(&jwt, token, acfg->jwt_key, (int)acfg->jwt_key_len) != 0 || !jwt) {
        invalid(err, "signature or format check failed");
        return NULL;
    }
    if (jwt_get_alg(jwt) != pinned_alg) {
        invalid(err, "token algorithm differs from the configured one");
        goto done;
    }
    grants = jwt_get_grants_json(jwt, NULL);
    claims = grants ? json_loads(grants, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!claims)
        invalid(err, "claims are not JSON");
done:
    free(grants);
    jwt_free(jwt);
    return claims;
}

/* One base64url part of a token (n bytes at s) decoded into out (cap bytes); its length,
 * or -1. */
static int b64_part(const char *s, size_t n, unsigned char *out, size_t cap)
{
    char part[AUTH_MAX_TOKEN + 1];
    if (n > AUTH_MAX_TOKEN)
        return -1;
    memcpy(part, s, n);
    part[n] = '\0';
    return ids_b64url_decode(part, out, cap);
}

/* Whether a JOSE header's typ is one a JWT access token has (RFC 7519 5.1, RFC 9068 2.1;
 * media types compare case-insensitively). */
static bool typ_ok(json_t *typ)
{
    const char *t = json_string_value(typ);
    return !typ || (t && (!strcasecmp(t, "JWT") || !strcasecmp(t, "at+jwt") ||
                          !strcasecmp(t, "application/at+jwt")));
}

/* The claims (parsed JSON, maybe not an object) of a token whose kid names a key of the JWK Set that both allows the
 * token's alg and verifies its signature; or NULL with err set. An unknown kid asks for a
 * refresh of the set but does not wait for it. */
static json_t *jwks_claims(const char *token, size_t len, seg_error *err)
{
    unsigned char buf[AUTH_MAX_TOKEN];
    json_t *header = NULL, *claims = NULL;
    const jwk_set *set = NULL;
    json_error_t je;
    const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    int n;

    if (!dot2) {
        invalid(err, "token is not three base64url parts");
        return NULL;
    }
    n = b64_part(token, (size_t)(dot1 - token), buf, sizeof buf);
    header = n < 0 ? NULL : json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(header)) {
        invalid(err, "header is not a JSON object");
        goto done;
    }
    json_t *alg_j = json_object_get(header, "alg"), *kid_j = json_object_get(header, "kid");
    jwk_alg alg = jwk_alg_from_name(json_string_value(alg_j));
    if (alg == JWK_ALG_UNKNOWN) {
        invalid(err, "alg missing or not one segmentd verifies");
        goto done;
    }
    if (json_object_get(header, "crit")) { /* RFC 7515 4.1.11: no extension is understood */
        invalid(err, "crit header names extensions segmentd does not implement");
        goto done;
    }
    if (!typ_ok(json_object_get(header, "typ"))) {
        invalid(err, "typ is not JWT or at+jwt");
        goto done;
    }
    if (kid_j && (!json_is_string(kid_j) || json_string_length(kid_j) > JWK_KID_MAX)) {
        invalid(err, "kid is not a string of at most 128 bytes");
        goto done;
    }
    const char *kid = json_string_value(kid_j);
    set = jwks_acquire();
    const jwk_key *key = set ? jwk_set_find(set, kid) : NULL;
    if (!key) {
        if (set && kid && *kid)
            jwks_unknown_kid();
        invalid(err, kid && *kid ? "kid not in the JWK Set" : "no kid, and the JWK Set has more than one key");
        goto done;
    }
    if (!jwk_key_allows(key, alg)) {
        invalid(err, "the key of this kid does not verify the token's alg (kty, crv or alg differ)");
        goto done;
    }
    n = b64_part(dot2 + 1, len - (size_t)(dot2 + 1 - token), buf, sizeof buf);
    if (n < 0 || !jwk_verify(key, alg, (const unsigned char *)token, (size_t)(dot2 - token), buf,
                             (size_t)n)) {
        invalid(err, "signature check failed");
        goto done;
    }
    n = b64_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), buf, sizeof buf);
    claims = n < 0 ? NULL : json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!claims)
        invalid(err, "claims are not JSON (or repeat a name)");
done:
    jwks_release(set);
    json_decref(header);
    return claims;
}

static int verify_token(const char *token, long long now_s, auth_principal *p, long long *exp_out,
                        long long *nbf_out, seg_error *err)
{
    int rc = -1;
    long long leeway = acfg->jwt_leeway_s;
    json_t *claims = use_jwks ? jwks_claims(token, strlen(token), err) : single_key_claims(token, err);
    if (!claims)
        return -1;
    if (!json_is_object(claims)) {
        invalid(err, "claims are not a JSON object");
        goto done;
    }
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf"),
           *iat = json_object_get(claims, "iat"), *tenant = json_object_get(claims, acfg->tenant_claim),
           *sub = json_object_get(claims, "sub");
    if (!json_is_integer(exp)) {
        invalid(err, exp ? "exp is not an integer" : "exp is missing");
        goto done;
    }
    if (json_integer_value(exp) <= now_s - leeway) { /* exp + leeway can overflow */
        invalid(err, "token expired");
        goto done;
    }
    if (nbf && (!json_is_integer(nbf) || now_s + leeway < json_integer_value(nbf))) {
        invalid(err, json_is_integer(nbf) ? "token not yet valid (nbf)" : "nbf is not an integer");
        goto done;
    }
    if (iat && (!json_is_integer(iat) || json_integer_value(iat) > now_s + leeway)) {
        invalid(err, json_is_integer(iat) ? "iat is in the future" : "iat is not an integer");
        goto done;
    }
    if (acfg->jwt_issuer) {
        json_t *iss = json_object_get(claims, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), acfg->jwt_issuer)) {
            invalid(err, "iss does not match");
            goto done;
        }
    }
    if (acfg->jwt_audience && !aud_matches(json_object_get(claims, "aud"), acfg->jwt_audience)) {
        invalid(err, "aud does not contain the configured audience");
        goto done;
    }
    if (!json_is_string(tenant) || !printable_id(json_string_value(tenant), AUTH_TENANT_MAX)) {
        invalid(err, "tenant claim missing, not a string, empty, too long or not printable");
        goto done;
    }
    if (sub && (!json_is_string(sub) || strlen(json_string_value(sub)) > 128)) {
        invalid(err, "sub is not a string of at most 128 bytes");
        goto done;
    }
    bool scopes_ok;
    p->scopes = scopes_from(json_object_get(claims, "scope"), json_object_get(claims, "scp"),
                            &scopes_ok);
    if (!scopes_ok) {
        invalid(err, "scope is not a string or scp not an array");
        goto done;
    }
    *exp_out = json_integer_value(exp);
    *nbf_out = nbf ? json_integer_value(nbf) : LLONG_MIN / 2;
    snprintf(p->tenant, sizeof p->tenant, "%s", json_string_value(tenant));
    snprintf(p->subject, sizeof p->subject, "%s", sub ? json_string_value(sub) : "");
    rc = 0;
done:
    json_decref(claims);
    return rc;
}

int auth_require(const auth_principal *p, unsigned scope, seg_error *err)
{
    if ((p->scopes & scope) == scope)
        return 0;
    const struct scope_def *missing = &scope_defs[0];
    for (size_t i = 0; i < N_SCOPES; i++)
        if ((scope & scope_defs[i].bit) && !(p->scopes & scope_defs[i].bit)) {
            missing = &scope_defs[i];
            break;
        }
    err_set(err, 403, "insufficient_scope", "the access token lacks the scope %s", missing->name);
    err->www_authenticate = missing->www;
    err_log(err, "scope %s missing", missing->name);
    return -1;
}

char *auth_mint(const char *tenant, const char *subject, const char *scope, long long ttl_s,
                long long now_s, seg_error *err)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    if (use_jwks || acfg->jwt_alg[0] != 'H') {
        err_startup(err, "config", use_jwks ? "token minting needs SEGMENTD_JWT_SECRET, not a JWK Set"
                                            : "token minting needs an HMAC algorithm (SEGMENTD_JWT_ALG=HS*)");
        return NULL;
    }
    if (jwt_new(&jwt) || jwt_add_grant(jwt, "sub", subject) ||
        jwt_add_grant(jwt, acfg->tenant_claim, tenant) || jwt_add_grant(jwt, "scope", scope) ||
        jwt_add_grant_int(jwt, "iat", (long)now_s) || jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s)) ||
        (acfg->jwt_issuer && jwt_add_grant(jwt, "iss", acfg->jwt_issuer)) ||
        (acfg->jwt_audience && jwt_add_grant(jwt, "aud", acfg->jwt_audience)) ||
        jwt_set_alg(jwt, pinned_alg, acfg->jwt_key, (int)acfg->jwt_key_len)) {
        err_startup(err, "token", "cannot build the token");
        goto done;
    }
    out = jwt_encode_str(jwt);
    if (!out)
        err_startup(err, "token", "cannot sign the token");
done:
    jwt_free(jwt);
    return out;
}
