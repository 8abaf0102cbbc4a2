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
#include "store/replica.h"
#include "store/session.h"

/* Waiters queue first come, first served. A session given back goes straight to the first
 * waiter it may serve; one on the giver's loop (or a thread) is woken then, one on another
 * loop cannot be (a loop's fibers are woken only from that loop) and finds it when it next
 * looks: every EVAL_POLL_NEAR_NS while within the first sessions' count of the queue,
 * every EVAL_POLL_NS further back. */
#define EVAL_POLL_NS (5u * 1000000u)
#define EVAL_POLL_NEAR_NS (1u * 1000000u)

/* An evaluation session: its session on the primary and, with SEGMENTD_DATABASE_READ_URL,
 * one on the read replica; each borrower reads on one of them (at), the replica while
 * store/replica.c says it may. */
typedef struct eval_target {
    store_conn conn;
    PGconn *timed;   /* the session its statement_timeout was set on (a reconnect makes a new one) */
} eval_target;

struct eval_session {
    eval_target primary, replica;
    eval_target *at; /* where the borrower reads: &primary or &replica */
    int lag_ms;      /* the replica's lag when at it, else -1 */
    bool busy;
    bool export;     /* held by a member export */
};

/* A borrower waiting for a session, in the queue (under ep.mu), on its own stack. */
typedef struct eval_waiter {
    struct eval_waiter *next, *prev;
    fiber *f;
    int loop;            /* its loop (fiber_loop_index), or -1: a thread off any loop */
    bool export;
    eval_session *given; /* handed to it by give_back */
} eval_waiter;

static struct {
    eval_session *s;
    int n;
    int timeout_ms;
    int exports;     /* sessions held by member exports */
    eval_waiter *head, *tail;
    int waiting;
    unsigned long long run, busy, timeouts, exported; /* under mu */
    pthread_mutex_t mu;
} ep = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void eval_metrics(metrics_out *o)
{
    pthread_mutex_lock(&ep.mu);
    unsigned long long c[4] = {ep.run, ep.busy, ep.timeouts, ep.exported};
    int in_use = 0, waiting = ep.waiting;
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
                   "Evaluation sessions (SEGMENTD_EVAL_CONCURRENCY) by state, and the borrowers queued for one (waiting).");
    metrics_sample(o, "segmentd_evaluation_sessions", "state=\"size\"", (unsigned long long)ep.n);
    metrics_sample(o, "segmentd_evaluation_sessions", "state=\"in_use\"", (unsigned long long)in_use);
    metrics_sample(o, "segmentd_evaluation_sessions", "state=\"waiting\"", (unsigned long long)waiting);
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
    for (int i = 0; ep.s && i < ep.n; i++)
        ep.s[i].replica.conn.url = cfg->read_url;
    return ep.s ? 0 : -1;
}

void eval_pool_close(void)
{
    for (int i = 0; ep.s && i < ep.n; i++) {
        PQfinish(ep.s[i].primary.conn.pg);
        PQfinish(ep.s[i].replica.conn.pg);
    }
    free(ep.s);
    ep.s = NULL;
    ep.n = 0;
}

/* Whether a session may go to a borrower now (under mu): an export (held while its client
 * reads) only while the exports would leave one session to the counts (with more than one
 * session). */
static bool room_for(bool export)
{
    return !export || ep.n == 1 || ep.exports < ep.n - 1;
}

/* Marks s taken by a borrower (under mu). */
static void hold(eval_session *s, bool export)
{
    s->busy = true;
    s->export = export;
    ep.exports += export;
    if (export)
        ep.exported++;
    else
        ep.run++;
}

static eval_session *free_session(void)
{
    for (int i = 0; i < ep.n; i++)
        if (!ep.s[i].busy)
            return &ep.s[i];
    return NULL;
}

static void dequeue(eval_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        ep.head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        ep.tail = w->prev;
    w->next = w->prev = NULL;
    ep.waiting--;
}

/* The first waiter a session may go to now (under mu), or NULL. */
static eval_waiter *first_served(void)
{
    eval_waiter *w = ep.head;
    while (w && !room_for(w->export))
        w = w->next;
    return w;
}

/* Whether w is among the first n waiters (under mu): the next sessions given back go to them. */
static bool near_front(const eval_waiter *w)
{
    int k = 0;
    for (const eval_waiter *x = ep.head; x && k < ep.n; x = x->next, k++)
        if (x == w)
            return true;
    return false;
}

/* A session for the borrower, first come first served: at once when one is free and nobody
 * waits ahead, else in the queue until give_back hands it one, or SEGMENTD_POOL_WAIT_MS
 * passes (NULL: 503 evaluation_busy). */
static eval_session *take(seg_error *err, bool export)
{
    uint64_t deadline = fiber_now_ns() + (uint64_t)store_p.cfg->pool_wait_ms * 1000000u;
    eval_waiter w = {.f = fiber_self(), .loop = fiber_on() ? fiber_loop_index() : -1,
                     .export = export};
    pthread_mutex_lock(&ep.mu);
    eval_session *s = !first_served() && room_for(export) ? free_session() : NULL;
    if (s) {
        hold(s, export);
        pthread_mutex_unlock(&ep.mu);
        return s;
    }
    w.prev = ep.tail;
    if (ep.tail)
        ep.tail->next = &w;
    else
        ep.head = &w;
    ep.tail = &w;
    ep.waiting++;
    for (;;) {
        uint64_t now = fiber_now_ns(), poll = near_front(&w) ? EVAL_POLL_NEAR_NS : EVAL_POLL_NS;
        if (!w.given && first_served() == &w && (w.given = free_session())) {
            dequeue(&w); /* free, and nobody it may serve waits ahead (room came back) */
            hold(w.given, export);
        }
        if (w.given || now >= deadline)
            break;
        pthread_mutex_unlock(&ep.mu);
        (void)fiber_park(now + poll < deadline ? now + poll : deadline);
        pthread_mutex_lock(&ep.mu);
    }
    s = w.given;
    if (!s) {
        dequeue(&w);
        ep.busy++;
    }
    pthread_mutex_unlock(&ep.mu);
    if (!s) {
        err_set(err, 503, "evaluation_busy",
                "%d evaluations are running already; retry shortly", ep.n);
        err->retry_after = 1;
    }
    return s;
}

/* Gives s back: to the first waiter it may serve (woken when it can be from here), else
 * free. */
static void give_back(eval_session *s)
{
    pthread_mutex_lock(&ep.mu);
    s->busy = false;
    ep.exports -= s->export;
    s->export = false;
    int here = fiber_on() ? fiber_loop_index() : -2;
    for (eval_waiter *w = ep.head; w; w = w->next) {
        if (!room_for(w->export))
            continue;
        dequeue(w);
        hold(s, w->export);
        w->given = s;
        if (w->loop < 0 || w->loop == here)
            fiber_wake(w->f); /* under mu: w cannot have left the queue and its stack */
        break;
    }
    pthread_mutex_unlock(&ep.mu);
}

/* The target's session connected, with the evaluation's statement_timeout. */
static int ready_at(eval_target *t, seg_error *err)
{
    if (session_ensure(&t->conn, err))
        return -1;
    if (t->timed == t->conn.pg)
        return 0;
    /* an export's transaction waits on its client between FETCHes: as long as the HTTP
     * connection may stay idle (SEGMENTD_IDLE_TIMEOUT, then it is closed and the export
     * ends), and some */
    char sql[224];
    /* jit: a count's scan costs past jit_above_cost, and PostgreSQL then compiles every
     * subplan of the statement (the rule's three): 1.7–2.3 s of a 2.8–6.6 s count at
     * 10 million devices, while the same counts without JIT were the fastest in every case */
    snprintf(sql, sizeof sql,
             "SET statement_timeout = %d; SET idle_in_transaction_session_timeout = %d; "
             "SET jit = off",
             ep.timeout_ms, store_p.cfg->idle_timeout_s * 2000 + 10000);
    PGresult *r = PQsendQuery(t->conn.pg, sql) ? session_await(t->conn.pg) : NULL;
    bool ok = session_result_ok(r);
    if (!ok)
        session_fail(&t->conn, r, err);
    PQclear(r);
    if (!ok)
        return -1;
    t->timed = t->conn.pg;
    return 0;
}

/* Picks where the borrower reads: the replica while it may be read and answers, else the
 * primary. 0, or -1 with err (the primary cannot be reached). */
static int ready(eval_session *s, seg_error *err)
{
    s->lag_ms = replica_lag_ms();
    if (s->lag_ms >= 0) {
        seg_error ignored = {0};
        if (ready_at(&s->replica, &ignored) == 0) {
            s->at = &s->replica;
            replica_count_read(true);
            return 0;
        }
        replica_failed();
        s->lag_ms = -1;
    }
    s->at = &s->primary;
    replica_count_read(false);
    return ready_at(&s->primary, err);
}

/* After a failed read on the replica: whether to read the primary instead (the replica's
 * session was lost, or recovery cancelled the query: SQLSTATE class 40 on a standby), and
 * then the replica is marked down. A statement timeout is not retried. */
static bool retry_on_primary(eval_session *s, const PGresult *r)
{
    if (s->at != &s->replica)
        return false;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    bool lost = !r || PQstatus(s->replica.conn.pg) == CONNECTION_BAD;
    if (!lost && !(state && (!strncmp(state, "40", 2) || !strncmp(state, "57P", 3) ||
                            !strncmp(state, "08", 2))))
        return false;
    replica_failed();
    s->replica.conn.broken = true;
    return true;
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
        session_fail(&s->at->conn, r, err);
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
    return s->at->conn.pg;
}

int eval_pool_lag(const eval_session *s)
{
    return s->lag_ms;
}

void eval_pool_give(eval_session *s)
{
    give_back(s);
}

static PGresult *send_await(eval_session *s, const char *sql, int n, const char *const *params)
{
    PGconn *pg = s->at->conn.pg;
    return PQsendQueryParams(pg, sql, n, NULL, params, NULL, NULL, 0) ? session_await(pg) : NULL;
}

PGresult *eval_pool_try_replica(stmt_id id, const char *const *params, int *lag_ms)
{
    int lag = replica_lag_ms();
    if (lag < 0)
        return NULL;
    pthread_mutex_lock(&ep.mu);
    eval_session *s = first_served() ? NULL : free_session(); /* not ahead of the queue */
    if (s)
        s->busy = true;
    pthread_mutex_unlock(&ep.mu);
    if (!s)
        return NULL;
    seg_error ignored = {0};
    PGresult *r = NULL;
    s->at = &s->replica;
    s->lag_ms = lag;
    if (ready_at(&s->replica, &ignored) == 0) {
        r = session_run(s->replica.conn.pg, id, params);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            (void)retry_on_primary(s, r); /* marks the replica down when it failed us */
            PQclear(r);
            r = NULL;
        }
    } else {
        replica_failed();
    }
    if (r) {
        *lag_ms = lag;
        replica_count_read(true);
    }
    give_back(s);
    return r;
}

/* Raises work_mem on s's session for one statement (on), or puts it back (off); a session
 * where that fails is dropped (reconnected on its next use). 0, or -1. */
static int wide_memory(eval_session *s, bool on)
{
    PGconn *pg = s->at->conn.pg;
    PGresult *r = PQsendQueryParams(pg, on ? "SET work_mem = '64MB'" : "RESET work_mem", 0, NULL,
                                    NULL, NULL, NULL, 0) ? session_await(pg) : NULL;
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        s->at->conn.broken = true;
    return ok ? 0 : -1;
}

/* The statement on s, with work_mem raised for it when wide (and put back, whatever came). */
static PGresult *send_await_wide(eval_session *s, const char *sql, int n,
                                 const char *const *params, bool wide)
{
    if (wide && wide_memory(s, true))
        return NULL;
    PGresult *r = send_await(s, sql, n, params);
    if (wide)
        (void)wide_memory(s, false); /* failing, it drops the session; the answer stands */
    return r;
}

PGresult *eval_pool_run(const char *sql, int n, const char *const *params, int *lag_ms,
                        seg_error *err)
{
    return eval_pool_run_wide(sql, n, params, false, lag_ms, err);
}

PGresult *eval_pool_run_wide(const char *sql, int n, const char *const *params, bool wide,
                             int *lag_ms, seg_error *err)
{
    eval_session *s = eval_pool_take(err, false);
    if (!s)
        return NULL;
    PGresult *r = send_await_wide(s, sql, n, params, wide);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && retry_on_primary(s, r)) {
        PQclear(r);
        s->at = &s->primary;
        s->lag_ms = -1;
        replica_count_read(false);
        if (ready_at(&s->primary, err)) {
            give_back(s);
            return NULL;
        }
        r = send_await_wide(s, sql, n, params, wide);
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        eval_pool_fail(s, r, err);
        PQclear(r);
        r = NULL;
    }
    if (lag_ms && r && (*lag_ms < 0 || s->lag_ms > *lag_ms))
        *lag_ms = s->lag_ms;
    give_back(s);
    return r;
}
