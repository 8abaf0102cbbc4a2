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
#include "core/metrics.h"
#include "store/session.h"

/* How often a request waiting for an evaluation session looks again. */
#define EVAL_POLL_NS (5u * 1000000u)

struct eval_session {
    store_conn conn;
    PGconn *timed;   /* the session its statement_timeout was set on (a reconnect makes a new one) */
    bool busy;
    bool export;     /* held by a member export */
};

static struct {
    eval_session *s;
    int n;
    int timeout_ms;
    int exports;     /* sessions held by member exports */
    unsigned long long run, busy, timeouts, exported; /* under mu */
    pthread_mutex_t mu;
} ep = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void eval_metrics(metrics_out *o)
{
    pthread_mutex_lock(&ep.mu);
    unsigned long long c[4] = {ep.run, ep.busy, ep.timeouts, ep.exported};
    int in_use = 0;
    for (int i = 0; i < ep.n; i++)
        in_use += ep.s[i].busy;
    pthread_mutex_unlock(&ep.mu);
    metrics_family(o, "segmentd_evaluations_total", "counter",
                   "Evaluation statements run on the evaluation sessions (counts, member pages, previews), member exports started, and evaluations refused (busy) or cut by SEGMENTD_EVAL_TIMEOUT_MS.");
    metrics_sample(o, "segmentd_evaluations_total", "outcome=\"run\"", c[0]);
    metrics_sample(o, "segmentd_evaluations_total", "outcome=\"busy\"", c[1]);
    metrics_sample(o, "segmentd_evaluations_total", "outcome=\"timeout\"", c[2]);
    metrics_sample(o, "segmentd_evaluations_total", "outcome=\"export\"", c[3]);
    metrics_family(o, "segmentd_evaluation_sessions", "gauge",
                   "Evaluation sessions (SEGMENTD_EVAL_CONCURRENCY) by state.");
    metrics_sample(o, "segmentd_evaluation_sessions", "state=\"size\"", (unsigned long long)ep.n);
    metrics_sample(o, "segmentd_evaluation_sessions", "state=\"in_use\"", (unsigned long long)in_use);
}

int eval_pool_init(const seg_config *cfg)
{
    static bool provided;
    if (!provided) /* once per process */
        metrics_provide(eval_metrics);
    provided = true;
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

/* A free session; for an export (held while its client reads) only while the exports
 * would leave one session to the counts (with more than one session). */
static eval_session *take(seg_error *err, bool export)
{
    uint64_t deadline = fiber_now_ns() + (uint64_t)store_p.cfg->pool_wait_ms * 1000000u;
    for (;;) {
        pthread_mutex_lock(&ep.mu);
        bool room = !export || ep.n == 1 || ep.exports < ep.n - 1;
        for (int i = 0; room && i < ep.n; i++) {
            if (!ep.s[i].busy) {
                ep.s[i].busy = true;
                ep.s[i].export = export;
                ep.exports += export;
                if (export)
                    ep.exported++;
                else
                    ep.run++;
                pthread_mutex_unlock(&ep.mu);
                return &ep.s[i];
            }
        }
        pthread_mutex_unlock(&ep.mu);
        uint64_t now = fiber_now_ns();
        if (now >= deadline) {
            pthread_mutex_lock(&ep.mu);
            ep.busy++;
            pthread_mutex_unlock(&ep.mu);
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
    ep.exports -= s->export;
    s->export = false;
    pthread_mutex_unlock(&ep.mu);
}

/* The session connected, with the evaluation's statement_timeout. */
static int ready(eval_session *s, seg_error *err)
{
    if (session_ensure(&s->conn, err))
        return -1;
    if (s->timed == s->conn.pg)
        return 0;
    /* an export's transaction waits on its client between FETCHes: as long as the HTTP
     * connection may stay idle (SEGMENTD_IDLE_TIMEOUT, then it is closed and the export
     * ends), and some */
    char sql[128];
    snprintf(sql, sizeof sql, "SET statement_timeout = %d; SET idle_in_transaction_session_timeout = %d",
             ep.timeout_ms, store_p.cfg->idle_timeout_s * 2000 + 10000);
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
        pthread_mutex_lock(&ep.mu);
        ep.timeouts++;
        pthread_mutex_unlock(&ep.mu);
        err_set(err, 503, "evaluation_timeout",
                "the evaluation ran past its time limit (%d ms); retry later, or narrow the segment",
                ep.timeout_ms);
        err_log(err, "%s", PQresultErrorMessage(r));
        err->retry_after = 5;
    } else {
        session_fail(&s->conn, r, err);
    }
}

eval_session *eval_pool_take(seg_error *err, bool export)
{
    eval_session *s = take(err, export);
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
    eval_session *s = eval_pool_take(err, false);
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
