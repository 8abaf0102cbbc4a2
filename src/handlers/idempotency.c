/* Idempotency-Key on the POST routes (creates, bulk, bulk-delete, end-date, previews): the
 * handler runs inside a transaction that first claims the key and last keeps the answer, so
 * that a change and the key that guards it commit together (a handler's own transaction,
 * a bulk's, becomes a savepoint of this one); a 4xx of the handler is kept on its own, after
 * the rollback. Device imports keep theirs on the import's session (import_idempotency.c). */
#include "handlers/common.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/problem.h"
#include "store/idempotency.h"

static const char *const replayed_headers[] = {"Idempotent-Replayed", "true", NULL};

/* The digest as 64 lower-case hex digits. */
static void hex_of(const unsigned char md[32], char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

int h_sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data ? data : "", len, md, &n, EVP_sha256(), NULL) || n != 32)
        return -1;
    hex_of(md, out);
    return 0;
}

h_sha256 *h_sha256_new(void)
{
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    if (x && !EVP_DigestInit_ex(x, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(x);
        x = NULL;
    }
    return x;
}

int h_sha256_add(h_sha256 *x, const char *data, size_t len)
{
    return EVP_DigestUpdate(x, data, len) ? 0 : -1;
}

int h_sha256_end(h_sha256 *x, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_DigestFinal_ex(x, md, &n) || n != 32)
        return -1;
    hex_of(md, out);
    return 0;
}

void h_sha256_free(h_sha256 *x)
{
    EVP_MD_CTX_free(x);
}

void h_idem_replay(http_request *rq, const store_idem_answer *a, http_free_fn free_fn, void *cls)
{
    if (a->etag)
        snprintf(rq->etag, sizeof rq->etag, "%s", a->etag);
    if (a->location)
        snprintf(rq->location, sizeof rq->location, "%s", a->location);
    rq->extra_headers = replayed_headers;
    http_reply(rq, a->status, a->content_type, a->body, a->body_len, free_fn, cls);
}

void h_idem_refuse(seg_error *err, int outcome)
{
    if (outcome == STORE_IDEM_OTHER) {
        err_set(err, 422, "idempotency_key_reused",
                "this Idempotency-Key was sent with another request (its method, path or body "
                "differ): use a new key for a new request");
    } else {
        err_set(err, 409, "idempotency_key_in_use",
                "a request with this Idempotency-Key is still running: retry once it has answered");
        err->retry_after = 1;
    }
}

/* Answers from the key's lookup: the kept answer again, or why the request cannot run. */
static void answer_claimed(http_request *rq, int outcome, const store_idem_answer *a)
{
    if (outcome == STORE_IDEM_REPLAY) /* the body lives in the store handle's arena */
        h_idem_replay(rq, a, NULL, NULL);
    else if (outcome >= 0) /* -1: rq->err tells */
        h_idem_refuse(&rq->err, outcome);
}

/* What becomes of the answer fn left in rq, for its key. */
enum keep { KEEP_NONE, KEEP_WITH_CHANGE, KEEP_ALONE };

/* The answer fn left in rq, as a key keeps it: a 2xx with the change it made; a 4xx of the
 * handler (a problem, or a bulk refused whole) alone, once its transaction rolled back, since
 * it changed nothing; a 5xx, or a streamed answer, not at all. The body is copied
 * NUL-terminated into the request's arena (the statement's text parameter); a problem is
 * rendered there as dispatch will render it (the same request id). */
static enum keep answer_of(http_request *rq, store_idem_answer *a)
{
    const char *out = rq->body_out, *type = rq->content_type;
    size_t len = rq->body_out_len;
    int status = rq->err.status ? rq->err.status : rq->status;
    if (status < 200 || status > 499 || (status > 299 && status < 400) || rq->out_read ||
        status == 401 || status == 403 || status == 429) /* the token's or the limit's: not the handler's */
        return KEEP_NONE;
    if (rq->err.status) {
        json_text t = {0};
        problem p = problem_of_error(&rq->err, rq->request_id);
        problem_write(&t, &p);
        char *s = json_text_take(&t, &len);
        if (!s || arena_defer(&rq->arena, free, s))
            return KEEP_NONE; /* kept or not, the client gets its 4xx */
        out = s;
        type = "application/problem+json";
    }
    char *body = arena_alloc(&rq->arena, len + 1);
    if (!body || (len && memchr(out, '\0', len))) {
        if (status > 299) /* the 4xx still answers, unkept */
            return KEEP_NONE;
        err_set(&rq->err, 500, "internal", "the answer could not be kept for its Idempotency-Key");
        return KEEP_NONE;
    }
    if (len)
        memcpy(body, out, len);
    body[len] = '\0';
    bool ok = !rq->err.status;
    *a = (store_idem_answer){status, type, ok && rq->location[0] ? rq->location : NULL,
                             ok && rq->etag[0] ? rq->etag : NULL, body, len};
    return status < 300 ? KEEP_WITH_CHANGE : KEEP_ALONE;
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
    enum keep keep = answer_of(rq, &a);
    if (keep != KEEP_WITH_CHANGE) {
        store_rollback(c);
        seg_error e;
        err_clear(&e);
        /* unkept (the key's lock was taken meanwhile, or the database failed): the 4xx
         * still answers, and a repeat runs again */
        if (keep == KEEP_ALONE && store_idem_keep(c, &q, &a, &e) < 0)
            log_msg(LOG_WARN, "a 4xx answer was not kept for its Idempotency-Key", "detail",
                    e.log_detail, NULL);
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
