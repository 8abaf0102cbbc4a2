/* Member exports: DECLARE a cursor over a segment's members on a borrowed evaluation
 * session, FETCH it in batches from the export's thread, and give the session back. No
 * statement holds the session longer than one FETCH; the transaction (one snapshot: no
 * member twice or missed) lasts as long as the client reads. */
#include "store/export.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/eval_pool.h"
#include "store/eval_sql.h"
#include "store/replica.h"
#include "store/session.h"
#include "store/statements.h"

struct store_export {
    eval_session *s;
    PGcancel *cancel;
    pthread_mutex_t mu;   /* over cancel */
    bool failed;
};

static int begin(store_export *x, const char *sql, const eval_sql *p, seg_error *err)
{
    PGconn *pg = eval_pool_conn(x->s);
    PGresult *r = PQsendQuery(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY") ? session_await(pg) : NULL;
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        PQclear(r);
        r = PQsendQueryParams(pg, sql, p->n, NULL, p->params, NULL, NULL, 0) ? session_await(pg) : NULL;
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            PQclear(r);
            return 0;
        }
    }
    eval_pool_fail(x->s, r, err);
    PQclear(r);
    return -1;
}

int store_export_open(const ev_rule *r, const char *tenant, const char *segment, bool whole,
                      store_export **out, seg_error *err)
{
    eval_sql p = {0}, q = {0};
    const char *fixed[2] = {tenant, segment};
    int rc = -1;
    store_export *x = calloc(1, sizeof *x);
    *out = NULL;
    if (!x) {
        err_set(err, 500, "internal", "out of memory");
        return -1;
    }
    pthread_mutex_init(&x->mu, NULL);
    for (int i = 0; i < 2; i++)
        (void)eval_sql_param(&p, fixed[i]);
    eval_sql_predicate(&p, r);
    /* the rule's matches less the removed, then the added that do not match: the first part
     * can use the rule's indexes (a CASE over both would read every row of the tenant) */
    const char *what = whole ? store_device_json_sql : "d.id";
    eval_sql_put(&q, "DECLARE segmentd_export NO SCROLL CURSOR FOR SELECT ");
    eval_sql_put(&q, what);
    eval_sql_put(&q, " FROM devices d WHERE d.tenant = $1 AND ");
    eval_sql_put(&q, p.text);
    eval_sql_put(&q, " AND NOT EXISTS (SELECT 1 FROM segment_members r WHERE r.tenant = $1 AND "
                     "r.segment = $2 AND r.device = d.id AND NOT r.added) UNION ALL SELECT ");
    eval_sql_put(&q, what);
    eval_sql_put(&q, " FROM segment_members m JOIN devices d ON d.tenant = m.tenant AND d.id = m.device "
                     "WHERE m.tenant = $1 AND m.segment = $2 AND m.added AND NOT coalesce(");
    eval_sql_put(&q, p.text);
    eval_sql_put(&q, ", false)");
    if (p.failed || q.failed) {
        err_set(err, 500, "internal", "out of memory");
        goto out;
    }
    for (int attempt = 0;; attempt++) {
        if (!(x->s = eval_pool_take(err, true)))
            goto out;
        if (!begin(x, q.text, &p, err))
            break;
        bool on_replica = eval_pool_lag(x->s) >= 0;
        eval_pool_give(x->s);
        x->s = NULL;
        if (!on_replica || attempt > 0 ||
            (err->code && !strcmp(err->code, "evaluation_timeout")))
            goto out;
        replica_failed(); /* the replica failed it: once more, on the primary */
        err_clear(err);
    }
    x->cancel = PQgetCancel(eval_pool_conn(x->s));
    *out = x;
    x = NULL;
    rc = 0;
out:
    if (x) {
        pthread_mutex_destroy(&x->mu);
        free(x);
    }
    eval_sql_free(&p);
    eval_sql_free(&q);
    return rc;
}

int store_export_fetch(store_export *x, int n, void (*row)(void *cls, const char *s, size_t len),
                       void *cls, seg_error *err)
{
    char sql[64];
    PGconn *pg = eval_pool_conn(x->s);
    snprintf(sql, sizeof sql, "FETCH %d FROM segmentd_export", n);
    PGresult *r = PQsendQuery(pg, sql) ? session_await(pg) : NULL;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        x->failed = true;
        eval_pool_fail(x->s, r, err);
        PQclear(r);
        return -1;
    }
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++)
        row(cls, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
    PQclear(r);
    return rows;
}

int store_export_lag(const store_export *x)
{
    return eval_pool_lag(x->s);
}

void store_export_cancel(store_export *x)
{
    char why[256];
    pthread_mutex_lock(&x->mu);
    if (x->cancel)
        (void)PQcancel(x->cancel, why, sizeof why);
    pthread_mutex_unlock(&x->mu);
}

void store_export_close(store_export *x)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    PQfreeCancel(x->cancel);
    x->cancel = NULL;
    pthread_mutex_unlock(&x->mu);
    PGconn *pg = eval_pool_conn(x->s);
    PQclear(PQsendQuery(pg, "COMMIT") ? session_await(pg) : NULL); /* a failed one rolls back */
    eval_pool_give(x->s);
    pthread_mutex_destroy(&x->mu);
    free(x);
}
