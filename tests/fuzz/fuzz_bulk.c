/* libFuzzer target: bulk request bodies of both dialects. The first input byte picks
 * the route (create, update or delete, /audiences/segments or /v1/segments) and
 * whether ?atomic=true is sent; the rest is the body. The request runs through
 * dispatch.c into the real bulk handler (src/handlers/bulk.c, included here); the store
 * is stood in for by a fake that checks the records the handler binds as the
 * statement's JSON parameter and answers with one row per record, except that ids
 * ending in '0' are "not found" (another tenant's, or deleted meanwhile). The envelope
 * that comes back is checked against seed 002's shape and against the items sent. */
#include "fuzz_http.h"

#include "validate/validate.h"
#include "validate/v1_segment.h"

#define store_acquire fuzz_store_acquire
#define store_release fuzz_store_release
#define store_begin fuzz_store_begin
#define store_commit fuzz_store_commit
#define store_rollback fuzz_store_rollback
#define store_bulk fuzz_store_bulk
#define store_rows_count fuzz_store_rows_count
#define store_value fuzz_store_value
#define store_length fuzz_store_length
#define store_rows_free fuzz_store_rows_free
#define store_parts_begin fuzz_store_parts_begin
#define store_parts_send fuzz_store_parts_send
#define store_parts_end fuzz_store_parts_end
#define BULK_PART_ITEMS 2 /* creates are sent in parts of 2 items, so small inputs make several */
#include "handlers/bulk.c"

#define FAKE_COLS 6

/* Columns as the statements return them: the id, then the representation, or for an
 * /audiences/segments create no, properties, deprecated_properties and the two
 * timestamps in microseconds. */
struct store_rows {
    int n, cols;
    char *(*v)[FAKE_COLS];
};

static int found_rows, bulk_calls, in_tx;

store_conn *fuzz_store_acquire(seg_error *err)
{
    static int token;
    return (store_conn *)(void *)&token;
}

void fuzz_store_release(store_conn *c)
{
    FUZZ_CHECK(!in_tx, "connection released inside a transaction");
}

int fuzz_store_begin(store_conn *c, seg_error *err)
{
    FUZZ_CHECK(!in_tx, "nested BEGIN");
    in_tx = 1;
    return 0;
}

int fuzz_store_commit(store_conn *c, seg_error *err)
{
    FUZZ_CHECK(in_tx, "COMMIT outside a transaction");
    in_tx = 0;
    return 0;
}

void fuzz_store_rollback(store_conn *c)
{
    in_tx = 0;
}

int fuzz_store_rows_count(const store_rows *r)
{
    return r ? r->n : 0;
}

const char *fuzz_store_value(const store_rows *r, int row, int col)
{
    FUZZ_CHECK(r && row >= 0 && row < r->n && col >= 0 && col < r->cols, "row %d col %d of %d", row,
               col, r ? r->n : 0);
    return r->v[row][col];
}

size_t fuzz_store_length(const store_rows *r, int row, int col)
{
    return strlen(fuzz_store_value(r, row, col));
}

void fuzz_store_rows_free(void *v)
{
    store_rows *r = v;
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        for (int k = 0; k < r->cols; k++)
            free(r->v[i][k]);
    free(r->v);
    free(r);
}

static bool lower_uuid(const char *s)
{
    if (!val_uuid(s, strlen(s), NULL))
        return false;
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'F')
            return false;
    return true;
}

/* What the statement would get as $2: checked record by record. */
int fuzz_store_bulk(store_conn *c, stmt_id id, const char *tenant, const char *records,
                    store_rows **out, seg_error *err)
{
    json_error_t je;
    bool v1 = id >= STMT_V1_BULK_INSERT, del = id == STMT_AUD_BULK_DELETE || id == STMT_V1_BULK_DELETE;
    bool create = id == STMT_AUD_BULK_INSERT || id == STMT_V1_BULK_INSERT;
    json_t *arr = json_loads(records, JSON_REJECT_DUPLICATES, &je), *rec;
    size_t i;
    bulk_calls++;
    FUZZ_CHECK(!strcmp(tenant, "tenant-a"), "tenant \"%s\"", tenant);
    FUZZ_CHECK(json_array_size(arr) >= 1 && json_array_size(arr) <= BULK_MAX_ITEMS,
               "records: %.200s", records);
    store_rows *r = calloc(1, sizeof *r);
    if (!r || !(r->v = calloc(json_array_size(arr), sizeof *r->v)))
        abort();
    r->cols = !v1 && create ? 6 : 2;
    json_array_foreach(arr, i, rec) {
        const char *rid = del ? json_string_value(rec) : json_string_value(json_object_get(rec, "id"));
        FUZZ_CHECK(rid && (v1 ? val_v1_id(rid) : lower_uuid(rid)), "record %zu id: %.200s", i, records);
        for (size_t k = 0; k < i; k++) {
            json_t *o = json_array_get(arr, k);
            const char *oid = del ? json_string_value(o) : json_string_value(json_object_get(o, "id"));
            FUZZ_CHECK(strcmp(rid, oid), "id %s bound twice", rid);
        }
        if (!del && !create)
            FUZZ_CHECK(json_is_integer(json_object_get(rec, "mask")), "update without a mask");
        if (!v1 && !del) {
            const char *keys[] = {"properties", "deprecated_properties"};
            for (int k = 0; k < 2; k++) {
                json_t *pv = json_object_get(rec, keys[k]);
                FUZZ_CHECK(json_is_null(pv) || json_is_object(pv), "%s in record %zu", keys[k], i);
            }
        }
        if (v1 && !del) {
            json_t *cons = json_object_get(rec, "constraints");
            FUZZ_CHECK(json_is_null(cons) || json_is_array(cons), "constraints in record %zu", i);
        }
        if (!create && rid[strlen(rid) - 1] == '0')
            continue; /* not found */
        char **v = r->v[r->n];
        v[0] = strdup(rid);
        if (r->cols == 2) {
            json_t *row = json_pack("{s:s}", "id", rid);
            v[1] = json_dumps(row, JSON_COMPACT);
            json_decref(row);
        } else { /* what PostgreSQL would make of the record */
            json_t *p = json_object_get(rec, "properties"), *d = json_object_get(rec, "deprecated_properties");
            v[1] = strdup("42");
            v[2] = json_is_object(p) ? json_dumps(p, JSON_COMPACT) : strdup("{}");
            v[3] = json_is_object(d) ? json_dumps(d, JSON_COMPACT) : strdup("{}");
            v[4] = strdup(i % 2 ? "-62135596800000000" : "1764748800123456"); /* 0001-01-01, 2025-12-03 */
            v[5] = strdup("1764748800123456");
        }
        for (int k = 0; k < r->cols; k++)
            if (!v[k])
                abort();
        r->n++;
    }
    found_rows = r->n;
    json_decref(arr);
    *out = r;
    return 0;
}

/* A create sent in parts: each part checked and answered as fuzz_store_bulk does; the
 * rows handed over only when the parts are committed. */
static store_rows *fake_parts[BULK_MAX_ITEMS / BULK_PART_ITEMS + 1];
static int fake_nparts, parts_rows;

int fuzz_store_parts_begin(store_conn *c, seg_error *err)
{
    FUZZ_CHECK(!in_tx, "parts begun inside a transaction");
    in_tx = 2;
    fake_nparts = parts_rows = 0;
    return 0;
}

int fuzz_store_parts_send(store_conn *c, stmt_id id, const char *const *params, seg_error *err)
{
    FUZZ_CHECK(in_tx == 2, "a part sent outside store_parts_begin/end");
    FUZZ_CHECK(id == STMT_AUD_BULK_INSERT || id == STMT_V1_BULK_INSERT, "statement %d in parts", (int)id);
    FUZZ_CHECK(fake_nparts < (int)(sizeof fake_parts / sizeof fake_parts[0]), "%d parts", fake_nparts);
    (void)!fuzz_store_bulk(c, id, params[0], params[1], &fake_parts[fake_nparts++], err);
    FUZZ_CHECK(found_rows <= BULK_PART_ITEMS, "a part of %d records", found_rows);
    parts_rows += found_rows;
    found_rows = parts_rows;
    return 0;
}

int fuzz_store_parts_end(store_conn *c, bool commit, store_rows **rows, int nrows, seg_error *err)
{
    FUZZ_CHECK(in_tx == 2, "store_parts_end without store_parts_begin");
    FUZZ_CHECK(nrows == fake_nparts, "%d parts sent, %d asked back", fake_nparts, nrows);
    in_tx = 0;
    for (int k = 0; k < nrows; k++) {
        rows[k] = commit ? fake_parts[k] : NULL;
        if (!commit)
            fuzz_store_rows_free(fake_parts[k]);
        fake_parts[k] = NULL;
    }
    if (!commit) /* rolled back: as if never sent */
        found_rows = bulk_calls = 0;
    return 0;
}

/* The same create the whole way (no parts), to compare answers with. */
static void h_whole_create(http_request *rq, bool v1)
{
    bool bad = false;
    run_whole(rq, v1, OP_CREATE, http_query(rq, "atomic", &bad) != NULL);
}
static void h_aud_whole_create(http_request *rq) { h_whole_create(rq, false); }
static void h_v1_whole_create(http_request *rq) { h_whole_create(rq, true); }

static const http_route routes[] = {
    {"POST", "/audiences/segments/bulk", h_aud_bulk_create, AUTH_SCOPE_WRITE, BODY_BULK_JSON, NULL, NULL},
    {"PATCH", "/audiences/segments/bulk", h_aud_bulk_update, AUTH_SCOPE_WRITE, BODY_BULK_JSON, NULL, NULL},
    {"POST", "/audiences/segments/bulk-delete", h_aud_bulk_delete, AUTH_SCOPE_WRITE, BODY_BULK_JSON, NULL, NULL},
    {"POST", "/v1/segments/bulk", h_v1_bulk_create, AUTH_SCOPE_WRITE, BODY_BULK_JSON, NULL, NULL},
    {"PATCH", "/v1/segments/bulk", h_v1_bulk_update, AUTH_SCOPE_WRITE, BODY_BULK_JSON, NULL, NULL},
    {"POST", "/v1/segments/bulk-delete", h_v1_bulk_delete, AUTH_SCOPE_WRITE, BODY_BULK_JSON, NULL, NULL},
    {"POST", "/whole/audiences", h_aud_whole_create, AUTH_SCOPE_WRITE, BODY_BULK_JSON, NULL, NULL},
    {"POST", "/whole/v1", h_v1_whole_create, AUTH_SCOPE_WRITE, BODY_BULK_JSON, NULL, NULL},
};
#define N_ROUTES 6 /* the bulk routes; the two /whole ones only compare with */

static char *auth;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_http_init(routes, sizeof routes / sizeof routes[0]);
    auth = fuzz_token_for("@w", 2);
    return 0;
}

/* Seed 002's envelope: data, errors and warnings, every error naming an item sent. */
static void check_envelope(const fake_conn *fc, size_t n_items, bool atomic, bool aud_create)
{
    json_error_t je;
    json_t *env = json_loadb(fc->body, fc->body_len, JSON_REJECT_DUPLICATES, &je);
    json_t *data = json_object_get(env, "data"), *errors = json_object_get(env, "errors"),
           *warnings = json_object_get(env, "warnings"), *e;
    size_t i;
    FUZZ_CHECK(json_object_size(env) == 3 && json_is_array(data) && json_is_array(errors) &&
                   json_is_array(warnings),
               "envelope: %.300s", fc->body);
    FUZZ_CHECK(json_array_size(data) == (size_t)(bulk_calls ? found_rows : 0) || fc->status == 422,
               "%zu data items for %d rows", json_array_size(data), found_rows);
    if (fc->status == 422)
        FUZZ_CHECK(atomic && json_array_size(data) == 0 && json_array_size(errors) > 0,
                   "422 envelope: %.300s", fc->body);
    json_array_foreach(data, i, e) {
        /* an /audiences/segments create's answer is written by the handler: every field */
        const char *ts = json_string_value(json_object_get(e, "created_at"));
        FUZZ_CHECK(json_is_string(json_object_get(e, "id")) &&
                       (!aud_create || (json_object_size(e) == 11 && ts && strlen(ts) == 27 &&
                                        json_is_integer(json_object_get(e, "no")) &&
                                        json_is_object(json_object_get(e, "properties")))),
                   "data item %zu: %.300s", i, fc->body);
    }
    json_t *lists[2] = {errors, warnings};
    for (int l = 0; l < 2; l++) {
        json_array_foreach(lists[l], i, e) {
            const char *ptr = json_string_value(json_object_get(json_object_get(e, "source"), "pointer"));
            char *end;
            FUZZ_CHECK(json_is_string(json_object_get(e, "code")) && json_is_string(json_object_get(e, "title")) &&
                           json_is_string(json_object_get(e, "detail")) && json_is_string(json_object_get(e, "traceId")) &&
                           ptr && !strncmp(ptr, "/data/", 6),
                       "%s %zu: %.300s", l ? "warning" : "error", i, fc->body);
            unsigned long idx = strtoul(ptr + 6, &end, 10);
            FUZZ_CHECK(end != ptr + 6 && (*end == '\0' || *end == '/') && idx < n_items,
                       "pointer %s for %zu items", ptr, n_items);
        }
    }
    json_decref(env);
}

/* What may differ between two runs of one request goes: generated ids, request ids. */
static void strip_run(json_t *v)
{
    const char *k;
    json_t *c;
    size_t i;
    if (json_is_object(v)) {
        json_object_del(v, "id");
        json_object_del(v, "traceId");
        json_object_del(v, "request_id");
        json_object_foreach(v, k, c) strip_run(c);
    }
    json_array_foreach(v, i, c) strip_run(c);
}

/* A bulk request's headers, with ?atomic=true or not. */
static void bulk_request(fake_conn *fc, bool atomic)
{
    memset(fc, 0, sizeof *fc);
    fake_add(fc, MHD_HEADER_KIND, "Authorization", 13, auth, strlen(auth));
    fake_add(fc, MHD_HEADER_KIND, "Content-Type", 12, "application/json", 16);
    if (atomic)
        fake_add(fc, MHD_GET_ARGUMENT_KIND, "atomic", 6, "true", 4);
}

/* A create answered while its body is read in parts must answer as the whole body. */
static void check_as_whole(const http_route *r, bool atomic, const uint8_t *data, size_t size,
                           const fake_conn *streamed, unsigned status)
{
    fake_conn fc;
    json_error_t je;
    bulk_request(&fc, atomic);
    unsigned whole = fuzz_request(&fc, "POST", r->handler == h_aud_bulk_create ? "/whole/audiences" : "/whole/v1",
                                  (const char *)data, size, 4096, NULL, NULL);
    FUZZ_CHECK(!in_tx, "transaction left open");
    json_t *a = json_loadb(streamed->body, streamed->body_len, 0, &je);
    json_t *b = json_loadb(fc.body, fc.body_len, 0, &je);
    strip_run(a);
    strip_run(b);
    FUZZ_CHECK(whole == status && a && b && json_equal(a, b), "in parts %u %.300s\nwhole %u %.300s", status,
               streamed->body ? streamed->body : "", whole, fc.body ? fc.body : "");
    json_decref(a);
    json_decref(b);
    fake_free(&fc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const http_route *r = &routes[(data[0] & 0x7f) % N_ROUTES];
    bool atomic = data[0] & 0x80;
    fake_conn fc;
    bulk_request(&fc, atomic);
    found_rows = bulk_calls = in_tx = 0;

    /* how many items the body holds, for the pointers in the envelope */
    json_error_t je;
    json_t *root = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, &je);
    size_t n_items = json_array_size(json_object_get(root, "data"));
    json_decref(root);

    unsigned status = fuzz_request(&fc, r->method, r->pattern, (const char *)data + 1, size - 1,
                                   4096, NULL, NULL);
    FUZZ_CHECK(!in_tx, "transaction left open");
    FUZZ_CHECK(status == 200 || status == 400 || status == 413 || status == 422,
               "%s %s gave %u: %.300s", r->method, r->pattern, status, fc.body ? fc.body : "");
    /* 200 and an atomic 422 answer with the envelope; other errors are problems */
    if (status == 200 || (status == 422 && !strstr(fc.body, "\"type\":\"https://")))
        check_envelope(&fc, n_items, atomic, r->handler == h_aud_bulk_create);
    if (r->handler == h_aud_bulk_create || r->handler == h_v1_bulk_create)
        check_as_whole(r, atomic, data + 1, size - 1, &fc, status);
    fake_free(&fc);
    return 0;
}
