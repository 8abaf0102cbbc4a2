/* Idempotency-Key on the POST routes (creates, bulk, bulk-delete, end-date, previews): the
 * handler runs inside a transaction that first claims the key and last keeps the answer, so
 * that a change and the key that guards it commit together (a handler's own transaction,
 * a bulk's, becomes a savepoint of this one). */
#include "handlers/common.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "store/idempotency.h"

static const char *const replayed_headers[] = {"Idempotent-Replayed", "true", NULL};

int h_sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    static const char hex[] = "0123456789abcdef";
    if (!EVP_Digest(data ? data : "", len, md, &n, EVP_sha256(), NULL) || n != 32)
        return -1;
    for (unsigned int i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

/* Answers from the key's lookup: the kept answer again, or why the request cannot run. */
static void answer_claimed(http_request *rq, int outcome, const store_idem_answer *a)
{
    switch (outcome) {
    case STORE_IDEM_REPLAY:
        if (a->etag)
            snprintf(rq->etag, sizeof rq->etag, "%s", a->etag);
        if (a->location)
            snprintf(rq->location, sizeof rq->location, "%s", a->location);
        rq->extra_headers = replayed_headers;
        http_reply(rq, a->status, a->content_type, a->body, a->body_len, NULL, NULL);
        return;
    case STORE_IDEM_OTHER:
        err_set(&rq->err, 422, "idempotency_key_reused",
                "this Idempotency-Key was sent with another request (its method, path or body "
                "differ): use a new key for a new request");
        return;
    case STORE_IDEM_BUSY:
        err_set(&rq->err, 409, "idempotency_key_in_use",
                "a request with this Idempotency-Key is still running: retry once it has answered");
        rq->err.retry_after = 1;
        return;
    default: /* -1: rq->err tells */
        return;
    }
}

/* The answer fn left in rq, as a key keeps it; false when it is not one to keep. The body is
 * copied NUL-terminated into the request's arena (the statement's text parameter). */
static bool answer_of(http_request *rq, store_idem_answer *a)
{
    if (rq->err.status || rq->status < 200 || rq->status > 299 || rq->out_read)
        return false;
    char *body = arena_alloc(&rq->arena, rq->body_out_len + 1);
    if (!body || memchr(rq->body_out, '\0', rq->body_out_len)) {
        err_set(&rq->err, 500, "internal", "the answer could not be kept for its Idempotency-Key");
        return false;
    }
    memcpy(body, rq->body_out, rq->body_out_len);
    body[rq->body_out_len] = '\0';
    *a = (store_idem_answer){rq->status, rq->content_type, rq->location[0] ? rq->location : NULL,
                             rq->etag[0] ? rq->etag : NULL, body, rq->body_out_len};
    return true;
}

void h_idempotent(http_request *rq, http_handler fn)
{
    if (!rq->idempotency_key) {
        fn(rq);
        return;
    }
    char digest[65];
    store_idem_answer a = {0};
    store_conn *c = h_store(rq);
    if (!c)
        return;
    if (h_sha256_hex(rq->body, rq->body_len, digest)) {
        err_set(&rq->err, 500, "internal", "the request's digest could not be computed");
        return;
    }
    const char *target = http_target(rq); /* a preview's ?precision= is part of the request */
    if (!target) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return;
    }
    store_idem_request q = {rq->principal.tenant, rq->idempotency_key, rq->method, target, digest};
    int rc = store_begin(c, &rq->err) ? -1 : store_idem_claim(c, &q, &a, &rq->err);
    if (rc != STORE_IDEM_NEW) {
        store_rollback(c);
        answer_claimed(rq, rc, &a);
        return;
    }
    rq->txn = c;
    fn(rq);
    rq->txn = NULL;
    /* a 4xx changed nothing and is not kept (the key stays free); a 5xx is retried */
    if (!answer_of(rq, &a)) {
        store_rollback(c);
        return;
    }
    rc = store_idem_save(c, &q, &a, &rq->err);
    if (rc == STORE_IDEM_NEW && !store_commit(c, &rq->err))
        return;
    store_rollback(c);
    if (rc == STORE_IDEM_BUSY) /* a repeat that began after the first had committed */
        answer_claimed(rq, rc, &a);
    else if (!rq->err.status)
        err_set(&rq->err, 503, "database_unavailable", "the change could not be committed; retry");
}
