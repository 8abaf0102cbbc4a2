/* Background workers of the store: a thread, a PostgreSQL session of its own (never the
 * pool's, so requests never wait for it nor it for them), a pass at once and then every
 * period or when woken, and a stop that cancels the statement under way. */
#include "store/worker.h"

#include <time.h>

#include "store/session.h"

bool store_worker_stopping(store_worker *w)
{
    pthread_mutex_lock(&w->mu);
    bool stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    return stop;
}

void store_worker_drop(store_worker *w)
{
    pthread_mutex_lock(&w->mu); /* so that a stop never cancels through a freed handle */
    if (w->cancel)
        PQfreeCancel(w->cancel);
    w->cancel = NULL;
    pthread_mutex_unlock(&w->mu);
    PQfinish(w->pg);
    w->pg = NULL;
}

PGconn *store_worker_session(store_worker *w)
{
    if (w->pg && PQstatus(w->pg) == CONNECTION_OK)
        return w->pg;
    store_worker_drop(w);
    w->pg = session_open_own(w->cfg, w->timeout_ms, w->name);
    if (w->pg && w->setup && !w->setup(w, w->pg))
        store_worker_drop(w);
    if (!w->pg)
        return NULL;
    pthread_mutex_lock(&w->mu);
    w->cancel = PQgetCancel(w->pg);
    pthread_mutex_unlock(&w->mu);
    return w->pg;
}

static void *worker_main(void *arg)
{
    store_worker *w = arg;
    while (!store_worker_stopping(w)) {
        w->pass(w);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += w->period_s;
        pthread_mutex_lock(&w->mu);
        while (!w->stop && !w->wake && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
            ;
        w->wake = false;
        pthread_mutex_unlock(&w->mu);
    }
    store_worker_drop(w);
    return NULL;
}

int store_worker_start(store_worker *w, seg_error *err)
{
    pthread_condattr_t ca;
    pthread_mutex_init(&w->mu, NULL);
    w->stop = w->wake = false;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->thread, NULL, worker_main, w)) {
        pthread_cond_destroy(&w->cv);
        err_startup(err, "worker", "cannot start the %s's thread", w->name);
        return -1;
    }
    w->started = true;
    return 0;
}

void store_worker_wake(store_worker *w)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->mu);
    w->wake = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void store_worker_stop(store_worker *w)
{
    if (!w->started)
        return;
    char why[256];
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    if (w->cancel) /* a statement under way ends now, not at statement_timeout */
        (void)PQcancel(w->cancel, why, sizeof why);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    w->started = false; /* the mutex stays: store_worker_stopping may still be asked */
}

int store_worker_run(store_worker *w, const char *name, const seg_config *cfg, int period_s,
                     int timeout_ms, void (*pass)(store_worker *w), seg_error *err)
{
    w->name = name;
    w->cfg = cfg;
    w->period_s = period_s;
    w->timeout_ms = timeout_ms;
    w->pass = pass;
    return store_worker_start(w, err);
}
