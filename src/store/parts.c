/* One transaction sent in parts on a session of its own (store_parts_*): a libpq pipeline of
 * BEGIN, the parts as the caller has them, COMMIT or ROLLBACK and one Sync. */
#include <libpq-fe.h>
#include <string.h>

#include "store/store_private.h"
#include "store/batch.h"
#include "store/session.h"

static store_conn *parts_slot(store_conn *c)
{
    return c && c->handle ? c->own : c;
}

/* Sends what libpq holds without waiting and reads what the server answered meanwhile:
 * a part's rows are not read until the end, and a server blocked on writing them would
 * stop executing the next part. */
static int parts_sent_one(store_conn *s, int ok, seg_error *err)
{
    if (!ok || PQflush(s->pg) < 0 || !PQconsumeInput(s->pg)) {
        s->parts_lost = true;
        session_fail(s, NULL, err);
        return -1;
    }
    s->parts_sent++;
    return 0;
}

int store_parts_begin(store_conn *c, seg_error *err)
{
    store_conn *s = store_slot_for(c, err);
    if (!s)
        return -1;
    s->parts_sent = 0;
    s->parts_lost = false;
    if (!PQenterPipelineMode(s->pg)) {
        session_fail(s, NULL, err);
        return -1;
    }
    /* inside a transaction of c (an Idempotency-Key's): a savepoint, ended by a release */
    s->parts_nested = s->tx_depth > 0;
    return parts_sent_one(s, session_send(s->pg, s->parts_nested ? STMT_SAVEPOINT : STMT_BEGIN, NULL), err);
}

int store_parts_send(store_conn *c, stmt_id id, const char *const *params, seg_error *err)
{
    store_conn *s = parts_slot(c);
    if (!s || !s->pg || s->parts_lost || PQpipelineStatus(s->pg) == PQ_PIPELINE_OFF) {
        pool_unavailable(err, "database_unavailable", "the database connection was lost; retry shortly");
        return -1;
    }
    if (parts_sent_one(s, session_send(s->pg, id, params), err))
        return -1;
    store_segments_written(id, params); /* before the commit: the watch sees it after */
    STAT_ADD(parts);
    return 0;
}

int store_parts_end(store_conn *c, bool commit, store_rows **rows, int nrows, seg_error *err)
{
    store_conn *s = parts_slot(c);
    PGresult *fail = NULL;
    bool committed = false;
    for (int k = 0; k < nrows; k++)
        rows[k] = NULL;
    if (!s || !s->pg || PQpipelineStatus(s->pg) == PQ_PIPELINE_OFF)
        return -1; /* store_parts_begin failed: err tells why */
    PGconn *pg = s->pg;
    bool nested = s->parts_nested;
    stmt_id end = nested ? (commit ? STMT_RELEASE : STMT_ROLLBACK_TO) : (commit ? STMT_COMMIT : STMT_ROLLBACK);
    bool lost = s->parts_lost || !session_send(pg, end, NULL) || !PQpipelineSync(pg);
    if (!lost)
        (void)session_flush_reading(pg); /* on failure still read what came back: the COMMIT's answer may */
    /* BEGIN, the parts, COMMIT or ROLLBACK: each a result and a NULL; then the Sync */
    for (int q = 0; q <= s->parts_sent && !lost; q++) {
        PGresult *r = batch_pipeline_result(pg);
        if (!r) {
            lost = true;
            break;
        }
        if (session_result_ok(r) && q >= 1 && q < s->parts_sent && q - 1 < nrows) {
            rows[q - 1] = (store_rows *)(void *)r;
        } else if (!session_result_ok(r) && PQresultStatus(r) != PGRES_PIPELINE_ABORTED && !fail) {
            fail = r;
        } else {
            /* COMMIT answered COMMIT (not ROLLBACK): the parts are durable, whatever
             * happens to the session from here on (a shutdown of PostgreSQL after the commit
             * and before the Sync's answer is not a failure of this request); nested, they
             * are released into the outer transaction, whose commit decides */
            committed = commit && q == s->parts_sent && !fail && PQresultStatus(r) == PGRES_COMMAND_OK &&
                        !strcmp(PQcmdStatus(r), nested ? "RELEASE" : "COMMIT");
            PQclear(r);
        }
    }
    lost = batch_pipeline_close(s, lost);
    /* a failed part leaves the transaction aborted (nested: back to the savepoint, the outer
     * one goes on) */
    if (!lost && !nested && PQtransactionStatus(pg) != PQTRANS_IDLE)
        PQclear(session_run(pg, STMT_ROLLBACK, NULL));
    else if (!lost && nested && PQtransactionStatus(pg) == PQTRANS_INERROR)
        PQclear(session_run(pg, STMT_ROLLBACK_TO, NULL));
    s->parts_nested = false;
    s->parts_sent = 0;
    s->parts_lost = false;
    if (committed) {
        PQclear(fail);
        return 0;
    }
    int rc = lost || fail || commit ? -1 : 0;
    if (rc && !err->status) {
        if (lost || fail)
            session_fail(s, fail, err);
        else
            pool_unavailable(err, "database_busy", "the database rolled the request back; retry shortly");
    }
    PQclear(fail);
    for (int k = 0; k < nrows; k++) {
        PQclear(store_res(rows[k]));
        rows[k] = NULL;
    }
    return rc;
}
