/* The segment watch: a background worker whose session LISTENs on segmentd_segments and
 * hands each notification's tenant to the caller, so that what a process keeps of the
 * segments (the lookup's compiled rules) is dropped in every process when one changes. */
#include "store/segment_watch.h"

#include <poll.h>

#include "core/log.h"
#include "store/worker.h"

#define WATCH_CHANNEL "segmentd_segments"
#define WATCH_POLL_MS 250   /* how soon a stop is seen */

static store_watch_fns fns;
static store_worker worker;

static void watch_pass(store_worker *w)
{
    PGconn *pg = store_worker_session(w);
    if (!pg)
        return;
    PGresult *r = PQexec(pg, "LISTEN " WATCH_CHANNEL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        log_msg(LOG_WARN, "segment watch: LISTEN failed", "error", PQerrorMessage(pg), NULL);
        store_worker_drop(w);
        return;
    }
    fns.listening(true);
    while (!store_worker_stopping(w)) {
        struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
        int rc = poll(&pfd, 1, WATCH_POLL_MS);
        if (rc < 0 || (rc > 0 && !PQconsumeInput(pg)) || PQstatus(pg) != CONNECTION_OK)
            break;
        PGnotify *n;
        while ((n = PQnotifies(pg)) != NULL) {
            fns.changed(n->extra);
            PQfreemem(n);
        }
    }
    fns.listening(false);
    if (!store_worker_stopping(w))
        log_msg(LOG_WARN, "segment watch: session lost, reconnecting", NULL);
    store_worker_drop(w);
}

int store_watch_start(const seg_config *cfg, const store_watch_fns *f, seg_error *err)
{
    fns = *f;
    worker.name = "segment watch";
    worker.cfg = cfg;
    worker.period_s = 1;
    worker.timeout_ms = cfg->statement_timeout_ms;
    worker.pass = watch_pass;
    return store_worker_start(&worker, err);
}

void store_watch_stop(void)
{
    store_worker_stop(&worker);
}
