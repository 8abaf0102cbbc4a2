/* Idempotency keys: claimed (lock, then lookup) and saved in the guarded request's own
 * transaction; expired ones purged by the sweeper. */
#include "store/idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/session.h"
#include "store/store_private.h"

/* A nullable column as text of the result (which lives in c's arena). */
static const char *nullable(const PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? NULL : PQgetvalue(res, 0, col);
}

int store_idem_claim(store_conn *c, const store_idem_request *q, store_idem_answer *out,
                     seg_error *err)
{
    const char *p[5] = {q->tenant, q->key, q->method, q->path, q->body_sha256};
    PGresult *res = store_run(c, STMT_IDEM_LOCK, p, err);
    if (!res)
        return -1;
    if (PQntuples(res) != 1 || PQgetvalue(res, 0, 0)[0] != 't')
        return STORE_IDEM_BUSY;
    if (!(res = store_run(c, STMT_IDEM_FIND, p, err)))
        return -1;
    if (PQntuples(res) == 0)
        return STORE_IDEM_NEW;
    if (PQgetvalue(res, 0, 0)[0] != 't')
        return STORE_IDEM_OTHER;
    out->status = atoi(PQgetvalue(res, 0, 1));
    out->content_type = nullable(res, 2);
    out->location = nullable(res, 3);
    out->etag = nullable(res, 4);
    out->body = PQgetvalue(res, 0, 5);
    out->body_len = (size_t)PQgetlength(res, 0, 5);
    return STORE_IDEM_REPLAY;
}

/* The parameters of STMT_IDEM_SAVE and its kin: the request, the answer, the hours it is
 * kept; t holds the numbers as text. */
void store_idem_params(const store_idem_request *q, const store_idem_answer *a, char t[2][16],
                       const char *p[11])
{
    snprintf(t[0], 16, "%d", a->status);
    snprintf(t[1], 16, "%d", store_p.cfg->idempotency_hours);
    const char *v[11] = {q->tenant, q->key, q->method, q->path, q->body_sha256, t[0],
                         a->content_type, a->location, a->etag, a->body, t[1]};
    memcpy(p, v, sizeof v);
}

/* Runs statement id of the answer: STORE_IDEM_NEW when it wrote the key's row,
 * STORE_IDEM_BUSY when not, -1 with err. */
static int write_answer(store_conn *c, stmt_id id, const store_idem_request *q,
                        const store_idem_answer *a, seg_error *err)
{
    char t[2][16];
    const char *p[11];
    store_idem_params(q, a, t, p);
    PGresult *res = store_run(c, id, p, err);
    if (!res)
        return -1;
    return strcmp(PQcmdTuples(res), "1") == 0 ? STORE_IDEM_NEW : STORE_IDEM_BUSY;
}

int store_idem_save(store_conn *c, const store_idem_request *q, const store_idem_answer *a,
                    seg_error *err)
{
    return write_answer(c, STMT_IDEM_SAVE, q, a, err);
}

int store_idem_keep(store_conn *c, const store_idem_request *q, const store_idem_answer *a,
                    seg_error *err)
{
    return write_answer(c, STMT_IDEM_KEEP, q, a, err);
}

long long store_idem_purge(void *session, int batch, bool (*stop)(void), seg_error *err)
{
    PGconn *pg = session;
    char b[16];
    snprintf(b, sizeof b, "%d", batch);
    const char *params[1] = {b};
    return session_purge(pg, STMT_IDEM_PURGE, params, batch, stop, "idempotency key purge", err);
}
