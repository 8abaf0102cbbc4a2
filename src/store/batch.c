/* Batching: the statements that a loop's requests issue while its lane is busy are sent
 * together as one libpq pipeline ending in one Sync, row writes in lock order.
 *
 * A request's statement is a job. One that finds an idle lane of its loop runs there at
 * once; otherwise it queues on the least loaded busy lane and parks. The fiber that
 * finishes a batch hands the jobs queued meanwhile to the first of them, which sends them
 * all in one pipeline: one round trip, one wake-up of the backend and one commit for the
 * batch. Every result is handed out only after the Sync, so a 2xx still means committed.
 * When one statement of a batch fails, the batch's implicit transaction is rolled back:
 * the failing job gets its error and the others run again one by one, so one request's
 * error never becomes another's. Everything here happens on one loop's thread. */
#include <libpq-fe.h>
#include <string.h>
#include <strings.h>

#include "store/batch.h"
#include "store/session.h"

#define MAX_BATCH 32                 /* statements in one pipeline at most */
#define MAX_BATCH_BYTES (256 * 1024) /* parameter bytes in one pipeline at most */

enum { J_QUEUED, J_TAKEN, J_DONE, J_LEAD };

struct job {
    struct job *next;
    stmt_id id;
    const char *const *params;
    size_t bytes;              /* parameter bytes, for the batch budget */
    PGresult *res;             /* the result, on success */
    seg_error *err;
    int rc;
    int state;                 /* J_* */
    store_conn *lane;          /* J_LEAD: where to run the batch that starts here */
    fiber *fib;                /* parked while queued or taken */
};

PGresult *batch_exec_alone(store_conn *c, stmt_id id, const char *const *params, seg_error *err)
{
    PGresult *r = session_run(c->pg, id, params);
    if (!session_result_ok(r)) {
        session_fail(c, r, err);
        PQclear(r);
        return NULL;
    }
    return r;
}

static void job_run_alone(store_conn *lane, job *j)
{
    j->res = batch_exec_alone(lane, j->id, j->params, j->err);
    j->rc = j->res ? 0 : -1;
}

/* Sends the batch's statements and a Sync without blocking on a full socket. */
static int send_pipeline(PGconn *pg, job *batch)
{
    for (job *j = batch; j; j = j->next)
        if (!session_send(pg, j->id, j->params))
            return -1;
    return PQpipelineSync(pg) ? session_flush_reading(pg) : -1;
}

PGresult *batch_pipeline_result(PGconn *pg)
{
    PGresult *r = session_next_result(pg), *x;
    if (!r || PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        return NULL;
    }
    while ((x = session_next_result(pg)) != NULL)
        PQclear(x);
    return r;
}

bool batch_pipeline_close(store_conn *s, bool lost)
{
    PGconn *pg = s->pg;
    if (!lost) {
        PGresult *sync = session_next_result(pg);
        lost = !sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC;
        PQclear(sync);
    }
    if (lost || !PQexitPipelineMode(pg) || PQstatus(pg) != CONNECTION_OK) {
        s->broken = true;
        return true;
    }
    return false;
}

/* Copies the error of a failed job to another job of its batch. */
static void share_error(job *j, const seg_error *e)
{
    err_log(j->err, "%s", e->log_detail);
    err_set(j->err, e->status, e->code, "%s", e->detail);
    j->err->retry_after = e->retry_after;
    j->rc = -1;
}

/* Runs a batch of two or more jobs in one pipeline, one Sync. */
static void run_pipeline(store_conn *lane, job *batch)
{
    PGconn *pg = lane->pg;
    job *failed = NULL;
    PGresult *fail_res = NULL;
    bool lost = false;

    STAT_ADD(batches);
    for (job *j = batch; j; j = j->next)
        STAT_ADD(batched);
    if (!PQenterPipelineMode(pg)) {
        for (job *j = batch; j; j = j->next)
            job_run_alone(lane, j);
        return;
    }
    if (send_pipeline(pg, batch))
        lost = true;
    for (job *j = batch; j && !lost; j = j->next) {
        PGresult *r = batch_pipeline_result(pg);
        if (!r) {
            lost = true;
            break;
        }
        if (session_result_ok(r)) {
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
    lost = batch_pipeline_close(lane, lost);
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
            session_fail(lane, NULL, j->err);
            j->rc = -1;
        }
        PQclear(fail_res);
        return;
    }
    session_fail(lane, fail_res, failed->err);
    PQclear(fail_res);
    failed->rc = -1;
    const char *code = failed->err->code;
    if (!strcmp(code, "database_timeout") || !strcmp(code, "database_unavailable")) {
        /* the batch waited the statement timeout or lost its session: so would a rerun */
        for (job *j = batch; j; j = j->next)
            if (j != failed)
                share_error(j, failed->err);
        return;
    }
    if (!strcmp(code, "database_busy")) /* a deadlock or conflict the batch may have caused */
        err_clear(failed->err);
    for (job *j = batch; j; j = j->next)
        if (j != failed || !failed->err->status) {
            STAT_ADD(reruns);
            job_run_alone(lane, j);
        }
}

static void run_batch(store_conn *lane, job *batch)
{
    seg_error e;
    err_clear(&e);
    if (session_ensure(lane, &e)) {
        STAT_ADD(errors);
        for (job *j = batch; j; j = j->next)
            share_error(j, &e);
        return;
    }
    if (!batch->next)
        job_run_alone(lane, batch);
    else
        run_pipeline(lane, batch);
}

/* The order in which a batch takes row locks: the statements that lock an existing row
 * (store_statements[].locks) by table, tenant ($1) and id ($2); two batches that lock
 * rows in one global order cannot deadlock with each other (before: two lanes' batches
 * updating the same two rows in opposite orders waited the 1 s deadlock_timeout, seen in
 * the benchmark). Reads and inserts lock no existing row and go first, in arrival order. */
int batch_lock_order(stmt_id a, const char *const *pa, stmt_id b, const char *const *pb)
{
    int ra = (int)store_statements[a].locks, rb = (int)store_statements[b].locks, c;
    if (ra != rb || ra == LOCKS_NONE)
        return ra - rb;
    if ((c = strcmp(pa[0], pb[0])) != 0)
        return c;
    if ((c = strcasecmp(pa[1], pb[1])) != 0) /* a uuid in either case */
        return c;
    return strcmp(pa[1], pb[1]);
}

static int lock_order(const job *a, const job *b)
{
    return batch_lock_order(a->id, a->params, b->id, b->params);
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

/* Runs a batch on lane, then hands the lane on: to the first job queued meanwhile (the
 * leader of the next batch), or, idle, to a borrower waiting for a slot of its own. */
static void lead(store_conn *lane, job *batch, job *self)
{
    run_batch(lane, batch);
    pthread_mutex_lock(&store_p.mu);
    job *next = take_queue(lane);
    if (next) {
        next->state = J_LEAD;
        next->lane = lane;
        lane->batch_since = fiber_now_ns();
    } else {
        lane->busy = false;
        store_p.stats.in_use--;
        (void)pool_give_to_waiter(lane);
    }
    for (job *j = batch, *n; j; j = n) {
        n = j->next;
        j->state = J_DONE;
        if (j != self)
            fiber_wake(j->fib); /* j may be gone once it runs: n was read before */
    }
    pthread_mutex_unlock(&store_p.mu);
    if (next)
        fiber_wake(next->fib);
}

/* An idle lane of this loop, marked busy (under mu), or NULL. */
static store_conn *idle_lane(void)
{
    int n = fiber_loop_count(), me = fiber_loop_index();
    for (int i = me; i < store_p.nslots; i += n) {
        store_conn *c = &store_p.slots[i];
        if (!c->in_use && !c->reserved && !c->busy) {
            c->busy = true;
            c->batch_since = fiber_now_ns();
            store_p.stats.in_use++;
            return c;
        }
    }
    return NULL;
}

int batch_exec(stmt_id id, const char *const *params, store_rows **out, seg_error *err)
{
    job j = {.id = id, .params = params, .err = err, .rc = -1, .state = J_QUEUED,
             .fib = fiber_self()};
    store_conn *lane, *queue = NULL;
    STAT_ADD(acquired);

    pthread_mutex_lock(&store_p.mu);
    if (!(lane = idle_lane()) && (queue = pool_queue_lane()))
        enqueue(queue, &j);
    pthread_mutex_unlock(&store_p.mu);

    if (lane) {
        lead(lane, &j, &j);
    } else if (queue) {
        STAT_ADD(waits);
        (void)fiber_park(fiber_now_ns() + (uint64_t)store_p.cfg->pool_wait_ms * 1000000u);
        if (j.state == J_QUEUED) { /* no batch took it in time */
            pthread_mutex_lock(&store_p.mu);
            dequeue(queue, &j);
            pthread_mutex_unlock(&store_p.mu);
            pool_exhausted(err);
            return -1;
        }
        while (j.state == J_TAKEN) /* in a batch that runs now: it ends soon */
            (void)fiber_park(0);
        if (j.state == J_LEAD)
            lead(j.lane, &j, &j);
    } else { /* every lane of this loop is borrowed whole or reserved: wait for one */
        store_conn *c = session_borrow(err);
        if (!c)
            return -1;
        job_run_alone(c, &j);
        slots_put(c);
    }
    if (j.rc)
        return -1;
    if (out)
        *out = (store_rows *)(void *)j.res;
    else
        PQclear(j.res);
    return 0;
}
