/* The device import merge worker: a thread with a PostgreSQL session of its own that merges
 * the staged lines of imports whose body is complete into devices, a chunk of lines per
 * transaction, and fails the imports whose receiving process is gone. Each import is
 * merged under its advisory lock, so that however many processes share the database one
 * merges it, and a merge cut by a stop or a crash resumes at the chunk it had reached. */
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fiber.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/imports.h"
#include "store/session.h"
#include "store/worker.h"

/* Lines merged per transaction: the row locks of one chunk are held for well under a
 * second, so that requests writing the same devices wait little. */
#define MERGE_LINES 20000
/* Seconds between looks for work nobody woke it for (an import left by a process gone). */
#define MERGE_POLL_S 5
#define MERGE_TIMEOUT_MS 300000
/* Finished imports past their retention are purged at most this often. */
#define PURGE_EVERY_NS (3600ull * 1000000000ull)

static struct {
    store_worker w;
    atomic_ullong done, failed, interrupted, lines, invalid, purged;
    uint64_t purged_ns;        /* when the last purge ran (0: never) */
} mw;

static void merge_metrics(metrics_out *o)
{
    metrics_family(o, "segmentd_device_imports_total", "counter",
                   "device imports this process finished merging, or failed");
    metrics_sample(o, "segmentd_device_imports_total", "status=\"done\"", atomic_load(&mw.done));
    metrics_sample(o, "segmentd_device_imports_total", "status=\"failed\"", atomic_load(&mw.failed));
    metrics_family(o, "segmentd_device_imports_recovered_total", "counter",
                   "imports whose receiving process had gone, failed by this process's merge worker");
    metrics_sample(o, "segmentd_device_imports_recovered_total", "", atomic_load(&mw.interrupted));
    metrics_family(o, "segmentd_device_imports_purged_total", "counter",
                   "finished imports this process purged past SEGMENTD_IMPORT_RETENTION_DAYS");
    metrics_sample(o, "segmentd_device_imports_purged_total", "", atomic_load(&mw.purged));
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
    return store_worker_stopping(&mw.w);
}

/* The merge statement prepared, and a chunk's sort by id kept in memory. */
static bool setup(store_worker *w, PGconn *pg)
{
    (void)w;
    const stmt_def *m = &store_statements[STMT_IMPORT_MERGE];
    PGresult *r = session_run(pg, STMT_IMPORT_MERGE_SETUP, NULL);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    r = ok && PQsendPrepare(pg, m->name, m->sql, m->nparams, NULL) ? session_await(pg) : NULL;
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        log_msg(LOG_ERROR, "device import merge: cannot prepare its statement", "detail",
                r ? PQresultErrorMessage(r) : PQerrorMessage(pg), NULL);
    PQclear(r);
    return ok;
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

/* Drops the finished imports past their retention, once an hour. */
static void purge(PGconn *pg)
{
    uint64_t now = fiber_now_ns();
    if (mw.purged_ns && now - mw.purged_ns < PURGE_EVERY_NS)
        return;
    char days[16];
    snprintf(days, sizeof days, "%d", mw.w.cfg->import_retention_days);
    const char *p[1] = {days};
    PGresult *r = session_run(pg, STMT_IMPORT_PURGE, p);
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        mw.purged_ns = now;
        atomic_fetch_add(&mw.purged, strtoull(PQcmdTuples(r), NULL, 10));
    }
    PQclear(r);
}

static void pass(store_worker *w)
{
    PGconn *pg = store_worker_session(w);
    if (!pg)
        return;
    purge(pg);
    PGresult *open = session_run(pg, STMT_IMPORT_OPEN, NULL);
    if (PQresultStatus(open) != PGRES_TUPLES_OK) {
        PQclear(open);
        store_worker_drop(w);
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
        store_worker_drop(w);
}

int store_import_merge_start(const seg_config *cfg, seg_error *err)
{
    static bool provided;
    if (!provided) /* once per process */
        metrics_provide(merge_metrics);
    provided = true;
    mw.w.setup = setup;
    return store_worker_run(&mw.w, "device import merge", cfg,
                            MERGE_POLL_S, MERGE_TIMEOUT_MS, pass, err);
}

void store_import_merge_wake(void)
{
    store_worker_wake(&mw.w);
}

void store_import_merge_stop(void)
{
    store_worker_stop(&mw.w);
}
