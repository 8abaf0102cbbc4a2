/* The segment statements of both dialects: their parameters in order, and their columns read
 * into typed results (store/segments.h). */
#include "store/segments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/list_json.h"
#include "store/store_private.h"

/* INSERT … RETURNING returns its row: none would be a bug of ours, not a missing segment. */
static int inserted(int rc, seg_error *err)
{
    if (rc != STORE_MISSING)
        return rc;
    err_set(err, 500, "internal", "the database stored the segment but returned nothing");
    return -1;
}

/* The lifecycle parameters of a statement, in its order: start and end (microseconds, or
 * NULL), active, extend, extend_days. buf holds their text. */
typedef struct lc_params {
    char start[24], end[24], days[16];
    const char *p[5];
} lc_params;

static void lc_params_of(const lifecycle_in *lc, lc_params *out)
{
    snprintf(out->start, sizeof out->start, "%lld", (long long)lc->start_us);
    snprintf(out->end, sizeof out->end, "%lld", (long long)lc->end_us);
    snprintf(out->days, sizeof out->days, "%d", lc->extend_days);
    out->p[0] = lc->has_start ? out->start : NULL;
    out->p[1] = lc->has_end ? out->end : NULL;
    out->p[2] = lc->active ? "t" : "f";
    out->p[3] = lc->extend ? "t" : "f";
    out->p[4] = out->days;
}

static const char *const update_kinds[] = {
    [STORE_UPDATE] = "update", [STORE_MERGE_PATCH] = "merge_patch", [STORE_END_DATE] = "end_date"};

/* An update's row: none = no such segment; (version, NULL, NULL, NULL) = If-Match stale;
 * (version, NULL, NULL, rule) = the new dates break a rule; (old version, body, new
 * version, NULL) = updated. */
static int updated_doc(store_conn *c, stmt_id id, const char *const *p, store_doc *out,
                       seg_error *err)
{
    PGresult *res = store_run(c, id, p, err);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        return STORE_MISSING;
    out->broken_rule = NULL;
    if (PQgetisnull(res, 0, 1)) {
        out->json = NULL;
        out->len = 0;
        out->version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (PQgetisnull(res, 0, 3))
            return STORE_STALE;
        out->broken_rule = PQgetvalue(res, 0, 3);
        return STORE_INVALID;
    }
    store_doc_of(res, 0, 1, 2, out);
    return STORE_DONE;
}

/* A list read with limit + 1 rows (the representation's columns, store/list_json.c): the
 * items written into the arena, joined with commas, and the key of the last shown. */
static int page_of(store_conn *c, stmt_id id, const char *const *p, int limit, store_page *out,
                   seg_error *err)
{
    store_list_kind kind = id == STMT_AUD_LIST || id == STMT_AUD_PAGE ? STORE_LIST_AUD : STORE_LIST_V1;
    PGresult *res = store_run_list(c, id, p, &out->replica_lag_ms, err);
    if (!res)
        return -1;
    const store_rows *rows = (const store_rows *)(const void *)res;
    int n = PQntuples(res);
    size_t cap = 0;
    out->more = n > limit;
    out->n = out->more ? limit : n;
    for (int i = 0; i < out->n; i++)
        cap += store_list_item_max(rows, i, kind) + 1;
    char *buf = store_page_room(c, cap, err);
    if (!buf)
        return -1;
    size_t len = 0;
    for (int i = 0; i < out->n; i++) {
        if (i)
            buf[len++] = ',';
        len += store_list_item_write(rows, i, kind, buf + len);
    }
    store_page_done(out, buf, len, out->more ? store_list_key(rows, out->n - 1, kind) : NULL);
    return STORE_DONE;
}

int store_aud_insert(store_conn *c, const char *tenant, const char *id, const aud_segment_in *in,
                     store_doc *out, seg_error *err)
{
    lc_params lc;
    lc_params_of(&in->lc, &lc);
    const char *p[17] = {tenant, id, in->management_type, in->name, in->owner_id,
                         in->size_is_null || !in->size[0] ? NULL : in->size, in->description,
                         in->properties, in->deprecated_properties, in->created_at,
                         lc.p[0], lc.p[1], lc.p[2], lc.p[3], lc.p[4], c->actor, c->request_id};
    return inserted(store_one_doc(c, STMT_AUD_INSERT, p, out, err), err);
}

int store_aud_get(store_conn *c, const char *tenant, const char *id, store_doc *out,
                  seg_error *err)
{
    const char *p[2] = {tenant, id};
    return store_one_doc(c, STMT_AUD_GET, p, out, err);
}

int store_aud_update(store_conn *c, const char *tenant, const char *id, const aud_segment_in *in,
                     const char *versions, store_update_kind kind, store_doc *out, seg_error *err)
{
    char mask[16];
    lc_params lc;
    lc_params_of(&in->lc, &lc);
    snprintf(mask, sizeof mask, "%u", in->set);
    const char *p[19] = {tenant, id, mask, versions,
                         in->management_type, in->name, in->owner_id[0] ? in->owner_id : NULL,
                         in->size_is_null || !in->size[0] ? NULL : in->size, in->description,
                         in->properties, in->deprecated_properties,
                         lc.p[0], lc.p[1], lc.p[2], lc.p[3], lc.p[4],
                         c->actor, c->request_id, update_kinds[kind]};
    return updated_doc(c, STMT_AUD_UPDATE, p, out, err);
}

int store_aud_delete(store_conn *c, const char *tenant, const char *id, const char *versions,
                     seg_error *err)
{
    const char *p[5] = {tenant, id, versions, c->actor, c->request_id};
    return store_deleted(c, STMT_AUD_DELETE, p, err);
}

int store_aud_list(store_conn *c, const char *tenant, const aud_list_query *q, store_page *out,
                   seg_error *err)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", q->limit + 1);
    if (!q->owner_id && !q->management_type && !q->name && !q->property && !q->property_num &&
        !q->updated_since && !q->statuses && !q->active_at_us) { /* no filter: the statement whose plan PostgreSQL keeps */
        const char *page[3] = {tenant, q->before_no, limit};
        return page_of(c, STMT_AUD_PAGE, page, q->limit, out, err);
    }
    const char *p[11] = {tenant, q->before_no, q->owner_id, q->management_type, q->name,
                         q->property, q->property_num, q->updated_since, limit, q->statuses,
                         q->active_at_us};
    return page_of(c, STMT_AUD_LIST, p, q->limit, out, err);
}

int store_v1_insert(store_conn *c, const char *tenant, const char *id, const v1_segment_row *in,
                    store_doc *out, seg_error *err)
{
    lc_params lc;
    lc_params_of(in->lc, &lc);
    const char *p[12] = {tenant, id, in->name, in->description, in->constraints,
                         lc.p[0], lc.p[1], lc.p[2], lc.p[3], lc.p[4], c->actor, c->request_id};
    return inserted(store_one_doc(c, STMT_V1_INSERT, p, out, err), err);
}

int store_v1_get(store_conn *c, const char *tenant, const char *id, store_doc *out,
                 seg_error *err)
{
    const char *p[2] = {tenant, id};
    return store_one_doc(c, STMT_V1_GET, p, out, err);
}

int store_v1_update(store_conn *c, const char *tenant, const char *id, const v1_segment_row *in,
                    const char *versions, store_update_kind kind, store_doc *out, seg_error *err)
{
    char mask[16];
    lc_params lc;
    lc_params_of(in->lc, &lc);
    snprintf(mask, sizeof mask, "%u", in->set);
    const char *p[15] = {tenant, id, mask, versions, in->name, in->description, in->constraints,
                         lc.p[0], lc.p[1], lc.p[2], lc.p[3], lc.p[4],
                         c->actor, c->request_id, update_kinds[kind]};
    return updated_doc(c, STMT_V1_UPDATE, p, out, err);
}

int store_v1_delete(store_conn *c, const char *tenant, const char *id, const char *versions,
                    seg_error *err)
{
    const char *p[5] = {tenant, id, versions, c->actor, c->request_id};
    return store_deleted(c, STMT_V1_DELETE, p, err);
}

int store_v1_list(store_conn *c, const char *tenant, const v1_list_query *q, store_page *out,
                  seg_error *err)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", q->limit + 1);
    if (!q->name && !q->statuses && !q->active_at_us) { /* the statement whose plan PostgreSQL keeps */
        const char *page[3] = {tenant, q->before_seq, lim};
        return page_of(c, STMT_V1_PAGE, page, q->limit, out, err);
    }
    const char *p[6] = {tenant, q->before_seq, q->name, lim, q->statuses, q->active_at_us};
    return page_of(c, STMT_V1_LIST, p, q->limit, out, err);
}

int store_migration_applied(store_conn *c, long long *out, seg_error *err)
{
    PGresult *res = store_run(c, STMT_MIGRATION_VERSION, NULL, err);
    if (!res)
        return -1;
    *out = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    return STORE_DONE;
}

/* Column col of row r, or NULL for SQL NULL. */
static const char *value_or_null(const PGresult *res, int r, int col)
{
    return PQgetisnull(res, r, col) ? NULL : PQgetvalue(res, r, col);
}

/* Appends the rows of bulk statement id's result to out (which has room). Every bulk
 * statement returns the id in column 0; the others the representation in column 1 (and
 * updates the rule an item would break in column 2), except an /audiences/segments
 * create's: no, properties, deprecated_properties, the two timestamps in microseconds and
 * the lifecycle (start, end in microseconds, active, extend, extend_days, status). */
static void bulk_rows_of(stmt_id id, const PGresult *res, store_bulk_rows *out)
{
    bool written = id == STMT_AUD_BULK_INSERT;
    for (int r = 0; r < PQntuples(res); r++) {
        store_bulk_row *row = &out->rows[out->n++];
        *row = (store_bulk_row){.id = PQgetvalue(res, r, 0)};
        if (!written) {
            row->json = value_or_null(res, r, 1);
            row->json_len = (size_t)PQgetlength(res, r, 1);
            if (PQnfields(res) > 2)
                row->broken_rule = value_or_null(res, r, 2);
            continue;
        }
        row->no = PQgetvalue(res, r, 1);
        row->no_len = (size_t)PQgetlength(res, r, 1);
        row->properties = PQgetvalue(res, r, 2);
        row->properties_len = (size_t)PQgetlength(res, r, 2);
        row->deprecated_properties = PQgetvalue(res, r, 3);
        row->deprecated_properties_len = (size_t)PQgetlength(res, r, 3);
        row->created_us = PQgetvalue(res, r, 4);
        row->updated_us = PQgetvalue(res, r, 5);
        row->start_us = value_or_null(res, r, 6);
        row->end_us = value_or_null(res, r, 7);
        row->active = PQgetvalue(res, r, 8);
        row->extend = PQgetvalue(res, r, 9);
        row->extend_days = PQgetvalue(res, r, 10);
        row->status = PQgetvalue(res, r, 11);
    }
}

/* Room for n rows in the request's arena. */
static int bulk_room(store_conn *c, size_t n, store_bulk_rows *out, seg_error *err)
{
    out->n = 0;
    out->results = NULL;
    out->nresults = 0;
    out->rows = arena_alloc(c->arena, (n ? n : 1) * sizeof *out->rows);
    if (!out->rows) {
        err_set(err, 500, "internal", "out of memory");
        return -1;
    }
    return 0;
}

void store_bulk_done(store_conn *c, store_bulk_rows *rows)
{
    for (int k = 0; k < rows->nresults; k++)
        if (rows->results[k])
            (void)arena_run_now(c->arena, rows->results[k]);
    rows->n = 0;
    rows->nresults = 0;
}

int store_bulk(store_conn *c, stmt_id id, const char *tenant, const char *records,
               store_bulk_rows *out, seg_error *err)
{
    const char *p[4] = {tenant, records, c->actor, c->request_id};
    PGresult *res = store_run(c, id, p, err);
    void **results = res ? arena_alloc(c->arena, sizeof *results) : NULL;
    if (!res || !results || bulk_room(c, (size_t)PQntuples(res), out, err)) {
        if (res && !results)
            err_set(err, 500, "internal", "out of memory");
        return -1;
    }
    bulk_rows_of(id, res, out);
    results[0] = res;
    out->results = results;
    out->nresults = 1;
    return STORE_DONE;
}

int store_bulk_parts_end(store_conn *c, stmt_id id, bool commit, int nparts, store_bulk_rows *out,
                         seg_error *err)
{
    store_rows **parts = arena_alloc(c->arena, (size_t)(nparts > 0 ? nparts : 1) * sizeof *parts);
    size_t total = 0;
    out->rows = NULL;
    out->n = 0;
    if (!parts) {
        (void)store_parts_end(c, false, NULL, 0, err);
        err_set(err, 500, "internal", "out of memory");
        return -1;
    }
    int rc = store_parts_end(c, commit, parts, nparts, err);
    bool lost = false;
    for (int k = 0; k < nparts; k++)
        if (parts[k] && arena_defer(c->arena, store_rows_free, parts[k])) {
            parts[k] = NULL; /* freed already: out of memory */
            lost = true;
        }
    if (rc || !commit)
        return rc;
    if (lost) { /* committed, but the answer cannot be written: not acknowledged */
        err_set(err, 500, "internal", "out of memory");
        return -1;
    }
    for (int k = 0; k < nparts; k++)
        total += parts[k] ? (size_t)PQntuples(store_res(parts[k])) : 0;
    if (bulk_room(c, total, out, err))
        return -1;
    for (int k = 0; k < nparts; k++)
        if (parts[k])
            bulk_rows_of(id, store_res(parts[k]), out);
    out->results = (void **)parts;
    out->nresults = nparts;
    return STORE_DONE;
}
