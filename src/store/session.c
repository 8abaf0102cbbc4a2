/* PostgreSQL sessions: connecting (without blocking a loop), the session settings and
 * prepared statements of every new session, and waiting for answers. */
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fiber.h"
#include "core/log.h"
#include "store/sqlstate.h"
#include "store/session.h"

/* Opens a session with keepalives and timeouts; the user's URL (url, or NULL: the primary's,
 * SEGMENTD_DATABASE_URL) comes last so that anything it sets wins over these defaults (libpq:
 * the last keyword processed wins). */
static PGconn *connect_params(const seg_config *cfg, const char *url, bool start)
{
    if (!url)
        url = cfg->database_url;
    const char *keys[] = {"application_name", "connect_timeout", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                          "dbname", NULL};
    const char *vals[] = {"segmentd", "5", "1", "30", "10", "3", "30000", url ? url : "", NULL};
    if (!url)
        keys[7] = NULL;
    return start ? PQconnectStartParams(keys, vals, 1) : PQconnectdbParams(keys, vals, 1);
}

PGconn *store_connect_raw(const seg_config *cfg)
{
    return connect_params(cfg, NULL, false);
}

PGconn *session_open_own(const seg_config *cfg, int statement_timeout_ms, const char *who)
{
    return session_open_own_at(cfg, NULL, statement_timeout_ms, who);
}

PGconn *session_open_own_at(const seg_config *cfg, const char *url, int statement_timeout_ms,
                            const char *who)
{
    char timeout[16], idle[16];
    const char *params[2] = {timeout, idle};
    PGconn *pg = connect_params(cfg, url, false);
    snprintf(timeout, sizeof timeout, "%d", statement_timeout_ms);
    snprintf(idle, sizeof idle, "%d", statement_timeout_ms * 2);
    PGresult *r = pg && PQstatus(pg) == CONNECTION_OK ? session_run(pg, STMT_SESSION_SETUP, params) : NULL;
    if (session_result_ok(r)) {
        PQclear(r);
        return pg;
    }
    if (who)
        log_msg(LOG_WARN, "no database session", "for", who, "detail",
                pg ? PQerrorMessage(pg) : "out of memory", NULL);
    PQclear(r);
    PQfinish(pg);
    return NULL;
}

/* connect_timeout as the session's options say (the URL may set it), in ms. */
static int connect_timeout_ms(PGconn *pg)
{
    int ms = 5000;
    PQconninfoOption *o = PQconninfo(pg);
    for (PQconninfoOption *i = o; i && i->keyword; i++)
        if (!strcmp(i->keyword, "connect_timeout") && i->val && atoi(i->val) > 0)
            ms = atoi(i->val) * 1000;
    PQconninfoFree(o);
    return ms;
}

/* Connects with PQconnectPoll, waiting on the socket (yielding on a fiber), bounded by
 * connect_timeout as PQconnectdb is; the session is left non-blocking. */
static PGconn *connect_session(const char *url)
{
    PGconn *pg = connect_params(store_p.cfg, url, true);
    if (!pg || PQstatus(pg) == CONNECTION_BAD)
        return pg;
    uint64_t deadline = fiber_now_ns() + (uint64_t)connect_timeout_ms(pg) * 1000000u;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        int ev = fiber_wait_fd(PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
                               deadline);
        if (ev <= 0) {
            PQfinish(pg);
            return NULL;
        }
        st = PQconnectPoll(pg);
    }
    if (st == PGRES_POLLING_OK && PQsetnonblocking(pg, 1)) {
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

bool session_result_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

PGresult *session_await(PGconn *pg)
{
    PGresult *keep = NULL, *r;
    int f;
    while ((f = PQflush(pg)) == 1) {
        int ev = fiber_wait_fd(PQsocket(pg), POLLIN | POLLOUT, 0);
        if (ev < 0 || ((ev & POLLIN) && !PQconsumeInput(pg)))
            return NULL;
    }
    if (f < 0)
        return NULL;
    for (;;) {
        while (PQisBusy(pg))
            if (fiber_wait_fd(PQsocket(pg), POLLIN, 0) < 0 || !PQconsumeInput(pg)) {
                PQclear(keep);
                return NULL;
            }
        if (!(r = PQgetResult(pg)))
            return keep;
        if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            PQclear(keep);
            keep = r;
        }
    }
}

int session_send(PGconn *pg, stmt_id id, const char *const *params)
{
    const stmt_def *s = &store_statements[id];
    return s->name ? PQsendQueryPrepared(pg, s->name, s->nparams, params, NULL, NULL, 0)
                   : PQsendQueryParams(pg, s->sql, s->nparams, NULL, params, NULL, NULL, 0);
}

PGresult *session_run(PGconn *pg, stmt_id id, const char *const *params)
{
    return session_send(pg, id, params) ? session_await(pg) : NULL;
}

long long session_run_count(PGconn *pg, stmt_id id, const char *const *params, const char *what,
                            seg_error *err)
{
    PGresult *r = session_run(pg, id, params);
    bool counted = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (!r || (PQresultStatus(r) != PGRES_COMMAND_OK && !counted)) {
        err_set(err, 503, "unavailable", "the %s failed", what);
        err_log(err, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
        PQclear(r);
        return -1;
    }
    long long n = strtoll(counted ? PQgetvalue(r, 0, 0) : PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return n;
}

long long session_purge(PGconn *pg, stmt_id id, const char *const *params, long long batch,
                        bool (*stop)(void), const char *what, seg_error *err)
{
    long long total = 0;
    for (;;) {
        long long n = session_run_count(pg, id, params, what, err);
        if (n < 0)
            return -1;
        total += n;
        if (n < batch || (stop && stop()))
            return total;
    }
}

int session_flush_reading(PGconn *pg)
{
    for (;;) {
        int f = PQflush(pg);
        if (f <= 0)
            return f;
        int ev = fiber_wait_fd(PQsocket(pg), POLLIN | POLLOUT,
                               fiber_now_ns() +
                                   (uint64_t)(store_p.cfg->statement_timeout_ms + 1000) * 1000000u);
        if (ev <= 0 || ((ev & POLLIN) && !PQconsumeInput(pg)))
            return -1;
    }
}

PGresult *session_next_result(PGconn *pg)
{
    while (PQisBusy(pg))
        if (fiber_wait_fd(PQsocket(pg), POLLIN, 0) < 0 || !PQconsumeInput(pg))
            return NULL;
    return PQgetResult(pg);
}

/* The settings every session runs with, then every prepared statement of the table. */
static int session_setup(store_conn *c, seg_error *err)
{
    char timeout[16], idle[16];
    snprintf(timeout, sizeof timeout, "%d", store_p.cfg->statement_timeout_ms);
    snprintf(idle, sizeof idle, "%d", store_p.cfg->statement_timeout_ms * 2);
    const char *params[2] = {timeout, idle};
    PGresult *r = session_run(c->pg, STMT_SESSION_SETUP, params);
    if (!session_result_ok(r)) {
        err_log(err, "session setup: %s", PQerrorMessage(c->pg));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    for (int i = 0; i < STMT__COUNT; i++) {
        const stmt_def *s = &store_statements[i];
        if (!s->name)
            continue;
        r = PQsendPrepare(c->pg, s->name, s->sql, s->nparams, NULL) ? session_await(c->pg) : NULL;
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            err_log(err, "prepare %s: %s", s->name, r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg));
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    c->prepared = true;
    return 0;
}

/* An idle session has nothing to say; a readable socket means the server closed it
 * (restart, pg_terminate_backend: it sends an error, then EOF). Checking costs one
 * poll(2) and turns "the next request on that connection fails" into a reconnect. */
static bool idle_socket_readable(PGconn *pg)
{
    struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
    return pfd.fd < 0 || poll(&pfd, 1, 0) != 0;
}

int session_ensure(store_conn *c, seg_error *err)
{
    if (c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK && c->prepared &&
        !idle_socket_readable(c->pg)) {
        if (PQtransactionStatus(c->pg) == PQTRANS_IDLE)
            return 0;
        PQclear(session_run(c->pg, STMT_ROLLBACK, NULL));
        if (PQtransactionStatus(c->pg) == PQTRANS_IDLE)
            return 0;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
        STAT_ADD(reconnects);
    }
    c->broken = false;
    c->prepared = false;
    c->pg = connect_session(c->url);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        err_log(err, "connect: %s", c->pg ? PQerrorMessage(c->pg) : "out of memory");
        if (c->pg)
            PQfinish(c->pg);
        c->pg = NULL;
        pool_unavailable(err, "database_unavailable", "the database is not reachable; retry shortly");
        return -1;
    }
    if (session_setup(c, err)) {
        PQfinish(c->pg);
        c->pg = NULL;
        pool_unavailable(err, "database_unavailable", "the database is not ready; retry shortly");
        return -1;
    }
    return 0;
}

void session_fail(store_conn *c, PGresult *r, seg_error *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg);
    err_log(err, "sqlstate %s: %s", state ? state : "none", msg ? msg : "");
    if (store_sqlstate_map(state, PQstatus(c->pg) == CONNECTION_BAD, err))
        c->broken = true;
    STAT_ADD(errors);
}

store_conn *session_borrow(seg_error *err)
{
    store_conn *c = slots_take(err);
    if (c)
        c->tx_depth = 0; /* session_ensure ends what a last borrower left open */
    if (c && session_ensure(c, err)) {
        STAT_ADD(errors);
        slots_put(c);
        return NULL;
    }
    return c;
}
