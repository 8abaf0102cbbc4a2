/* A device import's Idempotency-Key: claimed (its lock taken, then looked up) when the
 * import's session opens, the body's SHA-256 taken piece by piece as it arrives, a repeat's
 * body compared with the one the key answered before its answer is replayed, and the 202
 * kept for the key in the transaction that makes the import merging. */
#include "handlers/import_idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST_FAILED "the body's digest could not be computed"

int import_idem_init(import_idem *k, http_request *rq, const char *tenant)
{
    if (!rq->idempotency_key)
        return 0;
    /* the request as h_idempotent's keys know it */
    const char *target = http_target(rq);
    snprintf(k->key, sizeof k->key, "%s", rq->idempotency_key);
    if (!target || !(k->target = strdup(target)) || !(k->sha = h_sha256_new()))
        return -1;
    k->q = (store_idem_request){tenant, k->key, "POST", k->target, NULL};
    return 0;
}

void import_idem_free(import_idem *k)
{
    h_sha256_free(k->sha);
    free(k->target);
}

int import_idem_open(import_idem *k, const seg_config *cfg, const char *tenant, const char *id,
                     store_import **out, seg_error *err)
{
    int claim = store_import_open(cfg, tenant, id, k->sha ? &k->q : NULL, out, &k->kept,
                                  &k->kept_sha256, err);
    if (claim == STORE_IDEM_BUSY || claim == STORE_IDEM_OTHER)
        h_idem_refuse(err, claim);
    return claim;
}

int import_idem_digest(import_idem *k, const char *data, size_t n, seg_error *err)
{
    if (k->sha && h_sha256_add(k->sha, data, n)) {
        err_set(err, 500, "internal", DIGEST_FAILED);
        return -1;
    }
    return 0;
}

int import_idem_repeat_check(import_idem *k, bool failed, seg_error *err)
{
    if (failed || h_sha256_end(k->sha, k->digest)) {
        err_set(err, 500, "internal", DIGEST_FAILED);
        return -1;
    }
    if (strcmp(k->digest, k->kept_sha256)) {
        h_idem_refuse(err, STORE_IDEM_OTHER);
        return -1;
    }
    return 0;
}

void import_idem_replay(const import_idem *k, http_request *rq)
{
    const store_idem_answer *kept = &k->kept;
    size_t type_len = kept->content_type ? strlen(kept->content_type) + 1 : 0;
    char *copy = malloc(kept->body_len + 1 + type_len); /* the body, then its Content-Type */
    if (!copy) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return;
    }
    store_idem_answer a = *kept;
    memcpy(copy, kept->body, kept->body_len);
    copy[kept->body_len] = '\0';
    if (type_len)
        a.content_type = memcpy(copy + kept->body_len + 1, kept->content_type, type_len);
    a.body = copy;
    h_idem_replay(rq, &a, free, copy);
}

int import_idem_received(import_idem *k, store_import *im, const store_import_counts *n,
                         const char *location, char **doc, seg_error *err)
{
    if (k->sha) {
        if (h_sha256_end(k->sha, k->digest)) {
            err_set(err, 500, "internal", DIGEST_FAILED);
            return -1;
        }
        k->q.body_sha256 = k->digest;
    }
    int rc = store_import_received(im, n, k->sha ? &k->q : NULL, location, doc, err);
    if (rc == STORE_IDEM_BUSY) /* the key's lock is held all along: not expected */
        h_idem_refuse(err, rc);
    return rc ? -1 : 0;
}
