/* The connection pool: a fixed array of slots guarded by one mutex, a condition
 * variable on CLOCK_MONOTONIC for bounded waits, lazy (re)connection with the
 * statements prepared on every new session.
 *
 * With SEGMENTD_DB_PIPELINE (the default) the slots are lanes shared by the worker
 * threads. A request's statement is a job: a thread that finds an idle lane runs its
 * job there at once (exactly the unbatched path); otherwise it queues the job on the
 * least loaded busy lane and sleeps. The thread that finishes a batch hands the jobs
 * queued meanwhile to the first of their threads, which sends them all in one libpq
 * pipeline ending in one Sync: one round trip, one wake-up of the backend and one
 * commit for the whole batch instead of one each. Every result is handed out only
 * after the Sync has come back, so a 2xx still means committed. When one statement of
 * a batch fails, the whole implicit transaction is rolled back: the failing job gets
 * its error and the others are run again one by one, so one request's error never
 * becomes another's. Transactions (store_begin) and bulk statements borrow a lane for
 * themselves.
 *
 * With event loops (SEGMENTD_HTTP_MODE=loop) every slot belongs to one loop thread
 * (slot i to loop i mod loops) and is used only by that loop's fibers: a request waits
 * for a connection and for PostgreSQL's answer by yielding to its loop (core/fiber.h),
 * and a released slot is handed straight to the loop's first waiter. Connections are
 * then non-blocking and connect asynchronously. */
#include "store/store.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/fiber.h"
#include "core/log.h"
#include "store/store_private.h"

#define MAX_BATCH 32               /* statements in one pipeline at most */
#define MAX_BATCH_BYTES (256 * 1024) /* parameter bytes in one pipeline at most */

enum { J_QUEUED, J_TAKEN, J_DONE, J_LEAD };

typedef struct job {
    struct job *next;
    stmt_id id;
    const char *const *params;
    size_t bytes;              /* parameter bytes, for the batch budget */
    PGresult *res;             /* the result, on success */
    seg_error *err;
    int rc;
    int state;                 /* J_*; changed under mu */
    struct store_conn *lane;   /* J_LEAD: where to run the batch that starts here */
    sem_t sem;                 /* posted when the state becomes J_DONE or J_LEAD */
    fiber *fib;                /* loop mode: woken instead of the semaphore */
} job;

struct store_conn {
    PGconn *pg;
    bool in_use;     /* borrowed whole: no pipelining, a transaction or a bulk statement */
    bool prepared;
    bool broken;
    int parts_sent;  /* store_parts_*: statements sent in the open pipeline, BEGIN included */
    bool parts_lost; /* store_parts_*: sending failed; the session is given up at the end */
    bool busy;       /* a batch runs on it */
    bool reserved;   /* a borrower waits for it to drain: no new jobs join its queue */
    int queued;
    uint64_t batch_since;      /* when its running batch started (fiber_now_ns) */
    job *head, *tail;
    /* a request's handle when pipelining (not a slot): */
    bool handle;
    bool handle_alloced;       /* loop mode: one per request, freed by store_release */
    struct store_conn *own;    /* the slot borrowed whole through the handle, if any */
};

/* A store_rows is the PGresult itself (the type is never defined): no record of its
 * own to allocate per statement. */
static PGresult *res_of(const store_rows *r)
{
    return (PGresult *)(uintptr_t)r;
}

static const seg_config *pcfg;
static store_conn *slots;
static int nslots;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static store_stats stats;

/* Loop mode: which loop this thread runs (-1: none), and the fibers of this loop
 * waiting for a slot, first come first served. */
typedef struct slot_waiter {
    struct slot_waiter *next;
    fiber *f;
    store_conn *given;
    store_conn *reserved;      /* pipelining: the lane it keeps new jobs off */
} slot_waiter;
static __thread slot_waiter *waiters_head, *waiters_tail;

static bool loop_mode(void)
{
    return fiber_loop_index() >= 0 && fiber_on();
}

/* Loop mode: hands slot c (now free of requests and batches) to this loop's first
 * waiter, marked in use; false when none waits. Under mu. */
static bool give_to_waiter(store_conn *c)
{
    slot_waiter *w = waiters_head;
    if (fiber_loop_index() < 0 || !w)
        return false;
    waiters_head = w->next;
    if (!waiters_head)
        waiters_tail = NULL;
    if (w->reserved)
        w->reserved->reserved = false;
    w->reserved = NULL;
    c->in_use = true;
    w->given = c;
    fiber_wake(w->f);
    return true;
}

int store_init(const seg_config *cfg, seg_error *err)
{
    pthread_condattr_t ca;
    pcfg = cfg;
    nslots = cfg->pool_size;
    slots = calloc((size_t)nslots, sizeof *slots);
    if (!slots) {
        err_startup(err, "store", "out of memory");
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
static PGconn *connect_params(const seg_config *cfg, bool start)
{
    const char *keys[] = {"application_name", "connect_timeout", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                          "dbname", NULL};
    const char *vals[] = {"segmentd", "5", "1", "30", "10", "3", "30000",
                          cfg->database_url ? cfg->database_url : "", NULL};
    if (!cfg->database_url)
        keys[7] = NULL;
    return start ? PQconnectStartParams(keys, vals, 1) : PQconnectdbParams(keys, vals, 1);
}

PGconn *store_connect_raw(const seg_config *cfg)
{
    return connect_params(cfg, false);
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

/* On a fiber: connects without blocking the loop (PQconnectPoll), bounded by
 * connect_timeout as PQconnectdb is; the session is left non-blocking. */
static PGconn *connect_session(void)
{
    if (!fiber_on())
        return store_connect_raw(pcfg);
    PGconn *pg = connect_params(pcfg, true);
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

/* Waits for the whole answer to what was just sent on pg and returns its last result
 * (the first failed one, if one failed), as PQexec would; NULL when the connection
 * broke. Flushes first (a non-blocking session may hold unsent bytes). Yields to the
 * loop on a fiber, blocks in poll(2) elsewhere. */
static PGresult *await_result(PGconn *pg)
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

static PGresult *run_sql(PGconn *pg, const char *sql)
{
    return PQsendQuery(pg, sql) ? await_result(pg) : NULL;
}

static int session_setup(store_conn *c, seg_error *err)
{
    char sql[160];
    PGresult *r;
    snprintf(sql, sizeof sql,
             "SET statement_timeout = %d; SET idle_in_transaction_session_timeout = %d; "
             "SET TIME ZONE 'UTC'",
             pcfg->statement_timeout_ms, pcfg->statement_timeout_ms * 2);
    r = run_sql(c->pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        err_log(err, "session setup: %s", PQerrorMessage(c->pg));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    for (int i = 0; i < STMT__COUNT; i++) {
        const stmt_def *s = &store_statements[i];
        r = PQsendPrepare(c->pg, s->name, s->sql, s->nparams, NULL) ? await_result(c->pg) : NULL;
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
        PQclear(run_sql(c->pg, "ROLLBACK"));
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
    c->pg = connect_session();
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

static void deadline_in(struct timespec *t, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static void pool_exhausted(seg_error *err)
{
    __atomic_fetch_add(&stats.timeouts, 1, __ATOMIC_RELAXED);
    unavailable(err, "pool_exhausted", "all database connections are busy; retry shortly");
    err_log(err, "no connection free within %d ms", pcfg->pool_wait_ms);
}

/* A batch running this long is waiting on something (a lock, a slow plan): new jobs go to
 * another lane while one can take them. */
#define LANE_SLOW_NS (50u * 1000000u)

/* The lane a job that finds none idle queues on (under mu): among lanes first, first +
 * step, … that take jobs, the least loaded, passing over a lane whose batch is slow. */
static store_conn *queue_lane(int first, int step)
{
    store_conn *best = NULL;
    bool best_slow = false;
    uint64_t now = fiber_now_ns();
    for (int i = first; i < nslots; i += step) {
        store_conn *c = &slots[i];
        if (c->in_use || c->reserved)
            continue;
        bool slow = c->busy && now - c->batch_since > LANE_SLOW_NS;
        if (!best || (best_slow && !slow) || (slow == best_slow && c->queued < best->queued)) {
            best = c;
            best_slow = slow;
        }
    }
    return best;
}

static store_conn *connected_or_released(store_conn *c, seg_error *err)
{
    if (ensure_connected(c, err)) {
        __atomic_fetch_add(&stats.errors, 1, __ATOMIC_RELAXED);
        store_release(c);
        return NULL;
    }
    return c;
}

/* Loop mode: a slot of this loop (connected ones first), or the first one this loop
 * releases within SEGMENTD_POOL_WAIT_MS, handed over by store_release. */
static store_conn *borrow_own(seg_error *err)
{
    store_conn *c = NULL;
    int n = fiber_loop_count(), me = fiber_loop_index();
    slot_waiter w = {.f = fiber_self()};
    pthread_mutex_lock(&mu); /* for the statistics; the slots are this thread's alone */
    for (int i = me; i < nslots && !c; i += n)
        if (!slots[i].in_use && !slots[i].busy && !slots[i].reserved && slots[i].pg)
            c = &slots[i];
    for (int i = me; i < nslots && !c; i += n)
        if (!slots[i].in_use && !slots[i].busy && !slots[i].reserved)
            c = &slots[i];
    if (c) {
        c->in_use = true;
        stats.in_use++;
    } else if (pcfg->db_pipeline) {
        /* keep new jobs off the least loaded lane; it is handed over once drained */
        if ((w.reserved = queue_lane(me, n)))
            w.reserved->reserved = true;
    }
    pthread_mutex_unlock(&mu);
    if (!c) {
        if (waiters_tail)
            waiters_tail->next = &w;
        else
            waiters_head = &w;
        waiters_tail = &w;
        __atomic_fetch_add(&stats.waits, 1, __ATOMIC_RELAXED);
        (void)fiber_park(fiber_now_ns() + (uint64_t)pcfg->pool_wait_ms * 1000000u);
        if (!w.given) { /* timed out: leave the queue */
            slot_waiter **pp = &waiters_head, *prev = NULL;
            while (*pp && *pp != &w) {
                prev = *pp;
                pp = &(*pp)->next;
            }
            if (*pp)
                *pp = w.next;
            if (waiters_tail == &w)
                waiters_tail = prev;
            if (w.reserved)
                w.reserved->reserved = false;
            pool_exhausted(err);
            return NULL;
        }
        c = w.given;
        pthread_mutex_lock(&mu);
        stats.in_use++;
        pthread_mutex_unlock(&mu);
    }
    __atomic_fetch_add(&stats.acquired, 1, __ATOMIC_RELAXED);
    return connected_or_released(c, err);
}

/* A slot for one borrower alone, connected. With pipelining it must also have no batch
 * running or queued: the borrower reserves the least loaded lane so that no new job
 * joins it, and waits for it to drain. */
static store_conn *borrow_slot(seg_error *err)
{
    if (loop_mode())
        return borrow_own(err);
    struct timespec deadline;
    store_conn *c = NULL;
    bool waited = false;
    deadline_in(&deadline, pcfg->pool_wait_ms);
    pthread_mutex_lock(&mu);
    for (;;) {
        /* prefer a connected idle slot, then any idle one */
        for (int i = 0; i < nslots && !c; i++)
            if (!slots[i].in_use && !slots[i].busy && !slots[i].reserved && slots[i].pg)
                c = &slots[i];
        for (int i = 0; i < nslots && !c; i++)
            if (!slots[i].in_use && !slots[i].busy && !slots[i].reserved)
                c = &slots[i];
        if (!c && pcfg->db_pipeline) {
            store_conn *r = queue_lane(0, 1);
            if (r) {
                r->reserved = true;
                while (r->busy) {
                    waited = true;
                    if (pthread_cond_timedwait(&cv, &mu, &deadline) == ETIMEDOUT && r->busy) {
                        r->reserved = false;
                        pthread_cond_broadcast(&cv);
                        goto exhausted;
                    }
                }
                r->reserved = false;
                c = r;
            }
        }
        if (c)
            break;
        waited = true;
        if (pthread_cond_timedwait(&cv, &mu, &deadline) == ETIMEDOUT)
            goto exhausted;
    }
    c->in_use = true;
    stats.in_use++;
    pthread_mutex_unlock(&mu);
    if (waited)
        __atomic_fetch_add(&stats.waits, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&stats.acquired, 1, __ATOMIC_RELAXED);
    return connected_or_released(c, err);
exhausted:
    pthread_mutex_unlock(&mu);
    __atomic_fetch_add(&stats.waits, 1, __ATOMIC_RELAXED);
    pool_exhausted(err);
    return NULL;
}

/* One handle per worker thread: a request holds it from store_acquire to store_release
 * (a thread serves one request at a time). */
static __thread store_conn thread_handle;

store_conn *store_acquire(seg_error *err)
{
    if (!pcfg->db_pipeline)
        return borrow_slot(err);
    if (loop_mode()) { /* a loop thread serves many requests at once */
        store_conn *h = calloc(1, sizeof *h);
        if (!h) {
            err_set(err, 500, "internal", "out of memory");
            return NULL;
        }
        h->handle = h->handle_alloced = true;
        return h;
    }
    thread_handle.handle = true;
    thread_handle.own = NULL;
    return &thread_handle;
}

void store_release(store_conn *c)
{
    if (!c)
        return;
    if (c->handle) {
        store_conn *own = c->own;
        c->own = NULL;
        store_release(own);
        if (c->handle_alloced)
            free(c);
        return;
    }
    pthread_mutex_lock(&mu);
    c->in_use = false;
    stats.in_use--;
    if (!give_to_waiter(c)) /* loop mode: straight to the loop's first waiter */
        pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* The slot a statement on c runs on alone: c itself, or the handle's own slot,
 * borrowed on first need. */
static store_conn *slot_for(store_conn *c, seg_error *err)
{
    if (!c->handle)
        return c;
    if (!c->own)
        c->own = borrow_slot(err);
    return c->own;
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

static int result_rows(PGresult *r, store_rows **out)
{
    if (!out) {
        PQclear(r);
        return 0;
    }
    *out = (store_rows *)(void *)r;
    return 0;
}

static bool result_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* One statement on its own (its own implicit transaction). */
static PGresult *exec_one(store_conn *c, stmt_id id, const char *const *params, seg_error *err)
{
    const stmt_def *s = &store_statements[id];
    PGresult *r = PQsendQueryPrepared(c->pg, s->name, s->nparams, params, NULL, NULL, 0)
                      ? await_result(c->pg)
                      : NULL;
    if (!result_ok(r)) {
        map_error(c, r, err);
        PQclear(r);
        return NULL;
    }
    return r;
}

static void job_run_alone(store_conn *lane, job *j)
{
    j->res = exec_one(lane, j->id, j->params, j->err);
    j->rc = j->res ? 0 : -1;
}

/* Flushes everything a non-blocking session holds; while libpq cannot write, what the
 * server already answered is read into libpq's buffer, so a server blocked on writing
 * results never blocks the client's writing. 0, or -1 when the session broke or the
 * server took no bytes for the statement timeout and a second. */
static int flush_reading(PGconn *pg)
{
    for (;;) {
        int f = PQflush(pg);
        if (f <= 0)
            return f;
        int ev = fiber_wait_fd(PQsocket(pg), POLLIN | POLLOUT,
                               fiber_now_ns() + (uint64_t)(pcfg->statement_timeout_ms + 1000) * 1000000u);
        if (ev <= 0 || ((ev & POLLIN) && !PQconsumeInput(pg)))
            return -1;
    }
}

/* Sends the batch's statements and a Sync without blocking on a full socket: while
 * libpq cannot write, what the server already answered is read into libpq's buffer,
 * so a server blocked on writing results never blocks the client's writing. */
static int send_pipeline(PGconn *pg, job *batch)
{
    int rc = 0, was_nonblocking = PQisnonblocking(pg);
    if (!was_nonblocking && PQsetnonblocking(pg, 1))
        return -1;
    for (job *j = batch; j && !rc; j = j->next) {
        const stmt_def *s = &store_statements[j->id];
        if (!PQsendQueryPrepared(pg, s->name, s->nparams, j->params, NULL, NULL, 0))
            rc = -1;
    }
    if (!rc && !PQpipelineSync(pg))
        rc = -1;
    if (!rc)
        rc = flush_reading(pg);
    if (!was_nonblocking && PQsetnonblocking(pg, 0))
        rc = -1;
    return rc;
}

/* PQgetResult that waits by yielding on a fiber (PQgetResult itself would block). */
static PGresult *next_result(PGconn *pg)
{
    while (PQisBusy(pg))
        if (fiber_wait_fd(PQsocket(pg), POLLIN, 0) < 0 || !PQconsumeInput(pg))
            return NULL;
    return PQgetResult(pg);
}

/* The next statement's result in a pipeline, its ending NULL consumed; NULL when the
 * session broke or the Sync came first. */
static PGresult *pipeline_result(PGconn *pg)
{
    PGresult *r = next_result(pg), *x;
    if (!r || PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        return NULL;
    }
    while ((x = next_result(pg)) != NULL)
        PQclear(x);
    return r;
}

/* Reads the Sync (unless lost already) and leaves pipeline mode; a session that fails
 * any of it is marked broken, to be reconnected on its next borrowing. Returns whether
 * the session was lost. */
static bool pipeline_close(store_conn *s, bool lost)
{
    PGconn *pg = s->pg;
    if (!lost) {
        PGresult *sync = next_result(pg);
        lost = !sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC;
        PQclear(sync);
    }
    if (lost || !PQexitPipelineMode(pg) || PQstatus(pg) != CONNECTION_OK) {
        s->broken = true;
        return true;
    }
    return false;
}

/* Runs a batch of two or more jobs in one pipeline, one Sync. */
static void run_pipeline(store_conn *lane, job *batch)
{
    PGconn *pg = lane->pg;
    job *failed = NULL;
    PGresult *fail_res = NULL;
    bool lost = false;

    __atomic_fetch_add(&stats.batches, 1, __ATOMIC_RELAXED);
    for (job *j = batch; j; j = j->next)
        __atomic_fetch_add(&stats.batched, 1, __ATOMIC_RELAXED);
    if (!PQenterPipelineMode(pg)) {
        for (job *j = batch; j; j = j->next)
            job_run_alone(lane, j);
        return;
    }
    if (send_pipeline(pg, batch))
        lost = true;
    for (job *j = batch; j && !lost; j = j->next) {
        PGresult *r = pipeline_result(pg);
        if (!r) {
            lost = true;
            break;
        }
        if (result_ok(r)) {
            j->res = r;
        } else if (PQresultStatus(r) == PGRES_PIPELINE_ABORTED) {
            PQclear(r);
        } else if (!failed) {
            failed = j;
            fail_res = r;
        } else {
            PQclear(r);
        }
    }
    lost = pipeline_close(lane, lost);
    if (!lost && !failed) {
        for (job *j = batch; j; j = j->next)
            j->rc = 0;
        return;
    }
    /* nothing of the batch was committed */
    for (job *j = batch; j; j = j->next) {
        PQclear(j->res);
        j->res = NULL;
    }
    if (lost) {
        for (job *j = batch; j; j = j->next) {
            map_error(lane, NULL, j->err);
            j->rc = -1;
        }
        PQclear(fail_res);
        return;
    }
    map_error(lane, fail_res, failed->err);
    PQclear(fail_res);
    failed->rc = -1;
    const char *code = failed->err->code;
    if (!strcmp(code, "database_timeout") || !strcmp(code, "database_unavailable")) {
        /* the batch waited the statement timeout or lost its session: so would a rerun */
        for (job *j = batch; j; j = j->next)
            if (j != failed) {
                err_log(j->err, "%s", failed->err->log_detail);
                err_set(j->err, failed->err->status, code, "%s", failed->err->detail);
                j->err->retry_after = failed->err->retry_after;
                j->rc = -1;
            }
        return;
    }
    if (!strcmp(code, "database_busy")) /* a deadlock or conflict the batch may have caused */
        err_clear(failed->err);
    for (job *j = batch; j; j = j->next)
        if (j != failed || !failed->err->status) {
            __atomic_fetch_add(&stats.reruns, 1, __ATOMIC_RELAXED);
            job_run_alone(lane, j);
        }
}

static void run_batch(store_conn *lane, job *batch)
{
    seg_error e;
    err_clear(&e);
    if (ensure_connected(lane, &e)) {
        __atomic_fetch_add(&stats.errors, 1, __ATOMIC_RELAXED);
        for (job *j = batch; j; j = j->next) {
            err_set(j->err, e.status, e.code, "%s", e.detail);
            j->err->retry_after = e.retry_after;
            memcpy(j->err->log_detail, e.log_detail, sizeof e.log_detail);
            j->rc = -1;
        }
        return;
    }
    if (!batch->next)
        job_run_alone(lane, batch);
    else
        run_pipeline(lane, batch);
}

/* The order in which a batch takes row locks. Every write that a batch holds to its
 * end locks the one row its $1 (tenant) and $2 (id) name; two batches that lock rows in
 * one global order cannot deadlock with each other (before: two lanes' batches updating
 * the same two rows in opposite orders waited the 1 s deadlock_timeout, seen in the
 * benchmark). Reads and inserts lock no existing row and go first, in arrival order. */
static int lock_rank(const job *j)
{
    switch (j->id) {
    case STMT_AUD_UPDATE:
    case STMT_AUD_DELETE:
        return 1;
    case STMT_V1_UPDATE:
    case STMT_V1_DELETE:
        return 2;
    default:
        return 0;
    }
}

static int lock_order(const job *a, const job *b)
{
    int ra = lock_rank(a), rb = lock_rank(b), c;
    if (ra != rb || ra == 0)
        return ra - rb;
    if ((c = strcmp(a->params[0], b->params[0])) != 0)
        return c;
    if ((c = strcasecmp(a->params[1], b->params[1])) != 0) /* a uuid in either case */
        return c;
    return strcmp(a->params[1], b->params[1]);
}

/* Sorts a batch (at most MAX_BATCH jobs) into lock order; stable. */
static job *sort_batch(job *first)
{
    job *v[MAX_BATCH];
    int n = 0;
    for (job *j = first; j && n < MAX_BATCH; j = j->next)
        v[n++] = j;
    for (int i = 1; i < n; i++) {
        job *x = v[i];
        int k = i;
        while (k > 0 && lock_order(v[k - 1], x) > 0) {
            v[k] = v[k - 1];
            k--;
        }
        v[k] = x;
    }
    for (int i = 0; i < n; i++)
        v[i]->next = i + 1 < n ? v[i + 1] : NULL;
    return n ? v[0] : NULL;
}

/* Detaches up to MAX_BATCH queued jobs (and MAX_BATCH_BYTES) of lane, under mu, in lock
 * order. */
static job *take_queue(store_conn *lane)
{
    job *first = lane->head, *last = NULL, *j = first;
    size_t n = 0, bytes = 0;
    while (j && n < MAX_BATCH && (n == 0 || bytes + j->bytes <= MAX_BATCH_BYTES)) {
        j->state = J_TAKEN;
        bytes += j->bytes;
        last = j;
        j = j->next;
        n++;
    }
    if (!first)
        return NULL;
    lane->head = j;
    if (!j)
        lane->tail = NULL;
    lane->queued -= (int)n;
    last->next = NULL;
    return sort_batch(first);
}

/* Queues j on lane (under mu); its parameter bytes count against the batch budget. */
static void enqueue(store_conn *lane, job *j)
{
    const stmt_def *s = &store_statements[j->id];
    for (int i = 0; i < s->nparams; i++)
        j->bytes += j->params[i] ? strlen(j->params[i]) : 0;
    if (lane->tail)
        lane->tail->next = j;
    else
        lane->head = j;
    lane->tail = j;
    lane->queued++;
}

/* Takes a job that no batch took in time off lane's queue (under mu). */
static void dequeue(store_conn *lane, job *j)
{
    job **pp = &lane->head, *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = j->next;
    if (lane->tail == j)
        lane->tail = prev;
    lane->queued--;
}

/* Wakes the request of job j: a thread waiting on its semaphore, or a parked fiber. */
static void job_post(job *j)
{
    if (j->fib)
        fiber_wake(j->fib);
    else
        sem_post(&j->sem);
}

/* Runs a batch on lane, then hands the lane on: to the first job queued meanwhile (the
 * leader of the next batch), or, idle, to a borrower waiting for a slot of its own (a
 * bulk statement, a transaction). In loop mode the jobs are the fibers of one loop. */
static void lead(store_conn *lane, job *batch, job *self)
{
    run_batch(lane, batch);
    pthread_mutex_lock(&mu);
    job *next = take_queue(lane);
    if (next) {
        next->state = J_LEAD;
        next->lane = lane;
        lane->batch_since = fiber_now_ns();
    } else {
        lane->busy = false;
        stats.in_use--;
        if (!give_to_waiter(lane))
            pthread_cond_broadcast(&cv);
    }
    for (job *j = batch, *n; j; j = n) {
        n = j->next;
        j->state = J_DONE;
        if (j != self)
            job_post(j); /* j may be gone once posted: n was read before */
    }
    pthread_mutex_unlock(&mu);
    if (next)
        job_post(next);
}

/* Loop mode: the same batching among the fibers of one loop, on its own lanes; a job
 * waits parked instead of on a semaphore. */
static int exec_shared_loop(stmt_id id, const char *const *params, store_rows **out,
                            seg_error *err)
{
    job j = {.id = id, .params = params, .err = err, .rc = -1, .state = J_QUEUED,
             .fib = fiber_self()};
    store_conn *lane = NULL, *best = NULL;
    int n = fiber_loop_count(), me = fiber_loop_index();
    __atomic_fetch_add(&stats.acquired, 1, __ATOMIC_RELAXED);

    pthread_mutex_lock(&mu);
    for (int i = me; i < nslots && !lane; i += n)
        if (!slots[i].in_use && !slots[i].reserved && !slots[i].busy)
            lane = &slots[i];
    if (!lane)
        best = queue_lane(me, n);
    if (lane) {
        lane->busy = true;
        lane->batch_since = fiber_now_ns();
        stats.in_use++;
    } else if (best) {
        enqueue(best, &j);
    }
    pthread_mutex_unlock(&mu);

    if (lane) {
        lead(lane, &j, &j);
    } else if (best) {
        __atomic_fetch_add(&stats.waits, 1, __ATOMIC_RELAXED);
        (void)fiber_park(fiber_now_ns() + (uint64_t)pcfg->pool_wait_ms * 1000000u);
        if (j.state == J_QUEUED) { /* no batch took it in time */
            pthread_mutex_lock(&mu);
            dequeue(best, &j);
            pthread_mutex_unlock(&mu);
            pool_exhausted(err);
            return -1;
        }
        while (j.state == J_TAKEN) /* in a batch that runs now: it ends soon */
            (void)fiber_park(0);
        if (j.state == J_LEAD)
            lead(j.lane, &j, &j);
    } else { /* every lane of this loop is borrowed whole or reserved: wait for one */
        store_conn *c = borrow_own(err);
        if (!c)
            return -1;
        job_run_alone(c, &j);
        store_release(c);
    }
    if (j.rc)
        return -1;
    return result_rows(j.res, out);
}

static int exec_shared(stmt_id id, const char *const *params, store_rows **out, seg_error *err)
{
    if (loop_mode())
        return exec_shared_loop(id, params, out, err);
    struct timespec deadline;
    job j = {.id = id, .params = params, .err = err, .rc = -1, .state = J_QUEUED};
    store_conn *lane = NULL, *best = NULL;
    deadline_in(&deadline, pcfg->pool_wait_ms);
    __atomic_fetch_add(&stats.acquired, 1, __ATOMIC_RELAXED);

    pthread_mutex_lock(&mu);
    for (;;) {
        best = NULL;
        for (int i = 0; i < nslots && !lane; i++)
            if (!slots[i].in_use && !slots[i].reserved && !slots[i].busy)
                lane = &slots[i];
        if (lane)
            break;
        if ((best = queue_lane(0, 1))) {
            enqueue(best, &j);
            break;
        }
        /* every slot is borrowed whole or reserved */
        if (pthread_cond_timedwait(&cv, &mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&mu);
            __atomic_fetch_add(&stats.waits, 1, __ATOMIC_RELAXED);
            pool_exhausted(err);
            return -1;
        }
    }
    if (lane) {
        lane->busy = true;
        lane->batch_since = fiber_now_ns();
        stats.in_use++;
        pthread_mutex_unlock(&mu);
        lead(lane, &j, &j);
    } else {
        sem_init(&j.sem, 0, 0);
        pthread_mutex_unlock(&mu);
        __atomic_fetch_add(&stats.waits, 1, __ATOMIC_RELAXED);
        while (sem_clockwait(&j.sem, CLOCK_MONOTONIC, &deadline) != 0) {
            if (errno == EINTR)
                continue;
            pthread_mutex_lock(&mu);
            if (j.state == J_QUEUED) { /* no batch took it in time */
                dequeue(best, &j);
                pthread_mutex_unlock(&mu);
                sem_destroy(&j.sem);
                pool_exhausted(err);
                return -1;
            }
            pthread_mutex_unlock(&mu);
            while (sem_wait(&j.sem) != 0 && errno == EINTR) /* taken: it ends soon */
                ;
            break;
        }
        if (j.state == J_LEAD)
            lead(j.lane, &j, &j); /* runs the batch that starts with j */
        sem_destroy(&j.sem);
    }
    if (j.rc)
        return -1;
    return result_rows(j.res, out);
}

/* Bulk statements move up to 8 MiB each way: they run on a slot of their own rather
 * than in a pipeline with others. */
static bool runs_alone(stmt_id id)
{
    return id >= STMT_AUD_BULK_INSERT && id <= STMT_V1_BULK_DELETE;
}

int store_exec(store_conn *c, stmt_id id, const char *const *params, store_rows **out,
               seg_error *err)
{
    if (c->handle && !c->own && !runs_alone(id))
        return exec_shared(id, params, out, err);
    store_conn *slot = slot_for(c, err);
    if (!slot)
        return -1;
    PGresult *r = exec_one(slot, id, params, err);
    if (!r)
        return -1;
    return result_rows(r, out);
}

static int simple(store_conn *c, const char *sql, seg_error *err)
{
    PGresult *r = run_sql(c->pg, sql);
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
    store_conn *slot = slot_for(c, err);
    return slot ? simple(slot, "BEGIN", err) : -1;
}

int store_commit(store_conn *c, seg_error *err)
{
    return simple(c->handle ? c->own : c, "COMMIT", err);
}

void store_rollback(store_conn *c)
{
    if (c->handle)
        c = c->own;
    if (c && c->pg && PQstatus(c->pg) == CONNECTION_OK)
        PQclear(run_sql(c->pg, "ROLLBACK"));
}

/* ---- one transaction in parts (store_parts_*) ------------------------------------ */

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
        map_error(s, NULL, err);
        return -1;
    }
    s->parts_sent++;
    return 0;
}

int store_parts_begin(store_conn *c, seg_error *err)
{
    store_conn *s = slot_for(c, err);
    if (!s)
        return -1;
    s->parts_sent = 0;
    s->parts_lost = false;
    if (!PQenterPipelineMode(s->pg)) {
        map_error(s, NULL, err);
        return -1;
    }
    return parts_sent_one(s, !PQsetnonblocking(s->pg, 1) &&
                                 PQsendQueryParams(s->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0), err);
}

int store_parts_send(store_conn *c, stmt_id id, const char *const *params, seg_error *err)
{
    store_conn *s = parts_slot(c);
    const stmt_def *d = &store_statements[id];
    if (!s || !s->pg || s->parts_lost || PQpipelineStatus(s->pg) == PQ_PIPELINE_OFF) {
        unavailable(err, "database_unavailable", "the database connection was lost; retry shortly");
        return -1;
    }
    if (parts_sent_one(s, PQsendQueryPrepared(s->pg, d->name, d->nparams, params, NULL, NULL, 0), err))
        return -1;
    __atomic_fetch_add(&stats.parts, 1, __ATOMIC_RELAXED);
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
    bool lost = s->parts_lost || !PQsendQueryParams(pg, commit ? "COMMIT" : "ROLLBACK", 0, NULL, NULL,
                                                    NULL, NULL, 0) ||
                !PQpipelineSync(pg);
    if (!lost)
        (void)flush_reading(pg); /* on failure still read what came back: the COMMIT's answer may */
    /* BEGIN, the parts, COMMIT or ROLLBACK: each a result and a NULL; then the Sync */
    for (int q = 0; q <= s->parts_sent && !lost; q++) {
        PGresult *r = pipeline_result(pg);
        if (!r) {
            lost = true;
            break;
        }
        if (result_ok(r) && q >= 1 && q < s->parts_sent && q - 1 < nrows) {
            rows[q - 1] = (store_rows *)(void *)r;
        } else if (!result_ok(r) && PQresultStatus(r) != PGRES_PIPELINE_ABORTED && !fail) {
            fail = r;
        } else {
            /* COMMIT answered COMMIT (not ROLLBACK): the parts are durable, whatever
             * happens to the session from here on (a shutdown of PostgreSQL after the commit
             * and before the Sync's answer is not a failure of this request) */
            committed = commit && q == s->parts_sent && !fail && PQresultStatus(r) == PGRES_COMMAND_OK &&
                        !strcmp(PQcmdStatus(r), "COMMIT");
            PQclear(r);
        }
    }
    lost = pipeline_close(s, lost);
    if (!lost && PQsetnonblocking(pg, 0)) {
        lost = true;
        s->broken = true;
    } else if (!lost && PQtransactionStatus(pg) != PQTRANS_IDLE) {
        PQclear(run_sql(pg, "ROLLBACK")); /* a failed part leaves the transaction aborted */
    }
    s->parts_sent = 0;
    s->parts_lost = false;
    if (committed) {
        PQclear(fail);
        return 0;
    }
    int rc = lost || fail || commit ? -1 : 0;
    if (rc && !err->status) {
        if (lost || fail)
            map_error(s, fail, err);
        else
            unavailable(err, "database_busy", "the database rolled the request back; retry shortly");
    }
    PQclear(fail);
    for (int k = 0; k < nrows; k++) {
        PQclear(res_of(rows[k]));
        rows[k] = NULL;
    }
    return rc;
}

int store_rows_count(const store_rows *r)
{
    return PQntuples(res_of(r));
}

const char *store_value(const store_rows *r, int row, int col)
{
    return PQgetvalue(res_of(r), row, col);
}

size_t store_length(const store_rows *r, int row, int col)
{
    return (size_t)PQgetlength(res_of(r), row, col);
}

bool store_is_null(const store_rows *r, int row, int col)
{
    return PQgetisnull(res_of(r), row, col) != 0;
}

long long store_ll(const store_rows *r, int row, int col)
{
    return strtoll(PQgetvalue(res_of(r), row, col), NULL, 10);
}

void store_rows_free(void *p)
{
    PQclear(p); /* NULL is a no-op */
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
