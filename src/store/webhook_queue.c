/* The webhook delivery worker's statements on its own session: the claim of due deliveries,
 * each attempt's outcome, a claim given back, the pending count. */
#include "store/webhook_queue.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/session.h"

struct store_whq {
    PGconn *pg;
};

store_whq *store_whq_open(const seg_config *cfg, int timeout_ms)
{
    store_whq *q = calloc(1, sizeof *q);
    if (q && !(q->pg = session_open_own(cfg, timeout_ms, "webhook delivery"))) {
        free(q);
        q = NULL;
    }
    return q;
}

void store_whq_close(store_whq *q)
{
    if (!q)
        return;
    PQfinish(q->pg);
    free(q);
}

void store_wh_claim_free(store_wh_claim *c)
{
    free(c);
}

static int failed(PGconn *pg, PGresult *r, const char *what, seg_error *err)
{
    err_set(err, 503, "unavailable", "the webhook %s failed", what);
    err_log(err, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
    PQclear(r);
    return -1;
}

/* Row i of the claim's result as one block: the struct, then its strings. NULL: no memory. */
static store_wh_claim *claim_of(const PGresult *r, int i)
{
    enum { TENANT, ID, WEBHOOK, ATTEMPTS, URL, SECRET, EVENT, BODY, NCOLS };
    size_t len = sizeof(store_wh_claim);
    for (int k = 0; k < NCOLS; k++)
        len += (size_t)PQgetlength(r, i, k) + 1;
    store_wh_claim *c = malloc(len);
    if (!c)
        return NULL;
    char *p = (char *)(c + 1);
    const char **fields[NCOLS] = {&c->tenant, &c->id, &c->webhook, NULL, &c->url, &c->secret,
                                  &c->event_id, &c->body};
    for (int k = 0; k < NCOLS; k++) {
        if (!fields[k])
            continue;
        size_t n = (size_t)PQgetlength(r, i, k);
        memcpy(p, PQgetvalue(r, i, k), n);
        p[n] = '\0';
        *fields[k] = p;
        p += n + 1;
    }
    c->body_len = (size_t)PQgetlength(r, i, BODY);
    c->attempts = atoi(PQgetvalue(r, i, ATTEMPTS));
    return c;
}

int store_whq_claim(store_whq *q, int max, int per_webhook, const char *busy_json, int lease_ms,
                    store_wh_claim ***out, int *n, seg_error *err)
{
    char m[16], k[16], lease[16];
    snprintf(m, sizeof m, "%d", max);
    snprintf(k, sizeof k, "%d", per_webhook);
    snprintf(lease, sizeof lease, "%d", lease_ms);
    const char *p[4] = {m, k, busy_json, lease};
    *out = NULL;
    *n = 0;
    PGresult *r = session_run(q->pg, STMT_WEBHOOK_CLAIM, p);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return failed(q->pg, r, "claim", err);
    int rows = PQntuples(r);
    store_wh_claim **list = rows ? calloc((size_t)rows, sizeof *list) : NULL;
    for (int i = 0; i < rows && list; i++)
        if (!(list[i] = claim_of(r, i))) {
            /* out of memory: what was claimed stays leased and is retried after the lease */
            for (int j = 0; j < i; j++)
                free(list[j]);
            free(list);
            list = NULL;
        }
    PQclear(r);
    if (rows && !list) {
        err_set(err, 500, "internal", "out of memory");
        return -1;
    }
    *out = list;
    *n = rows;
    return 0;
}

int store_whq_record(store_whq *q, const store_wh_claim *c, const store_wh_outcome *o,
                     seg_error *err)
{
    char attempts[16], status[16], retry[24], window[16], started[24];
    snprintf(attempts, sizeof attempts, "%d", c->attempts);
    snprintf(status, sizeof status, "%d", o->http_status);
    snprintf(retry, sizeof retry, "%lld", o->retry_in_ms);
    snprintf(window, sizeof window, "%d", o->window_s);
    snprintf(started, sizeof started, "%lld", o->started_us);
    const char *p[9] = {c->tenant, c->id, attempts, o->delivered ? "true" : "false",
                        o->http_status ? status : NULL, o->error, retry, window, started};
    PGresult *r = session_run(q->pg, STMT_WEBHOOK_RECORD, p);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return failed(q->pg, r, "outcome", err);
    int rc = PQntuples(r) ? PQgetvalue(r, 0, 0)[0] : 0;
    PQclear(r);
    return rc;
}

int store_whq_release(store_whq *q, const store_wh_claim *c, seg_error *err)
{
    char attempts[16];
    snprintf(attempts, sizeof attempts, "%d", c->attempts);
    const char *p[3] = {c->tenant, c->id, attempts};
    return session_run_count(q->pg, STMT_WEBHOOK_RELEASE, p, "webhook release", err) < 0 ? -1 : 0;
}

long long store_whq_pending(store_whq *q, seg_error *err)
{
    return session_run_count(q->pg, STMT_WEBHOOK_PENDING, NULL, "webhook pending count", err);
}
