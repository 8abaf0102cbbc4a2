/* Bulk create, update and delete for both dialects: every item validated with the
 * single-item rules and applied on its own, in one statement for the whole request;
 * the answer is seed 002's envelope {"data", "errors", "warnings"}. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ids.h"
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "store/segments.h"
#include "validate/audience.h"
#include "validate/v1_segment.h"
#include "validate/validate.h"

#define BULK_MAX_ITEMS 1000

typedef enum { OP_CREATE, OP_UPDATE, OP_DELETE } bulk_op;

/* Where a value lies in an item's record: an /audiences/segments create's answer reuses
 * the JSON text of the values it stored (see aud_created). */
typedef struct span {
    uint32_t off, len;
} span;
enum { SP_MANAGEMENT_TYPE, SP_NAME, SP_OWNER_ID, SP_SIZE, SP_DESCRIPTION, SP__COUNT };

typedef struct bulk {
    http_request *rq;
    bulk_op op;
    bool v1;
    size_t n;
    char **records;          /* per item: the record for the statement as JSON text, NULL when refused */
    char (*ids)[40];         /* per item: the id it names or was given */
    json_t **warns;          /* per item: warnings (v1), or NULL */
    span (*spans)[SP__COUNT]; /* per item (/audiences/segments creates): values in its record */
    json_t *errors;
    seg_error item_err;
} bulk;

static void add_problem(bulk *b, size_t i, const char *code, const char *title,
                        const char *pointer, const char *detail)
{
    char ptr[ERR_POINTER_MAX + 24];
    snprintf(ptr, sizeof ptr, "/data/%zu%s", i, pointer);
    json_array_append_new(b->errors, json_pack("{s:s, s:s, s:s, s:{s:s}, s:s}", "code", code,
                                               "title", title, "detail", detail, "source",
                                               "pointer", ptr, "traceId", b->rq->request_id));
}

/* Moves the problems of one item's validation into the envelope. */
static void add_item_errors(bulk *b, size_t i)
{
    seg_error *e = &b->item_err;
    if (e->n_items == 0) {
        add_problem(b, i, e->code ? e->code : "invalid_item", err_title_for(e->status ? e->status : 422),
                    "", e->detail[0] ? e->detail : "the item is not valid");
        return;
    }
    for (int k = 0; k < e->n_items; k++)
        add_problem(b, i, e->code ? e->code : "validation_failed", "Invalid field",
                    e->items[k].pointer, e->items[k].detail);
}

/* A record is written as JSON text directly: the statement's parameter is the array of
 * them, so building a jansson tree per item only to dump it would build the JSON twice
 * (callgrind, 1000 creates: json_pack and json_dumps were ~38 % of the request's
 * instructions). Values taken over from the request (properties, constraints) are dumped
 * or spliced as they are. */
typedef struct rec {
    char *p;
    size_t len, cap;
    bool oom;
} rec;

/* Room for need bytes in all (a terminating NUL included). */
static bool rec_room(rec *r, size_t need)
{
    if (r->oom)
        return false;
    if (need > r->cap) {
        size_t ncap = r->cap ? r->cap : 256;
        while (ncap < need)
            ncap *= 2;
        char *np = realloc(r->p, ncap);
        if (!np) {
            r->oom = true;
            return false;
        }
        r->p = np;
        r->cap = ncap;
    }
    return true;
}

static void rec_put(rec *r, const char *s, size_t n)
{
    if (!rec_room(r, r->len + n + 1))
        return;
    memcpy(r->p + r->len, s, n);
    r->len += n;
    r->p[r->len] = '\0';
}

/* ,"key": (or {"key": for the first) */
static void rec_key(rec *r, const char *key)
{
    rec_put(r, r->len ? ",\"" : "{\"", 2);
    rec_put(r, key, strlen(key));
    rec_put(r, "\":", 2);
}

/* A quoted JSON string of n bytes (UTF-8 passes through: the request's strings were
 * checked when it was parsed), escaped as PostgreSQL's escape_json does, so that an
 * answer written from the record reads byte for byte as json_build_object's. */
static void rec_quoted(rec *r, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    static const char named[32] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    const char *run = s, *end = s + n;
    rec_put(r, "\"", 1);
    for (; s < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rec_put(r, run, (size_t)(s - run));
        if (c == '"' || c == '\\')
            rec_put(r, (char[]){'\\', (char)c}, 2);
        else if (named[c])
            rec_put(r, (char[]){'\\', named[c]}, 2);
        else
            rec_put(r, (char[]){'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]}, 6);
        run = s + 1;
    }
    rec_put(r, run, (size_t)(s - run));
    rec_put(r, "\"", 1);
}

/* Notes in at where the value written since from lies. */
static void rec_mark(const rec *r, size_t from, span *at)
{
    *at = (span){(uint32_t)from, (uint32_t)(r->len - from)};
}

/* A JSON string, or null; at (if not NULL) notes where its value lies. */
static void rec_str_at(rec *r, const char *key, const char *s, span *at)
{
    rec_key(r, key);
    size_t from = r->len;
    if (s)
        rec_quoted(r, s, strlen(s));
    else
        rec_put(r, "null", 4);
    if (at)
        rec_mark(r, from, at);
}

static void rec_str(rec *r, const char *key, const char *s)
{
    rec_str_at(r, key, s, NULL);
}

static void rec_ll(rec *r, long long v)
{
    char num[24];
    rec_put(r, num, (size_t)snprintf(num, sizeof num, "%lld", v));
}

static void rec_int(rec *r, const char *key, long long v)
{
    rec_key(r, key);
    rec_ll(r, v);
}

/* JSON text as it is, or null. */
static void rec_raw(rec *r, const char *key, const char *json)
{
    rec_key(r, key);
    if (json)
        rec_put(r, json, strlen(json));
    else
        rec_put(r, "null", 4);
}

/* A value of the request written back as JSON; a real number goes through jansson's own
 * formatting, so that it reads back as the same double. */
static void rec_value(rec *r, json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    bool first = true;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        rec_put(r, "{", 1);
        json_object_foreach(v, k, x) {
            if (!first)
                rec_put(r, ",", 1);
            first = false;
            rec_quoted(r, k, strlen(k));
            rec_put(r, ":", 1);
            rec_value(r, x);
        }
        rec_put(r, "}", 1);
        break;
    case JSON_ARRAY:
        rec_put(r, "[", 1);
        json_array_foreach(v, i, x) {
            if (i)
                rec_put(r, ",", 1);
            rec_value(r, x);
        }
        rec_put(r, "]", 1);
        break;
    case JSON_STRING:
        rec_quoted(r, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        rec_ll(r, (long long)json_integer_value(v));
        break;
    case JSON_REAL: {
        char *text = json_dumps(v, JSON_ENCODE_ANY);
        if (!text)
            r->oom = true;
        else
            rec_put(r, text, strlen(text));
        free(text);
        break;
    }
    case JSON_TRUE:
        rec_put(r, "true", 4);
        break;
    case JSON_FALSE:
        rec_put(r, "false", 5);
        break;
    case JSON_NULL:
        rec_put(r, "null", 4);
        break;
    }
}

/* The request's own value of key, or null when the item has none. */
static void rec_from(rec *r, json_t *item, const char *key)
{
    json_t *v = json_object_get(item, key);
    rec_key(r, key);
    if (v)
        rec_value(r, v);
    else
        rec_put(r, "null", 4);
}

static void rec_size(rec *r, const aud_segment_in *in, span *at)
{
    rec_key(r, "approximated_size");
    size_t from = r->len;
    if (in->size_is_null || !in->size[0])
        rec_put(r, "null", 4);
    else
        rec_ll(r, strtoll(in->size, NULL, 10));
    if (at)
        rec_mark(r, from, at);
}

/* Stores the record as item i's; -1 (and the item refused) when out of memory. */
static int rec_keep(bulk *b, rec *r, size_t i)
{
    if (r->oom) {
        free(r->p);
        err_set(&b->item_err, 500, "internal", "the item could not be encoded");
        return -1;
    }
    b->records[i] = r->p;
    return 0;
}

/* Ends an object record and stores it. */
static int rec_done(bulk *b, rec *r, size_t i)
{
    rec_put(r, "}", 1);
    return rec_keep(b, r, i);
}

/* An item naming only an id: {"id": "..."} for deletes. */
static int id_only_item(bulk *b, json_t *item, size_t i)
{
    json_t *id = json_object_get(item, "id");
    const char *why = NULL;
    if (json_object_size(item) != 1 || !json_is_string(id)) {
        err_add(&b->item_err, "/id", "expected an object holding only \"id\"");
        return -1;
    }
    const char *s = json_string_value(id);
    bool ok = b->v1 ? val_v1_id(s) : val_uuid(s, json_string_length(id), &why);
    if (!ok) {
        err_add(&b->item_err, "/id", "\"%.40s\" is not a segment id: %s", s,
                b->v1 ? "expected \"seg_\" followed by 13 letters or digits" : why);
        return -1;
    }
    snprintf(b->ids[i], sizeof b->ids[i], "%s", s);
    for (char *c = b->ids[i]; !b->v1 && *c; c++)
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c + 32);
    rec r = {0}; /* a delete's record is the bare id string */
    rec_quoted(&r, b->ids[i], strlen(b->ids[i]));
    return rec_keep(b, &r, i);
}

static int aud_item(bulk *b, json_t *item, size_t i)
{
    aud_segment_in in;
    int rc = -1;
    rec r = {0};
    if (b->op == OP_DELETE)
        return id_only_item(b, item, i);
    if (val_aud_segment(item, (b->op == OP_CREATE ? AUD_CREATE : AUD_REPLACE) | AUD_NO_TEXT, &in,
                        &b->item_err))
        goto done;
    if (b->op == OP_CREATE) {
        if (ids_uuid_v7(b->ids[i])) {
            err_set(&b->item_err, 503, "no_entropy", "no random source available");
            goto done;
        }
        span *at = b->spans[i];
        rec_str(&r, "id", b->ids[i]);
        rec_str_at(&r, "management_type", in.management_type, &at[SP_MANAGEMENT_TYPE]);
        rec_str_at(&r, "name", in.name, &at[SP_NAME]);
        rec_str_at(&r, "owner_id", in.owner_id, &at[SP_OWNER_ID]);
        rec_size(&r, &in, &at[SP_SIZE]);
        rec_str_at(&r, "description", in.description, &at[SP_DESCRIPTION]);
        rec_from(&r, item, "properties");
        rec_from(&r, item, "deprecated_properties");
        rec_str(&r, "created_at", in.created_at);
    } else {
        snprintf(b->ids[i], sizeof b->ids[i], "%s", in.id);
        rec_str(&r, "id", in.id);
        rec_int(&r, "mask", (long long)in.set);
        rec_str(&r, "management_type", in.management_type);
        rec_str(&r, "name", in.name);
        rec_str(&r, "owner_id", in.owner_id[0] ? in.owner_id : NULL);
        rec_size(&r, &in, NULL);
        rec_str(&r, "description", in.description);
        rec_from(&r, item, "properties");
        rec_from(&r, item, "deprecated_properties");
    }
    rc = rec_done(b, &r, i);
done:
    val_aud_release(&in);
    return rc;
}

static int v1_item(bulk *b, json_t *item, size_t i)
{
    v1_segment_in in;
    int rc = -1;
    rec r = {0};
    memset(&in, 0, sizeof in);
    if (b->op == OP_DELETE)
        return id_only_item(b, item, i);
    if (val_v1_segment(item, b->op == OP_UPDATE, &in, &b->item_err))
        goto done;
    if (b->op == OP_CREATE) {
        if (ids_seg_id(b->ids[i])) {
            err_set(&b->item_err, 503, "no_entropy", "no random source available");
            goto done;
        }
        rec_str(&r, "id", b->ids[i]);
        rec_str(&r, "name", in.name);
        rec_str(&r, "description", in.has_description ? in.description : NULL);
        rec_raw(&r, "constraints", in.constraints_json); /* canonical JSON already */
    } else {
        unsigned mask = (in.name ? V1_SET_NAME : 0) | (in.has_description ? V1_SET_DESCRIPTION : 0) |
                        (in.constraints_json ? V1_SET_CONSTRAINTS : 0);
        snprintf(b->ids[i], sizeof b->ids[i], "%s", in.id);
        rec_str(&r, "id", in.id);
        rec_int(&r, "mask", (long long)mask);
        rec_str(&r, "name", in.name);
        rec_str(&r, "description", in.description);
        rec_raw(&r, "constraints", in.constraints_json);
    }
    if (rec_done(b, &r, i))
        goto done;
    if (in.warnings && json_array_size(in.warnings)) {
        b->warns[i] = in.warnings;
        in.warnings = NULL;
    }
    rc = 0;
done:
    val_v1_segment_release(&in);
    return rc;
}

typedef struct id_ref {
    const char *id;
    size_t index;
} id_ref;

static int cmp_ref(const void *a, const void *b)
{
    const id_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* The same id twice: every later occurrence is refused (updates and deletes). */
static void refuse_duplicates(bulk *b)
{
    id_ref *refs = malloc(b->n * sizeof *refs);
    size_t m = 0;
    if (!refs)
        return;
    for (size_t i = 0; i < b->n; i++)
        if (b->records[i])
            refs[m++] = (id_ref){b->ids[i], i};
    qsort(refs, m, sizeof *refs, cmp_ref);
    for (size_t k = 1; k < m; k++) {
        if (strcmp(refs[k].id, refs[k - 1].id) == 0) {
            size_t i = refs[k].index;
            char detail[128];
            size_t first = k;
            while (first > 0 && !strcmp(refs[first - 1].id, refs[k].id))
                first--;
            snprintf(detail, sizeof detail, "this id is already named by item %zu of this request",
                     refs[first].index);
            add_problem(b, i, "duplicate_id", "Duplicate id", "/id", detail);
            free(b->records[i]);
            b->records[i] = NULL;
            json_decref(b->warns[i]);
            b->warns[i] = NULL;
        }
    }
    free(refs);
}

#define REC_LIT(r, lit) rec_put(r, lit, sizeof lit - 1)

/* A timestamp the statement returned as microseconds since the epoch, written as
 * TS_JSON (store/statements.c) writes it: "YYYY-MM-DDTHH:MM:SS.ffffffZ" in UTC. The rows
 * of one request mostly share one instant (now()), so the last one is kept. */
typedef struct ts_text {
    char us[24];
    char text[48];
    size_t len;
} ts_text;

static void rec_ts(rec *r, const char *us, ts_text *last)
{
    if (strcmp(us, last->us) != 0) {
        long long v = strtoll(us, NULL, 10), sec = v / 1000000, frac = v % 1000000;
        if (frac < 0) {
            frac += 1000000;
            sec--;
        }
        time_t t = (time_t)sec;
        struct tm tm;
        if (strlen(us) >= sizeof last->us || !gmtime_r(&t, &tm)) {
            r->oom = true; /* not a timestamp PostgreSQL can hold: the answer fails */
            return;
        }
        long long year = (long long)tm.tm_year + 1900;
        if (year <= 0)
            year = 1 - year; /* to_char's YYYY: 1 BC is 0001 */
        last->len = (size_t)snprintf(last->text, sizeof last->text,
                                     "\"%04lld-%02d-%02dT%02d:%02d:%02d.%06lldZ\"", year, tm.tm_mon + 1,
                                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
        memcpy(last->us, us, strlen(us) + 1);
    }
    rec_put(r, last->text, last->len);
}

static void rec_span(rec *r, const char *record, span at)
{
    rec_put(r, record + at.off, at.len);
}

/* Item i's representation, created as row r, byte for byte as AUD_JSON writes it for the
 * single routes: its values are taken from its record (escaped as escape_json does), and
 * PostgreSQL returns only what it made (no, the two documents as jsonb's own text, the
 * timestamps), which spares it json_build_object and to_char over every row. */
static void aud_created(rec *o, const bulk *b, size_t i, const store_rows *rows, int r, ts_text last[2])
{
    const char *record = b->records[i];
    const span *at = b->spans[i];
    REC_LIT(o, "{\"id\" : \"");
    rec_put(o, b->ids[i], strlen(b->ids[i]));
    REC_LIT(o, "\", \"management_type\" : ");
    rec_span(o, record, at[SP_MANAGEMENT_TYPE]);
    REC_LIT(o, ", \"name\" : ");
    rec_span(o, record, at[SP_NAME]);
    REC_LIT(o, ", \"no\" : ");
    rec_put(o, store_value(rows, r, 1), store_length(rows, r, 1));
    REC_LIT(o, ", \"owner_id\" : ");
    rec_span(o, record, at[SP_OWNER_ID]);
    REC_LIT(o, ", \"approximated_size\" : ");
    rec_span(o, record, at[SP_SIZE]);
    REC_LIT(o, ", \"created_at\" : ");
    rec_ts(o, store_value(rows, r, 4), &last[0]);
    REC_LIT(o, ", \"deprecated_properties\" : ");
    rec_put(o, store_value(rows, r, 3), store_length(rows, r, 3));
    REC_LIT(o, ", \"description\" : ");
    rec_span(o, record, at[SP_DESCRIPTION]);
    REC_LIT(o, ", \"properties\" : ");
    rec_put(o, store_value(rows, r, 2), store_length(rows, r, 2));
    REC_LIT(o, ", \"updated_at\" : ");
    rec_ts(o, store_value(rows, r, 5), &last[1]);
    REC_LIT(o, "}");
}

/* A row the statement returned, found by its id (column 0). */
typedef struct row_ref {
    const char *id;
    const store_rows *rows;
    int row;
} row_ref;

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const row_ref *)a)->id, ((const row_ref *)b)->id);
}

/* Builds {"data":[…],"errors":[…],"warnings":[…]} with the stored rows (of nparts
 * statements) in request order; items the statements did not touch become not_found
 * errors. Every statement's rows hold the id in column 0; the others the representation
 * in column 1, except an /audiences/segments create's (aud_created). */
static char *envelope(bulk *b, store_rows *const *parts, int nparts, size_t *len_out)
{
    int nrows = 0;
    for (int k = 0; k < nparts; k++)
        nrows += parts[k] ? store_rows_count(parts[k]) : 0;
    bool written = !b->v1 && b->op == OP_CREATE;
    row_ref *found = malloc(((size_t)nrows + 1) * sizeof *found);
    const row_ref **row_of = malloc((b->n + 1) * sizeof *row_of); /* item → its row, or NULL */
    json_t *warnings = json_array();
    char *errs = NULL, *warns = NULL;
    ts_text last[2];
    rec o = {0};
    size_t cap = 64;
    *len_out = 0;
    memset(last, 0, sizeof last);
    if (!found || !row_of || !warnings)
        goto done;
    nrows = 0;
    for (int k = 0; k < nparts; k++)
        for (int r = 0; parts[k] && r < store_rows_count(parts[k]); r++)
            found[nrows++] = (row_ref){store_value(parts[k], r, 0), parts[k], r};
    qsort(found, (size_t)nrows, sizeof *found, cmp_row);
    for (size_t i = 0; i < b->n; i++) {
        row_of[i] = NULL;
        if (!b->records[i])
            continue;
        const row_ref *hit = NULL;
        for (int lo = 0, hi = nrows - 1; lo <= hi && !hit;) {
            int mid = (lo + hi) / 2, c = strcmp(b->ids[i], found[mid].id);
            if (c == 0)
                hit = &found[mid];
            else if (c < 0)
                hi = mid - 1;
            else
                lo = mid + 1;
        }
        if (!hit) {
            add_problem(b, i, "not_found", "Not Found", "/id", "no segment with this id");
            free(b->records[i]);
            b->records[i] = NULL;
            continue;
        }
        row_of[i] = hit;
        cap += written ? strlen(b->records[i]) + store_length(hit->rows, hit->row, 2) +
                             store_length(hit->rows, hit->row, 3) + 256
                       : store_length(hit->rows, hit->row, 1) + 1;
        size_t wi;
        json_t *w;
        json_array_foreach(b->warns[i], wi, w) {
            json_t *copy = json_deep_copy(w);
            json_t *src = json_object_get(copy, "source");
            const char *ptr = json_string_value(json_object_get(src, "pointer"));
            char full[ERR_POINTER_MAX + 24];
            snprintf(full, sizeof full, "/data/%zu%s", i, ptr ? ptr : "");
            json_object_set_new(src, "pointer", json_string(full));
            json_object_set_new(copy, "traceId", json_string(b->rq->request_id));
            json_array_append_new(warnings, copy);
        }
    }
    errs = json_dumps(b->errors, JSON_COMPACT);
    warns = json_dumps(warnings, JSON_COMPACT);
    if (!errs || !warns || !rec_room(&o, cap + strlen(errs) + strlen(warns)))
        goto done;
    REC_LIT(&o, "{\"data\":[");
    bool first = true;
    for (size_t i = 0; i < b->n; i++) {
        const row_ref *hit = row_of[i];
        if (!hit)
            continue;
        if (!first)
            REC_LIT(&o, ",");
        first = false;
        if (written)
            aud_created(&o, b, i, hit->rows, hit->row, last);
        else
            rec_put(&o, store_value(hit->rows, hit->row, 1), store_length(hit->rows, hit->row, 1));
    }
    REC_LIT(&o, "],\"errors\":");
    rec_put(&o, errs, strlen(errs));
    REC_LIT(&o, ",\"warnings\":");
    rec_put(&o, warns, strlen(warns));
    REC_LIT(&o, "}");
done:
    free(found);
    free(row_of);
    free(errs);
    free(warns);
    json_decref(warnings);
    if (o.oom || !o.len) {
        free(o.p);
        return NULL;
    }
    *len_out = o.len;
    return o.p;
}

static const stmt_id statements[2][3] = {
    {STMT_AUD_BULK_INSERT, STMT_AUD_BULK_UPDATE, STMT_AUD_BULK_DELETE},
    {STMT_V1_BULK_INSERT, STMT_V1_BULK_UPDATE, STMT_V1_BULK_DELETE},
};

static int bulk_alloc(bulk *b, size_t cap)
{
    bool spans = !b->v1 && b->op == OP_CREATE;
    b->records = calloc(cap, sizeof *b->records);
    b->ids = calloc(cap, sizeof *b->ids);
    b->warns = calloc(cap, sizeof *b->warns);
    b->spans = spans ? calloc(cap, sizeof *b->spans) : NULL;
    b->errors = json_array();
    if (!b->records || !b->ids || !b->warns || !b->errors || (spans && !b->spans)) {
        err_set(&b->rq->err, 500, "internal", "out of memory");
        return -1;
    }
    return 0;
}

static void bulk_free(bulk *b)
{
    for (size_t i = 0; i < b->n && b->records; i++) {
        free(b->records[i]);
        if (b->warns)
            json_decref(b->warns[i]);
    }
    free(b->records);
    free(b->ids);
    free(b->warns);
    free(b->spans);
    json_decref(b->errors);
}

/* Validates item i: its record is kept, or its errors are in the envelope. */
static void bulk_item(bulk *b, json_t *item, size_t i)
{
    err_clear(&b->item_err);
    if (!json_is_object(item)) {
        err_set(&b->item_err, 422, "validation_failed", "expected an object, got %s",
                val_type_name(item));
        add_item_errors(b, i);
        return;
    }
    if ((b->v1 ? v1_item(b, item, i) : aud_item(b, item, i)) != 0)
        add_item_errors(b, i);
}

/* The statement's parameter: the kept records of items [from, to) as one JSON array;
 * NULL when none is kept (and when out of memory: then rq->err says so). */
static char *join_records(bulk *b, size_t from, size_t to)
{
    rec all = {0};
    for (size_t i = from; i < to; i++)
        if (b->records[i]) {
            rec_put(&all, all.len ? "," : "[", 1);
            rec_put(&all, b->records[i], strlen(b->records[i]));
        }
    if (all.len)
        rec_put(&all, "]", 1);
    if (all.oom) {
        free(all.p);
        err_set(&b->rq->err, 500, "internal", "out of memory");
        return NULL;
    }
    return all.p;
}

static void bulk_reply(bulk *b, int status, store_rows *const *parts, int nparts)
{
    size_t len;
    char *text = envelope(b, parts, nparts, &len);
    if (!text) {
        err_set(&b->rq->err, 500, "internal", "the answer could not be written");
        return;
    }
    http_reply(b->rq, status, "application/json", text, len, free, text);
}

/* All or nothing: the whole request is refused with every error; nothing stored. */
static void bulk_refuse(bulk *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->records[i]);
        b->records[i] = NULL;
    }
    bulk_reply(b, 422, NULL, 0);
}

/* ---- creates: stored while the body is still being read ---------------------------
 * A create's items are parsed one by one (jansson on each item's text) while the body
 * {"data":[…]} itself is walked here; every BULK_PART_ITEMS kept items are sent to
 * PostgreSQL as one part of one transaction (store_parts_*), so that PostgreSQL inserts
 * one part while the next is parsed and validated, instead of the two one after the
 * other. The walk accepts only what it is sure of; anything else (other keys, "data"
 * spelt with escapes, 0 or more than BULK_MAX_ITEMS items, an item jansson refuses, an
 * item nested about as deep as jansson's limit) rolls back what was sent and starts the
 * request over on the whole body (run_whole), whose answer is then the one given. */
#ifndef BULK_PART_ITEMS /* the fuzz target makes it small */
#define BULK_PART_ITEMS 100
#endif

typedef struct walk {
    const char *p, *end;
} walk;

static void walk_space(walk *w)
{
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r'))
        w->p++;
}

static bool walk_lit(walk *w, char c)
{
    walk_space(w);
    if (w->p < w->end && *w->p == c) {
        w->p++;
        return true;
    }
    return false;
}

static bool walk_open(walk *w)
{
    if (!walk_lit(w, '{') || !walk_lit(w, '"') || w->end - w->p < 5 || memcmp(w->p, "data\"", 5))
        return false;
    w->p += 5;
    if (!walk_lit(w, ':') || !walk_lit(w, '['))
        return false;
    const char *item = w->p;
    if (walk_lit(w, ']'))
        return false; /* no item: run_whole says so */
    w->p = item;
    return true;
}

/* The next item, or NULL when the walk gives up. */
static json_t *walk_item(walk *w)
{
    json_error_t je;
    size_t left = (size_t)(w->end - w->p);
    json_t *v = json_loadb(w->p, left, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY,
                           &je);
    if (!v)
        return NULL;
    size_t used = je.position > 0 ? (size_t)je.position : 0;
    /* in the whole body an item is two levels deeper than on its own */
    if (!used || used > left || (used >= 2 * (JSON_PARSER_MAX_DEPTH - 2) && val_depth(v) > JSON_PARSER_MAX_DEPTH - 2)) {
        json_decref(v);
        return NULL;
    }
    w->p += used;
    return v;
}

/* Sends the kept records of items [from, b->n) as part *nparts (counted even when it
 * fails); the connection and the transaction are opened with the first. */
static int send_part(bulk *b, store_conn **c, bool *open, size_t from, int *nparts, seg_error *err)
{
    (*nparts)++;
    char *text = join_records(b, from, b->n);
    if (!text)
        return b->rq->err.status ? -1 : 0;
    int rc = -1;
    if (!*c && !(*c = store_acquire(err)))
        goto done;
    if (!*open) {
        *open = true; /* store_parts_end is owed even when this fails */
        if (store_parts_begin(*c, err))
            goto done;
    }
    const char *p[2] = {b->rq->principal.tenant, text};
    rc = store_parts_send(*c, statements[b->v1][OP_CREATE], p, err);
done:
    free(text);
    return rc;
}

/* 0 when the request was answered (or rq->err set), -1 to start over with run_whole:
 * then nothing was stored or answered. */
static int run_streamed(http_request *rq, bool v1, bool atomic)
{
    bulk b = {.rq = rq, .op = OP_CREATE, .v1 = v1};
    walk w = {rq->body, rq->body ? rq->body + rq->body_len : NULL};
    store_conn *c = NULL;
    store_rows *parts[BULK_MAX_ITEMS / BULK_PART_ITEMS + 1];
    seg_error db_err;
    int nparts = 0, rc = 0, sep;
    size_t from = 0, kept = 0;
    bool open = false, failed = false;

    err_clear(&db_err);
    memset(parts, 0, sizeof parts);
    if (!rq->body || !walk_open(&w))
        return -1;
    if (bulk_alloc(&b, BULK_MAX_ITEMS))
        goto done;
    do {
        json_t *item = b.n < BULK_MAX_ITEMS ? walk_item(&w) : NULL;
        if (!item)
            goto over;
        bulk_item(&b, item, b.n);
        json_decref(item);
        kept += b.records[b.n++] != NULL;
        if (kept == BULK_PART_ITEMS && !failed && !(atomic && json_array_size(b.errors))) {
            /* a failed part fails them all: its error is given once the walk is done */
            failed = send_part(&b, &c, &open, from, &nparts, &db_err) != 0;
            from = b.n;
            kept = 0;
        }
        sep = walk_lit(&w, ',') ? 1 : walk_lit(&w, ']') ? 0 : -1;
        if (sep < 0)
            goto over;
    } while (sep);
    if (!walk_lit(&w, '}') || (walk_space(&w), w.p != w.end))
        goto over;
    if (atomic && json_array_size(b.errors)) {
        bulk_refuse(&b); /* what was sent is rolled back below */
        goto done;
    }
    if (!failed && kept)
        failed = send_part(&b, &c, &open, from, &nparts, &db_err) != 0;
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
    bulk_reply(&b, 200, parts, nparts);
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
    bulk_free(&b);
    return rc;
}

/* ---- the whole body at once: updates, deletes, and creates the walk gave up on ---- */
static void run_whole(http_request *rq, bool v1, bulk_op op, bool atomic)
{
    bulk b = {.rq = rq, .op = op, .v1 = v1};
    json_t *root = NULL, *data;
    store_conn *c = NULL;
    store_rows *rows = NULL;
    bool in_tx = false;
    char *records_text = NULL, *text = NULL;
    size_t len = 0;

    if (!(root = val_parse_body(rq->body, rq->body_len, &rq->err)))
        return;
    data = json_object_get(root, "data");
    if (json_object_size(root) != 1 || !json_is_array(data)) {
        const char *k;
        json_t *v;
        val_path p;
        val_path_init(&p, &rq->err);
        json_object_foreach(root, k, v) if (strcmp(k, "data"))
            val_fail_at(&p, k, "unknown field \"%.60s\": a bulk body holds only \"data\"", k);
        if (!json_is_array(data))
            err_add(&rq->err, "/data", "expected an array of 1 to %d items", BULK_MAX_ITEMS);
        goto done;
    }
    size_t n = json_array_size(data);
    if (n < 1 || n > BULK_MAX_ITEMS) {
        err_set(&rq->err, 422, n ? "too_many_items" : "validation_failed",
                "a bulk request holds 1 to %d items, got %zu", BULK_MAX_ITEMS, n);
        err_add(&rq->err, "/data", "expected 1 to %d items, got %zu", BULK_MAX_ITEMS, n);
        goto done;
    }
    if (bulk_alloc(&b, n))
        goto done;
    for (b.n = 0; b.n < n; b.n++)
        bulk_item(&b, json_array_get(data, b.n), b.n);
    if (op != OP_CREATE)
        refuse_duplicates(&b);
    if (atomic && json_array_size(b.errors) > 0)
        goto refuse;
    if (!(records_text = join_records(&b, 0, b.n)) && rq->err.status)
        goto done;
    if (records_text) {
        if (!(c = store_acquire(&rq->err)))
            goto done;
        if (atomic && op != OP_CREATE) {
            if (store_begin(c, &rq->err))
                goto done;
            in_tx = true;
        }
        if (store_bulk(c, statements[v1][op], rq->principal.tenant, records_text, &rows, &rq->err))
            goto done;
    }
    text = envelope(&b, &rows, rows ? 1 : 0, &len); /* adds not_found for ids the statement missed */
    if (!text) {
        err_set(&rq->err, 500, "internal", "the answer could not be written");
        goto done;
    }
    if (atomic && json_array_size(b.errors) > 0) {
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
    bulk_refuse(&b);
done:
    if (in_tx)
        store_rollback(c);
    store_release(c);
    store_rows_free(rows);
    free(records_text);
    bulk_free(&b);
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
    if (op == OP_CREATE && run_streamed(rq, v1, atomic) == 0)
        return;
    run_whole(rq, v1, op, atomic);
}

void h_aud_bulk_create(http_request *rq) { run_bulk(rq, false, OP_CREATE); }
void h_aud_bulk_update(http_request *rq) { run_bulk(rq, false, OP_UPDATE); }
void h_aud_bulk_delete(http_request *rq) { run_bulk(rq, false, OP_DELETE); }
void h_v1_bulk_create(http_request *rq) { run_bulk(rq, true, OP_CREATE); }
void h_v1_bulk_update(http_request *rq) { run_bulk(rq, true, OP_UPDATE); }
void h_v1_bulk_delete(http_request *rq) { run_bulk(rq, true, OP_DELETE); }
