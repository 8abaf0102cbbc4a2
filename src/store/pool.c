/* The connection pool: slots dealt out to the event loops (slot i to loop i mod loops),
 * borrowed whole or shared through a request's handle, and released.
 *
 * Every slot belongs to one loop and is used only by that loop's fibers: a request waits
 * for a slot, or for PostgreSQL's answer, by parking its fiber (core/fiber.h) and the
 * loop serves others meanwhile; a released slot is handed straight to the loop's first
 * waiter. A request's statements go through its handle: one at a time they join the
 * loop's batches (store/batch.c); a transaction, a statement marked `alone` in the table
 * and a transaction in parts borrow a slot whole. The mutex guards the slots' state only
 * because the statistics are read from any loop. */
#include "store/store.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "store/sqlstate.h"
#include "store/store_private.h"

store_pool store_p = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* This loop's fibers waiting for a slot of their own, first come first served. */
typedef struct slot_waiter {
    struct slot_waiter *next;
    fiber *f;
    store_conn *given;
    store_conn *reserved;      /* the lane it keeps new jobs off */
} slot_waiter;
static __thread slot_waiter *waiters_head, *waiters_tail;

/* The pool's families of /metrics. */
static void store_metrics(metrics_out *o)
{
    store_stats s;
    store_stats_get(&s);
    metrics_family(o, "segmentd_db_pool_connections", "gauge", "Database connections by state.");
    metrics_sample(o, "segmentd_db_pool_connections", "state=\"size\"", (unsigned long long)s.size);
    metrics_sample(o, "segmentd_db_pool_connections", "state=\"in_use\"", (unsigned long long)s.in_use);
    metrics_sample(o, "segmentd_db_pool_connections", "state=\"open\"", (unsigned long long)s.connected);
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"segmentd_db_pool_acquired_total", "Connections handed to requests.",
         offsetof(store_stats, acquired)},
        {"segmentd_db_pool_waits_total", "Requests that had to wait for a connection.",
         offsetof(store_stats, waits)},
        {"segmentd_db_pool_timeouts_total", "Requests refused with 503 because no connection freed up.",
         offsetof(store_stats, timeouts)},
        {"segmentd_db_errors_total", "Database errors (connect failures and failed statements).",
         offsetof(store_stats, errors)},
        {"segmentd_db_reconnects_total", "Connections re-established after a loss.",
         offsetof(store_stats, reconnects)},
        {"segmentd_db_pipeline_batches_total", "Pipelines of two or more statements sent.",
         offsetof(store_stats, batches)},
        {"segmentd_db_pipeline_statements_total", "Statements sent in those pipelines.",
         offsetof(store_stats, batched)},
        {"segmentd_db_pipeline_reruns_total",
         "Statements run again alone after another statement of their pipeline failed.",
         offsetof(store_stats, reruns)},
        {"segmentd_db_parts_total",
         "Statements sent as parts of one transaction (bulk creates stored while their body is read).",
         offsetof(store_stats, parts)},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        metrics_family(o, counters[i].name, "counter", counters[i].help);
        metrics_sample(o, counters[i].name, "",
                       *(const unsigned long long *)(const void *)((const char *)&s + counters[i].off));
    }
}

int store_init(const seg_config *cfg, seg_error *err)
{
    store_p.cfg = cfg;
    store_p.nslots = cfg->pool_size;
    store_p.slots = calloc((size_t)store_p.nslots, sizeof *store_p.slots);
    if (!store_p.slots) {
        err_startup(err, "store", "out of memory");
        return -1;
    }
    store_p.stats.size = store_p.nslots;
    static bool provided;
    if (!provided) /* once per process, whatever the number of store_init calls */
        metrics_provide(store_metrics);
    provided = true;
    return 0;
}

void store_close(void)
{
    pthread_mutex_lock(&store_p.mu);
    for (int i = 0; i < store_p.nslots; i++)
        if (store_p.slots[i].pg)
            PQfinish(store_p.slots[i].pg);
    free(store_p.slots);
    store_p.slots = NULL;
    store_p.nslots = 0;
    pthread_mutex_unlock(&store_p.mu);
}

void pool_unavailable(seg_error *err, const char *code, const char *detail)
{
    err_set(err, 503, code, "%s", detail);
    err->retry_after = 1;
}

void pool_exhausted(seg_error *err)
{
    STAT_ADD(timeouts);
    pool_unavailable(err, "pool_exhausted", "all database connections are busy; retry shortly");
    err_log(err, "no connection free within %d ms", store_p.cfg->pool_wait_ms);
}

void pool_fail(store_conn *c, PGresult *r, seg_error *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg);
    err_log(err, "sqlstate %s: %s", state ? state : "none", msg ? msg : "");
    if (store_sqlstate_map(state, PQstatus(c->pg) == CONNECTION_BAD, err))
        c->broken = true;
    STAT_ADD(errors);
}

bool pool_give_to_waiter(store_conn *c)
{
    slot_waiter *w = waiters_head;
    if (!w)
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

/* A batch running this long is waiting on something (a lock, a slow plan): new jobs go to
 * another lane while one can take them. */
#define LANE_SLOW_NS (50u * 1000000u)

store_conn *pool_queue_lane(void)
{
    store_conn *best = NULL;
    bool best_slow = false;
    uint64_t now = fiber_now_ns();
    for (int i = fiber_loop_index(); i < store_p.nslots; i += fiber_loop_count()) {
        store_conn *c = &store_p.slots[i];
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

/* Takes w off this loop's queue of waiters (it timed out). */
static void leave_queue(slot_waiter *w)
{
    slot_waiter **pp = &waiters_head, *prev = NULL;
    while (*pp && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp)
        *pp = w->next;
    if (waiters_tail == w)
        waiters_tail = prev;
    if (w->reserved)
        w->reserved->reserved = false;
}

/* An idle slot of this loop, connected ones first, marked in use (under mu), or NULL. */
static store_conn *idle_slot(void)
{
    int n = fiber_loop_count(), me = fiber_loop_index();
    store_conn *c = NULL;
    for (int i = me; i < store_p.nslots && !c; i += n)
        if (!store_p.slots[i].in_use && !store_p.slots[i].busy && !store_p.slots[i].reserved &&
            store_p.slots[i].pg)
            c = &store_p.slots[i];
    for (int i = me; i < store_p.nslots && !c; i += n)
        if (!store_p.slots[i].in_use && !store_p.slots[i].busy && !store_p.slots[i].reserved)
            c = &store_p.slots[i];
    if (c) {
        c->in_use = true;
        store_p.stats.in_use++;
    }
    return c;
}

store_conn *pool_borrow(seg_error *err)
{
    slot_waiter w = {.f = fiber_self()};
    pthread_mutex_lock(&store_p.mu);
    store_conn *c = idle_slot();
    if (!c && (w.reserved = pool_queue_lane())) /* kept off new jobs, handed over once drained */
        w.reserved->reserved = true;
    pthread_mutex_unlock(&store_p.mu);
    if (!c) {
        if (waiters_tail)
            waiters_tail->next = &w;
        else
            waiters_head = &w;
        waiters_tail = &w;
        STAT_ADD(waits);
        (void)fiber_park(fiber_now_ns() + (uint64_t)store_p.cfg->pool_wait_ms * 1000000u);
        if (!w.given) {
            leave_queue(&w);
            pool_exhausted(err);
            return NULL;
        }
        c = w.given;
        pthread_mutex_lock(&store_p.mu);
        store_p.stats.in_use++;
        pthread_mutex_unlock(&store_p.mu);
    }
    STAT_ADD(acquired);
    if (session_ensure(c, err)) {
        STAT_ADD(errors);
        store_release(c);
        return NULL;
    }
    return c;
}

static void handle_close(void *arg)
{
    store_release(arg);
}

store_conn *store_open(seg_arena *a, seg_error *err)
{
    if (fiber_loop_index() < 0 || !fiber_on()) {
        err_set(err, 500, "internal", "the database is used only from a request's fiber");
        err_log(err, "store_open off an event loop's fiber");
        return NULL;
    }
    store_conn *h = arena_alloc(a, sizeof *h);
    if (!h || arena_defer(a, handle_close, h)) {
        err_set(err, 500, "internal", "out of memory");
        return NULL;
    }
    h->handle = true;
    h->arena = a;
    return h;
}

PGresult *store_run(store_conn *c, stmt_id id, const char *const *params, seg_error *err)
{
    store_rows *rows = NULL;
    if (store_exec(c, id, params, &rows, err))
        return NULL;
    if (arena_defer(c->arena, store_rows_free, rows)) {
        err_set(err, 500, "internal", "out of memory");
        return NULL;
    }
    return store_res(rows);
}

void store_release(store_conn *c)
{
    if (!c)
        return;
    if (c->handle) { /* in its arena: only its slot goes back */
        store_release(c->own);
        c->own = NULL;
        return;
    }
    pthread_mutex_lock(&store_p.mu);
    c->in_use = false;
    store_p.stats.in_use--;
    (void)pool_give_to_waiter(c); /* straight to the loop's first waiter */
    pthread_mutex_unlock(&store_p.mu);
}

store_conn *store_slot_for(store_conn *c, seg_error *err)
{
    if (!c->handle)
        return c;
    if (!c->own)
        c->own = pool_borrow(err);
    return c->own;
}

int store_exec(store_conn *c, stmt_id id, const char *const *params, store_rows **out,
               seg_error *err)
{
    if (c->handle && !c->own && !store_statements[id].alone)
        return batch_exec(id, params, out, err);
    store_conn *slot = store_slot_for(c, err);
    PGresult *r = slot ? batch_exec_alone(slot, id, params, err) : NULL;
    if (!r)
        return -1;
    if (out)
        *out = (store_rows *)(void *)r;
    else
        PQclear(r);
    return 0;
}

static int simple(store_conn *c, stmt_id id, seg_error *err)
{
    PGresult *r = c ? batch_exec_alone(c, id, NULL, err) : NULL;
    PQclear(r);
    return r ? 0 : -1;
}

int store_begin(store_conn *c, seg_error *err)
{
    return simple(store_slot_for(c, err), STMT_BEGIN, err);
}

int store_commit(store_conn *c, seg_error *err)
{
    return simple(c->handle ? c->own : c, STMT_COMMIT, err);
}

void store_rollback(store_conn *c)
{
    if (c->handle)
        c = c->own;
    if (c && c->pg && PQstatus(c->pg) == CONNECTION_OK)
        PQclear(session_run(c->pg, STMT_ROLLBACK, NULL));
}

void store_rows_free(void *p)
{
    PQclear(p); /* NULL is a no-op */
}

void store_stats_get(store_stats *s)
{
    pthread_mutex_lock(&store_p.mu);
    *s = store_p.stats;
    s->connected = 0;
    for (int i = 0; i < store_p.nslots; i++)
        if (store_p.slots[i].pg && PQstatus(store_p.slots[i].pg) == CONNECTION_OK)
            s->connected++;
    pthread_mutex_unlock(&store_p.mu);
}
