/* The bulk routes of both segment dialects and of /v1/devices, where they meet the
 * request and the store: a create's parts sent while its body is read, or the whole body
 * in one statement; the items are bulk_items.c's, the answer bulk_envelope.c's. */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

#include "handlers/bulk_private.h"
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "store/devices.h"
#include "store/segments.h"
#include "validate/validate.h"

static const stmt_id statements[2][3] = {
    {STMT_AUD_BULK_INSERT, STMT_AUD_BULK_UPDATE, STMT_AUD_BULK_DELETE},
    {STMT_V1_BULK_INSERT, STMT_V1_BULK_UPDATE, STMT_V1_BULK_DELETE},
};

/* The envelope of the rows (h_bulk_envelope, which adds a not_found error for each item
 * the statement did not touch), kept with the request; NULL with a 500 in rq->err. */
static char *envelope(bulk *b, http_request *rq, store_bulk_rows *rows, size_t *len)
{
    char *text = h_bulk_envelope(b, rows ? rows->rows : NULL, rows ? rows->n : 0, len);
    if (!text || arena_defer(&rq->arena, free, text)) {
        err_set(&rq->err, 500, "internal", "the answer could not be written");
        return NULL;
    }
    return text;
}

static void bulk_reply(bulk *b, http_request *rq, store_conn *c, int status, store_bulk_rows *rows)
{
    size_t len;
    char *text = envelope(b, rq, rows, &len);
    if (c && rows)
        store_bulk_done(c, rows); /* written into the answer: not kept while it is sent */
    if (text)
        http_reply(rq, status, "application/json", text, len, NULL, NULL);
}

/* All or nothing: the whole request is refused with every error; nothing stored. */
static void bulk_refuse(bulk *b, http_request *rq)
{
    h_bulk_drop_records(b);
    bulk_reply(b, rq, NULL, 422, NULL);
}

static void bulk_release(void *b)
{
    h_bulk_free(b);
}

/* The request's bulk state, with room for cap items (released with the request). */
static bulk *bulk_start(http_request *rq, bulk_op op, bool v1, bool devices, size_t cap)
{
    bulk *b = h_keep(rq, sizeof *b, bulk_release);
    if (!b)
        return NULL;
    b->op = op;
    b->v1 = v1;
    b->devices = devices;
    b->trace_id = rq->request_id;
    if (h_bulk_alloc(b, cap)) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return NULL;
    }
    return b;
}

/* The kept records of items [from, to) for the statement (released with the request);
 * NULL when none is kept, or when out of memory (then with a 500 in rq->err). */
static char *join_records(const bulk *b, http_request *rq, size_t from, size_t to)
{
    bool oom;
    char *text = h_bulk_join(b, from, to, &oom);
    if (oom || (text && arena_defer(&rq->arena, free, text))) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return NULL;
    }
    return text;
}

/* ---- creates: stored while the body is still being read ---------------------------
 * A create's items are parsed one by one (jansson on each item's text) while the body
 * {"data":[…]} itself is walked (validate/bulk_body.h); every BULK_PART_ITEMS kept items
 * are sent to PostgreSQL as one part of one transaction (store_parts_*), so that
 * PostgreSQL inserts one part while the next is parsed and validated, instead of the two
 * one after the other. When the walk gives up, what was sent is rolled back and the
 * request starts over on the whole body (run_whole), whose answer is then the one given. */
#define BULK_PART_ITEMS 100

/* Sends the kept records of items [from, b->n) as part *nparts (counted even when it
 * fails); the transaction is opened with the first. */
static int send_part(bulk *b, http_request *rq, store_conn *c, bool *open, size_t from, int *nparts,
                     seg_error *err)
{
    (*nparts)++;
    char *text = join_records(b, rq, from, b->n);
    if (!text)
        return rq->err.status ? -1 : 0;
    if (!*open) {
        *open = true; /* store_parts_end is owed even when this fails */
        if (store_parts_begin(c, err))
            return -1;
    }
    const char *p[4] = {rq->principal.tenant, text, rq->principal.subject[0] ? rq->principal.subject : NULL,
                        rq->request_id}; /* $3, $4: the revisions' author (store_bulk's) */
    int rc = store_parts_send(c, statements[b->v1][BULK_CREATE], p, err);
    (void)arena_run_now(&rq->arena, text); /* libpq holds its copy: a body's worth less kept */
    return rc;
}

/* 0 when the request was answered (or rq->err set), -1 to start over with run_whole:
 * then nothing was stored or answered. */
static int run_streamed(http_request *rq, bool v1, bool atomic)
{
    bulk *b;
    val_bulk_walk w;
    store_conn *c;
    store_bulk_rows rows = {0}; /* none when no part was sent */
    seg_error db_err;
    int nparts = 0, rc = 0, step;
    size_t from = 0, kept = 0;
    bool open = false, failed = false;

    err_clear(&db_err);
    if (!val_bulk_open(&w, rq->body, rq->body_len))
        return -1;
    if (!(b = bulk_start(rq, BULK_CREATE, v1, false, VAL_BULK_MAX_ITEMS)) || !(c = h_store(rq)))
        return 0;
    do {
        if ((step = h_bulk_step(b, &w)) < 0)
            goto over;
        kept += b->records[b->n - 1] != NULL;
        if (kept == BULK_PART_ITEMS && !failed && !(atomic && b->n_errors)) {
            /* a failed part fails them all: its error is given once the walk is done */
            failed = send_part(b, rq, c, &open, from, &nparts, &db_err) != 0;
            from = b->n;
            kept = 0;
        }
    } while (step);
    if (atomic && b->n_errors) {
        bulk_refuse(b, rq); /* what was sent is rolled back below */
        goto done;
    }
    if (!failed && kept)
        failed = send_part(b, rq, c, &open, from, &nparts, &db_err) != 0;
    if (open) {
        open = false;
        if (store_bulk_parts_end(c, statements[v1][BULK_CREATE], !failed, nparts, &rows, &db_err))
            failed = true;
    }
    if (failed) {
        if (!rq->err.status) /* else join_records ran out of memory */
            rq->err = db_err;
        goto done;
    }
    bulk_reply(b, rq, c, 200, &rows);
    goto done;
over:
    rc = -1;
done:
    if (open)
        (void)store_bulk_parts_end(c, statements[v1][BULK_CREATE], false, nparts, &rows, &db_err);
    if (rc)
        err_clear(&rq->err);
    if (!rq->txn) /* its connection back now: run_whole may need it (not the key's transaction) */
        (void)arena_run_now(&rq->arena, c);
    return rc;
}

/* ---- the whole body at once: updates, deletes, device upserts, and creates the walk
 * gave up on ---- */
static void run_whole(http_request *rq, bool v1, bool devices, bulk_op op, bool atomic)
{
    bulk *b;
    json_t *root, *data;
    store_conn *c = NULL;
    store_bulk_rows rows = {0};
    bool in_tx = false;
    char *records_text;

    if (!(root = h_body(rq)) ||
        !(data = val_bulk_data(root, devices ? VAL_BULK_MAX_DEVICES : VAL_BULK_MAX_ITEMS, &rq->err)))
        return;
    size_t n = json_array_size(data);
    if (!(b = bulk_start(rq, op, v1, devices, n)))
        return;
    for (b->n = 0; b->n < n; b->n++)
        h_bulk_item(b, json_array_get(data, b->n), b->n);
    if (op != BULK_CREATE && h_bulk_duplicates(b)) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return;
    }
    if (atomic && b->n_errors > 0) {
        bulk_refuse(b, rq);
        return;
    }
    if (!(records_text = join_records(b, rq, 0, b->n)) && rq->err.status)
        return;
    if (records_text) {
        if (!(c = h_store(rq)))
            return;
        if (atomic && op != BULK_CREATE) {
            if (store_begin(c, &rq->err))
                return;
            in_tx = true;
        }
        int rc = devices ? store_device_bulk(c, op == BULK_DELETE, rq->principal.tenant, records_text, &rows,
                                             &rq->err)
                         : store_bulk(c, statements[v1][op], rq->principal.tenant, records_text, &rows, &rq->err);
        (void)arena_run_now(&rq->arena, records_text); /* sent and answered: no longer needed */
        if (rc)
            goto done;
    }
    size_t len;
    char *text = envelope(b, rq, &rows, &len);
    if (c)
        store_bulk_done(c, &rows); /* written into the answer: not kept while it is sent */
    if (!text)
        goto done;
    if (atomic && b->n_errors > 0) { /* an item the statement did not find refuses them all */
        if (in_tx) {
            store_rollback(c);
            in_tx = false;
        }
        bulk_refuse(b, rq);
        goto done;
    }
    if (in_tx) {
        in_tx = false;
        if (store_commit(c, &rq->err))
            goto done;
    }
    http_reply(rq, 200, "application/json", text, len, NULL, NULL);
done:
    if (in_tx)
        store_rollback(c);
}

static void run_bulk(http_request *rq, bool v1, bool devices, bulk_op op)
{
    static const char *const allowed[] = {"atomic", NULL};
    bool atomic = false, bad = false;
    const char *a;

    if (h_only_query(rq, allowed))
        return;
    if ((a = http_query(rq, "atomic", &bad))) {
        if (!bad && !strcmp(a, "true"))
            atomic = true;
        else if (bad || strcmp(a, "false")) {
            h_bad_query(rq, "atomic", "expected true or false");
            return;
        }
    }
    if (op == BULK_CREATE && run_streamed(rq, v1, atomic) == 0)
        return;
    run_whole(rq, v1, devices, op, atomic);
}

static void aud_bulk_create(http_request *rq) { run_bulk(rq, false, false, BULK_CREATE); }
static void aud_bulk_delete(http_request *rq) { run_bulk(rq, false, false, BULK_DELETE); }
static void v1_bulk_create(http_request *rq) { run_bulk(rq, true, false, BULK_CREATE); }
static void v1_bulk_delete(http_request *rq) { run_bulk(rq, true, false, BULK_DELETE); }
static void device_bulk_upsert(http_request *rq) { run_bulk(rq, false, true, BULK_UPSERT); }
static void device_bulk_delete(http_request *rq) { run_bulk(rq, false, true, BULK_DELETE); }

/* The POSTs under their Idempotency-Key: the bulk's own transaction (store_begin, or its parts)
 * becomes a savepoint of the key's (store/store.h) */
void h_aud_bulk_create(http_request *rq) { h_idempotent(rq, aud_bulk_create); }
void h_aud_bulk_update(http_request *rq) { run_bulk(rq, false, false, BULK_UPDATE); }
void h_aud_bulk_delete(http_request *rq) { h_idempotent(rq, aud_bulk_delete); }
void h_v1_bulk_create(http_request *rq) { h_idempotent(rq, v1_bulk_create); }
void h_v1_bulk_update(http_request *rq) { run_bulk(rq, true, false, BULK_UPDATE); }
void h_v1_bulk_delete(http_request *rq) { h_idempotent(rq, v1_bulk_delete); }
void h_device_bulk_upsert(http_request *rq) { h_idempotent(rq, device_bulk_upsert); }
void h_device_bulk_delete(http_request *rq) { h_idempotent(rq, device_bulk_delete); }
