/* The lifecycle sweeper: a thread with a PostgreSQL session of its own that renews, every
 * SEGMENTD_LIFECYCLE_SWEEP_S seconds, the segments of both dialects whose extend is true
 * and whose end date has passed (segment.extended), finds those that expired since
 * (segment.expired: an expiry has no write of its own to tell it), then purges the revisions
 * older than SEGMENTD_HISTORY_DAYS, the expired idempotency keys and the webhook events past
 * their retention (with renewals off, it only purges, once an hour). It takes no connection of
 * the pool, so requests never wait for it, nor it for them; the statements' row locks (SKIP
 * LOCKED, and the WHERE checked again on the locked row) make each renewal and each expiry
 * happen once however many processes sweep one database. */
#include "store/sweeper.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "store/history.h"
#include "store/idempotency.h"
#include "store/session.h"
#include "store/webhook_events.h"
#include "store/worker.h"

/* Segments renewed by one statement, each its own transaction: a pass over many due
 * segments holds no lock for long, and what it did before a failure stays done. */
#define RENEW_BATCH "500"
#define RENEW_BATCH_N 500
/* Revisions purged by one statement: each batch its own short transaction. */
#define PURGE_BATCH 5000
/* Seconds between the passes that only purge history (renewals off). */
#define PURGE_ONLY_EVERY_S 3600

static struct {
    store_worker w;
    bool renews;
    atomic_ullong passes, failures, renewed[2], expired[2], purged, keys_purged, events_purged;
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
    metrics_family(o, "segmentd_lifecycle_expiries_total", "counter",
                   "segments whose end passed without renewal, found by this process's sweeper "
                   "(each expiry once, in one process; segment.expired told when subscribed)");
    metrics_sample(o, "segmentd_lifecycle_expiries_total", "dialect=\"audiences\"",
                   atomic_load(&sw.expired[0]));
    metrics_sample(o, "segmentd_lifecycle_expiries_total", "dialect=\"v1\"",
                   atomic_load(&sw.expired[1]));
    metrics_family(o, "segmentd_history_purged_total", "counter",
                   "segment revisions older than SEGMENTD_HISTORY_DAYS purged by this process");
    metrics_sample(o, "segmentd_history_purged_total", "", atomic_load(&sw.purged));
    metrics_family(o, "segmentd_idempotency_keys_purged_total", "counter",
                   "idempotency keys past SEGMENTD_IDEMPOTENCY_HOURS purged by this process");
    metrics_sample(o, "segmentd_idempotency_keys_purged_total", "", atomic_load(&sw.keys_purged));
    metrics_family(o, "segmentd_webhook_events_purged_total", "counter",
                   "webhook events (with their deliveries) past their retention purged by this process");
    metrics_sample(o, "segmentd_webhook_events_purged_total", "", atomic_load(&sw.events_purged));
}

static bool stopping(void)
{
    return store_worker_stopping(&sw.w);
}

/* Runs statement id (of dialect d) batch after batch until one does less than a batch, adding
 * what each did to count[d] and *total. -1 on a database error; 1 when stopping. */
static int in_batches(PGconn *pg, stmt_id id, int d, atomic_ullong *count, long long *total,
                      seg_error *err)
{
    const char *params[1] = {RENEW_BATCH};
    for (;;) {
        long long n = session_run_count(pg, id, params, "lifecycle sweep", err);
        if (n < 0)
            return -1;
        atomic_fetch_add(&count[d], (unsigned long long)n);
        *total += n;
        if (n < RENEW_BATCH_N)
            return 0;
        if (stopping())
            return 1;
    }
}

long long store_sweep_once(void *session, seg_error *err)
{
    static const stmt_id renew[2] = {STMT_AUD_RENEW, STMT_V1_RENEW};
    static const stmt_id expire[2] = {STMT_AUD_EXPIRE, STMT_V1_EXPIRE};
    PGconn *pg = session;
    long long total = 0, expired = 0;
    for (int d = 0; d < 2; d++) {
        int rc = in_batches(pg, renew[d], d, sw.renewed, &total, err);
        if (rc)
            return rc < 0 ? -1 : total;
    }
    /* after the renewals: a segment renewed now is not expired */
    for (int d = 0; d < 2; d++) {
        int rc = in_batches(pg, expire[d], d, sw.expired, &expired, err);
        if (rc)
            return rc < 0 ? -1 : total;
    }
    return total;
}

/* A purge's outcome: counted, or logged (what) and the session dropped, so that the next
 * pass starts on a new one. False after a failure. */
static bool purged(long long n, atomic_ullong *count, const char *what, const seg_error *err)
{
    if (n >= 0) {
        atomic_fetch_add(count, (unsigned long long)n);
        return true;
    }
    if (!stopping()) {
        log_msg(LOG_WARN, what, "detail", err->log_detail, NULL);
        store_worker_drop(&sw.w); /* the next pass reconnects */
    }
    return false;
}

/* Purges the revisions past their retention, then the expired idempotency keys, then the
 * webhook events past theirs. */
static void purge(PGconn *pg)
{
    seg_error err;
    err_clear(&err);
    if (sw.w.cfg->history_days > 0 &&
        !purged(store_history_purge(pg, sw.w.cfg->history_days, PURGE_BATCH, stopping, &err),
                &sw.purged, "history purge failed; retrying at the next pass", &err))
        return;
    if (!purged(store_idem_purge(pg, PURGE_BATCH, stopping, &err), &sw.keys_purged,
                "idempotency key purge failed; retrying at the next pass", &err))
        return;
    (void)purged(store_webhook_events_purge(pg, WEBHOOK_EVENT_DAYS, PURGE_BATCH, stopping, &err),
                 &sw.events_purged, "webhook event purge failed; retrying at the next pass", &err);
}

static void pass(store_worker *w)
{
    seg_error err;
    err_clear(&err);
    PGconn *pg = store_worker_session(w);
    if (!sw.renews) {
        if (pg)
            purge(pg);
        return;
    }
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
    if (n >= 0)
        purge(pg);
}

int store_sweeper_start(const seg_config *cfg, seg_error *err)
{
    static bool provided;
    if (!provided) /* once per process; zeros when the sweeper is off */
        metrics_provide(sweeper_metrics);
    provided = true;
    sw.renews = cfg->lifecycle_sweep_s > 0; /* off, it still purges (idempotency keys expire) */
    return store_worker_run(&sw.w, "lifecycle sweeper", cfg,
                            sw.renews ? cfg->lifecycle_sweep_s : PURGE_ONLY_EVERY_S,
                            cfg->statement_timeout_ms, pass, err);
}

void store_sweeper_stop(void)
{
    store_worker_stop(&sw.w);
}
