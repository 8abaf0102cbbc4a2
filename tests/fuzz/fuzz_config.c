/* libFuzzer target: configuration text ("NAME=value" lines) through
 * config_load_from_string. "@DIR@" in the input stands for a folder filled at start-up
 * (/tmp/segmentd-fuzz-config-UID, kept for the next run: a crashing run cannot clean
 * up after itself) holding pub.pem (an RSA public key), secret.txt (48 bytes), short.txt
 * (8 bytes), nul.bin (a secret with a NUL byte), big.bin (over 64 KiB), empty.txt and
 * dburl.txt, so that the *_FILE settings read real files. Inputs naming /dev, /proc or
 * /sys are skipped: a FIFO or a terminal would block the run, not find a bug.
 *
 * A loaded configuration is checked against the table's bounds and against the rules
 * of the JWT key: an HMAC algorithm never gets a PEM public key as its secret (anyone
 * holding the public key could sign tokens), a public-key algorithm always has one. A
 * refused one must be released and must not quote the secret. */
#include <errno.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "fuzz_common.h"

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

static char dir[64];

/* Written beside and renamed into place, so that parallel workers (-jobs) never read a
 * half-written file. */
static void put(const char *name, const void *data, size_t len)
{
    char path[128], tmp[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) || rename(tmp, path))
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static char big[70000];
    snprintf(dir, sizeof dir, "/tmp/segmentd-fuzz-config-%ld", (long)getuid());
    struct stat st;
    if ((mkdir(dir, 0700) && errno != EEXIST) || lstat(dir, &st) || !S_ISDIR(st.st_mode) ||
        st.st_uid != getuid()) {
        fprintf(stderr, "fuzz_config: %s is not a folder of ours\n", dir);
        abort();
    }
    put("pub.pem", public_pem, sizeof public_pem - 1);
    put("secret.txt", "0123456789abcdef0123456789abcdef0123456789abcdef\n", 49);
    put("short.txt", "01234567", 8);
    put("nul.bin", "0123456789abcdef\0" "0123456789abcdef0123456789", 43);
    memset(big, 'x', sizeof big);
    put("big.bin", big, sizeof big);
    put("empty.txt", "", 0);
    put("dburl.txt", "host=/tmp dbname=segmentd\r\n", 27);
    return 0;
}

/* The value config_load_from_string would see for name: the first line "name=…". */
static const char *line_value(const char *text, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t llen = eol ? (size_t)(eol - p) : strlen(p);
        if (llen > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
            *len = llen - nlen - 1;
            return p + nlen + 1;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

/* The input with every "@DIR@" replaced by the scratch folder; malloc'd. */
static char *expand(const uint8_t *data, size_t size)
{
    char *in = fuzz_cstr(data, size);
    size_t n = 0, dl = strlen(dir);
    for (const char *p = in; (p = strstr(p, "@DIR@")); p += 5)
        n++;
    char *out = malloc(strlen(in) + n * dl + 1), *o = out;
    if (!out)
        abort();
    for (const char *p = in;;) {
        const char *q = strstr(p, "@DIR@");
        size_t k = q ? (size_t)(q - p) : strlen(p);
        memcpy(o, p, k);
        o += k;
        if (!q)
            break;
        memcpy(o, dir, dl);
        o += dl;
        p = q + 5;
    }
    *o = '\0';
    free(in);
    return out;
}

static void check_loaded(const seg_config *c, const char *text)
{
    static const char *const algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                       "RS512", "ES256", "ES384"};
    bool alg_ok = false;
    size_t len;
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        alg_ok = alg_ok || !strcmp(c->jwt_alg, algs[i]);
    FUZZ_CHECK(alg_ok, "jwt_alg \"%s\"", c->jwt_alg);
    FUZZ_CHECK(c->listen_host[0] && c->listen_port >= 0 && c->listen_port <= 65535, "listen");
    FUZZ_CHECK(c->loops >= 1 && c->loops <= c->pool_size, "loops %d of pool %d", c->loops, c->pool_size);
    FUZZ_CHECK(strlen(c->retired_set) < sizeof c->retired_set, "retired_set");
    FUZZ_CHECK(c->pool_size >= 1 && c->pool_size <= 256, "pool_size %d", c->pool_size);
    FUZZ_CHECK(c->pool_wait_ms >= 1 && c->pool_wait_ms <= 60000, "pool_wait_ms");
    FUZZ_CHECK(c->statement_timeout_ms >= 100 && c->statement_timeout_ms <= 600000, "statement_timeout_ms");
    FUZZ_CHECK(c->jwt_leeway_s >= 0 && c->jwt_leeway_s <= 600, "jwt_leeway_s");
    FUZZ_CHECK(c->tenant_claim[0] && strlen(c->tenant_claim) < sizeof c->tenant_claim, "tenant_claim");
    FUZZ_CHECK(c->max_body_bytes >= 1024 && c->max_body_bytes <= (size_t)64 << 20, "max_body_bytes");
    FUZZ_CHECK(c->max_bulk_body_bytes >= 1024 && c->max_bulk_body_bytes <= (size_t)256 << 20,
               "max_bulk_body_bytes");
    FUZZ_CHECK(c->log_level >= LOG_DEBUG && c->log_level <= LOG_ERROR, "log_level");
    FUZZ_CHECK(c->idle_timeout_s >= 1 && c->idle_timeout_s <= 3600, "idle_timeout_s");
    FUZZ_CHECK(c->connection_limit >= 8 && c->connection_limit <= 100000, "connection_limit");
    FUZZ_CHECK(c->per_ip_limit >= 0 && c->per_ip_limit <= 100000, "per_ip_limit");
    FUZZ_CHECK(c->shutdown_grace_s >= 0 && c->shutdown_grace_s <= 600, "shutdown_grace_s");
    if (c->jwt_jwks_file || c->jwt_jwks_url) {
        /* the JWK Set is the only source of keys, with no algorithm of its own */
        FUZZ_CHECK(!c->jwt_key && !(c->jwt_jwks_file && c->jwt_jwks_url), "JWKS beside another key");
        FUZZ_CHECK(!line_value(text, "SEGMENTD_JWT_ALG", &len), "SEGMENTD_JWT_ALG with a JWKS");
        FUZZ_CHECK(!c->jwt_jwks_url || !strncasecmp(c->jwt_jwks_url, "http", 4), "JWKS URL scheme");
        return;
    }
    FUZZ_CHECK(c->jwt_key && c->jwt_key_len > 0, "no JWT key");
    if (c->jwt_alg[0] == 'H') {
        FUZZ_CHECK(c->jwt_key_len >= 32, "HMAC secret of %zu bytes", c->jwt_key_len);
        FUZZ_CHECK(!line_value(text, "SEGMENTD_JWT_PUBLIC_KEY_FILE", &len),
                   "%s loaded with SEGMENTD_JWT_PUBLIC_KEY_FILE set: the key file replaced the "
                   "secret, so the PEM public key is now the HMAC key and anyone holding it can "
                   "sign tokens (%zu key bytes, starts \"%.26s\")",
                   c->jwt_alg, c->jwt_key_len, (const char *)c->jwt_key);
    } else {
        FUZZ_CHECK(strstr((const char *)c->jwt_key, "-----BEGIN PUBLIC KEY-----"),
                   "%s without a PEM public key", c->jwt_alg);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seg_config cfg;
    seg_error err;
    size_t len;
    char *text = expand(data, size);
    if (strstr(text, "/dev") || strstr(text, "/proc") || strstr(text, "/sys"))
        goto out;
    err_clear(&err);
    memset(&cfg, 0xA5, sizeof cfg); /* config_load must not read what was there */
    if (config_load_from_string(&cfg, text, &err) == 0) {
        check_loaded(&cfg, text);
        config_free(&cfg);
    } else {
        FUZZ_CHECK(err.detail[0], "refused without a reason");
        FUZZ_CHECK(!cfg.jwt_key && !cfg.database_url && !cfg.migrations_dir && !cfg.jwt_jwks_file &&
                       !cfg.jwt_jwks_url,
                   "refused but not released");
        const char *secret = line_value(text, "SEGMENTD_JWT_SECRET", &len);
        /* values are quoted in messages: look for "secret", unless the same text is also
         * the value of another setting, which may be quoted rightly */
        char *once = secret ? strndup(secret, len) : NULL;
        bool elsewhere = once && strstr(strstr(text, once) + 1, once);
        free(once);
        if (secret && len >= 4 && !elsewhere) {
            char *s = malloc(len + 3);
            if (!s)
                abort();
            s[0] = '"';
            memcpy(s + 1, secret, len);
            s[len + 1] = '"';
            s[len + 2] = '\0';
            FUZZ_CHECK(!strstr(err.detail, s), "the error quotes the secret: %s", err.detail);
            free(s);
        }
    }
out:
    free(text);
    return 0;
}
