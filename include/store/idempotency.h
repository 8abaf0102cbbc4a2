/* Idempotency keys (migrations/0007_idempotency.sql): a key claimed in the transaction of the
 * request it guards, its stored answer replayed, the answer saved before the commit, and the
 * background purge of expired keys. */
#ifndef SEGMENTD_STORE_IDEMPOTENCY_H
#define SEGMENTD_STORE_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>

#include "store/segments.h"

/* A request as its key remembers it: method, path with its query, the body's SHA-256 as 64
 * hex digits. */
typedef struct store_idem_request {
    const char *tenant, *key, *method, *path, *body_sha256;
} store_idem_request;

/* An answer kept for a key (NULL: no such header). The texts live in c's arena. */
typedef struct store_idem_answer {
    int status;
    const char *content_type, *location, *etag;
    const char *body;
    size_t body_len;
} store_idem_answer;

typedef enum {
    STORE_IDEM_NEW = 0,      /* no live answer: the request runs, the key's lock held */
    STORE_IDEM_REPLAY,       /* the same request was answered: *out holds that answer */
    STORE_IDEM_OTHER,        /* the key answered another request */
    STORE_IDEM_BUSY,         /* another transaction holds the key (its request is running) */
} store_idem_outcome;

/* Takes the key's lock in c's transaction (store_begin) and looks it up. A store_idem_outcome,
 * or -1 with err. */
int store_idem_claim(store_conn *c, const store_idem_request *q, store_idem_answer *out,
                     seg_error *err) MUSTCHECK;

/* Keeps answer a for the key in c's transaction, for SEGMENTD_IDEMPOTENCY_HOURS. STORE_IDEM_NEW, STORE_IDEM_BUSY
 * when a live answer of the key appeared meanwhile (nothing written), or -1 with err. */
int store_idem_save(store_conn *c, const store_idem_request *q, const store_idem_answer *a,
                    seg_error *err) MUSTCHECK;

/* Keeps a 4xx answer a for the key, outside any transaction (the request's rolled back): in
 * one statement that takes the key's lock. STORE_IDEM_NEW when kept, STORE_IDEM_BUSY when
 * another request of the key holds its lock or its live answer exists (nothing written), or
 * -1 with err. */
int store_idem_keep(store_conn *c, const store_idem_request *q, const store_idem_answer *a,
                    seg_error *err) MUSTCHECK;

/* Deletes expired keys on pg, the sweeper's session, batch at a time until none is left or
 * stop() says so. Returns how many, or -1 with err. */
long long store_idem_purge(void *pg, int batch, bool (*stop)(void), seg_error *err);

#endif
