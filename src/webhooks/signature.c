/* The webhook-signature of a delivery, per Standard Webhooks: HMAC-SHA256 with the secret's
 * decoded bytes over "id.timestamp.body", base64, after "v1,". */
#include "webhooks/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <string.h>

/* The key bytes of a "whsec_" secret into key (cap bytes). Their count, or -1. */
static int secret_key(const char *secret, unsigned char *key, size_t cap)
{
    if (!strncmp(secret, "whsec_", 6))
        secret += 6;
    size_t n = strlen(secret);
    if (n == 0 || n % 4 || n / 4 * 3 > cap)
        return -1;
    int len = EVP_DecodeBlock(key, (const unsigned char *)secret, (int)n);
    if (len < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding's bytes as zeros */
    for (size_t i = n; i > 0 && secret[i - 1] == '='; i--)
        len--;
    return len;
}

int wh_sign(const char *secret, const char *msg_id, long long timestamp, const char *body,
            size_t body_len, char out[WH_SIGNATURE_MAX])
{
    unsigned char key[64], mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char ts[24];
    int klen = secret_key(secret, key, sizeof key);
    int tlen = snprintf(ts, sizeof ts, ".%lld.", timestamp);
    int rc = -1;
    EVP_MAC *hmac = klen > 0 ? EVP_MAC_fetch(NULL, "HMAC", NULL) : NULL;
    EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                            OSSL_PARAM_construct_end()};
    size_t got = 0;
    if (!ctx || !EVP_MAC_init(ctx, key, (size_t)klen, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tlen) ||
        !EVP_MAC_update(ctx, (const unsigned char *)body, body_len) ||
        !EVP_MAC_final(ctx, mac, &got, sizeof mac))
        goto done;
    mac_len = (unsigned int)got;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len); /* 32 bytes: 44 characters */
    rc = 0;
done:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}
