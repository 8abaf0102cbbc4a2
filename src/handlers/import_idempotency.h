/* Private to handlers/: a device import's Idempotency-Key, kept on the import's own session
 * (the other POSTs' keys are handlers/idempotency.c's). The receiver calls it
 * (import_stream.c, import_receiver.c); it knows nothing of the receiver. */
#ifndef SEGMENTD_HANDLERS_IMPORT_IDEMPOTENCY_H
#define SEGMENTD_HANDLERS_IMPORT_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/error.h"
#include "handlers/common.h"
#include "store/imports.h"

#define IMPORT_IDEM_KEY_MAX 255 /* an Idempotency-Key's characters at most (http/admit.c) */

/* An import's key (sha NULL: the request has none): the request as the key keeps it (q
 * points into this struct, which therefore never moves), the body's digest as it arrives,
 * and on a repeat the answer kept (its texts in the import session's memory, until its
 * close). */
typedef struct import_idem {
    char key[IMPORT_IDEM_KEY_MAX + 1];
    char *target;
    h_sha256 *sha;
    store_idem_request q;
    char digest[65];
    store_idem_answer kept;
    const char *kept_sha256;
} import_idem;

/* Takes the key of rq, when it has one, for tenant (lent: it outlives k). 0, or -1 when
 * memory or OpenSSL ran out; k is released with import_idem_free either way. */
int import_idem_init(import_idem *k, http_request *rq, const char *tenant) MUSTCHECK;
void import_idem_free(import_idem *k);

/* Opens the import's session (store_import_open), which first claims the key when there is
 * one: STORE_IDEM_NEW, or STORE_IDEM_REPLAY (a repeat: k->kept holds the answer, to be
 * replayed once the body proves the same), with *out set; STORE_IDEM_BUSY (409) and
 * STORE_IDEM_OTHER (422) with err set, or -1 with err, and *out NULL. */
int import_idem_open(import_idem *k, const seg_config *cfg, const char *tenant, const char *id,
                     store_import **out, seg_error *err) MUSTCHECK;

/* Adds a piece of the body to its digest (nothing without a key). 0, or -1 with err (500). */
int import_idem_digest(import_idem *k, const char *data, size_t n, seg_error *err) MUSTCHECK;

/* A repeat's body digested whole (failed: a piece of it could not be). 0 when it is the body
 * the key answered (its answer is to be replayed), else -1 with err: 500, or 422 for another
 * body. */
int import_idem_repeat_check(import_idem *k, bool failed, seg_error *err) MUSTCHECK;

/* Answers rq with the answer the key kept, marked Idempotent-Replayed; the answer is copied,
 * as the kept texts go with the import's session (500 in rq->err when memory ran out). */
void import_idem_replay(const import_idem *k, http_request *rq);

/* The body received whole: store_import_received (the import merging, *doc its 202
 * representation), with, under a key, the body's digest ended and the 202 kept for the key
 * in the same transaction. 0, or -1 with err. */
int import_idem_received(import_idem *k, store_import *im, const store_import_counts *n,
                         const char *location, char **doc, seg_error *err) MUSTCHECK;

#endif
