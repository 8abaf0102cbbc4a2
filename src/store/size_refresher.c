/* The size refresher: a background worker that counts, every SEGMENTD_SIZE_REFRESH_S, the
 * active segments whose size is older than that (those never counted first) and keeps each
 * count as the segment's size. A tenant's segments are counted up to REFRESH_CHUNK in one
 * scan of its devices (one count(*) FILTER per segment), so refreshing many segments costs
 * about as many scans as chunks, not as segments. */
#include "store/size_refresher.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "eval/rule.h"
#include "store/eval_sql.h"
#include "store/session.h"
#include "store/statements.h"
#include "store/worker.h"

#define REFRESH_DUE "1000"    /* segments read due at once */
#define REFRESH_CHUNK 32      /* segments counted by one scan */

static struct {
    store_worker w;
    char period[16];
    atomic_ullong passes, failures, refreshed;
} rf;

static void refresher_metrics(metrics_out *o)
{
    metrics_family(o, "segmentd_size_refreshes_total", "counter",
                   "segment sizes counted by this process's size refresher (SEGMENTD_SIZE_REFRESH_S)");
    metrics_sample(o, "segmentd_size_refreshes_total", "", atomic_load(&rf.refreshed));
    metrics_family(o, "segmentd_size_refresh_failures_total", "counter",
                   "passes of the size refresher that a database error ended");
    metrics_sample(o, "segmentd_size_refresh_failures_total", "", atomic_load(&rf.failures));
}

static PGresult *run_text(PGconn *pg, stmt_id id, const char *const *params)
{
    const stmt_def *s = &store_statements[id];
    return PQexecParams(pg, s->sql, s->nparams, NULL, params, NULL, NULL, 0);
}

/* One due segment, read from the due rows. */
typedef struct due_seg {
    const char *tenant, *id;
    bool v1;
    ev_rule rule;
    char *pred;          /* its predicate's text */
    int id_param;        /* $n of its id */
} due_seg;

/* Counts the chunk's segments in one scan and keeps their sizes. -1 on a database error. */
static int count_chunk(PGconn *pg, due_seg *segs, int n)
{
    eval_sql p = {0}, q = {0};
    int rc = -1;
    (void)eval_sql_param(&p, segs[0].tenant);
    for (int i = 0; i < n; i++) {
        segs[i].id_param = eval_sql_param(&p, segs[i].id);
        size_t before = p.len;
        eval_sql_predicate(&p, &segs[i].rule);
        if (p.failed || !(segs[i].pred = strndup(p.text + before, p.len - before)))
            goto out;
        p.len = before;
        p.text[before] = '\0';
    }
    eval_sql_put(&q, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')");
    for (int i = 0; i < n; i++) {
        eval_sql_put(&q, ", count(*) FILTER (WHERE ");
        eval_sql_put(&q, segs[i].pred);
        eval_sql_put(&q, ")");
    }
    for (int i = 0; i < n; i++) {
        eval_sql_put_adjustment(&q, segs[i].id_param, segs[i].pred, false);
        eval_sql_put_adjustment(&q, segs[i].id_param, segs[i].pred, true);
    }
    eval_sql_put(&q, " FROM devices d WHERE d.tenant = $1");
    if (q.failed)
        goto out;
    PGresult *r = PQexecParams(pg, q.text, p.n, NULL, p.params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        log_msg(LOG_WARN, "size refresher: a count failed", "error", PQresultErrorMessage(r), NULL);
        PQclear(r);
        goto out;
    }
    rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        long long c = atoll(PQgetvalue(r, 0, 1 + i)) - atoll(PQgetvalue(r, 0, 1 + n + 2 * i)) +
                      atoll(PQgetvalue(r, 0, 2 + n + 2 * i));
        char count[24];
        snprintf(count, sizeof count, "%lld", c < 0 ? 0 : c);
        const char *wp[5] = {segs[i].tenant, segs[i].id, count, "exact", PQgetvalue(r, 0, 0)};
        PGresult *w = run_text(pg, segs[i].v1 ? STMT_SIZE_V1 : STMT_SIZE_AUD, wp);
        rc = PQresultStatus(w) == PGRES_COMMAND_OK ? 0 : -1;
        PQclear(w);
        if (rc == 0)
            atomic_fetch_add(&rf.refreshed, 1);
    }
    PQclear(r);
out:
    eval_sql_free(&p);
    eval_sql_free(&q);
    return rc;
}

/* Refreshes the due rows of res; -1 on a database error. */
static int refresh_rows(store_worker *w, PGconn *pg, PGresult *res)
{
    int rows = PQntuples(res), rc = 0;
    due_seg *segs = calloc(REFRESH_CHUNK, sizeof *segs);
    if (!segs)
        return -1;
    for (int i = 0; i < rows && rc == 0 && !store_worker_stopping(w);) {
        int n = 0;
        const char *tenant = PQgetvalue(res, i, 0);
        for (; i < rows && n < REFRESH_CHUNK && strcmp(PQgetvalue(res, i, 0), tenant) == 0; i++) {
            seg_error err;
            due_seg *d = &segs[n];
            memset(d, 0, sizeof *d);
            err_clear(&err);
            d->tenant = tenant;
            d->v1 = PQgetvalue(res, i, 1)[0] == 't';
            d->id = PQgetvalue(res, i, 2);
            const char *rule = PQgetvalue(res, i, 3);
            size_t len = (size_t)PQgetlength(res, i, 3);
            if ((d->v1 ? ev_rule_v1(rule, len, &d->rule, &err) : ev_rule_aud(rule, len, &d->rule, &err)) == 0)
                n++;
            else
                log_msg(LOG_WARN, "size refresher: a stored rule could not be read", "segment", d->id, NULL);
        }
        if (n)
            rc = count_chunk(pg, segs, n);
        for (int k = 0; k < n; k++) {
            ev_rule_free(&segs[k].rule);
            free(segs[k].pred);
        }
    }
    free(segs);
    return rc;
}

static void pass(store_worker *w)
{
    PGconn *pg = store_worker_session(w);
    if (!pg)
        return;
    atomic_fetch_add(&rf.passes, 1);
    PGresult *l = run_text(pg, STMT_SIZE_LOCK, NULL);
    bool mine = PQresultStatus(l) == PGRES_TUPLES_OK && PQgetvalue(l, 0, 0)[0] == 't';
    PQclear(l);
    if (!mine)
        return; /* another process refreshes now */
    const char *params[2] = {rf.period, REFRESH_DUE};
    bool failed = false;
    while (!store_worker_stopping(w) && !failed) {
        PGresult *due = run_text(pg, STMT_SIZE_DUE, params);
        int rows = PQresultStatus(due) == PGRES_TUPLES_OK ? PQntuples(due) : -1;
        failed = rows < 0 || refresh_rows(w, pg, due) != 0;
        PQclear(due);
        if (rows < atoi(REFRESH_DUE))
            break;
    }
    if (failed) {
        atomic_fetch_add(&rf.failures, 1);
        store_worker_drop(w); /* the lock goes with the session */
        return;
    }
    PQclear(run_text(pg, STMT_SIZE_UNLOCK, NULL));
}

int store_size_refresher_start(const seg_config *cfg, seg_error *err)
{
    static bool provided;
    if (!provided)
        metrics_provide(refresher_metrics);
    provided = true;
    if (cfg->size_refresh_s <= 0)
        return 0;
    snprintf(rf.period, sizeof rf.period, "%d", cfg->size_refresh_s);
    return store_worker_run(&rf.w, "size refresher", cfg,
                            cfg->size_refresh_s, cfg->eval_timeout_ms, pass, err);
}

void store_size_refresher_stop(void)
{
    store_worker_stop(&rf.w);
}
