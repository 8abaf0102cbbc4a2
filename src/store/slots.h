/* Private to store/: the pool's state and its slots (slots.c), which every store file shares. */
#ifndef SEGMENTD_STORE_SLOTS_H
#define SEGMENTD_STORE_SLOTS_H

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
    const char *url; /* the database it connects to (NULL: SEGMENTD_DATABASE_URL, the primary) */
    bool in_use;     /* borrowed whole: a transaction, a statement that runs alone, parts */
    bool prepared;
    bool broken;
    int parts_sent;  /* store_parts_*: statements sent in the open pipeline, BEGIN included */
    int tx_depth;    /* transactions begun on it and not ended (store_begin, store_parts_begin):
                      * past the first, each is a savepoint of the first */
    bool parts_lost; /* store_parts_*: sending failed; the session is given up at the end */
    bool parts_nested; /* store_parts_*: begun inside a transaction, as a savepoint */
    bool busy;       /* a batch runs on it */
    bool reserved;   /* a borrower waits for it to drain: no new jobs join its queue */
    int queued;
    uint64_t batch_since;      /* when its running batch started (fiber_now_ns) */
    job *head, *tail;
    bool handle;               /* a request's handle (not a slot) */
    seg_arena *arena;          /* store_open: where the handle and its results live */
    struct store_conn *own;    /* the slot borrowed whole through the handle, if any */
    const char *actor;         /* store_set_author: whom its revisions name (NULL: nobody) */
    const char *request_id;
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

/* A slot of this loop for one borrower alone (marked in use), parked for up to
 * SEGMENTD_POOL_WAIT_MS; not yet connected (session_borrow connects). NULL with a 503. */
store_conn *slots_take(seg_error *err);
/* Puts a slot back: to this loop's first waiter, or idle. */
void slots_put(store_conn *c);
/* The lane a job queues on when none of this loop is idle (under mu), or NULL. */
store_conn *pool_queue_lane(void);
/* Hands an idle slot to this loop's first waiter (under mu); false when none waits. */
bool pool_give_to_waiter(store_conn *c);
/* Fills err with a 503 (Retry-After 1). */
void pool_unavailable(seg_error *err, const char *code, const char *detail);
void pool_exhausted(seg_error *err);

#endif
