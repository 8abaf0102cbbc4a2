/* The webhook delivery worker's view of the store: a PostgreSQL session of its own (never the
 * pool's), on which it claims due deliveries (FOR UPDATE SKIP LOCKED, a lease committed at
 * once) and records each attempt's outcome. One thread uses a queue. */
#ifndef SEGMENTD_STORE_WEBHOOK_QUEUE_H
#define SEGMENTD_STORE_WEBHOOK_QUEUE_H

#include <stdbool.h>

#include "core/config.h"
#include "core/error.h"

typedef struct store_whq store_whq;

/* A claimed delivery: who it goes to and what it sends; every string malloc'd as one block
 * with the struct (free it with store_wh_claim_free). */
typedef struct store_wh_claim {
    const char *tenant, *id, *webhook, *url, *secret;
    const char *event_id;   /* the webhook-id header */
    const char *body;       /* {"type", "timestamp", "data"}: the same on every attempt */
    size_t body_len;
    int attempts;           /* counting this one */
} store_wh_claim;

void store_wh_claim_free(store_wh_claim *c);

/* What came of an attempt. */
typedef struct store_wh_outcome {
    bool delivered;         /* a 2xx answer */
    int http_status;        /* 0: no answer */
    const char *error;      /* why it failed (NULL when delivered) */
    long long retry_in_ms;  /* when not delivered: the wait before the next attempt */
    int window_s;           /* past this many seconds after its event, no more attempts */
    long long started_us;   /* when the attempt began (µs since the epoch) */
} store_wh_outcome;

/* A session (statement_timeout timeout_ms), or NULL when the database cannot be reached. */
store_whq *store_whq_open(const seg_config *cfg, int timeout_ms);
void store_whq_close(store_whq *q);

/* Claims up to max due deliveries, at most per_webhook of one subscription counting those in
 * flight (busy_json: [{"t": tenant, "w": webhook, "n": in flight}]), each leased for lease_ms.
 * *out gets an array of *n claims (malloc'd, each freed by the caller, then the array).
 * 0, or -1 with err (the session is then unusable: close it). */
int store_whq_claim(store_whq *q, int max, int per_webhook, const char *busy_json, int lease_ms,
                    store_wh_claim ***out, int *n, seg_error *err) MUSTCHECK;

/* Records an attempt's outcome: 'd' delivered, 'p' pending again, 'f' failed for good, 0 when
 * the claim was no longer this one's (its lease ran out and another took it), -1 with err. */
int store_whq_record(store_whq *q, const store_wh_claim *c, const store_wh_outcome *o,
                     seg_error *err) MUSTCHECK;

/* Gives a claim back unattempted: due again now. 0 or -1. */
int store_whq_release(store_whq *q, const store_wh_claim *c, seg_error *err) MUSTCHECK;

/* The deliveries pending in the whole database, or -1 with err. */
long long store_whq_pending(store_whq *q, seg_error *err);

#endif
