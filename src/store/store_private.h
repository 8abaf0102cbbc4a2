/* Private to store/: the pool's slots and what its files share (pool, batch, parts, session). */
#ifndef SEGMENTD_STORE_PRIVATE_H
#define SEGMENTD_STORE_PRIVATE_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/fiber.h"
#include "store/store.h"

typedef struct job job;

/* A slot of the pool (one PostgreSQL session, owned by one loop: slot i by loop i mod
 * loops), or a request's handle onto the pool (handle true: no session of its own). */
struct store_conn {
    PGconn *pg;
    bool in_use;     /* borrowed whole: a transaction, a statement that runs alone, parts */
    bool prepared;
    bool broken;
    int parts_sent;  /* store_parts_*: statements sent in the open pipeline, BEGIN included */
    bool parts_lost; /* store_parts_*: sending failed; the session is given up at the end */
    bool busy;       /* a batch runs on it */
    bool reserved;   /* a borrower waits for it to drain: no new jobs join its queue */
    int queued;
    uint64_t batch_since;      /* when its running batch started (fiber_now_ns) */
    job *head, *tail;
    bool handle;               /* a request's handle (not a slot) */
    seg_arena *arena;          /* store_open: where the handle and its results live */
    struct store_conn *own;    /* the slot borrowed whole through the handle, if any */
};

/* The pool: its slots, the lock over their state (the statistics are read by any loop)
 * and the statistics. */
typedef struct store_pool {
    const seg_config *cfg;
    store_conn *slots;
    int nslots;
    pthread_mutex_t mu;
    store_stats stats;
} store_pool;

extern store_pool store_p;

#define STAT_ADD(field) __atomic_fetch_add(&store_p.stats.field, 1, __ATOMIC_RELAXED)

/* A store_rows is the PGresult itself (the type is never defined). */
static inline PGresult *store_res(const store_rows *r)
{
    return (PGresult *)(uintptr_t)r;
}

/* ---- pool.c ---- */
/* Runs a statement of the table with text parameters (NULL = SQL NULL) through c: a
 * handle's statement joins its loop's batches, a slot's runs alone. On success *out holds
 * the result (NULL out: dropped). 0, or -1 with err set. */
int store_exec(store_conn *c, stmt_id id, const char *const *params, store_rows **out,
               seg_error *err) MUSTCHECK;
/* Gives a slot back to its loop (its first waiter gets it), or a handle with its slot. */
void store_release(store_conn *c);
/* Runs a statement through c; on success returns its result, which lives in c's arena
 * (store_open), or NULL with err set. */
PGresult *store_run(store_conn *c, stmt_id id, const char *const *params, seg_error *err);
/* A slot of this loop for one borrower alone, connected; waits (parked) up to
 * SEGMENTD_POOL_WAIT_MS. NULL with a 503 in err. */
store_conn *pool_borrow(seg_error *err);
/* The slot a statement on c runs on alone: c itself, or the handle's own slot, borrowed
 * on first need. NULL with err set. */
store_conn *store_slot_for(store_conn *c, seg_error *err);
/* The lane a job queues on when none of this loop is idle (under mu), or NULL. */
store_conn *pool_queue_lane(void);
/* Hands an idle slot to this loop's first waiter (under mu); false when none waits. */
bool pool_give_to_waiter(store_conn *c);
/* Fills err with a 503 (Retry-After 1). */
void pool_unavailable(seg_error *err, const char *code, const char *detail);
void pool_exhausted(seg_error *err);
/* Maps a failed result (or a lost session: r NULL) into err, marks c broken when the
 * session is gone, counts the error. */
void pool_fail(store_conn *c, PGresult *r, seg_error *err);

/* ---- session.c ---- */
/* A new blocking session with segmentd's keepalive/timeout defaults (migrations); the
 * caller checks PQstatus and PQfinishes it. */
PGconn *store_connect_raw(const seg_config *cfg);
/* Connects (without blocking the loop on a fiber) and prepares every statement when c
 * has no healthy session; rolls back a session left in a transaction. 0 or -1 (503). */
int session_ensure(store_conn *c, seg_error *err) MUSTCHECK;
/* Sends a statement of the table on pg (prepared, or as text when it has no name). */
int session_send(PGconn *pg, stmt_id id, const char *const *params);
/* Waits for the whole answer to what was sent and returns its last result (the first
 * failed one, if one failed), as PQexec would; NULL when the session broke. */
PGresult *session_await(PGconn *pg);
/* session_send + session_await. */
PGresult *session_run(PGconn *pg, stmt_id id, const char *const *params);
/* Flushes a non-blocking session, reading what the server answers meanwhile. 0 or -1. */
int session_flush_reading(PGconn *pg);
/* PQgetResult that waits by yielding on a fiber. */
PGresult *session_next_result(PGconn *pg);
bool session_result_ok(const PGresult *r);

/* ---- batch.c ---- */
/* The execute path of a request's handle: runs on an idle lane of this loop at once, or
 * joins the batch queued on a busy one (one pipeline, one Sync). */
int batch_exec(stmt_id id, const char *const *params, store_rows **out, seg_error *err);
/* One statement alone on slot c (its own implicit transaction). */
PGresult *batch_exec_alone(store_conn *c, stmt_id id, const char *const *params, seg_error *err);
/* The order in which a batch sends statements: < 0 when a goes before b. Statements that
 * lock no existing row first (in arrival order: 0 among them), then by the table they
 * lock, the tenant ($1) and the id ($2). */
int batch_lock_order(stmt_id a, const char *const *pa, stmt_id b, const char *const *pb);
/* The next statement's result in a pipeline, its ending NULL consumed; NULL when the
 * session broke or the Sync came first. */
PGresult *batch_pipeline_result(PGconn *pg);
/* Reads the Sync (unless lost) and leaves pipeline mode; marks s broken on failure.
 * Returns whether the session was lost. */
bool batch_pipeline_close(store_conn *s, bool lost);

#endif
