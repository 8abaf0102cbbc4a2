/* The store's front: the pool set up and closed, a request's handle (store_open) and the one
 * execute path its statements take, transactions, the statistics.
 *
 * A request's statements go through its handle: one at a time they join the loop's batches
 * (store/batch.c); a transaction, a statement marked `alone` in the table and a transaction
 * in parts borrow a slot whole (store/slots.c), connected (store/session.c). */
#include "store/store.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "store/store_private.h"
#include "store/batch.h"
#include "store/eval_pool.h"
#include "store/replica.h"
#include "store/session.h"

/* The pool's families of /metrics. */
static void store_metrics(metrics_out *o)
{
    store_stats s;
    store_stats_get(&s);
    metrics_family(o, "segmentd_db_pool_connections", "gauge", "Database connections by state.");
    metrics_sample(o, "segmentd_db_pool_connections", "state=\"size\"", (unsigned long long)s.size);
    metrics_sample(o, "segmentd_db_pool_connections", "state=\"in_use\"", (unsigned long long)s.in_use);
    metrics_sample(o, "segmentd_db_pool_connections", "state=\"open\"", (unsigned long long)s.connected);
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"segmentd_db_pool_acquired_total", "Connections handed to requests.",
         offsetof(store_stats, acquired)},
        {"segmentd_db_pool_waits_total", "Requests that had to wait for a connection.",
         offsetof(store_stats, waits)},
        {"segmentd_db_pool_timeouts_total", "Requests refused with 503 because no connection freed up.",
         offsetof(store_stats, timeouts)},
        {"segmentd_db_errors_total", "Database errors (connect failures and failed statements).",
         offsetof(store_stats, errors)},
        {"segmentd_db_reconnects_total", "Connections re-established after a loss.",
         offsetof(store_stats, reconnects)},
        {"segmentd_db_pipeline_batches_total", "Pipelines of two or more statements sent.",
         offsetof(store_stats, batches)},
        {"segmentd_db_pipeline_statements_total", "Statements sent in those pipelines.",
         offsetof(store_stats, batched)},
        {"segmentd_db_pipeline_reruns_total",
         "Statements run again alone after another statement of their pipeline failed.",
         offsetof(store_stats, reruns)},
        {"segmentd_db_parts_total",
         "Statements sent as parts of one transaction (bulk creates stored while their body is read).",
         offsetof(store_stats, parts)},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        metrics_family(o, counters[i].name, "counter", counters[i].help);
        metrics_sample(o, counters[i].name, "",
                       *(const unsigned long long *)(const void *)((const char *)&s + counters[i].off));
    }
}

int store_init(const seg_config *cfg, seg_error *err)
{
    store_p.cfg = cfg;
    store_p.nslots = cfg->pool_size;
    store_p.slots = calloc((size_t)store_p.nslots, sizeof *store_p.slots);
    if (!store_p.slots || eval_pool_init(cfg)) {
        err_startup(err, "store", "out of memory");
        return -1;
    }
    if (replica_start(cfg, err))
        return -1;
    store_p.stats.size = store_p.nslots;
    static bool provided;
    if (!provided) /* once per process, whatever the number of store_init calls */
        metrics_provide(store_metrics);
    provided = true;
    return 0;
}

void store_close(void)
{
    replica_stop();
    eval_pool_close();
    pthread_mutex_lock(&store_p.mu);
    for (int i = 0; i < store_p.nslots; i++)
        if (store_p.slots[i].pg)
            PQfinish(store_p.slots[i].pg);
    free(store_p.slots);
    store_p.slots = NULL;
    store_p.nslots = 0;
    pthread_mutex_unlock(&store_p.mu);
}

static void handle_close(void *arg)
{
    store_release(arg);
}

store_conn *store_open(seg_arena *a, seg_error *err)
{
    if (fiber_loop_index() < 0 || !fiber_on()) {
        err_set(err, 500, "internal", "the database is used only from a request's fiber");
        err_log(err, "store_open off an event loop's fiber");
        return NULL;
    }
    store_conn *h = arena_alloc(a, sizeof *h);
    if (!h || arena_defer(a, handle_close, h)) {
        err_set(err, 500, "internal", "out of memory");
        return NULL;
    }
    h->handle = true;
    h->arena = a;
    return h;
}

void store_set_author(store_conn *c, const char *actor, const char *request_id)
{
    c->actor = actor && actor[0] ? actor : NULL;
    c->request_id = request_id;
}

PGresult *store_run(store_conn *c, stmt_id id, const char *const *params, seg_error *err)
{
    store_rows *rows = NULL;
    if (store_exec(c, id, params, &rows, err))
        return NULL;
    if (arena_defer(c->arena, store_rows_free, rows)) {
        err_set(err, 500, "internal", "out of memory");
        return NULL;
    }
    return store_res(rows);
}

PGresult *store_run_list(store_conn *c, stmt_id id, const char *const *params, int *lag_ms,
                         seg_error *err)
{
    *lag_ms = -1;
    if (store_p.cfg->read_replica_lists && c->handle && !c->own) {
        PGresult *r = eval_pool_try_replica(id, params, lag_ms);
        if (r) {
            if (arena_defer(c->arena, store_rows_free, r)) {
                PQclear(r);
                err_set(err, 500, "internal", "out of memory");
                return NULL;
            }
            return r;
        }
        *lag_ms = -1;
    }
    return store_run(c, id, params, err);
}

void store_release(store_conn *c)
{
    if (!c)
        return;
    if (c->handle) { /* in its arena: only its slot goes back */
        store_release(c->own);
        c->own = NULL;
        return;
    }
    slots_put(c);
}

store_conn *store_slot_for(store_conn *c, seg_error *err)
{
    if (!c->handle)
        return c;
    if (!c->own)
        c->own = session_borrow(err);
    return c->own;
}

static void (*segments_changed)(const char *tenant);

void store_on_segments_changed(void (*fn)(const char *tenant))
{
    segments_changed = fn;
}

void store_segments_written(stmt_id id, const char *const *params)
{
    if (segments_changed && params && params[0] && stmt_writes_segments(id))
        segments_changed(params[0]);
}

int store_exec(store_conn *c, stmt_id id, const char *const *params, store_rows **out,
               seg_error *err)
{
    if (c->handle && !c->own && !store_statements[id].alone) {
        int rc = batch_exec(id, params, out, err);
        if (rc == 0)
            store_segments_written(id, params);
        return rc;
    }
    store_conn *slot = store_slot_for(c, err);
    PGresult *r = slot ? batch_exec_alone(slot, id, params, err) : NULL;
    if (!r)
        return -1;
    store_segments_written(id, params);
    if (out)
        *out = (store_rows *)(void *)r;
    else
        PQclear(r);
    return 0;
}

static int simple(store_conn *c, stmt_id id, seg_error *err)
{
    PGresult *r = c ? batch_exec_alone(c, id, NULL, err) : NULL;
    PQclear(r);
    return r ? 0 : -1;
}

int store_begin(store_conn *c, seg_error *err)
{
    store_conn *s = store_slot_for(c, err);
    if (!s || simple(s, s->tx_depth ? STMT_SAVEPOINT : STMT_BEGIN, err))
        return -1;
    s->tx_depth++;
    return 0;
}

/* Ends the innermost transaction of slot s: true when it is nested (a savepoint). */
static bool tx_end(store_conn *s)
{
    bool nested = s && s->tx_depth > 1;
    if (s && s->tx_depth)
        s->tx_depth--;
    return nested;
}

int store_commit(store_conn *c, seg_error *err)
{
    store_conn *s = c->handle ? c->own : c;
    return simple(s, tx_end(s) ? STMT_RELEASE : STMT_COMMIT, err);
}

void store_rollback(store_conn *c)
{
    if (c->handle)
        c = c->own;
    bool nested = tx_end(c);
    if (c && c->pg && PQstatus(c->pg) == CONNECTION_OK)
        PQclear(session_run(c->pg, nested ? STMT_ROLLBACK_TO : STMT_ROLLBACK, NULL));
}

void store_rows_free(void *p)
{
    PQclear(p); /* NULL is a no-op */
}

void store_stats_get(store_stats *s)
{
    pthread_mutex_lock(&store_p.mu);
    *s = store_p.stats;
    s->connected = 0;
    for (int i = 0; i < store_p.nslots; i++)
        if (store_p.slots[i].pg && PQstatus(store_p.slots[i].pg) == CONNECTION_OK)
            s->connected++;
    pthread_mutex_unlock(&store_p.mu);
}

/* Column col of row r as a document whose version is in column vcol. */
void store_doc_of(const PGresult *res, int r, int col, int vcol, store_doc *out)
{
    out->json = PQgetvalue(res, r, col);
    out->len = (size_t)PQgetlength(res, r, col);
    out->version = strtoll(PQgetvalue(res, r, vcol), NULL, 10);
}

/* A single-row read or insert: (body, version), or no row. */
int store_one_doc(store_conn *c, stmt_id id, const char *const *p, store_doc *out, seg_error *err)
{
    PGresult *res = store_run(c, id, p, err);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        return STORE_MISSING;
    store_doc_of(res, 0, 0, 1, out);
    return STORE_DONE;
}

/* A delete's row: none = no such segment; (version, NULL) = If-Match stale; (version,
 * version) = gone. */
int store_deleted(store_conn *c, stmt_id id, const char *const *p, seg_error *err)
{
    PGresult *res = store_run(c, id, p, err);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        return STORE_MISSING;
    return PQgetisnull(res, 0, 1) ? STORE_STALE : STORE_DONE;
}

char *store_page_room(store_conn *c, size_t items_cap, seg_error *err)
{
    char *buf = arena_alloc(c->arena, STORE_PAGE_HEAD + items_cap + STORE_PAGE_TAIL);
    if (!buf) {
        err_set(err, 500, "internal", "out of memory");
        return NULL;
    }
    return buf + STORE_PAGE_HEAD;
}

void store_page_done(store_page *out, char *items, size_t len, const char *last_key)
{
    out->items = items;
    out->items_len = len;
    out->next_key[0] = '\0';
    if (last_key)
        snprintf(out->next_key, sizeof out->next_key, "%s", last_key);
}

int store_page_empty(store_conn *c, store_page *out, seg_error *err)
{
    char *buf = store_page_room(c, 0, err);
    if (!buf)
        return -1;
    out->n = 0;
    out->more = false;
    store_page_done(out, buf, 0, NULL);
    return STORE_DONE;
}

int store_page_of(store_conn *c, const PGresult *res, int limit, store_page *out, seg_error *err)
{
    int n = PQntuples(res);
    size_t cap = 0;
    out->replica_lag_ms = -1;
    out->more = n > limit;
    out->n = out->more ? limit : n;
    for (int i = 0; i < out->n; i++)
        cap += (size_t)PQgetlength(res, i, 0) + 1;
    char *buf = store_page_room(c, cap, err);
    if (!buf)
        return -1;
    size_t len = 0;
    for (int i = 0; i < out->n; i++) {
        if (i)
            buf[len++] = ',';
        memcpy(buf + len, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
        len += (size_t)PQgetlength(res, i, 0);
    }
    store_page_done(out, buf, len, out->more ? PQgetvalue(res, out->n - 1, 1) : NULL);
    return STORE_DONE;
}
