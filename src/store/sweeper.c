/* The lifecycle sweeper: a thread with a PostgreSQL session of its own that renews, every
 * SEGMENTD_LIFECYCLE_SWEEP_S seconds, the segments of both dialects whose extend is true
 * and whose end date has passed. It takes no connection of the pool, so requests never
 * wait for it, nor it for them; the statements' row locks (SKIP LOCKED, and the WHERE
 * checked again on the locked row) make each renewal happen once however many processes
 * sweep one database. */
#include "store/sweeper.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"
#include "store/session.h"

/* Segments renewed by one statement, each its own transaction: a pass over many due
 * segments holds no lock for long, and what it did before a failure stays done. */
#define RENEW_BATCH "500"
#define RENEW_BATCH_N 500

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    bool started;
    pthread_t thread;
    const seg_config *cfg;
    PGconn *pg;
    PGcancel *cancel;        /* pg's, under mu: store_sweeper_stop cancels a statement under way */
    atomic_ullong passes, failures, renewed[2];
} sw = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void sweeper_metrics(metrics_out *o)
{
    metrics_family(o, "segmentd_lifecycle_sweeps_total", "counter",
                   "passes of the lifecycle sweeper (SEGMENTD_LIFECYCLE_SWEEP_S)");
    metrics_sample(o, "segmentd_lifecycle_sweeps_total", "", atomic_load(&sw.passes));
    metrics_family(o, "segmentd_lifecycle_sweep_failures_total", "counter",
                   "passes of the lifecycle sweeper that a database error ended");
    metrics_sample(o, "segmentd_lifecycle_sweep_failures_total", "", atomic_load(&sw.failures));
    metrics_family(o, "segmentd_lifecycle_extensions_total", "counter",
                   "segments renewed by this process's sweeper (each renewal once, in one process)");
    metrics_sample(o, "segmentd_lifecycle_extensions_total", "dialect=\"audiences\"",
                   atomic_load(&sw.renewed[0]));
    metrics_sample(o, "segmentd_lifecycle_extensions_total", "dialect=\"v1\"",
                   atomic_load(&sw.renewed[1]));
}

static bool stopping(void)
{
    pthread_mutex_lock(&sw.mu);
    bool stop = sw.stop;
    pthread_mutex_unlock(&sw.mu);
    return stop;
}

long long store_sweep_once(void *session, seg_error *err)
{
    static const stmt_id renew[2] = {STMT_AUD_RENEW, STMT_V1_RENEW};
    const char *params[1] = {RENEW_BATCH};
    PGconn *pg = session;
    long long total = 0;
    for (int d = 0; d < 2; d++) {
        for (;;) {
            PGresult *r = session_run(pg, renew[d], params);
            if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
                err_set(err, 503, "unavailable", "the lifecycle sweep failed");
                err_log(err, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
                PQclear(r);
                return -1;
            }
            long long n = strtoll(PQcmdTuples(r), NULL, 10);
            PQclear(r);
            atomic_fetch_add(&sw.renewed[d], (unsigned long long)n);
            total += n;
            if (n < RENEW_BATCH_N)
                break;
            if (stopping())
                return total;
        }
    }
    return total;
}

/* Drops the session (under mu, so that a stop never cancels through a freed handle). */
static void drop_session(void)
{
    pthread_mutex_lock(&sw.mu);
    if (sw.cancel)
        PQfreeCancel(sw.cancel);
    sw.cancel = NULL;
    pthread_mutex_unlock(&sw.mu);
    if (sw.pg)
        PQfinish(sw.pg);
    sw.pg = NULL;
}

/* The sweeper's session, connected and set up; NULL (logged) when the database cannot be
 * reached: the next pass tries again. */
static PGconn *session(void)
{
    if (sw.pg && PQstatus(sw.pg) == CONNECTION_OK)
        return sw.pg;
    drop_session();
    sw.pg = session_open_own(sw.cfg, sw.cfg->statement_timeout_ms, "lifecycle sweeper (retrying at the next pass)");
    if (!sw.pg)
        return NULL;
    pthread_mutex_lock(&sw.mu);
    sw.cancel = PQgetCancel(sw.pg);
    pthread_mutex_unlock(&sw.mu);
    return sw.pg;
}

static void pass(void)
{
    seg_error err;
    err_clear(&err);
    PGconn *pg = session();
    atomic_fetch_add(&sw.passes, 1);
    if (!pg) {
        atomic_fetch_add(&sw.failures, 1);
        return;
    }
    long long n = store_sweep_once(pg, &err);
    if (n < 0) {
        if (stopping()) /* cancelled by store_sweeper_stop: what was committed stays */
            return;
        atomic_fetch_add(&sw.failures, 1);
        log_msg(LOG_WARN, "lifecycle sweeper: a pass failed; retrying at the next pass", "detail",
                err.log_detail, NULL);
        drop_session();
    } else if (n > 0) {
        char count[24];
        snprintf(count, sizeof count, "%lld", n);
        log_msg(LOG_INFO, "lifecycle sweeper: segments renewed", "count", count, NULL);
    }
}

static void *sweeper_main(void *arg)
{
    (void)arg;
    while (!stopping()) {
        pass();
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += sw.cfg->lifecycle_sweep_s;
        pthread_mutex_lock(&sw.mu);
        while (!sw.stop && pthread_cond_timedwait(&sw.cv, &sw.mu, &until) == 0)
            ;
        pthread_mutex_unlock(&sw.mu);
    }
    drop_session();
    return NULL;
}

int store_sweeper_start(const seg_config *cfg, seg_error *err)
{
    static bool provided;
    pthread_condattr_t ca;
    if (!provided) /* once per process; zeros when the sweeper is off */
        metrics_provide(sweeper_metrics);
    provided = true;
    if (cfg->lifecycle_sweep_s <= 0)
        return 0;
    sw.cfg = cfg;
    sw.stop = false;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sw.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&sw.thread, NULL, sweeper_main, NULL)) {
        pthread_cond_destroy(&sw.cv);
        err_startup(err, "lifecycle", "cannot start the lifecycle sweeper's thread");
        return -1;
    }
    sw.started = true;
    return 0;
}

void store_sweeper_stop(void)
{
    if (!sw.started)
        return;
    char why[256];
    pthread_mutex_lock(&sw.mu);
    sw.stop = true;
    pthread_cond_signal(&sw.cv);
    if (sw.cancel) /* a statement under way ends now, not at statement_timeout */
        (void)PQcancel(sw.cancel, why, sizeof why);
    pthread_mutex_unlock(&sw.mu);
    pthread_join(sw.thread, NULL);
    pthread_cond_destroy(&sw.cv);
    sw.started = false;
}
