/* The read replica: a thread probes SEGMENTD_DATABASE_READ_URL every PROBE_MS on a session of
 * its own and keeps how far behind its primary it is. Evaluations read there while it
 * answers and is no further behind than SEGMENTD_READ_MAX_LAG_MS, and from the primary
 * otherwise (store/eval_pool.c). The lag is:
 * - 0 on a server that is not in recovery (the URL names a primary, or a promoted standby);
 * - 0 when a WAL receiver streams and everything received is replayed (an idle primary
 *   commits nothing: the last replayed commit's age would be no lag at all);
 * - else the age of the last replayed commit: replay paused or behind, or no primary
 *   streaming to it (its data stops at some past commit and ages from there on).
 * A failed read on the replica marks it down at once; the next good probe brings it back. */
#include "store/replica.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"
#include "store/session.h"

#define PROBE_MS 200
#define PROBE_TIMEOUT_MS 1000

static const char probe_sql[] =
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 "
    "WHEN EXISTS (SELECT 1 FROM pg_stat_wal_receiver) "
    "AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE floor(greatest(0, extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())) "
    "* 1000)::bigint END";

static struct {
    const seg_config *cfg;
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int lag;     /* ms as last probed; -1: down or unknown */
    atomic_ullong reads[2], probes_failed;
} rp = {.mu = PTHREAD_MUTEX_INITIALIZER, .lag = -1};

static void replica_metrics(metrics_out *o)
{
    int lag = atomic_load(&rp.lag);
    metrics_family(o, "segmentd_reads_total", "counter",
                   "evaluations (counts, previews, member pages, exports) by where they read: the "
                   "read replica (SEGMENTD_DATABASE_READ_URL) or the primary");
    metrics_sample(o, "segmentd_reads_total", "target=\"replica\"", atomic_load(&rp.reads[1]));
    metrics_sample(o, "segmentd_reads_total", "target=\"primary\"", atomic_load(&rp.reads[0]));
    metrics_family(o, "segmentd_read_replica_up", "gauge",
                   "1 when the read replica answered the last probe, else 0");
    metrics_sample(o, "segmentd_read_replica_up", "", lag >= 0);
    metrics_family(o, "segmentd_read_replica_lag_ms", "gauge",
                   "how far behind its primary the read replica was at the last probe (0 when down)");
    metrics_sample(o, "segmentd_read_replica_lag_ms", "", lag >= 0 ? (unsigned long long)lag : 0);
    metrics_family(o, "segmentd_read_replica_probe_failures_total", "counter",
                   "probes of the read replica that got no answer");
    metrics_sample(o, "segmentd_read_replica_probe_failures_total", "", atomic_load(&rp.probes_failed));
}

/* One probe: the lag, or -1. Connects when it has no session; drops a failed one. */
static int probe(PGconn **pg)
{
    if (!*pg) {
        *pg = session_open_own_at(rp.cfg, rp.cfg->read_url, PROBE_TIMEOUT_MS, NULL);
        if (!*pg)
            return -1;
    }
    PGresult *r = PQexec(*pg, probe_sql);
    int lag = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        long long ms = atoll(PQgetvalue(r, 0, 0));
        lag = ms > 1000000000LL ? 1000000000 : (int)ms;
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQfinish(*pg);
        *pg = NULL;
    }
    PQclear(r);
    return lag;
}

static void *probe_main(void *arg)
{
    (void)arg;
    PGconn *pg = NULL;
    bool was_up = true; /* so that a replica down at start-up is logged */
    for (;;) {
        int lag = probe(&pg);
        atomic_store(&rp.lag, lag);
        if (lag < 0)
            atomic_fetch_add(&rp.probes_failed, 1);
        if ((lag >= 0) != was_up) {
            was_up = lag >= 0;
            log_msg(was_up ? LOG_INFO : LOG_WARN,
                    was_up ? "read replica answers: evaluations read there"
                           : "read replica unreachable: evaluations read the primary",
                    NULL);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += PROBE_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&rp.mu);
        while (!rp.stop && pthread_cond_timedwait(&rp.cv, &rp.mu, &until) == 0)
            ;
        bool stop = rp.stop;
        pthread_mutex_unlock(&rp.mu);
        if (stop)
            break;
    }
    PQfinish(pg);
    return NULL;
}

int replica_start(const seg_config *cfg, seg_error *err)
{
    static bool provided;
    if (!provided) /* once per process */
        metrics_provide(replica_metrics);
    provided = true;
    rp.cfg = cfg;
    atomic_store(&rp.lag, -1);
    if (!cfg->read_url)
        return 0;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rp.cv, &ca);
    pthread_condattr_destroy(&ca);
    rp.stop = false;
    if (pthread_create(&rp.thread, NULL, probe_main, NULL)) {
        pthread_cond_destroy(&rp.cv);
        err_startup(err, "replica", "cannot start the read replica's probe");
        return -1;
    }
    rp.started = true;
    return 0;
}

void replica_stop(void)
{
    if (!rp.started)
        return;
    pthread_mutex_lock(&rp.mu);
    rp.stop = true;
    pthread_cond_signal(&rp.cv);
    pthread_mutex_unlock(&rp.mu);
    pthread_join(rp.thread, NULL);
    pthread_cond_destroy(&rp.cv);
    rp.started = false;
    atomic_store(&rp.lag, -1);
}

int replica_lag_ms(void)
{
    int lag = atomic_load(&rp.lag);
    return lag >= 0 && lag <= rp.cfg->read_max_lag_ms ? lag : -1;
}

void replica_failed(void)
{
    atomic_store(&rp.lag, -1);
}

void replica_count_read(bool on_replica)
{
    atomic_fetch_add(&rp.reads[on_replica], 1);
}
