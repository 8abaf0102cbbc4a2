/* The body of POST /v1/webhooks: the receiver's URL and the event types it subscribes to; and
 * the cursor of the subscriptions' list. */
#ifndef SEGMENTD_VALIDATE_WEBHOOK_H
#define SEGMENTD_VALIDATE_WEBHOOK_H

#include <jansson.h>
#include <stdbool.h>

#include "core/arena.h"
#include "core/error.h"
#include "validate/list_query.h"

#define WEBHOOK_URL_MAX 2048
#define WEBHOOK_EVENT_TYPES 7

/* The event types a subscription may name, in the order the documentation lists them. */
extern const char *const webhook_event_types[WEBHOOK_EVENT_TYPES];

typedef struct webhook_in {
    const char *url;    /* borrowed from the body */
    char events[256];   /* text[] literal of the types, in the body's order */
} webhook_in;

/* Validates root: {"url": absolute http(s) URL of at most WEBHOOK_URL_MAX printable ASCII
 * characters, without user or password, "events": 1 to 7 distinct known types}, no other key.
 * With allow_private false, a URL whose host is an IP address that is not public
 * (core/netaddr.h) is refused too (a host name is checked when delivering). Every problem at its
 * pointer (422). 0 with out filled, or -1 with err. */
int val_webhook(json_t *root, bool allow_private, webhook_in *out, seg_error *err) MUSTCHECK;

/* ?limit= and ?cursor= of GET /v1/webhooks, whose cursor ("w:<id>") names the last subscription
 * shown: *after is NULL on the first page, else the id (in a). 0, or -1 with err (400). */
int val_webhook_paging(val_query_fn q, void *cls, seg_arena *a, int *limit, const char **after,
                       seg_error *err) MUSTCHECK;

#endif
