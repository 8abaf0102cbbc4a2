/* The device import merge worker: a thread with a PostgreSQL session of its own that merges
 * the staged lines of imports whose body is complete into devices, a chunk of lines per
 * transaction, and fails the imports whose receiving process is gone. Each import is
 * merged under its advisory lock, so that however many processes share the database one
 * merges it, and a merge cut by a stop or a crash resumes at the chunk it had reached. */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"
#include "store/imports.h"
#include "store/session.h"

/* Lines merged per transaction: the row locks of one chunk are held for well under a
 * second, so that requests writing the same devices wait little. */
#define MERGE_LINES 20000
/* Seconds between looks for work nobody woke it for (an import left by a process gone). */
#define MERGE_POLL_S 5
#define MERGE_TIMEOUT_MS 300000

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, wake, started;
    pthread_t thread;
    const seg_config *cfg;
    PGconn *pg;
    PGcancel *cancel;          /* pg's, under mu */
    atomic_ullong done, failed, interrupted, lines, invalid;
} mw = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void merge_metrics(metrics_out *o)
{
    metrics_family(o, "segmentd_device_imports_total", "counter",
                   "device imports this process finished merging, or failed");
    metrics_sample(o, "segmentd_device_imports_total", "status=\"done\"", atomic_load(&mw.done));
    metrics_sample(o, "segmentd_device_imports_total", "status=\"failed\"", atomic_load(&mw.failed));
    metrics_family(o, "segmentd_device_imports_recovered_total", "counter",
                   "imports whose receiving process had gone, failed by this process's merge worker");
    metrics_sample(o, "segmentd_device_imports_recovered_total", "", atomic_load(&mw.interrupted));
    metrics_family(o, "segmentd_device_import_lines_total", "counter",
                   "import lines: valid ones this process merged into devices (upserted), and "
                   "those its receivers refused (invalid)");
    metrics_sample(o, "segmentd_device_import_lines_total", "outcome=\"upserted\"", atomic_load(&mw.lines));
    metrics_sample(o, "segmentd_device_import_lines_total", "outcome=\"invalid\"", atomic_load(&mw.invalid));
}

void store_import_counted(bool done)
{
    atomic_fetch_add(done ? &mw.done : &mw.failed, 1);
}

void store_import_counted_invalid(long long lines)
{
    atomic_fetch_add(&mw.invalid, (unsigned long long)lines);
}

static bool stopping(void)
{
    pthread_mutex_lock(&mw.mu);
    bool stop = mw.stop;
    pthread_mutex_unlock(&mw.mu);
    return stop;
}

static void drop_session(void)
{
    pthread_mutex_lock(&mw.mu);
    if (mw.cancel)
        PQfreeCancel(mw.cancel);
    mw.cancel = NULL;
    pthread_mutex_unlock(&mw.mu);
    PQfinish(mw.pg);
    mw.pg = NULL;
}

static PGconn *session(void)
{
    if (mw.pg && PQstatus(mw.pg) == CONNECTION_OK)
        return mw.pg;
    drop_session();
    mw.pg = session_open_own(mw.cfg, MERGE_TIMEOUT_MS, "device import merge (retrying shortly)");
    if (!mw.pg)
        return NULL;
    const stmt_def *m = &store_statements[STMT_IMPORT_MERGE];
    PGresult *r = session_run(mw.pg, STMT_IMPORT_MERGE_SETUP, NULL);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    r = ok && PQsendPrepare(mw.pg, m->name, m->sql, m->nparams, NULL) ? session_await(mw.pg) : NULL;
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        log_msg(LOG_ERROR, "device import merge: cannot prepare its statement", "detail",
                r ? PQresultErrorMessage(r) : PQerrorMessage(mw.pg), NULL);
    PQclear(r);
    if (!ok) {
        drop_session();
        return NULL;
    }
    pthread_mutex_lock(&mw.mu);
    mw.cancel = PQgetCancel(mw.pg);
    pthread_mutex_unlock(&mw.mu);
    return mw.pg;
}

/* r's SQLSTATE names bad data (class 22) or a broken constraint (23): retrying cannot help. */
static bool refused_for_good(const PGresult *r)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return st && (!strncmp(st, "22", 2) || !strncmp(st, "23", 2));
}

static void fail_import(PGconn *pg, const char *seq, const char *failure)
{
    const char *p[6] = {seq, failure, NULL, NULL, NULL, NULL};
    PGresult *r = session_run(pg, STMT_IMPORT_FAIL, p);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        atomic_fetch_add(&mw.failed, 1);
    PQclear(r);
}

/* Merges import seq from its merged_through to its last line, chunk by chunk. -1 when the
 * session failed (the caller drops it). */
static int merge(PGconn *pg, const char *seq, const char *tenant, long long from, long long last)
{
    char a[24], b[24];
    const char *p[4] = {seq, tenant, a, b};
    while (from < last && !stopping()) {
        long long to = last - from > MERGE_LINES ? from + MERGE_LINES : last;
        snprintf(a, sizeof a, "%lld", from);
        snprintf(b, sizeof b, "%lld", to);
        PGresult *r = session_run(pg, STMT_IMPORT_MERGE, p);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            if (stopping()) { /* cancelled: the chunk rolled back; the next start resumes here */
                PQclear(r);
                return 0;
            }
            bool for_good = refused_for_good(r);
            log_msg(LOG_WARN, "device import merge: a chunk failed", "import", seq, "detail",
                    r ? PQresultErrorMessage(r) : PQerrorMessage(pg), NULL);
            PQclear(r);
            if (!for_good)
                return -1;
            fail_import(pg, seq, "{\"code\":\"merge_failed\",\"detail\":\"the database refused "
                                 "lines of this import; lines before them were merged\"}");
            return 0;
        }
        bool moved = PQntuples(r) == 1;
        if (moved) {
            atomic_fetch_add(&mw.lines, strtoull(PQgetvalue(r, 0, 1), NULL, 10));
            if (!strcmp(PQgetvalue(r, 0, 0), "done"))
                atomic_fetch_add(&mw.done, 1);
        }
        PQclear(r);
        if (!moved) /* the import is no longer where this worker read it: leave it */
            return 0;
        from = to;
    }
    return 0;
}

/* Under the import's lock: what it needs. -1 when the session failed. */
static int handle(PGconn *pg, const char *seq)
{
    const char *p[1] = {seq};
    PGresult *r = session_run(pg, STMT_IMPORT_STATE, p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    int rc = 0;
    if (PQntuples(r) == 1) {
        const char *status = PQgetvalue(r, 0, 1);
        if (!strcmp(status, "receiving")) { /* its lock was free: its receiver is gone */
            fail_import(pg, seq, "{\"code\":\"interrupted\",\"detail\":\"segmentd stopped before "
                                 "the body had arrived: nothing of it was applied\"}");
            atomic_fetch_add(&mw.interrupted, 1);
            log_msg(LOG_INFO, "device import: receiver gone, import failed", "import", seq, NULL);
        } else if (!strcmp(status, "merging")) {
            rc = merge(pg, seq, PQgetvalue(r, 0, 0), strtoll(PQgetvalue(r, 0, 2), NULL, 10),
                       strtoll(PQgetvalue(r, 0, 3), NULL, 10));
        }
    }
    PQclear(r);
    return rc;
}

static void pass(void)
{
    PGconn *pg = session();
    if (!pg)
        return;
    PGresult *open = session_run(pg, STMT_IMPORT_OPEN, NULL);
    if (PQresultStatus(open) != PGRES_TUPLES_OK) {
        PQclear(open);
        drop_session();
        return;
    }
    for (int i = 0; i < PQntuples(open) && !stopping(); i++) {
        const char *p[1] = {PQgetvalue(open, i, 0)};
        PGresult *r = session_run(pg, STMT_IMPORT_TRY_LOCK, p);
        bool locked = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
        bool lost = PQresultStatus(r) != PGRES_TUPLES_OK;
        PQclear(r);
        if (lost || !locked) {
            if (lost)
                break;
            continue;
        }
        int rc = handle(pg, p[0]);
        PQclear(session_run(pg, STMT_IMPORT_UNLOCK, p)); /* a session gone releases it anyway */
        if (rc) {
            log_msg(LOG_WARN, "device import merge: the session failed; retrying shortly", "detail",
                    PQerrorMessage(pg), NULL);
            break;
        }
    }
    PQclear(open);
    if (PQstatus(pg) != CONNECTION_OK || PQtransactionStatus(pg) != PQTRANS_IDLE)
        drop_session();
}

static void *merge_main(void *arg)
{
    (void)arg;
    while (!stopping()) {
        pass();
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += MERGE_POLL_S;
        pthread_mutex_lock(&mw.mu);
        while (!mw.stop && !mw.wake && pthread_cond_timedwait(&mw.cv, &mw.mu, &until) == 0)
            ;
        mw.wake = false;
        pthread_mutex_unlock(&mw.mu);
    }
    drop_session();
    return NULL;
}

int store_import_merge_start(const seg_config *cfg, seg_error *err)
{
    static bool provided;
    pthread_condattr_t ca;
    if (!provided) /* once per process */
        metrics_provide(merge_metrics);
    provided = true;
    mw.cfg = cfg;
    mw.stop = false;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&mw.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&mw.thread, NULL, merge_main, NULL)) {
        pthread_cond_destroy(&mw.cv);
        err_startup(err, "imports", "cannot start the device import merge worker's thread");
        return -1;
    }
    mw.started = true;
    return 0;
}

void store_import_merge_wake(void)
{
    pthread_mutex_lock(&mw.mu);
    mw.wake = true;
    if (mw.started)
        pthread_cond_signal(&mw.cv);
    pthread_mutex_unlock(&mw.mu);
}

void store_import_merge_stop(void)
{
    if (!mw.started)
        return;
    char why[256];
    pthread_mutex_lock(&mw.mu);
    mw.stop = true;
    pthread_cond_signal(&mw.cv);
    if (mw.cancel)
        (void)PQcancel(mw.cancel, why, sizeof why);
    pthread_mutex_unlock(&mw.mu);
    pthread_join(mw.thread, NULL);
    pthread_cond_destroy(&mw.cv);
    mw.started = false;
}
