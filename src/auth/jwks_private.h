/* The current JWK Set, as auth.c reads it on a request thread (private to src/auth). */
#ifndef SEGMENTD_AUTH_JWKS_PRIVATE_H
#define SEGMENTD_AUTH_JWKS_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/jwk.h"

/* A reference to the set installed now (NULL before the first), to give back with
 * jwks_release: a refresh may replace it meanwhile, never free it under a reader. */
const jwk_set *jwks_acquire(void);
void jwks_release(const jwk_set *set);

/* Counts 1 for every set installed: a token cached under an older one is checked again. */
uint64_t jwks_generation(void);

/* A token named a kid the set lacks: asks the fetcher for a refresh, which happens at most
 * once every SEGMENTD_JWT_JWKS_MIN_REFRESH_S. Never waits. */
void jwks_unknown_kid(void);

#endif
