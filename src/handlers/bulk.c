/* The bulk routes of both dialects, where they meet the request and the store: a
 * create's parts sent while its body is read, or the whole body in one statement; the
 * items are bulk_items.c's, the answer bulk_envelope.c's. */
#include <stdlib.h>
#include <string.h>

#include "handlers/bulk_private.h"
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "store/segments.h"
#include "validate/validate.h"

static const stmt_id statements[2][3] = {
    {STMT_AUD_BULK_INSERT, STMT_AUD_BULK_UPDATE, STMT_AUD_BULK_DELETE},
    {STMT_V1_BULK_INSERT, STMT_V1_BULK_UPDATE, STMT_V1_BULK_DELETE},
};

/* The rows of nparts statements as the envelope takes them. Every statement's rows hold
 * the id in column 0; the others the representation in column 1, except an
 * /audiences/segments create's: no, properties, deprecated_properties and the two
 * timestamps in microseconds. Borrows the rows' text; malloc'd; NULL when out of memory. */
static bulk_row *rows_of(const bulk *b, store_rows *const *parts, int nparts, size_t *n)
{
    size_t total = 0;
    bool written = !b->v1 && b->op == BULK_CREATE;
    for (int k = 0; k < nparts; k++)
        total += parts[k] ? (size_t)store_rows_count(parts[k]) : 0;
    bulk_row *rows = malloc((total + 1) * sizeof *rows);
    *n = 0;
    for (int k = 0; rows && k < nparts; k++) {
        const store_rows *p = parts[k];
        for (int r = 0; p && r < store_rows_count(p); r++) {
            bulk_row *row = &rows[(*n)++];
            *row = (bulk_row){.id = store_value(p, r, 0)};
            if (!written) {
                row->json = store_value(p, r, 1);
                row->json_len = store_length(p, r, 1);
                continue;
            }
            row->no = store_value(p, r, 1);
            row->no_len = store_length(p, r, 1);
            row->properties = store_value(p, r, 2);
            row->properties_len = store_length(p, r, 2);
            row->deprecated_properties = store_value(p, r, 3);
            row->deprecated_properties_len = store_length(p, r, 3);
            row->created_us = store_value(p, r, 4);
            row->updated_us = store_value(p, r, 5);
        }
    }
    return rows;
}

/* The envelope with the rows of nparts statements (h_bulk_envelope); NULL with a 500 in
 * rq->err when it could not be written. */
static char *envelope(bulk *b, http_request *rq, store_rows *const *parts, int nparts, size_t *len)
{
    size_t n;
    bulk_row *rows = rows_of(b, parts, nparts, &n);
    char *text = rows ? h_bulk_envelope(b, rows, n, len) : NULL;
    free(rows);
    if (!text)
        err_set(&rq->err, 500, "internal", "the answer could not be written");
    return text;
}

static void bulk_reply(bulk *b, http_request *rq, int status, store_rows *const *parts, int nparts)
{
    size_t len;
    char *text = envelope(b, rq, parts, nparts, &len);
    if (text)
        http_reply(rq, status, "application/json", text, len, free, text);
}

/* All or nothing: the whole request is refused with every error; nothing stored. */
static void bulk_refuse(bulk *b, http_request *rq)
{
    h_bulk_drop_records(b);
    bulk_reply(b, rq, 422, NULL, 0);
}

static int bulk_start(bulk *b, http_request *rq, size_t cap)
{
    b->trace_id = rq->request_id;
    if (h_bulk_alloc(b, cap)) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return -1;
    }
    return 0;
}

/* The kept records of items [from, to) for the statement; NULL when none is kept, or
 * when out of memory (then with a 500 in rq->err). */
static char *join_records(const bulk *b, http_request *rq, size_t from, size_t to)
{
    bool oom;
    char *text = h_bulk_join(b, from, to, &oom);
    if (oom)
        err_set(&rq->err, 500, "internal", "out of memory");
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
 * fails); the connection and the transaction are opened with the first. */
static int send_part(bulk *b, http_request *rq, store_conn **c, bool *open, size_t from, int *nparts,
                     seg_error *err)
{
    (*nparts)++;
    char *text = join_records(b, rq, from, b->n);
    if (!text)
        return rq->err.status ? -1 : 0;
    int rc = -1;
    if (!*c && !(*c = store_acquire(err)))
        goto done;
    if (!*open) {
        *open = true; /* store_parts_end is owed even when this fails */
        if (store_parts_begin(*c, err))
            goto done;
    }
    const char *p[2] = {rq->principal.tenant, text};
    rc = store_parts_send(*c, statements[b->v1][BULK_CREATE], p, err);
done:
    free(text);
    return rc;
}

/* 0 when the request was answered (or rq->err set), -1 to start over with run_whole:
 * then nothing was stored or answered. */
static int run_streamed(http_request *rq, bool v1, bool atomic)
{
    bulk b = {.op = BULK_CREATE, .v1 = v1};
    val_bulk_walk w;
    store_conn *c = NULL;
    store_rows *parts[VAL_BULK_MAX_ITEMS / BULK_PART_ITEMS + 1];
    seg_error db_err;
    int nparts = 0, rc = 0, step;
    size_t from = 0, kept = 0;
    bool open = false, failed = false;

    err_clear(&db_err);
    memset(parts, 0, sizeof parts);
    if (!val_bulk_open(&w, rq->body, rq->body_len))
        return -1;
    if (bulk_start(&b, rq, VAL_BULK_MAX_ITEMS))
        goto done;
    do {
        if ((step = h_bulk_step(&b, &w)) < 0)
            goto over;
        kept += b.records[b.n - 1] != NULL;
        if (kept == BULK_PART_ITEMS && !failed && !(atomic && b.n_errors)) {
            /* a failed part fails them all: its error is given once the walk is done */
            failed = send_part(&b, rq, &c, &open, from, &nparts, &db_err) != 0;
            from = b.n;
            kept = 0;
        }
    } while (step);
    if (atomic && b.n_errors) {
        bulk_refuse(&b, rq); /* what was sent is rolled back below */
        goto done;
    }
    if (!failed && kept)
        failed = send_part(&b, rq, &c, &open, from, &nparts, &db_err) != 0;
    if (open) {
        open = false;
        if (store_parts_end(c, !failed, parts, nparts, &db_err))
            failed = true;
    }
    if (failed) {
        if (!rq->err.status) /* else join_records ran out of memory */
            rq->err = db_err;
        goto done;
    }
    bulk_reply(&b, rq, 200, parts, nparts);
    goto done;
over:
    rc = -1;
done:
    if (open)
        (void)store_parts_end(c, false, parts, nparts, &db_err);
    if (rc)
        err_clear(&rq->err);
    store_release(c);
    for (int k = 0; k < nparts; k++)
        store_rows_free(parts[k]);
    h_bulk_free(&b);
    return rc;
}

/* ---- the whole body at once: updates, deletes, and creates the walk gave up on ---- */
static void run_whole(http_request *rq, bool v1, bulk_op op, bool atomic)
{
    bulk b = {.op = op, .v1 = v1};
    json_t *root = NULL, *data;
    store_conn *c = NULL;
    store_rows *rows = NULL;
    bool in_tx = false;
    char *records_text = NULL, *text = NULL;
    size_t len = 0;

    if (!(root = val_parse_body(rq->body, rq->body_len, &rq->err)))
        return;
    if (!(data = val_bulk_data(root, &rq->err)))
        goto done;
    size_t n = json_array_size(data);
    if (bulk_start(&b, rq, n))
        goto done;
    for (b.n = 0; b.n < n; b.n++)
        h_bulk_item(&b, json_array_get(data, b.n), b.n);
    if (op != BULK_CREATE)
        h_bulk_refuse_duplicates(&b);
    if (atomic && b.n_errors > 0)
        goto refuse;
    if (!(records_text = join_records(&b, rq, 0, b.n)) && rq->err.status)
        goto done;
    if (records_text) {
        if (!(c = store_acquire(&rq->err)))
            goto done;
        if (atomic && op != BULK_CREATE) {
            if (store_begin(c, &rq->err))
                goto done;
            in_tx = true;
        }
        if (store_bulk(c, statements[v1][op], rq->principal.tenant, records_text, &rows, &rq->err))
            goto done;
    }
    text = envelope(&b, rq, &rows, rows ? 1 : 0, &len); /* adds not_found for ids the statement missed */
    if (!text)
        goto done;
    if (atomic && b.n_errors > 0) {
        free(text);
        goto refuse;
    }
    if (in_tx) {
        in_tx = false;
        if (store_commit(c, &rq->err)) {
            free(text);
            goto done;
        }
    }
    http_reply(rq, 200, "application/json", text, len, free, text);
    goto done;
refuse:
    if (in_tx) {
        store_rollback(c);
        in_tx = false;
    }
    bulk_refuse(&b, rq);
done:
    if (in_tx)
        store_rollback(c);
    store_release(c);
    store_rows_free(rows);
    free(records_text);
    h_bulk_free(&b);
    json_decref(root);
}

static void run_bulk(http_request *rq, bool v1, bulk_op op)
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
    run_whole(rq, v1, op, atomic);
}

void h_aud_bulk_create(http_request *rq) { run_bulk(rq, false, BULK_CREATE); }
void h_aud_bulk_update(http_request *rq) { run_bulk(rq, false, BULK_UPDATE); }
void h_aud_bulk_delete(http_request *rq) { run_bulk(rq, false, BULK_DELETE); }
void h_v1_bulk_create(http_request *rq) { run_bulk(rq, true, BULK_CREATE); }
void h_v1_bulk_update(http_request *rq) { run_bulk(rq, true, BULK_UPDATE); }
void h_v1_bulk_delete(http_request *rq) { run_bulk(rq, true, BULK_DELETE); }
