/* The segment watch: a background worker that reads, every STORE_WATCH_PERIOD_MS, the
 * fingerprints of the segments of the tenants the caller keeps copies of, so that copies are
 * dropped in every process when another changes them. (Not LISTEN/NOTIFY: a NOTIFY from the
 * writes' transactions would serialise every segment write's commit on a database-wide lock.) */
#include "store/segment_watch.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "store/session.h"
#include "store/worker.h"

static store_watch_fns fns;
static store_worker worker;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void watch_pass(store_worker *w)
{
    PGconn *pg = store_worker_session(w);
    if (!pg)
        return;
    fns.watching(true);
    while (!store_worker_stopping(w)) {
        char *tenants = fns.tenants();
        if (tenants) {
            const char *p[1] = {tenants};
            PGresult *r = session_run(pg, STMT_WATCH_FINGERPRINTS, p);
            free(tenants);
            if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                PQclear(r);
                break;
            }
            for (int i = 0; i < PQntuples(r); i++)
                fns.seen(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
            PQclear(r);
        }
        sleep_ms(STORE_WATCH_PERIOD_MS);
    }
    fns.watching(false);
    if (!store_worker_stopping(w))
        log_msg(LOG_WARN, "segment watch: the database did not answer; reading again shortly",
                "error", PQerrorMessage(pg), NULL);
    store_worker_drop(w);
}

int store_watch_start(const seg_config *cfg, const store_watch_fns *f, seg_error *err)
{
    fns = *f;
    return store_worker_run(&worker, "segment watch", cfg,
                            1, cfg->statement_timeout_ms, watch_pass, err);
}

void store_watch_stop(void)
{
    store_worker_stop(&worker);
}
