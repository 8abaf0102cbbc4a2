/* segmentd's settings loaded from the environment (or a string, for tests and fuzzing), checked
 * and printed for --help; each is declared once, in config_settings.inc. */
#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { CF_INT, CF_SIZE, CF_STR, CF_BOOL, CF_LISTEN, CF_LEVEL, CF_ALG } cf_type;

typedef struct cf_entry {
    const char *name;
    cf_type type;
    const char *def;       /* NULL: unset by default */
    long long min, max;    /* for numbers */
    const char *help;
} cf_entry;

#include "config_settings.inc"

#define CF_COUNT (sizeof cf_table / sizeof cf_table[0])

static const char *const config_retired[] = {"SEGMENTD_HTTP_MODE", "SEGMENTD_THREADS",
                                             "SEGMENTD_DB_PIPELINE"};

/* Reads a whole small file (secrets, keys); strips one trailing newline. */
static char *read_small_file(const char *path, size_t *len_out, const char *setting,
                             seg_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 65536, len;
    if (!f) {
        err_startup(err, "config", "%s: cannot read \"%s\": %s", setting, path, strerror(errno));
        return NULL;
    }
    buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        err_startup(err, "config", "%s: out of memory", setting);
        return NULL;
    }
    len = fread(buf, 1, cap, f);
    if (!feof(f)) {
        err_startup(err, "config", "%s: \"%s\" is larger than 64 KiB", setting, path);
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

static int parse_int(const cf_entry *e, const char *v, long long *out, seg_error *err)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end != '\0') {
        err_startup(err, "config", "%s: \"%s\" is not an integer", e->name, v);
        return -1;
    }
    if (n < e->min || n > e->max) {
        err_startup(err, "config", "%s: %lld is out of range: expected %lld to %lld", e->name, n,
                e->min, e->max);
        return -1;
    }
    *out = n;
    return 0;
}

static const char *const algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                   "RS512", "ES256", "ES384"};

static int apply(seg_config *cfg, const cf_entry *e, const char *v, seg_error *err)
{
    long long n = 0;
    bool b = false;
    switch (e->type) {
    case CF_INT:
    case CF_SIZE:
        if (parse_int(e, v, &n, err))
            return -1;
        break;
    case CF_BOOL:
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
            b = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no"))
            b = false;
        else {
            err_startup(err, "config", "%s: \"%s\" is not a boolean: expected 1/0, true/false",
                    e->name, v);
            return -1;
        }
        break;
    default:
        break;
    }
    const char *name = e->name + strlen("SEGMENTD_");
    if (!strcmp(name, "LISTEN")) {
        const char *colon = strrchr(v, ':');
        char *end;
        long port;
        if (!colon || colon == v || (size_t)(colon - v) >= sizeof cfg->listen_host) {
            err_startup(err, "config", "%s: \"%s\" is not host:port", e->name, v);
            return -1;
        }
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || port < 0 || port > 65535) {
            err_startup(err, "config", "%s: port in \"%s\" is not 0 to 65535", e->name, v);
            return -1;
        }
        memcpy(cfg->listen_host, v, (size_t)(colon - v));
        cfg->listen_host[colon - v] = '\0';
        cfg->listen_port = (int)port;
    } else if (!strcmp(name, "DATABASE_URL")) {
        free(cfg->database_url);
        cfg->database_url = strdup(v);
    } else if (!strcmp(name, "DATABASE_READ_URL")) {
        free(cfg->read_url);
        cfg->read_url = strdup(v);
    } else if (!strcmp(name, "READ_REPLICA_LISTS")) {
        cfg->read_replica_lists = b;
    } else if (!strcmp(name, "READ_MAX_LAG_MS")) {
        cfg->read_max_lag_ms = (int)n;
    } else if (!strcmp(name, "LOOPS")) {
        cfg->loops = (int)n;
    } else if (!strcmp(name, "POOL_SIZE")) {
        cfg->pool_size = (int)n;
    } else if (!strcmp(name, "POOL_WAIT_MS")) {
        cfg->pool_wait_ms = (int)n;
    } else if (!strcmp(name, "STATEMENT_TIMEOUT_MS")) {
        cfg->statement_timeout_ms = (int)n;
    } else if (!strcmp(name, "JWT_ALG")) {
        size_t i;
        for (i = 0; i < sizeof algs / sizeof algs[0]; i++)
            if (!strcmp(v, algs[i]))
                break;
        if (i == sizeof algs / sizeof algs[0]) {
            err_startup(err, "config",
                    "%s: \"%s\" is not supported: expected HS256, HS384, HS512, RS256, RS384, "
                    "RS512, ES256 or ES384", e->name, v);
            return -1;
        }
        snprintf(cfg->jwt_alg, sizeof cfg->jwt_alg, "%s", v);
    } else if (!strcmp(name, "JWT_SECRET")) {
        free(cfg->jwt_key);
        cfg->jwt_key = (unsigned char *)strdup(v);
        cfg->jwt_key_len = strlen(v);
    } else if (!strcmp(name, "JWT_PUBLIC_KEY_FILE")) {
        size_t len = 0;
        char *pem = read_small_file(v, &len, e->name, err);
        if (!pem)
            return -1;
        free(cfg->jwt_key);
        cfg->jwt_key = (unsigned char *)pem;
        cfg->jwt_key_len = len;
    } else if (!strcmp(name, "JWT_JWKS_FILE")) {
        free(cfg->jwt_jwks_file);
        cfg->jwt_jwks_file = strdup(v);
    } else if (!strcmp(name, "JWT_JWKS_URL")) {
        if (strncasecmp(v, "https://", 8) && strncasecmp(v, "http://", 7)) {
            err_startup(err, "config", "%s: expected an http:// or https:// URL", e->name);
            return -1;
        }
        if (strlen(v) > 2048) {
            err_startup(err, "config", "%s: longer than 2048 characters", e->name);
            return -1;
        }
        free(cfg->jwt_jwks_url);
        cfg->jwt_jwks_url = strdup(v);
    } else if (!strcmp(name, "JWT_JWKS_MIN_REFRESH_S")) {
        cfg->jwt_jwks_min_refresh_s = (int)n;
    } else if (!strcmp(name, "JWT_JWKS_TIMEOUT_MS")) {
        cfg->jwt_jwks_timeout_ms = (int)n;
    } else if (!strcmp(name, "JWT_ISSUER")) {
        free(cfg->jwt_issuer);
        cfg->jwt_issuer = strdup(v);
    } else if (!strcmp(name, "JWT_AUDIENCE")) {
        free(cfg->jwt_audience);
        cfg->jwt_audience = strdup(v);
    } else if (!strcmp(name, "JWT_LEEWAY")) {
        cfg->jwt_leeway_s = (int)n;
    } else if (!strcmp(name, "TENANT_CLAIM")) {
        if (!*v || strlen(v) >= sizeof cfg->tenant_claim) {
            err_startup(err, "config", "%s: expected 1 to 63 characters", e->name);
            return -1;
        }
        snprintf(cfg->tenant_claim, sizeof cfg->tenant_claim, "%s", v);
    } else if (!strcmp(name, "MAX_BODY_BYTES")) {
        cfg->max_body_bytes = (size_t)n;
    } else if (!strcmp(name, "MAX_BULK_BODY_BYTES")) {
        cfg->max_bulk_body_bytes = (size_t)n;
    } else if (!strcmp(name, "MAX_IMPORT_BYTES")) {
        cfg->max_import_bytes = (size_t)n;
    } else if (!strcmp(name, "IMPORTS_MAX")) {
        cfg->imports_max = (int)n;
    } else if (!strcmp(name, "IMPORT_RETENTION_DAYS")) {
        cfg->import_retention_days = (int)n;
    } else if (!strcmp(name, "EVAL_TIMEOUT_MS")) {
        cfg->eval_timeout_ms = (int)n;
    } else if (!strcmp(name, "SIZE_REFRESH_S")) {
        cfg->size_refresh_s = (int)n;
    } else if (!strcmp(name, "EVAL_CONCURRENCY")) {
        cfg->eval_concurrency = (int)n;
    } else if (!strcmp(name, "LOG_LEVEL")) {
        static const char *const lv[] = {"debug", "info", "warn", "error"};
        int i;
        for (i = 0; i < 4; i++)
            if (!strcmp(v, lv[i]))
                break;
        if (i == 4) {
            err_startup(err, "config", "%s: \"%s\" is not one of debug, info, warn, error",
                    e->name, v);
            return -1;
        }
        cfg->log_level = (log_level)i;
    } else if (!strcmp(name, "AUTO_MIGRATE")) {
        cfg->auto_migrate = b;
    } else if (!strcmp(name, "MIGRATIONS_DIR")) {
        free(cfg->migrations_dir);
        cfg->migrations_dir = strdup(v);
    } else if (!strcmp(name, "IDLE_TIMEOUT")) {
        cfg->idle_timeout_s = (int)n;
    } else if (!strcmp(name, "CONNECTION_LIMIT")) {
        cfg->connection_limit = (int)n;
    } else if (!strcmp(name, "PER_IP_LIMIT")) {
        cfg->per_ip_limit = (int)n;
    } else if (!strcmp(name, "SHUTDOWN_GRACE")) {
        cfg->shutdown_grace_s = (int)n;
    } else if (!strcmp(name, "LIFECYCLE_SWEEP_S")) {
        cfg->lifecycle_sweep_s = (int)n;
    } else if (!strcmp(name, "HISTORY_DAYS")) {
        cfg->history_days = (int)n;
    } else if (!strcmp(name, "IDEMPOTENCY_HOURS")) {
        cfg->idempotency_hours = (int)n;
    } else if (!strcmp(name, "WEBHOOK_ALLOW_PRIVATE")) {
        cfg->webhook_allow_private = b;
    } else if (!strcmp(name, "WEBHOOK_CONCURRENCY")) {
        cfg->webhook_concurrency = (int)n;
    } else if (!strcmp(name, "WEBHOOK_PER_SUBSCRIPTION")) {
        cfg->webhook_per_subscription = (int)n;
    } else if (!strcmp(name, "WEBHOOK_CONNECT_TIMEOUT_MS")) {
        cfg->webhook_connect_timeout_ms = (int)n;
    } else if (!strcmp(name, "WEBHOOK_TIMEOUT_MS")) {
        cfg->webhook_timeout_ms = (int)n;
    } else if (!strcmp(name, "WEBHOOK_RETRY_BASE_MS")) {
        cfg->webhook_retry_base_ms = (int)n;
    } else if (!strcmp(name, "WEBHOOK_RETRY_WINDOW_S")) {
        cfg->webhook_retry_window_s = (int)n;
    } else if (!strcmp(name, "WEBHOOK_POLL_MS")) {
        cfg->webhook_poll_ms = (int)n;
    } else if (!strncmp(name, "RATE_LIMIT_", 11)) {
        static const char *const cls[] = {"READ", "WRITE", "EVAL"};
        for (int c = 0; c < 3; c++) {
            size_t k = strlen(cls[c]);
            if (strncmp(name + 11, cls[c], k) == 0 && name[11 + k] == '\0')
                cfg->rate_limit[c] = (int)n;
            else if (strncmp(name + 11, cls[c], k) == 0 && strcmp(name + 11 + k, "_BURST") == 0)
                cfg->rate_burst[c] = (int)n;
        }
    }
    return 0;
}

/* Resolves NAME, or NAME_FILE for the settings that may hold secrets. */
static int lookup_value(const cf_entry *e, config_lookup_fn lookup, void *cls, char **owned,
                        const char **out, seg_error *err)
{
    char file_name[80];
    const char *v;
    *owned = NULL;
    snprintf(file_name, sizeof file_name, "%s_FILE", e->name);
    if (!strcmp(e->name, "SEGMENTD_DATABASE_URL") || !strcmp(e->name, "SEGMENTD_DATABASE_READ_URL") ||
        !strcmp(e->name, "SEGMENTD_JWT_SECRET")) {
        const char *p = lookup(file_name, cls);
        if (p) {
            size_t len;
            char *path = strdup(p);
            if (!path || lookup(e->name, cls)) {
                free(path);
                err_startup(err, "config", "%s and %s are both set: set only one", e->name,
                        file_name);
                return -1;
            }
            *owned = read_small_file(path, &len, file_name, err);
            free(path);
            if (!*owned)
                return -1;
            if (strlen(*owned) != len) {
                free(*owned);
                *owned = NULL;
                err_startup(err, "config", "%s: the file contains a NUL byte", file_name);
                return -1;
            }
            *out = *owned;
            return 0;
        }
    }
    v = lookup(e->name, cls);
    *out = v ? v : e->def;
    return 0;
}

/* One source of keys: a JWK Set (file or URL) replaces the single key and its algorithm,
 * so none of those may be set beside it. */
static int check_key_source(const seg_config *cfg, config_lookup_fn lookup, void *cls,
                            seg_error *err)
{
    static const char *const single[] = {"SEGMENTD_JWT_SECRET", "SEGMENTD_JWT_SECRET_FILE",
                                         "SEGMENTD_JWT_PUBLIC_KEY_FILE", "SEGMENTD_JWT_ALG"};
    const char *jwks = cfg->jwt_jwks_file ? "SEGMENTD_JWT_JWKS_FILE" : "SEGMENTD_JWT_JWKS_URL";
    if (cfg->jwt_jwks_file && cfg->jwt_jwks_url) {
        err_startup(err, "config",
                "SEGMENTD_JWT_JWKS_FILE and SEGMENTD_JWT_JWKS_URL are both set: set only one");
        return -1;
    }
    if (!cfg->jwt_jwks_file && !cfg->jwt_jwks_url)
        return 0;
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
        if (lookup(single[i], cls)) {
            err_startup(err, "config",
                    "%s: must not be set with %s (the JWK Set's keys, each with its own "
                    "algorithm, replace the single key and SEGMENTD_JWT_ALG)", single[i], jwks);
            return -1;
        }
    return 0;
}

#define DEFAULT_LOOPS_MAX 8 /* and so 8 connections per process by default, as before */

/* CPUs this process may run on: its affinity mask (a cpuset), lowered to the cgroup v2
 * quota when one is set (`docker run --cpus`, a Kubernetes CPU limit). */
static int usable_cpus(void)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char quota[32];
        long long period;
        if (fscanf(f, "%31s %lld", quota, &period) == 2 && strcmp(quota, "max") && period > 0) {
            long long q = atoll(quota);
            long long lim = (q + period - 1) / period;
            if (lim >= 1 && lim < n)
                n = (int)lim;
        }
        fclose(f);
    }
    return n;
}

int config_load(seg_config *cfg, config_lookup_fn lookup, void *cls, seg_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < CF_COUNT; i++) {
        const cf_entry *e = &cf_table[i];
        char *owned;
        const char *v;
        if (lookup_value(e, lookup, cls, &owned, &v, err))
            goto fail;
        if (v) {
            int rc = apply(cfg, e, v, err);
            free(owned);
            if (rc)
                goto fail;
        }
    }
    /* Settings of the threading models retired in 0.2 (one model since: event loops with
     * the pipelined store, bench/README.md): named for a warning at start-up, not refused,
     * so that an upgrade with an old environment still starts. */
    for (size_t i = 0; i < sizeof config_retired / sizeof config_retired[0]; i++)
        if (lookup(config_retired[i], cls)) {
            size_t used = strlen(cfg->retired_set);
            snprintf(cfg->retired_set + used, sizeof cfg->retired_set - used, "%s%s",
                     used ? " " : "", config_retired[i]);
        }
    if (!cfg->loops) {
        int cpus = usable_cpus();
        cfg->loops = cpus < DEFAULT_LOOPS_MAX ? cpus : DEFAULT_LOOPS_MAX;
    }
    if (!cfg->pool_size) /* pipelined connections carry many requests each (store/batch.c) */
        cfg->pool_size = cfg->loops;
    if (cfg->loops > cfg->pool_size) /* every loop owns at least one connection */
        cfg->loops = cfg->pool_size;
    if (check_key_source(cfg, lookup, cls, err))
        goto fail;
    if (cfg->jwt_jwks_file || cfg->jwt_jwks_url) {
        /* the JWK Set is read by auth/jwks.c when serve starts */
    } else if (cfg->jwt_alg[0] == 'H') {
        /* The key file replaces the secret in cfg->jwt_key: with HS* its PEM text would
         * become the HMAC key, and anyone holding the public key could sign tokens. */
        if (lookup("SEGMENTD_JWT_PUBLIC_KEY_FILE", cls)) {
            err_startup(err, "config",
                    "SEGMENTD_JWT_PUBLIC_KEY_FILE: must not be set with %s (the public key would "
                    "be the HMAC secret): set SEGMENTD_JWT_ALG to RS*/ES* or unset the key file",
                    cfg->jwt_alg);
            goto fail;
        }
        /* libjwt treats an empty key as "no signature check"; RFC 7518 3.2 wants a key
         * at least as long as the hash output (32 bytes for HS256). */
        if (!cfg->jwt_key || cfg->jwt_key_len == 0) {
            err_startup(err, "config",
                    "SEGMENTD_JWT_SECRET: not set: %s needs a secret of at least 32 bytes "
                    "(or SEGMENTD_JWT_SECRET_FILE)", cfg->jwt_alg);
            goto fail;
        }
        if (cfg->jwt_key_len < 32) {
            err_startup(err, "config", "SEGMENTD_JWT_SECRET: too short: %zu bytes, at least 32 needed",
                    cfg->jwt_key_len);
            goto fail;
        }
    } else {
        if (lookup("SEGMENTD_JWT_SECRET", cls) || lookup("SEGMENTD_JWT_SECRET_FILE", cls)) {
            err_startup(err, "config",
                    "SEGMENTD_JWT_SECRET: must not be set with %s: use SEGMENTD_JWT_PUBLIC_KEY_FILE",
                    cfg->jwt_alg);
            goto fail;
        }
        if (!cfg->jwt_key || !strstr((const char *)cfg->jwt_key, "-----BEGIN PUBLIC KEY-----")) {
            err_startup(err, "config",
                    "SEGMENTD_JWT_PUBLIC_KEY_FILE: %s needs a PEM public key file "
                    "(-----BEGIN PUBLIC KEY-----)", cfg->jwt_alg);
            goto fail;
        }
    }
    return 0;
fail:
    config_free(cfg);
    return -1;
}

typedef struct kv_text {
    const char *text;
    char buf[4096];
} kv_text;

static const char *lookup_text(const char *name, void *cls)
{
    kv_text *kv = cls;
    size_t nlen = strlen(name);
    const char *p = kv->text;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t llen = eol ? (size_t)(eol - p) : strlen(p);
        if (llen > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
            size_t vlen = llen - nlen - 1;
            if (vlen >= sizeof kv->buf)
                vlen = sizeof kv->buf - 1;
            memcpy(kv->buf, p + nlen + 1, vlen);
            kv->buf[vlen] = '\0';
            return kv->buf;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

int config_load_from_string(seg_config *cfg, const char *text, seg_error *err)
{
    kv_text kv = {.text = text};
    return config_load(cfg, lookup_text, &kv, err);
}

void config_free(seg_config *cfg)
{
    free(cfg->database_url);
    free(cfg->read_url);
    if (cfg->jwt_key)
        memset(cfg->jwt_key, 0, cfg->jwt_key_len);
    free(cfg->jwt_key);
    free(cfg->jwt_issuer);
    free(cfg->jwt_audience);
    free(cfg->jwt_jwks_file);
    free(cfg->jwt_jwks_url);
    free(cfg->migrations_dir);
    memset(cfg, 0, sizeof *cfg);
}

void config_print_help(FILE *out)
{
    fprintf(out, "Environment variables:\n");
    for (size_t i = 0; i < CF_COUNT; i++) {
        const cf_entry *e = &cf_table[i];
        fprintf(out, "  %-30s %s", e->name, e->help);
        if (e->def)
            fprintf(out, " [default: %s]", e->def);
        fputc('\n', out);
    }
}
