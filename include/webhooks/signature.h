/* Standard Webhooks signatures (https://www.standardwebhooks.com): the webhook-signature
 * header of a delivery. Pure. */
#ifndef SEGMENTD_WEBHOOKS_SIGNATURE_H
#define SEGMENTD_WEBHOOKS_SIGNATURE_H

#include <stddef.h>

#include "core/error.h"

/* "v1," + base64 of 32 bytes + NUL */
#define WH_SIGNATURE_MAX 48

/* Writes "v1,<base64 of HMAC-SHA256 over "<msg_id>.<timestamp>.<body>">" into out, the key
 * being the base64-decoded bytes of secret after its "whsec_" prefix (a secret without the
 * prefix is taken whole as base64). 0, or -1 when the secret is not base64 or OpenSSL fails. */
int wh_sign(const char *secret, const char *msg_id, long long timestamp, const char *body,
            size_t body_len, char out[WH_SIGNATURE_MAX]) MUSTCHECK;

#endif
