/* Private to store/: a background worker (the lifecycle sweeper, the import merge): a
 * thread with a PostgreSQL session of its own that runs a pass at once, then every period
 * or when woken, and whose stop cancels the statement under way. */
#ifndef SEGMENTD_STORE_WORKER_H
#define SEGMENTD_STORE_WORKER_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>

#include "core/config.h"
#include "core/error.h"

typedef struct store_worker store_worker;
struct store_worker {
    /* set by the owner before store_worker_start */
    const char *name;             /* for logs: "lifecycle sweeper" */
    const seg_config *cfg;
    int period_s;                 /* between passes nobody woke it for */
    int timeout_ms;               /* its session's statement_timeout */
    void (*pass)(store_worker *w);
    /* prepares what the session needs beyond the defaults (NULL: nothing); false drops it */
    bool (*setup)(store_worker *w, PGconn *pg);
    /* the worker's own */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, wake, started;
    pthread_t thread;
    PGconn *pg;
    PGcancel *cancel;             /* pg's, under mu: a stop cancels through it */
};

/* Starts the thread. 0, or -1 with err (a start-up error naming the worker). */
int store_worker_start(store_worker *w, seg_error *err) MUSTCHECK;
/* Sets who the worker is and what it does (setup, if any, set before), then starts it. */
int store_worker_run(store_worker *w, const char *name, const seg_config *cfg, int period_s,
                     int timeout_ms, void (*pass)(store_worker *w), seg_error *err) MUSTCHECK;
/* Stops it: the statement under way is cancelled, the thread joined. Safe when never started. */
void store_worker_stop(store_worker *w);
/* Runs a pass now (or right after the one under way). */
void store_worker_wake(store_worker *w);
/* True once a stop was asked: a pass returns soon. */
bool store_worker_stopping(store_worker *w);
/* The worker's session, connected and set up; NULL (logged) when the database cannot be
 * reached: the next pass tries again. */
PGconn *store_worker_session(store_worker *w);
/* Drops the session (after a failure: the next pass reconnects). */
void store_worker_drop(store_worker *w);

#endif
