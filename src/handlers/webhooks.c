/* /v1/webhooks: a tenant's subscriptions (create with a secret shown once, read, list, delete,
 * rotate the secret) and each one's delivery log with its retry. The worker that delivers is
 * webhooks/delivery.c. */
#include <openssl/evp.h>
#include <string.h>

#include "core/ids.h"
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "store/webhooks.h"
#include "validate/list_query.h"
#include "validate/webhook.h"
#include "webhooks/delivery.h"

#define WEBHOOKS_PATH "/v1/webhooks"
/* The HMAC key's bytes: Standard Webhooks asks for 24 to 64. */
#define SECRET_BYTES 32
/* "whsec_" + base64 of SECRET_BYTES (44 characters) + NUL */
#define SECRET_TEXT 64

static bool allow_private;

void h_webhooks_init(const seg_config *cfg)
{
    allow_private = cfg->webhook_allow_private;
}

bool h_check_webhook_id(const char *value, const char **why)
{
    if (ids_is_prefixed(value, "wh_"))
        return true;
    *why = "expected \"wh_\" and 13 letters or digits";
    return false;
}

bool h_check_delivery_id(const char *value, const char **why)
{
    if (ids_is_prefixed(value, "dlv_"))
        return true;
    *why = "expected \"dlv_\" and 13 letters or digits";
    return false;
}

/* A new secret, "whsec_" and the base64 of SECRET_BYTES random bytes. 0, or -1 with a 503. */
static int new_secret(http_request *rq, char out[SECRET_TEXT])
{
    unsigned char key[SECRET_BYTES];
    if (ids_random(key, sizeof key)) {
        err_set(&rq->err, 503, "no_entropy", "no random source available; retry shortly");
        return -1;
    }
    memcpy(out, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, key, sizeof key);
    OPENSSL_cleanse(key, sizeof key);
    return 0;
}

static void webhook_create(http_request *rq)
{
    webhook_in in;
    store_conn *c;
    store_doc doc;
    char id[IDS_WEBHOOK_LEN + 1], secret[SECRET_TEXT];
    json_t *root = h_body(rq);
    if (!root || val_webhook(root, allow_private, &in, &rq->err))
        return;
    if (ids_webhook_id(id)) {
        err_set(&rq->err, 503, "no_entropy", "no random source available; retry shortly");
        return;
    }
    int rc;
    if (new_secret(rq, secret) || !(c = h_store(rq)) ||
        (rc = store_webhook_create(c, rq->principal.tenant, id, in.url, in.events, secret, &doc,
                                   &rq->err)) < 0)
        return;
    OPENSSL_cleanse(secret, sizeof secret);
    if (rc == STORE_INVALID) {
        err_set(&rq->err, 422, "too_many_webhooks",
                "a tenant has at most %d webhook subscriptions: delete one first", STORE_WEBHOOKS_MAX);
        err_add(&rq->err, "", "the tenant has %d subscriptions already", STORE_WEBHOOKS_MAX);
        return;
    }
    http_set_location(rq, WEBHOOKS_PATH, id);
    h_reply_doc(rq, 201, &doc);
}

/* The POSTs honour Idempotency-Key as the segment routes do: a retry of a create with its key
 * answers the first subscription (and its secret) again rather than making a second. */
void h_webhook_create(http_request *rq)
{
    h_idempotent(rq, webhook_create);
}

void h_webhook_get(http_request *rq)
{
    store_doc doc;
    store_conn *c = h_store(rq);
    if (!c || h_missed_as(rq, store_webhook_get(c, rq->principal.tenant, rq->param, &doc, &rq->err),
                          "webhook subscription"))
        return;
    h_reply_doc(rq, 200, &doc);
}

void h_webhook_list(http_request *rq)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    int limit;
    const char *after;
    store_page page;
    store_conn *c;
    if (h_only_query(rq, allowed) ||
        val_webhook_paging(h_query, rq, &rq->arena, &limit, &after, &rq->err) || !(c = h_store(rq)) ||
        store_webhook_list(c, rq->principal.tenant, after, limit, &page, &rq->err))
        return;
    h_reply_page(rq, &page, 'w');
}

void h_webhook_delete(http_request *rq)
{
    store_conn *c = h_store(rq);
    if (!c || h_missed_as(rq, store_webhook_delete(c, rq->principal.tenant, rq->param, &rq->err),
                          "webhook subscription"))
        return;
    http_reply_empty(rq, 204);
}

static void webhook_rotate(http_request *rq)
{
    store_doc doc;
    store_conn *c;
    char secret[SECRET_TEXT];
    if (new_secret(rq, secret) || !(c = h_store(rq)))
        return;
    int rc = store_webhook_rotate(c, rq->principal.tenant, rq->param, secret, &doc, &rq->err);
    OPENSSL_cleanse(secret, sizeof secret);
    if (h_missed_as(rq, rc, "webhook subscription"))
        return;
    h_reply_doc(rq, 200, &doc);
}

void h_webhook_rotate(http_request *rq)
{
    h_idempotent(rq, webhook_rotate);
}

/* The delivery log's cursor: "l:<seq>", the last delivery shown. */
#define DELIVERY_CURSOR 'l'

void h_webhook_deliveries(http_request *rq)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    char before[24];
    int limit;
    store_page page;
    store_conn *c;
    if (h_only_query(rq, allowed) ||
        val_list_paging(h_query, rq, DELIVERY_CURSOR, &limit, before, &rq->err) ||
        !(c = h_store(rq)) ||
        h_missed_as(rq, store_webhook_deliveries(c, rq->principal.tenant, rq->param,
                                                 before[0] ? before : NULL, limit, &page, &rq->err),
                    "webhook subscription"))
        return;
    h_reply_page(rq, &page, DELIVERY_CURSOR);
}

static void webhook_retry(http_request *rq)
{
    store_doc doc;
    store_conn *c = h_store(rq);
    if (!c)
        return;
    int rc = store_webhook_retry(c, rq->principal.tenant, rq->param, rq->param2, &doc, &rq->err);
    if (rc == STORE_STALE) {
        err_set(&rq->err, 409, "delivery_delivered",
                "this delivery was delivered already: there is nothing to retry");
        return;
    }
    if (h_missed_as(rq, rc, "delivery of this webhook subscription"))
        return;
    wh_delivery_wake(); /* due now: the worker need not wait for its next look */
    h_reply_doc(rq, 200, &doc);
}

void h_webhook_retry(http_request *rq)
{
    h_idempotent(rq, webhook_retry);
}
