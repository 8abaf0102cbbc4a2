/* libFuzzer target: bulk request bodies of both dialects and of devices, through the pure
 * units the bulk handler is made of: the body walk (validate/bulk_body.h), each item's
 * validation and record, and the envelope (handlers/bulk_private.h). The first input byte
 * picks the operation (% 8: create, update, delete on /audiences/segments, then on
 * /v1/segments, then upsert and delete on /v1/devices) and whether the request is atomic
 * (0x80); the rest is the body. A stand-in store answers each record with a row (ids
 * ending in '0' are "not found" to segment updates and to deletes; ids ending in '1' break
 * a lifecycle rule with the stored dates, for segment updates). Checked: the records the statement would bind; the envelope is
 * {data, errors, warnings} with every pointer naming an item sent; the walk gives the items of jansson's
 * parse of the whole body, and a create walked in parts of 2 answers exactly as the
 * same body taken whole (ids and trace ids aside). */
#include <stdbool.h>

#include "fuzz_common.h"
#include "handlers/bulk_private.h"
#include "validate/bulk_body.h"
#include "validate/device.h"
#include "validate/v1_segment.h"
#include "validate/validate.h"

#define PART_ITEMS 2 /* the handler's parts hold 100 kept items; 2 makes several of small inputs */
#define TRACE_ID "0123456789abcdef"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_seed_jansson();
    return 0;
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

/* The rows a stand-in store made: text it owns, and the rows pointing into it. */
typedef struct fake_store {
    bulk_row rows[VAL_BULK_MAX_DEVICES];
    char *text[VAL_BULK_MAX_DEVICES][9];
    size_t n;
    size_t broken; /* rows of updates left as they were (a lifecycle rule): no data item */
    size_t made; /* rows made by creates, in request order: picks their timestamps */
} fake_store;

static char *dup_or_die(char *s)
{
    if (!s)
        abort();
    return s;
}

/* What the statement would get as $2 (the records of items [from, to)): checked record
 * by record, then answered with a row per record as PostgreSQL would. */
static void fake_statement(fake_store *st, const bulk *b, size_t from, size_t to)
{
    json_error_t je;
    bool oom, del = b->op == BULK_DELETE, create = b->op == BULK_CREATE;
    char *records = h_bulk_join(b, from, to, &oom);
    FUZZ_CHECK(!oom, "records out of memory");
    if (!records)
        return; /* no item kept: no statement */
    json_t *arr = json_loads(records, JSON_REJECT_DUPLICATES, &je), *rec;
    size_t i;
    FUZZ_CHECK(json_array_size(arr) >= 1 &&
                   json_array_size(arr) <= (b->devices ? VAL_BULK_MAX_DEVICES : VAL_BULK_MAX_ITEMS),
               "records: %.200s", records);
    json_array_foreach(arr, i, rec) {
        const char *rid = del ? json_string_value(rec) : json_string_value(json_object_get(rec, "id"));
        FUZZ_CHECK(rid && (b->devices ? val_device_id(rid) : b->v1 ? val_v1_id(rid) : lower_uuid(rid)),
                   "record %zu id: %.200s", i, records);
        for (size_t k = 0; k < i; k++) {
            json_t *o = json_array_get(arr, k);
            const char *oid = del ? json_string_value(o) : json_string_value(json_object_get(o, "id"));
            FUZZ_CHECK(strcmp(rid, oid), "id %s bound twice", rid);
        }
        if ((del || (!create && !b->devices)) && rid[strlen(rid) - 1] == '0')
            continue; /* not found (an upsert always finds or makes its device) */
        if (b->devices && !del) /* every other member a field of the table, left out when null */
            FUZZ_CHECK(json_is_array(json_object_get(rec, "tags")) &&
                           json_is_object(json_object_get(rec, "attributes")) &&
                           !json_object_get(rec, "updatedAt"),
                       "device record %zu: %.300s", i, records);
        if (!del && !create && !b->devices)
            FUZZ_CHECK(json_is_integer(json_object_get(rec, "mask")), "update without a mask");
        if (!b->v1 && !b->devices && !del) {
            const char *keys[] = {"properties", "deprecated_properties"};
            for (int k = 0; k < 2; k++) {
                json_t *pv = json_object_get(rec, keys[k]);
                FUZZ_CHECK(json_is_null(pv) || json_is_object(pv), "%s in record %zu", keys[k], i);
            }
        }
        if (b->v1 && !del) {
            json_t *cons = json_object_get(rec, "constraints");
            FUZZ_CHECK(json_is_null(cons) || json_is_array(cons), "constraints in record %zu", i);
        }
        json_t *start = json_object_get(rec, "start_us"), *end = json_object_get(rec, "end_us"),
               *days = json_object_get(rec, "extend_days");
        if (!del && !b->devices) /* the lifecycle members (LC_RECORD) */
            FUZZ_CHECK((json_is_null(start) || json_is_integer(start)) && (json_is_null(end) || json_is_integer(end)) &&
                           json_is_boolean(json_object_get(rec, "active")) &&
                           json_is_boolean(json_object_get(rec, "extend")) && json_integer_value(days) >= 1 &&
                           json_integer_value(days) <= LC_EXTEND_DAYS_MAX,
                       "lifecycle of record %zu: %.300s", i, records);
        char **v = st->text[st->n];
        v[0] = dup_or_die(strdup(rid));
        bulk_row *row = &st->rows[st->n];
        if (!create && !del && !b->devices && rid[strlen(rid) - 1] == '1') { /* left as it was */
            *row = (bulk_row){.id = v[0], .broken_rule = "end_date"};
            st->broken++;
        } else if (b->v1 || !create) {
            json_t *r = json_pack("{s:s}", "id", rid);
            v[1] = dup_or_die(json_dumps(r, JSON_COMPACT));
            json_decref(r);
            *row = (bulk_row){.id = v[0], .json = v[1], .json_len = strlen(v[1])};
        } else { /* what PostgreSQL would make of the record */
            json_t *p = json_object_get(rec, "properties"), *d = json_object_get(rec, "deprecated_properties");
            v[1] = dup_or_die(strdup("42"));
            v[2] = dup_or_die(json_is_object(p) ? json_dumps(p, JSON_COMPACT) : strdup("{}"));
            v[3] = dup_or_die(json_is_object(d) ? json_dumps(d, JSON_COMPACT) : strdup("{}"));
            v[4] = dup_or_die(strdup(st->made % 2 ? "-62135596800000000" : "1764748800123456")); /* 0001-01-01, 2025-12-03 */
            v[5] = dup_or_die(strdup("1764748800123456"));
            v[6] = json_is_integer(start) ? dup_or_die(json_dumps(start, JSON_ENCODE_ANY)) : NULL;
            v[7] = json_is_integer(end) ? dup_or_die(json_dumps(end, JSON_ENCODE_ANY)) : NULL;
            v[8] = dup_or_die(json_dumps(days, JSON_ENCODE_ANY));
            *row = (bulk_row){.id = v[0], .no = v[1], .no_len = 2, .properties = v[2],
                              .properties_len = strlen(v[2]), .deprecated_properties = v[3],
                              .deprecated_properties_len = strlen(v[3]), .created_us = v[4], .updated_us = v[5],
                              .start_us = v[6], .end_us = v[7],
                              .active = json_is_true(json_object_get(rec, "active")) ? "t" : "f",
                              .extend = json_is_true(json_object_get(rec, "extend")) ? "t" : "f",
                              .extend_days = v[8], .status = "active"};
        }
        st->made++;
        st->n++;
    }
    json_decref(arr);
    free(records);
}

static void fake_free(fake_store *st)
{
    for (size_t i = 0; i < st->n; i++)
        for (int k = 0; k < 9; k++) {
            free(st->text[i][k]);
            st->text[i][k] = NULL;
        }
    st->n = st->made = st->broken = 0;
}

/* The answer to a request whose items are in b: an all-or-nothing one with an error
 * stores nothing and is a 422 (as the handler's bulk_refuse). */
static char *answer(bulk *b, fake_store *st, bool atomic, unsigned *status, size_t *len)
{
    char *text;
    *status = 200;
    if (!(atomic && b->n_errors)) {
        text = h_bulk_envelope(b, st->rows, st->n, len); /* adds not_found problems */
        FUZZ_CHECK(text, "the envelope was not written");
        if (!atomic || !b->n_errors)
            return text;
        free(text); /* an item not found refuses an atomic request too */
    }
    *status = 422;
    h_bulk_drop_records(b);
    text = h_bulk_envelope(b, NULL, 0, len);
    FUZZ_CHECK(text, "the refusal was not written");
    return text;
}

/* Seed 002's envelope: data, errors and warnings, every problem naming an item sent. */
static void check_envelope(const char *text, size_t len, unsigned status, size_t n_items, size_t n_rows,
                           bool aud_create)
{
    json_error_t je;
    json_t *env = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    json_t *data = json_object_get(env, "data"), *errors = json_object_get(env, "errors"),
           *warnings = json_object_get(env, "warnings"), *e;
    size_t i;
    FUZZ_CHECK(json_object_size(env) == 3 && json_is_array(data) && json_is_array(errors) &&
                   json_is_array(warnings),
               "envelope: %.300s", text);
    if (status == 422)
        FUZZ_CHECK(json_array_size(data) == 0 && json_array_size(errors) > 0, "422 envelope: %.300s", text);
    else
        FUZZ_CHECK(json_array_size(data) == n_rows, "%zu data items for %zu rows", json_array_size(data), n_rows);
    json_array_foreach(data, i, e) {
        /* an /audiences/segments create's answer is written by the handler: every field (a new
         * segment's size is null: never counted) */
        const char *ts = json_string_value(json_object_get(e, "created_at"));
        FUZZ_CHECK(json_is_string(json_object_get(e, "id")) &&
                       (!aud_create || (json_object_size(e) == 18 && ts && strlen(ts) == 27 &&
                                        json_is_null(json_object_get(e, "size")) &&
                                        json_is_integer(json_object_get(e, "no")) &&
                                        json_is_object(json_object_get(e, "properties")))),
                   "data item %zu: %.300s", i, text);
    }
    json_t *lists[2] = {errors, warnings};
    for (int l = 0; l < 2; l++) {
        json_array_foreach(lists[l], i, e) {
            const char *ptr = json_string_value(json_object_get(json_object_get(e, "source"), "pointer"));
            const char *trace = json_string_value(json_object_get(e, "traceId"));
            char *end;
            FUZZ_CHECK(json_object_size(e) == 5 && json_is_string(json_object_get(e, "code")) &&
                           json_is_string(json_object_get(e, "title")) &&
                           json_is_string(json_object_get(e, "detail")) && trace && !strcmp(trace, TRACE_ID) &&
                           ptr && !strncmp(ptr, "/data/", 6),
                       "%s %zu: %.300s", l ? "warning" : "error", i, text);
            unsigned long idx = strtoul(ptr + 6, &end, 10);
            FUZZ_CHECK(end != ptr + 6 && (*end == '\0' || *end == '/') && idx < n_items, "pointer %s for %zu items",
                       ptr, n_items);
        }
    }
    json_decref(env);
}

/* The body taken whole (the handler's run_whole): 0 with the answer, or -1 when the
 * body itself is refused (then its problem is checked). */
static int run_whole(const char *body, size_t len, bulk_op op, bool v1, bool devices, bool atomic,
                     unsigned *status, char **text, size_t *text_len)
{
    seg_error err;
    bulk b = {.op = op, .v1 = v1, .devices = devices, .trace_id = TRACE_ID};
    static fake_store st;
    err_clear(&err);
    json_t *root = val_parse_body(body, len, &err),
           *data = root ? val_bulk_data(root, devices ? VAL_BULK_MAX_DEVICES : VAL_BULK_MAX_ITEMS, &err) : NULL;
    if (!data) {
        FUZZ_CHECK(err.status == 400 || err.status == 422, "the body refused with %d", err.status);
        fuzz_check_problem(&err);
        json_decref(root);
        return -1;
    }
    size_t n = json_array_size(data);
    if (h_bulk_alloc(&b, n))
        abort();
    for (b.n = 0; b.n < n; b.n++)
        h_bulk_item(&b, json_array_get(data, b.n), b.n);
    if (op != BULK_CREATE && h_bulk_duplicates(&b))
        abort(); /* out of memory, as h_bulk_alloc above */
    if (!(atomic && b.n_errors))
        fake_statement(&st, &b, 0, b.n);
    *text = answer(&b, &st, atomic, status, text_len);
    check_envelope(*text, *text_len, *status, n, st.n - st.broken, !v1 && op == BULK_CREATE);
    fake_free(&st);
    h_bulk_free(&b);
    json_decref(root);
    return 0;
}

/* A create walked as its text is read, sent in parts (the handler's run_streamed): 0
 * with the answer, or -1 when the walk gave up. */
static int run_streamed(const char *body, size_t len, bool v1, bool atomic, unsigned *status, char **text,
                        size_t *text_len)
{
    bulk b = {.op = BULK_CREATE, .v1 = v1, .trace_id = TRACE_ID};
    static fake_store st;
    val_bulk_walk w;
    size_t from = 0, kept = 0;
    int step, rc = -1;
    if (!val_bulk_open(&w, body, len))
        return -1;
    if (h_bulk_alloc(&b, VAL_BULK_MAX_ITEMS))
        abort();
    do {
        if ((step = h_bulk_step(&b, &w)) < 0)
            goto done; /* what was sent is rolled back */
        kept += b.records[b.n - 1] != NULL;
        if (kept == PART_ITEMS && !(atomic && b.n_errors)) {
            fake_statement(&st, &b, from, b.n);
            from = b.n;
            kept = 0;
        }
    } while (step);
    if (!(atomic && b.n_errors) && kept)
        fake_statement(&st, &b, from, b.n);
    *text = answer(&b, &st, atomic, status, text_len);
    check_envelope(*text, *text_len, *status, b.n, st.n - st.broken, !v1);
    rc = 0;
done:
    fake_free(&st);
    h_bulk_free(&b);
    return rc;
}

/* What may differ between two runs of one request goes: generated ids. */
static void strip_ids(json_t *v)
{
    const char *k;
    json_t *c;
    size_t i;
    if (json_is_object(v)) {
        json_object_del(v, "id");
        json_object_foreach(v, k, c) strip_ids(c);
    }
    json_array_foreach(v, i, c) strip_ids(c);
}

/* The walk alone: when it reaches the end, its items are the whole parse's. */
static void check_walk(const char *body, size_t len)
{
    val_bulk_walk w;
    json_t *items = json_array();
    int next = -1;
    if (val_bulk_open(&w, body, len)) {
        do {
            json_t *item = val_bulk_item(&w);
            if (!item)
                break;
            json_array_append_new(items, item);
            next = val_bulk_next(&w);
        } while (next > 0);
    }
    if (next == 0) {
        json_error_t je;
        json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        FUZZ_CHECK(json_object_size(root) == 1 && json_equal(json_object_get(root, "data"), items),
                   "the walk's %zu items are not the body's: %.300s", json_array_size(items), body);
        json_decref(root);
    }
    json_decref(items);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const bulk_op ops[8] = {BULK_CREATE, BULK_UPDATE, BULK_DELETE, BULK_CREATE,
                                   BULK_UPDATE, BULK_DELETE, BULK_UPSERT, BULK_DELETE};
    unsigned route = (data[0] & 0x7f) % 8, whole_status = 0, streamed_status = 0;
    bool atomic = data[0] & 0x80, v1 = route >= 3 && route < 6, devices = route >= 6;
    bulk_op op = ops[route];
    char *body = fuzz_cstr(data + 1, size - 1), *whole = NULL, *streamed = NULL; /* NUL after, for messages */
    size_t len = size - 1, whole_len = 0, streamed_len = 0;

    check_walk(body, len);
    int whole_rc = run_whole(body, len, op, v1, devices, atomic, &whole_status, &whole, &whole_len);
    if (op == BULK_CREATE && run_streamed(body, len, v1, atomic, &streamed_status, &streamed, &streamed_len) == 0) {
        json_error_t je;
        FUZZ_CHECK(whole_rc == 0, "walked a body the whole parse refuses: %.300s", body);
        json_t *a = json_loadb(streamed, streamed_len, 0, &je), *b = json_loadb(whole, whole_len, 0, &je);
        strip_ids(a);
        strip_ids(b);
        FUZZ_CHECK(streamed_status == whole_status && a && b && json_equal(a, b),
                   "in parts %u %.300s\nwhole %u %.300s", streamed_status, streamed, whole_status, whole);
        json_decref(a);
        json_decref(b);
    }
    free(streamed);
    free(whole);
    free(body);
    return 0;
}
