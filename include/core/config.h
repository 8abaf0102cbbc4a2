/* Configuration: every setting declared once in a table (name, type, default, bounds,
 * help), loaded once from the environment into a const struct. */
#ifndef SEGMENTD_CORE_CONFIG_H
#define SEGMENTD_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

typedef struct seg_config {
    char listen_host[64];
    int listen_port;
    char *database_url;          /* NULL: libpq defaults (PG* variables) */
    char *read_url;              /* read replicas for evaluations; NULL: none */
    int read_max_lag_ms;         /* a replica further behind is not read from */
    bool read_replica_lists;     /* lists read on the replica too */
    int loops;                   /* event loops, resolved: 1 to pool_size */
    int pool_size;               /* PostgreSQL connections, dealt out to the loops */
    int pool_wait_ms;            /* how long a request waits for a free connection */
    int statement_timeout_ms;
    char jwt_alg[8];             /* HS256 … ES384 */
    unsigned char *jwt_key;      /* HMAC secret or PEM public key bytes */
    size_t jwt_key_len;
    char *jwt_jwks_file;         /* a JWK Set file, or NULL (then jwt_key is NULL) */
    char *jwt_jwks_url;          /* a JWK Set URL, or NULL (then jwt_key is NULL) */
    int jwt_jwks_min_refresh_s;  /* fetches of the URL at least this far apart */
    int jwt_jwks_timeout_ms;     /* one fetch of the URL, whole */
    char *jwt_issuer;            /* NULL: not checked */
    char *jwt_audience;          /* NULL: not checked */
    int jwt_leeway_s;
    char tenant_claim[64];
    size_t max_body_bytes;
    size_t max_bulk_body_bytes;
    size_t max_import_bytes;     /* an NDJSON device import's body */
    int imports_max;             /* imports received at once */
    int import_retention_days;   /* finished imports are purged after this */
    int eval_timeout_ms;         /* statement_timeout of an evaluation */
    int eval_concurrency;        /* evaluations at once in this process */
    int size_refresh_s;          /* 0: no size refresher */
    log_level log_level;
    bool auto_migrate;
    char *migrations_dir;
    int idle_timeout_s;
    int connection_limit;
    int per_ip_limit;
    int shutdown_grace_s;
    int lifecycle_sweep_s;       /* 0: no renewals (the sweeper only purges history) */
    int history_days;            /* revisions older than this are purged; 0: never */
    int idempotency_hours;       /* an Idempotency-Key's answer is kept this long */
    /* per tenant, by class of request (http/rate_limit.h: read, write, evaluation):
     * requests a second (0: not limited) and the burst (0: as many as a second's) */
    int rate_limit[3];
    int rate_burst[3];
    /* webhook delivery (webhooks/delivery.h) */
    bool webhook_allow_private;  /* SSRF checks off: private and loopback receivers allowed */
    int webhook_concurrency;     /* deliveries in flight in this process; 0: none */
    int webhook_per_subscription;
    int webhook_connect_timeout_ms;
    int webhook_timeout_ms;
    int webhook_retry_base_ms;
    int webhook_retry_window_s;
    int webhook_poll_ms;
    char retired_set[96];        /* retired settings found set, space-separated: warned about */
} seg_config;

/* Looks a variable up by name; returns NULL when unset. getenv fits. */
typedef const char *(*config_lookup_fn)(const char *name, void *cls);

/* Fills cfg from the lookup. Returns 0, or -1 with one line in err->detail naming
 * the setting and what is wrong (never the secret's value). Release with config_free. */
int config_load(seg_config *cfg, config_lookup_fn lookup, void *cls, seg_error *err) MUSTCHECK;

/* Same, from "NAME=value\n" lines (tests and fuzzing). */
int config_load_from_string(seg_config *cfg, const char *text, seg_error *err) MUSTCHECK;

void config_free(seg_config *cfg);

/* Prints the table of settings, as in `segmentd --help` and the README. */
void config_print_help(FILE *out);

#endif
