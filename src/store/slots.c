/* The pool's slots: one PostgreSQL session each, dealt out to the loops (slot i to loop i mod
 * loops), taken whole by a borrower (parked until one frees up) and put back.
 *
 * Every slot belongs to one loop and is used only by that loop's fibers: a fiber that finds
 * none idle parks in its loop's queue of waiters, and a slot put back goes straight to the
 * first of them. The mutex guards the slots' state only because the statistics are read
 * from any loop. */
#include <stdlib.h>

#include "store/slots.h"

store_pool store_p = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* This loop's fibers waiting for a slot of their own, first come first served. */
typedef struct slot_waiter {
    struct slot_waiter *next;
    fiber *f;
    store_conn *given;
    store_conn *reserved;      /* the lane it keeps new jobs off */
} slot_waiter;
static __thread slot_waiter *waiters_head, *waiters_tail;

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

store_conn *slots_take(seg_error *err)
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
    return c;
}

void slots_put(store_conn *c)
{
    pthread_mutex_lock(&store_p.mu);
    c->in_use = false;
    store_p.stats.in_use--;
    (void)pool_give_to_waiter(c); /* straight to the loop's first waiter */
    pthread_mutex_unlock(&store_p.mu);
}

