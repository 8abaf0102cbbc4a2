/* Bearer tokens: verification of JWTs pinned to the one configured algorithm, with
 * every claim type-checked, and minting of development tokens. */
#ifndef SEGMENTD_AUTH_H
#define SEGMENTD_AUTH_H

#include <stdbool.h>

#include "core/config.h"
#include "core/error.h"

#define AUTH_SCOPE_READ 1u           /* segments:read */
#define AUTH_SCOPE_WRITE 2u          /* segments:write */
#define AUTH_SCOPE_DEVICES_READ 4u   /* devices:read */
#define AUTH_SCOPE_DEVICES_WRITE 8u  /* devices:write: ingest needs no right on segments */
#define AUTH_SCOPE_WEBHOOKS 16u      /* webhooks:write: a tenant's subscriptions and their deliveries */
/* What `segmentd token` and the development token grant by default. */
#define AUTH_DEFAULT_SCOPES "segments:read segments:write devices:read devices:write webhooks:write"
#define AUTH_MAX_TOKEN 4096     /* bytes; longer tokens are refused before decoding */
#define AUTH_TENANT_MAX 128

typedef struct auth_principal {
    char tenant[AUTH_TENANT_MAX + 1];
    char subject[129];
    unsigned scopes;
} auth_principal;

/* Keeps a reference to cfg (which must outlive all calls). */
void auth_init(const seg_config *cfg);

/* Verifies an Authorization header value. Returns 0 and fills p, or -1 with a 401
 * in err (WWW-Authenticate set; the reason only in err->log_detail). now_s is the
 * current Unix time. */
int auth_verify(const char *authorization, long long now_s, auth_principal *p,
                seg_error *err) MUSTCHECK;

/* Returns 0 when p holds the scope, else -1 with a 403 insufficient_scope in err. */
int auth_require(const auth_principal *p, unsigned scope, seg_error *err) MUSTCHECK;

/* Mints a token with the configured HMAC secret (development). scope is a space-
 * separated list. Returns a malloc'd string, or NULL with err set. */
char *auth_mint(const char *tenant, const char *subject, const char *scope, long long ttl_s,
                long long now_s, seg_error *err);

#endif
