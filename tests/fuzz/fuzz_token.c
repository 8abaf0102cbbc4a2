/* libFuzzer target: bearer tokens through auth_verify. The first input byte picks the
 * configuration (HS256; HS256 with issuer, audience, tenant claim "org" and no leeway;
 * RS256 with a PEM public key file written at start-up; a JWK Set) and one of four modes:
 *
 *   0  the rest is the Authorization header value, as sent;
 *   1  the rest is "header JSON\npayload JSON": the harness encodes both and signs them
 *      with the configured HMAC secret, so mutations reach the claim checks that only
 *      run after a good signature;
 *   2  the same, signed by HMAC with the RS256 public key's PEM text (the algorithm
 *      confusion attack): never accepted under any configuration;
 *   3  "header JSON\npayload JSON\nsignature" with the signature part taken as given
 *      (alg none, empty or junk signatures).
 *
 * With the JWK Set configuration the rest's first line is a JWK Set document, installed
 * with auth_jwks_install (oct keys admitted, as from a file); when it is refused, the
 * default set is installed instead: an oct key "fz" holding the HMAC secret (so modes 1
 * and 3 reach the claims) and the RSA key "rs". The modes then read the rest after it.
 *
 * Whatever auth_verify accepts is checked against the claims by an independent reading
 * of the rules (exp required, nbf, iat, tenant, sub, scope/scp, iss, aud) and, under a
 * JWK Set, of the key rule: the header's kid names a key of the installed document (or
 * the document has one key and the header no kid) whose kty is the alg's family and
 * whose alg, when it has one, is the header's. */
#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/jwks.h"
#include "core/config.h"
#include "core/ids.h"
#include "core/log.h"
#include "fuzz_common.h"

#define NOW 1700000000LL
#define SECRET "fuzz-secret-0123456789abcdef0123456789"
/* The strict configuration has its own secret: auth.c caches verified tokens per
 * thread by their text, and the same text must not be verified under two configs. */
#define SECRET_STRICT "fuzz-strict-secret-0123456789abcdef01234"

/* A 2048-bit RSA public key made for this file; its private half was thrown away after
 * signing the RS256 seed in the corpus. */
static const char public_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvc7OOhmYR1SyREfRDhNr\n"
    "JgKKF+ePYZSUs4SANDrGQ6nSAjImV9g2MAm0NneJ+aVNp9ly6I5G93SVeDbD4NgQ\n"
    "jY5Fv4eut0h2OJeFMXR+1p9xYV6bqzv4dvOf4xswpPsEiZR0qEHOF5rXFEL2LsF+\n"
    "sh1W83j08QEegw6PWLoH+BWDmgBVBmk1C1SYFKg+CwA6/lkHr2QO30PKfAEo7gaV\n"
    "nbeMU2LWcAYxmdMcwZFq42oAAzT8Ue2qZ4G1pq5hlWoyfXR6xpswLqc35EhJcB9q\n"
    "FwNXbAT/LXK+6Sb/YnIw1NvBGNE4K0aoc+KKGHTEKd5W78vGqejgkmJGZYvOfo1b\n"
    "ywIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

/* The default JWK Set: SECRET as the oct key "fz", public_pem's key as "rs". */
static const char default_jwks[] =
    "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"fz\",\"alg\":\"HS256\","
    "\"k\":\"ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk\"},"
    "{\"kty\":\"RSA\",\"kid\":\"rs\",\"e\":\"AQAB\",\"n\":\"vc7OOhmYR1SyREfRDhNrJgKKF-ePYZSUs4SANDrGQ6n"
    "SAjImV9g2MAm0NneJ-aVNp9ly6I5G93SVeDbD4NgQjY5Fv4eut0h2OJeFMXR-1p9xYV6bqzv4dvOf4xswpPsEiZR0"
    "qEHOF5rXFEL2LsF-sh1W83j08QEegw6PWLoH-BWDmgBVBmk1C1SYFKg-CwA6_lkHr2QO30PKfAEo7gaVnbeMU2LWc"
    "AYxmdMcwZFq42oAAzT8Ue2qZ4G1pq5hlWoyfXR6xpswLqc35EhJcB9qFwNXbAT_LXK-6Sb_YnIw1NvBGNE4K0aoc-"
    "KKGHTEKd5W78vGqejgkmJGZYvOfo1byw\"}]}";

enum { CFG_HS, CFG_HS_STRICT, CFG_RS, CFG_JWKS, N_CFG };
static seg_config cfgs[N_CFG];

/* HMAC-SHA256 from the libcrypto that libjwt already loaded, looked up at run time so
 * that the fuzz targets need nothing linked beyond segcore. */
typedef unsigned char *(*hmac_fn)(const void *md, const void *key, int key_len,
                                  const unsigned char *d, size_t n, unsigned char *out,
                                  unsigned int *out_len);
typedef const void *(*md_fn)(void);
static hmac_fn hmac;
static md_fn sha256;
static bool verbose; /* SEGMENTD_FUZZ_VERBOSE=1: say why each input was accepted or refused */

static void load(seg_config *cfg, const char *text)
{
    seg_error err;
    err_clear(&err);
    if (config_load_from_string(cfg, text, &err)) {
        fprintf(stderr, "fuzz_token: config: %s\n", err.detail);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[] = "/tmp/segmentd-fuzz-key-XXXXXX", text[256];
    fuzz_seed_jansson();
    verbose = getenv("SEGMENTD_FUZZ_VERBOSE") != NULL;
    log_set_level(verbose ? LOG_DEBUG : LOG_ERROR); /* a line per JWK Set installed, else */
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, public_pem, sizeof public_pem - 1) != (ssize_t)(sizeof public_pem - 1))
        abort();
    close(fd);
    load(&cfgs[CFG_HS], "SEGMENTD_JWT_SECRET=" SECRET "\n");
    load(&cfgs[CFG_HS_STRICT], "SEGMENTD_JWT_SECRET=" SECRET_STRICT "\n"
                               "SEGMENTD_JWT_ISSUER=https://issuer.example\n"
                               "SEGMENTD_JWT_AUDIENCE=segmentd\n"
                               "SEGMENTD_TENANT_CLAIM=org\n"
                               "SEGMENTD_JWT_LEEWAY=0\n");
    snprintf(text, sizeof text, "SEGMENTD_JWT_ALG=RS256\nSEGMENTD_JWT_PUBLIC_KEY_FILE=%s\n", path);
    load(&cfgs[CFG_RS], text);
    load(&cfgs[CFG_JWKS], "SEGMENTD_JWT_JWKS_FILE=/unused\n");
    unlink(path);
    hmac = (hmac_fn)dlsym(RTLD_DEFAULT, "HMAC");
    sha256 = (md_fn)dlsym(RTLD_DEFAULT, "EVP_sha256");
    if (!hmac || !sha256) {
        fprintf(stderr, "fuzz_token: HMAC/EVP_sha256 not found in the loaded libcrypto\n");
        abort();
    }
    return 0;
}

/* "Bearer " + b64url(header) "." b64url(payload) "." signature; malloc'd. sig_b64 NULL:
 * HMAC-SHA256 with key. */
static char *assemble(const char *header, const char *payload, const char *sig_b64,
                      const void *key, size_t key_len)
{
    size_t hl = strlen(header), pl = strlen(payload);
    size_t cap = 7 + 4 * ((hl + 2) / 3) + 4 * ((pl + 2) / 3) + 2 + 64 + (sig_b64 ? strlen(sig_b64) : 0) + 1;
    char *out = malloc(cap);
    if (!out)
        abort();
    memcpy(out, "Bearer ", 7);
    char *p = out + 7;
    ids_b64url_encode((const unsigned char *)header, hl, p);
    p += strlen(p);
    *p++ = '.';
    ids_b64url_encode((const unsigned char *)payload, pl, p);
    p += strlen(p);
    if (sig_b64) {
        *p++ = '.';
        strcpy(p, sig_b64);
        return out;
    }
    unsigned char mac[64];
    unsigned int mac_len = 0;
    const char *signing_input = out + 7;
    if (!hmac(sha256(), key, (int)key_len, (const unsigned char *)signing_input,
              (size_t)(p - signing_input), mac, &mac_len))
        abort();
    *p++ = '.';
    ids_b64url_encode(mac, mac_len, p);
    return out;
}

static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f)
            return false;
    return true;
}

/* The rules, read again from the claims the token carried (duplicate names: the last
 * wins, as in libjwt's own parse). */
/* Whether the JWK k may verify alg by the rule, read again: its kty is alg's family, its
 * alg (when it has one) alg, its use (when it has one) "sig". */
static bool key_fits(json_t *k, const char *alg)
{
    static const struct {
        const char *prefix, *kty;
    } family[] = {{"HS", "oct"}, {"RS", "RSA"}, {"ES", "EC"}, {"Ed", "OKP"}};
    const char *kty = json_string_value(json_object_get(k, "kty")),
               *kalg = json_string_value(json_object_get(k, "alg"));
    json_t *use = json_object_get(k, "use");
    bool fits = false;
    for (size_t i = 0; i < 4; i++)
        fits = fits || (!strncmp(alg, family[i].prefix, 2) && kty && !strcmp(kty, family[i].kty));
    return fits && (!kalg || !strcmp(kalg, alg)) &&
           (!use || (json_is_string(use) && !strcmp(json_string_value(use), "sig")));
}

/* The JWK Set rule read again: some key of doc with the header's kid (any key, without
 * one) fits alg. */
static void check_key_rule(const char *doc, json_t *h, const char *alg)
{
    json_t *d = json_loads(doc, 0, NULL), *keys = json_object_get(d, "keys"), *k;
    const char *kid = json_string_value(json_object_get(h, "kid"));
    bool found = false;
    size_t i;
    FUZZ_CHECK(json_is_array(keys), "accepted without a set");
    json_array_foreach(keys, i, k) {
        const char *kk = json_string_value(json_object_get(k, "kid"));
        if ((!kid || !*kid || (kk && !strcmp(kid, kk))) && key_fits(k, alg))
            found = true;
    }
    FUZZ_CHECK(found, "accepted alg %s with kid \"%s\", and no key of the set fits", alg,
               kid ? kid : "");
    json_decref(d);
}

static void check_accepted(const seg_config *cfg, const char *jwks_doc, const char *header,
                           const char *payload, const auth_principal *p)
{
    json_error_t je;
    long long leeway = cfg->jwt_leeway_s;
    json_t *h = json_loads(header, 0, &je), *c = json_loads(payload, 0, &je);
    FUZZ_CHECK(json_is_object(h) && json_is_object(c), "accepted unparsable parts");
    const char *alg = json_string_value(json_object_get(h, "alg"));
    if (jwks_doc) {
        static const char *const names[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                            "RS512", "ES256", "ES384", "ES512", "EdDSA"};
        bool known = false;
        for (size_t i = 0; alg && i < sizeof names / sizeof names[0]; i++)
            known = known || !strcmp(alg, names[i]);
        FUZZ_CHECK(known, "accepted alg %s under a JWK Set", alg ? alg : "(none)");
        check_key_rule(jwks_doc, h, alg);
    } else {
        FUZZ_CHECK(alg && !strcasecmp(alg, cfg->jwt_alg), "accepted alg %s under %s",
                   alg ? alg : "(none)", cfg->jwt_alg);
    }
    json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf"),
           *iat = json_object_get(c, "iat"), *tenant = json_object_get(c, cfg->tenant_claim),
           *sub = json_object_get(c, "sub"), *scope = json_object_get(c, "scope"),
           *scp = json_object_get(c, "scp");
    FUZZ_CHECK(json_is_integer(exp) && json_integer_value(exp) > NOW - leeway, "exp");
    FUZZ_CHECK(!nbf || (json_is_integer(nbf) && NOW + leeway >= json_integer_value(nbf)), "nbf");
    FUZZ_CHECK(!iat || (json_is_integer(iat) && json_integer_value(iat) <= NOW + leeway), "iat");
    FUZZ_CHECK(json_is_string(tenant) && printable(json_string_value(tenant), AUTH_TENANT_MAX) &&
                   !strcmp(p->tenant, json_string_value(tenant)),
               "tenant");
    FUZZ_CHECK(!sub || (json_is_string(sub) && strlen(json_string_value(sub)) <= 128 &&
                        !strcmp(p->subject, json_string_value(sub))),
               "sub");
    FUZZ_CHECK(!scope || json_is_string(scope), "scope");
    FUZZ_CHECK(!scp || json_is_array(scp), "scp");
    if (cfg->jwt_issuer) {
        const char *iss = json_string_value(json_object_get(c, "iss"));
        FUZZ_CHECK(iss && !strcmp(iss, cfg->jwt_issuer), "iss");
    }
    if (cfg->jwt_audience) {
        json_t *aud = json_object_get(c, "aud"), *v;
        size_t i;
        bool ok = json_is_string(aud) && !strcmp(json_string_value(aud), cfg->jwt_audience);
        json_array_foreach(aud, i, v) ok = ok || (json_is_string(v) &&
                                                  !strcmp(json_string_value(v), cfg->jwt_audience));
        FUZZ_CHECK(ok, "aud");
    }
    if (p->scopes & AUTH_SCOPE_WRITE) {
        bool named = scope && strstr(json_string_value(scope), "segments:write");
        size_t i;
        json_t *v;
        json_array_foreach(scp, i, v) named = named || (json_is_string(v) &&
                                                        !strcmp(json_string_value(v), "segments:write"));
        FUZZ_CHECK(named, "write scope from nowhere");
    }
    json_decref(h);
    json_decref(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] & 3, which = ((data[0] >> 2) & 3) % N_CFG;
    char *rest = fuzz_cstr(data + 1, size - 1), *all = rest;
    char *authz = NULL, *header = NULL, *payload = NULL, *sig = NULL;
    const char *jwks_doc = NULL;
    auth_principal p;
    seg_error err;
    memset(&p, 0, sizeof p);
    err_clear(&err);

    if (which == CFG_JWKS) {
        char *nl = strchr(rest, '\n');
        if (!nl)
            goto out;
        *nl = '\0';
        jwks_doc = rest;
        rest = nl + 1;
        if (auth_jwks_install(jwks_doc, strlen(jwks_doc), true, &err)) {
            fuzz_check_problem(&err);
            err_clear(&err);
            jwks_doc = default_jwks;
            if (auth_jwks_install(jwks_doc, strlen(jwks_doc), true, &err))
                abort();
        }
    }
    if (mode == 0) {
        authz = strdup(rest);
    } else {
        header = rest;
        payload = strchr(rest, '\n');
        if (!payload)
            goto out;
        *payload++ = '\0';
        if (mode == 3) {
            sig = strchr(payload, '\n');
            if (!sig)
                goto out;
            *sig++ = '\0';
        }
        if (mode == 1 && which == CFG_RS)
            which = CFG_HS;
        if (mode == 2 && which != CFG_JWKS)
            which = CFG_RS;
        if (mode == 2)
            authz = assemble(header, payload, NULL, public_pem, strlen(public_pem));
        else if (which == CFG_HS_STRICT)
            authz = assemble(header, payload, sig, SECRET_STRICT, strlen(SECRET_STRICT));
        else
            authz = assemble(header, payload, sig, SECRET, strlen(SECRET));
    }
    if (!authz)
        abort();
    const seg_config *cfg = &cfgs[which];
    auth_init(cfg);
    int rc = auth_verify(authz, NOW, &p, &err);
    if (verbose)
        fprintf(stderr, "mode %d config %d: %s %s\n", mode, which, rc ? "refused:" : "accepted, tenant",
                rc ? err.log_detail : p.tenant);
    if (rc == 0) {
        FUZZ_CHECK(err.status == 0, "accepted with an error set");
        FUZZ_CHECK(mode != 2 || (jwks_doc && strstr(jwks_doc, "oct")),
                   "accepted an HS256 token signed with the RS256 public key");
        FUZZ_CHECK(p.tenant[0], "accepted without a tenant");
        if (mode != 0)
            check_accepted(cfg, jwks_doc, header, payload, &p);
        (void)auth_require(&p, AUTH_SCOPE_READ, &err);
    } else {
        FUZZ_CHECK(err.status == 401 && err.www_authenticate, "refused with status %d", err.status);
        FUZZ_CHECK(err.log_detail[0], "refused without a log reason");
    }
    fuzz_check_problem(&err);
out:
    free(authz);
    free(all);
    return 0;
}
