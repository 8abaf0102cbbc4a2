/* The connection pool: a fixed array of slots guarded by one mutex, a condition
 * variable on CLOCK_MONOTONIC for bounded waits, lazy (re)connection with the
 * statements prepared on every new session. */
#include "store/store.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/store_private.h"

struct store_conn {
    PGconn *pg;
    bool in_use;
    bool prepared;
    bool broken;
};

struct store_rows {
    PGresult *res;
};

static const seg_config *pcfg;
static store_conn *slots;
static int nslots;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static store_stats stats;

int store_init(const seg_config *cfg, seg_error *err)
{
    pthread_condattr_t ca;
    pcfg = cfg;
    nslots = cfg->pool_size;
    slots = calloc((size_t)nslots, sizeof *slots);
    if (!slots) {
        err_set(err, 1, "store", "out of memory");
        return -1;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    pthread_condattr_destroy(&ca);
    stats.size = nslots;
    return 0;
}

void store_close(void)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nslots; i++) {
        if (slots[i].pg)
            PQfinish(slots[i].pg);
        slots[i].pg = NULL;
    }
    free(slots);
    slots = NULL;
    nslots = 0;
    pthread_mutex_unlock(&mu);
}

/* Opens a session with keepalives and timeouts; the user's URL comes last so that
 * anything it sets wins over these defaults (libpq: the last keyword processed wins). */
PGconn *store_connect_raw(const seg_config *cfg)
{
    const char *keys[] = {"application_name", "connect_timeout", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                          "dbname", NULL};
    const char *vals[] = {"segmentd", "5", "1", "30", "10", "3", "30000",
                          cfg->database_url ? cfg->database_url : "", NULL};
    if (!cfg->database_url)
        keys[7] = NULL;
    return PQconnectdbParams(keys, vals, 1);
}

static int session_setup(store_conn *c, seg_error *err)
{
    char sql[160];
    PGresult *r;
    snprintf(sql, sizeof sql,
             "SET statement_timeout = %d; SET idle_in_transaction_session_timeout = %d; "
             "SET TIME ZONE 'UTC'",
             pcfg->statement_timeout_ms, pcfg->statement_timeout_ms * 2);
    r = PQexec(c->pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        err_log(err, "session setup: %s", PQerrorMessage(c->pg));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    for (int i = 0; i < STMT__COUNT; i++) {
        const stmt_def *s = &store_statements[i];
        r = PQprepare(c->pg, s->name, s->sql, s->nparams, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            /* schema_migrations may not exist before migrating: not fatal for others */
            err_log(err, "prepare %s: %s", s->name, PQresultErrorMessage(r));
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    c->prepared = true;
    return 0;
}

static void unavailable(seg_error *err, const char *code, const char *detail)
{
    err_set(err, 503, code, "%s", detail);
    err->retry_after = 1;
}

/* An idle session has nothing to say; a readable socket means the server closed it
 * (restart, pg_terminate_backend: it sends an error, then EOF). Checking costs one
 * poll(2) and turns "the next request on that connection fails" into a reconnect. */
static bool idle_socket_readable(PGconn *pg)
{
    struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
    return pfd.fd < 0 || poll(&pfd, 1, 0) != 0;
}

static int ensure_connected(store_conn *c, seg_error *err)
{
    if (c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK && c->prepared &&
        !idle_socket_readable(c->pg)) {
        if (PQtransactionStatus(c->pg) == PQTRANS_IDLE)
            return 0;
        PQclear(PQexec(c->pg, "ROLLBACK"));
        if (PQtransactionStatus(c->pg) == PQTRANS_IDLE)
            return 0;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
        __atomic_fetch_add(&stats.reconnects, 1, __ATOMIC_RELAXED);
    }
    c->broken = false;
    c->prepared = false;
    c->pg = store_connect_raw(pcfg);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        err_log(err, "connect: %s", c->pg ? PQerrorMessage(c->pg) : "out of memory");
        if (c->pg)
            PQfinish(c->pg);
        c->pg = NULL;
        unavailable(err, "database_unavailable", "the database is not reachable; retry shortly");
        return -1;
    }
    if (session_setup(c, err)) {
        PQfinish(c->pg);
        c->pg = NULL;
        unavailable(err, "database_unavailable", "the database is not ready; retry shortly");
        return -1;
    }
    return 0;
}

store_conn *store_acquire(seg_error *err)
{
    struct timespec deadline;
    store_conn *c = NULL;
    bool waited = false;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += pcfg->pool_wait_ms / 1000;
    deadline.tv_nsec += (long)(pcfg->pool_wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&mu);
    for (;;) {
        /* prefer a connected slot, then any free one */
        for (int i = 0; i < nslots && !c; i++)
            if (!slots[i].in_use && slots[i].pg)
                c = &slots[i];
        for (int i = 0; i < nslots && !c; i++)
            if (!slots[i].in_use)
                c = &slots[i];
        if (c)
            break;
        waited = true;
        if (pthread_cond_timedwait(&cv, &mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&mu);
            __atomic_fetch_add(&stats.waits, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&stats.timeouts, 1, __ATOMIC_RELAXED);
            unavailable(err, "pool_exhausted", "all database connections are busy; retry shortly");
            err_log(err, "no connection free within %d ms", pcfg->pool_wait_ms);
            return NULL;
        }
    }
    c->in_use = true;
    stats.in_use++;
    pthread_mutex_unlock(&mu);
    if (waited)
        __atomic_fetch_add(&stats.waits, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&stats.acquired, 1, __ATOMIC_RELAXED);
    if (ensure_connected(c, err)) {
        __atomic_fetch_add(&stats.errors, 1, __ATOMIC_RELAXED);
        store_release(c);
        return NULL;
    }
    return c;
}

void store_release(store_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&mu);
    c->in_use = false;
    stats.in_use--;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

/* SQLSTATE → HTTP. Classes from PostgreSQL's errcodes appendix. */
static void map_error(store_conn *c, PGresult *r, seg_error *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg);
    err_log(err, "sqlstate %s: %s", state ? state : "none", msg ? msg : "");
    if (PQstatus(c->pg) == CONNECTION_BAD || !state || !strncmp(state, "08", 2) ||
        !strncmp(state, "57P", 3)) {
        c->broken = true;
        unavailable(err, "database_unavailable", "the database connection was lost; retry shortly");
    } else if (!strcmp(state, "57014")) {
        unavailable(err, "database_timeout", "the database did not answer in time; retry shortly");
    } else if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strncmp(state, "53", 2) ||
               !strcmp(state, "55P03")) {
        unavailable(err, "database_busy", "the database is busy; retry shortly");
    } else if (!strcmp(state, "23505")) {
        err_set(err, 409, "conflict", "a segment with this id already exists");
    } else if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2)) {
        err_set(err, 422, "rejected_by_database", "the database refused a value: %s",
                state[1] == '2' ? "out of range or malformed" : "constraint violated");
    } else {
        err_set(err, 500, "internal", "the database reported an unexpected error");
    }
    __atomic_fetch_add(&stats.errors, 1, __ATOMIC_RELAXED);
}

int store_exec(store_conn *c, stmt_id id, const char *const *params, store_rows **out,
               seg_error *err)
{
    const stmt_def *s = &store_statements[id];
    PGresult *r = PQexecPrepared(c->pg, s->name, s->nparams, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        map_error(c, r, err);
        PQclear(r);
        return -1;
    }
    if (out) {
        store_rows *rows = malloc(sizeof *rows);
        if (!rows) {
            PQclear(r);
            err_set(err, 500, "internal", "out of memory");
            return -1;
        }
        rows->res = r;
        *out = rows;
    } else {
        PQclear(r);
    }
    return 0;
}

static int simple(store_conn *c, const char *sql, seg_error *err)
{
    PGresult *r = PQexec(c->pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        map_error(c, r, err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

int store_begin(store_conn *c, seg_error *err)
{
    return simple(c, "BEGIN", err);
}

int store_commit(store_conn *c, seg_error *err)
{
    return simple(c, "COMMIT", err);
}

void store_rollback(store_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_OK)
        PQclear(PQexec(c->pg, "ROLLBACK"));
}

int store_rows_count(const store_rows *r)
{
    return PQntuples(r->res);
}

const char *store_value(const store_rows *r, int row, int col)
{
    return PQgetvalue(r->res, row, col);
}

size_t store_length(const store_rows *r, int row, int col)
{
    return (size_t)PQgetlength(r->res, row, col);
}

bool store_is_null(const store_rows *r, int row, int col)
{
    return PQgetisnull(r->res, row, col) != 0;
}

long long store_ll(const store_rows *r, int row, int col)
{
    return strtoll(PQgetvalue(r->res, row, col), NULL, 10);
}

void store_rows_free(void *p)
{
    store_rows *r = p;
    if (!r)
        return;
    PQclear(r->res);
    free(r);
}

void store_stats_get(store_stats *s)
{
    pthread_mutex_lock(&mu);
    *s = stats;
    s->connected = 0;
    for (int i = 0; i < nslots; i++)
        if (slots[i].pg && PQstatus(slots[i].pg) == CONNECTION_OK)
            s->connected++;
    pthread_mutex_unlock(&mu);
}
