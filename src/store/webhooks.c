/* Webhook subscriptions and their delivery log: the API's statements, their parameters and
 * typed results (the worker that delivers is webhooks/delivery.c, on store/webhook_queue.c). */
#include "store/webhooks.h"

#include <stdio.h>
#include <string.h>

#include "store/store_private.h"

int store_webhook_create(store_conn *c, const char *tenant, const char *id, const char *url,
                         const char *events, const char *secret, store_doc *out, seg_error *err)
{
    char max[16];
    snprintf(max, sizeof max, "%d", STORE_WEBHOOKS_MAX);
    const char *p[6] = {tenant, id, url, events, secret, max};
    int rc = store_one_doc(c, STMT_WEBHOOK_CREATE, p, out, err);
    return rc == STORE_MISSING ? STORE_INVALID : rc;
}

int store_webhook_get(store_conn *c, const char *tenant, const char *id, store_doc *out,
                      seg_error *err)
{
    const char *p[2] = {tenant, id};
    return store_one_doc(c, STMT_WEBHOOK_GET, p, out, err);
}

int store_webhook_list(store_conn *c, const char *tenant, const char *after, int limit,
                       store_page *out, seg_error *err)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *p[3] = {tenant, after, lim};
    PGresult *res = store_run(c, STMT_WEBHOOK_LIST, p, err);
    return res ? store_page_of(c, res, limit, out, err) : -1;
}

int store_webhook_delete(store_conn *c, const char *tenant, const char *id, seg_error *err)
{
    const char *p[2] = {tenant, id};
    PGresult *res = store_run(c, STMT_WEBHOOK_DELETE, p, err);
    if (!res)
        return -1;
    return PQntuples(res) ? STORE_DONE : STORE_MISSING;
}

int store_webhook_rotate(store_conn *c, const char *tenant, const char *id, const char *secret,
                         store_doc *out, seg_error *err)
{
    const char *p[3] = {tenant, id, secret};
    return store_one_doc(c, STMT_WEBHOOK_ROTATE, p, out, err);
}

int store_webhook_deliveries(store_conn *c, const char *tenant, const char *id,
                             const char *before_seq, int limit, store_page *out, seg_error *err)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *p[4] = {tenant, id, before_seq, lim};
    PGresult *res = store_run(c, STMT_WEBHOOK_DELIVERIES, p, err);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        return STORE_MISSING;
    if (PQgetisnull(res, 0, 0)) /* the subscription, no delivery on this page */
        return store_page_empty(c, out, err);
    return store_page_of(c, res, limit, out, err);
}

int store_webhook_retry(store_conn *c, const char *tenant, const char *id, const char *dlv,
                        store_doc *out, seg_error *err)
{
    const char *p[3] = {tenant, id, dlv};
    PGresult *res = store_run(c, STMT_WEBHOOK_RETRY, p, err);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        return STORE_MISSING;
    if (PQgetisnull(res, 0, 1))
        return STORE_STALE; /* delivered: nothing to retry */
    out->json = PQgetvalue(res, 0, 1);
    out->len = (size_t)PQgetlength(res, 0, 1);
    out->version = 0;
    return STORE_DONE;
}
