/* Webhook subscriptions and their delivery log as the API sees them (migrations/
 * 0008_webhooks.sql): typed outcomes and finished JSON text, PostgreSQL writing the
 * representations. */
#ifndef SEGMENTD_STORE_WEBHOOKS_H
#define SEGMENTD_STORE_WEBHOOKS_H

#include "store/segments.h"

/* Subscriptions a tenant may have (a create past it: STORE_INVALID). Two creates at the same
 * instant may each see one fewer and pass it by one. */
#define STORE_WEBHOOKS_MAX 50

/* A new subscription (events: a text[] literal; secret "whsec_…"). STORE_DONE with its
 * representation (secret included), STORE_INVALID at the limit, or -1 with err (409 when
 * the id exists). */
int store_webhook_create(store_conn *c, const char *tenant, const char *id, const char *url,
                         const char *events, const char *secret, store_doc *out,
                         seg_error *err) MUSTCHECK;
/* One subscription without its secret: STORE_DONE or STORE_MISSING (or -1). */
int store_webhook_get(store_conn *c, const char *tenant, const char *id, store_doc *out,
                      seg_error *err) MUSTCHECK;
/* A page of the tenant's subscriptions, newest first, after the id after (NULL: the first
 * page); next_key: the id of the last one shown. STORE_DONE or -1. */
int store_webhook_list(store_conn *c, const char *tenant, const char *after, int limit,
                       store_page *out, seg_error *err) MUSTCHECK;
/* Deletes a subscription and its deliveries: STORE_DONE or STORE_MISSING (or -1). */
int store_webhook_delete(store_conn *c, const char *tenant, const char *id, seg_error *err) MUSTCHECK;
/* Replaces the secret: STORE_DONE with the representation (the new secret included), or
 * STORE_MISSING (or -1). */
int store_webhook_rotate(store_conn *c, const char *tenant, const char *id, const char *secret,
                         store_doc *out, seg_error *err) MUSTCHECK;
/* A page of subscription id's deliveries, newest first, before the delivery seq before_seq
 * (decimal text, NULL: from the newest); next_key: the seq of the last one shown.
 * STORE_MISSING when the tenant has no such subscription, else STORE_DONE (or -1). */
int store_webhook_deliveries(store_conn *c, const char *tenant, const char *id,
                             const char *before_seq, int limit, store_page *out,
                             seg_error *err) MUSTCHECK;
/* Makes delivery dlv of subscription id due now (pending again when it had failed):
 * STORE_DONE with its representation, STORE_MISSING, or STORE_STALE when it was delivered
 * already (or -1). */
int store_webhook_retry(store_conn *c, const char *tenant, const char *id, const char *dlv,
                        store_doc *out, seg_error *err) MUSTCHECK;

#endif
