/* The lifecycle sweeper: a thread with a PostgreSQL session of its own that renews, every
 * SEGMENTD_LIFECYCLE_SWEEP_S seconds, the segments of both dialects whose extend is true
 * and whose end date has passed. It takes no connection of the pool, so requests never
 * wait for it, nor it for them; the statements' row locks (SKIP LOCKED, and the WHERE
 * checked again on the locked row) make each renewal happen once however many processes
 * sweep one database. */
#include "store/sweeper.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "store/session.h"
#include "store/worker.h"

/* Segments renewed by one statement, each its own transaction: a pass over many due
 * segments holds no lock for long, and what it did before a failure stays done. */
#define RENEW_BATCH "500"
#define RENEW_BATCH_N 500

static struct {
    store_worker w;
    atomic_ullong passes, failures, renewed[2];
} sw;

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
    return store_worker_stopping(&sw.w);
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

static void pass(store_worker *w)
{
    seg_error err;
    err_clear(&err);
    PGconn *pg = store_worker_session(w);
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
        store_worker_drop(w);
    } else if (n > 0) {
        char count[24];
        snprintf(count, sizeof count, "%lld", n);
        log_msg(LOG_INFO, "lifecycle sweeper: segments renewed", "count", count, NULL);
    }
}

int store_sweeper_start(const seg_config *cfg, seg_error *err)
{
    static bool provided;
    if (!provided) /* once per process; zeros when the sweeper is off */
        metrics_provide(sweeper_metrics);
    provided = true;
    if (cfg->lifecycle_sweep_s <= 0)
        return 0;
    return store_worker_run(&sw.w, "lifecycle sweeper", cfg,
                            cfg->lifecycle_sweep_s, cfg->statement_timeout_ms, pass, err);
}

void store_sweeper_stop(void)
{
    store_worker_stop(&sw.w);
}
