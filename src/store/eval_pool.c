/* The evaluation sessions: SEGMENTD_EVAL_CONCURRENCY PostgreSQL sessions apart from the
 * request pool, each running one count, member page or preview at a time under its own
 * statement_timeout. They cap how many evaluations run at once, and keep a burst of counts
 * (each holding a session for up to seconds) off the sessions CRUD requests use. Any loop's
 * fiber may take one: a session is used by one fiber at a time, its socket waited on by the
 * loop that fiber runs on. */
#include "store/eval_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fiber.h"
#include "store/session.h"

/* How often a request waiting for an evaluation session looks again. */
#define EVAL_POLL_NS (5u * 1000000u)

struct eval_session {
    store_conn conn;
    PGconn *timed;   /* the session its statement_timeout was set on (a reconnect makes a new one) */
    bool busy;
};

static struct {
    eval_session *s;
    int n;
    int timeout_ms;
    pthread_mutex_t mu;
} ep = {.mu = PTHREAD_MUTEX_INITIALIZER};

int eval_pool_init(const seg_config *cfg)
{
    ep.n = cfg->eval_concurrency > 0 ? cfg->eval_concurrency : 1;
    ep.timeout_ms = cfg->eval_timeout_ms;
    ep.s = calloc((size_t)ep.n, sizeof *ep.s);
    return ep.s ? 0 : -1;
}

void eval_pool_close(void)
{
    for (int i = 0; ep.s && i < ep.n; i++)
        if (ep.s[i].conn.pg)
            PQfinish(ep.s[i].conn.pg);
    free(ep.s);
    ep.s = NULL;
    ep.n = 0;
}

static eval_session *take(seg_error *err)
{
    uint64_t deadline = fiber_now_ns() + (uint64_t)store_p.cfg->pool_wait_ms * 1000000u;
    for (;;) {
        pthread_mutex_lock(&ep.mu);
        for (int i = 0; i < ep.n; i++) {
            if (!ep.s[i].busy) {
                ep.s[i].busy = true;
                pthread_mutex_unlock(&ep.mu);
                return &ep.s[i];
            }
        }
        pthread_mutex_unlock(&ep.mu);
        uint64_t now = fiber_now_ns();
        if (now >= deadline) {
            err_set(err, 503, "evaluation_busy",
                    "%d evaluations are running already; retry shortly", ep.n);
            err->retry_after = 1;
            return NULL;
        }
        (void)fiber_park(now + EVAL_POLL_NS < deadline ? now + EVAL_POLL_NS : deadline);
    }
}

static void give_back(eval_session *s)
{
    pthread_mutex_lock(&ep.mu);
    s->busy = false;
    pthread_mutex_unlock(&ep.mu);
}

/* The session connected, with the evaluation's statement_timeout. */
static int ready(eval_session *s, seg_error *err)
{
    if (session_ensure(&s->conn, err))
        return -1;
    if (s->timed == s->conn.pg)
        return 0;
    char sql[64];
    snprintf(sql, sizeof sql, "SET statement_timeout = %d", ep.timeout_ms);
    PGresult *r = PQsendQuery(s->conn.pg, sql) ? session_await(s->conn.pg) : NULL;
    bool ok = session_result_ok(r);
    if (!ok)
        session_fail(&s->conn, r, err);
    PQclear(r);
    if (!ok)
        return -1;
    s->timed = s->conn.pg;
    return 0;
}

void eval_pool_fail(eval_session *s, PGresult *r, seg_error *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "57014") == 0) {
        err_set(err, 503, "evaluation_timeout",
                "the evaluation ran past its time limit (%d ms); retry later, or narrow the segment",
                ep.timeout_ms);
        err_log(err, "%s", PQresultErrorMessage(r));
        err->retry_after = 5;
    } else {
        session_fail(&s->conn, r, err);
    }
}

eval_session *eval_pool_take(seg_error *err)
{
    eval_session *s = take(err);
    if (s && ready(s, err)) {
        give_back(s);
        return NULL;
    }
    return s;
}

PGconn *eval_pool_conn(eval_session *s)
{
    return s->conn.pg;
}

void eval_pool_give(eval_session *s)
{
    give_back(s);
}

PGresult *eval_pool_run(const char *sql, int n, const char *const *params, seg_error *err)
{
    eval_session *s = eval_pool_take(err);
    if (!s)
        return NULL;
    PGresult *r = PQsendQueryParams(s->conn.pg, sql, n, NULL, params, NULL, NULL, 0)
                      ? session_await(s->conn.pg)
                      : NULL;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        eval_pool_fail(s, r, err);
        PQclear(r);
        r = NULL;
    }
    give_back(s);
    return r;
}
