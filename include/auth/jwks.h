/* Keys from a JWK Set: SEGMENTD_JWT_JWKS_FILE read at start, or SEGMENTD_JWT_JWKS_URL
 * fetched at start and refreshed by a thread of its own (libcurl), never on a request. */
#ifndef SEGMENTD_AUTH_JWKS_H
#define SEGMENTD_AUTH_JWKS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/error.h"

/* With a JWKS configured: reads the file, or fetches the URL once (start-up fails when it
 * cannot: err names the URL and why) and starts the refresher. Without one: nothing.
 * Call before serving; cfg must outlive auth_jwks_stop. */
int auth_jwks_start(const seg_config *cfg, seg_error *err) MUSTCHECK;

/* Stops the refresher (an ongoing fetch is abandoned) and drops the set. */
void auth_jwks_stop(void);

/* Replaces the set with the document's (from the file, the URL, a test or the fuzzer);
 * allow_secret admits oct (HMAC) keys. Returns 0, or -1 with err set and the set kept. */
int auth_jwks_install(const char *doc, size_t len, bool allow_secret, seg_error *err) MUSTCHECK;

#endif
