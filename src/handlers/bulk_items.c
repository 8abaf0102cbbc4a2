/* A bulk request's items: each validated with the single-item rules and written as its
 * statement record (JSON text), or refused with its problems. */
#include "handlers/bulk_private.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/problem.h"
#include "store/statements.h"
#include "validate/audience.h"
#include "validate/device.h"
#include "validate/v1_segment.h"
#include "validate/validate.h"

void h_bulk_problem(bulk *b, size_t i, const char *code, const char *title, const char *pointer,
                    const char *detail)
{
    problem p = {.kind = PROBLEM_ITEM, .code = code, .title = title, .detail = detail, .pointer = pointer,
                 .item = (long)i, .trace_id = b->trace_id};
    problem_write(&b->errors, &p);
    b->n_errors++;
}

/* Moves the problems of one item's validation into the envelope. */
static void add_item_errors(bulk *b, size_t i)
{
    seg_error *e = &b->item_err;
    if (e->n_items == 0) {
        h_bulk_problem(b, i, e->code ? e->code : "invalid_item", err_title_for(e->status ? e->status : 422), "",
                       e->detail[0] ? e->detail : "the item is not valid");
        return;
    }
    for (int k = 0; k < e->n_items; k++)
        h_bulk_problem(b, i, e->code ? e->code : "validation_failed", "Invalid field", e->items[k].pointer,
                       e->items[k].detail);
}

/* A record is written as JSON text directly: the statement's parameter is the array of
 * them, so building a jansson tree per item only to dump it would build the JSON twice
 * (callgrind, 1000 creates: json_pack and json_dumps were ~38 % of the request's
 * instructions). Strings are escaped as PostgreSQL's escape_json does, so that an
 * answer written from the record reads byte for byte as json_build_object's; values
 * taken over from the request (properties, constraints) are written back or spliced as
 * they are. */

/* Notes in at where the value written since from lies. */
static void rec_mark(const json_text *r, size_t from, bulk_span *at)
{
    *at = (bulk_span){(uint32_t)from, (uint32_t)(r->len - from)};
}

/* A member holding a JSON string, or null; at (if not NULL) notes where its value lies. */
static void rec_str_at(json_text *r, const char *key, const char *s, bulk_span *at)
{
    json_text_key(r, key);
    size_t from = r->len;
    json_text_cstr(r, s, JSON_ESC_PG);
    if (at)
        rec_mark(r, from, at);
}

static void rec_str(json_text *r, const char *key, const char *s)
{
    rec_str_at(r, key, s, NULL);
}

/* A value of the request written back as JSON; a real number goes through jansson's own
 * formatting, so that it reads back as the same double. */
static void rec_value(json_text *r, json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        JSON_TEXT_LIT(r, "{");
        json_object_foreach(v, k, x) {
            json_text_comma(r);
            json_text_string(r, k, strlen(k), JSON_ESC_PG);
            JSON_TEXT_LIT(r, ":");
            rec_value(r, x);
        }
        JSON_TEXT_LIT(r, "}");
        break;
    case JSON_ARRAY:
        JSON_TEXT_LIT(r, "[");
        json_array_foreach(v, i, x) {
            json_text_comma(r);
            rec_value(r, x);
        }
        JSON_TEXT_LIT(r, "]");
        break;
    case JSON_STRING:
        json_text_string(r, json_string_value(v), json_string_length(v), JSON_ESC_PG);
        break;
    case JSON_INTEGER:
        json_text_int(r, (long long)json_integer_value(v));
        break;
    case JSON_REAL: {
        char *text = json_dumps(v, JSON_ENCODE_ANY);
        if (!text)
            r->failed = true;
        else
            json_text_raw(r, text);
        free(text);
        break;
    }
    case JSON_TRUE:
        JSON_TEXT_LIT(r, "true");
        break;
    case JSON_FALSE:
        JSON_TEXT_LIT(r, "false");
        break;
    case JSON_NULL:
        JSON_TEXT_LIT(r, "null");
        break;
    }
}

/* The request's own value of key, or null when the item has none. */
static void rec_from(json_text *r, json_t *item, const char *key)
{
    json_t *v = json_object_get(item, key);
    json_text_key(r, key);
    if (v)
        rec_value(r, v);
    else
        JSON_TEXT_LIT(r, "null");
}

static void rec_size(json_text *r, const aud_segment_in *in, bulk_span *at)
{
    json_text_key(r, "approximated_size");
    size_t from = r->len;
    if (in->size_is_null || !in->size[0])
        JSON_TEXT_LIT(r, "null");
    else
        json_text_int(r, strtoll(in->size, NULL, 10));
    if (at)
        rec_mark(r, from, at);
}

/* The lifecycle members of a record (LC_RECORD in store/statements.c). */
static void rec_lifecycle(json_text *r, const lifecycle_in *lc)
{
    json_text_key(r, "start_us");
    if (lc->has_start)
        json_text_int(r, (long long)lc->start_us);
    else
        JSON_TEXT_LIT(r, "null");
    json_text_key(r, "end_us");
    if (lc->has_end)
        json_text_int(r, (long long)lc->end_us);
    else
        JSON_TEXT_LIT(r, "null");
    json_text_key(r, "active");
    json_text_raw(r, lc->active ? "true" : "false");
    json_text_key(r, "extend");
    json_text_raw(r, lc->extend ? "true" : "false");
    json_text_key(r, "extend_days");
    json_text_int(r, lc->extend_days);
}

/* Stores the record as item i's; -1 (and the item refused) when out of memory. */
static int rec_keep(bulk *b, json_text *r, size_t i)
{
    size_t len;
    b->records[i] = json_text_take(r, &len);
    if (!b->records[i]) {
        err_set(&b->item_err, 500, "internal", "the item could not be encoded");
        return -1;
    }
    return 0;
}

/* Whether s (len bytes) is an id the request's resource has, else -1 with its problem. */
static int check_item_id(bulk *b, const char *s, size_t len)
{
    const char *why = NULL;
    if (b->devices) {
        if (strlen(s) == len && val_device_id(s))
            return 0;
        if (val_device_id_reserved(s))
            err_add(&b->item_err, "/id", "\"%s\" is reserved: " VAL_DEVICE_RESERVED_WHY, s);
        else
            err_add(&b->item_err, "/id", "\"%.40s\" is not a device id: expected 1 to %d letters, digits, "
                    "'-', '_', '.', ':' or '@'", s, DEVICE_ID_MAX);
        return -1;
    }
    if (b->v1 ? val_v1_id(s) : val_uuid(s, len, &why))
        return 0;
    err_add(&b->item_err, "/id", "\"%.40s\" is not a segment id: %s", s,
            b->v1 ? "expected \"seg_\" followed by 13 letters or digits" : why);
    return -1;
}

/* An item naming only an id: {"id": "..."} for deletes. */
static int id_only_item(bulk *b, json_t *item, size_t i)
{
    json_t *id = json_object_get(item, "id");
    if (json_object_size(item) != 1 || !json_is_string(id)) {
        err_add(&b->item_err, "/id", "expected an object holding only \"id\"");
        return -1;
    }
    const char *s = json_string_value(id);
    if (check_item_id(b, s, json_string_length(id)))
        return -1;
    snprintf(b->ids[i], sizeof b->ids[i], "%s", s);
    for (char *c = b->ids[i]; !b->v1 && !b->devices && *c; c++) /* a uuid's canonical form */
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c + 32);
    json_text r = {0}; /* a delete's record is the bare id string */
    json_text_cstr(&r, b->ids[i], JSON_ESC_PG);
    return rec_keep(b, &r, i);
}

static int aud_item(bulk *b, json_t *item, size_t i)
{
    aud_segment_in in;
    int rc = -1;
    json_text r = {0};
    if (val_aud_segment(item, (b->op == BULK_CREATE ? AUD_CREATE : AUD_REPLACE) | AUD_NO_TEXT, &in,
                        &b->item_err))
        goto done;
    JSON_TEXT_LIT(&r, "{");
    if (b->op == BULK_CREATE) {
        if (ids_uuid_v7(b->ids[i])) {
            err_set(&b->item_err, 503, "no_entropy", "no random source available");
            goto done;
        }
        bulk_span *at = b->spans[i];
        rec_str(&r, "id", b->ids[i]);
        rec_str_at(&r, "management_type", in.management_type, &at[SP_MANAGEMENT_TYPE]);
        rec_str_at(&r, "name", in.name, &at[SP_NAME]);
        rec_str_at(&r, "owner_id", in.owner_id, &at[SP_OWNER_ID]);
        rec_size(&r, &in, &at[SP_SIZE]);
        rec_str_at(&r, "description", in.description, &at[SP_DESCRIPTION]);
        rec_from(&r, item, "properties");
        rec_from(&r, item, "deprecated_properties");
        rec_str(&r, "created_at", in.created_at);
        rec_lifecycle(&r, &in.lc);
    } else {
        snprintf(b->ids[i], sizeof b->ids[i], "%s", in.id);
        rec_str(&r, "id", in.id);
        json_text_key(&r, "mask");
        json_text_int(&r, (long long)in.set);
        rec_str(&r, "management_type", in.management_type);
        rec_str(&r, "name", in.name);
        rec_str(&r, "owner_id", in.owner_id[0] ? in.owner_id : NULL);
        rec_size(&r, &in, NULL);
        rec_str(&r, "description", in.description);
        rec_from(&r, item, "properties");
        rec_from(&r, item, "deprecated_properties");
        rec_lifecycle(&r, &in.lc);
    }
    JSON_TEXT_LIT(&r, "}");
    rc = rec_keep(b, &r, i);
done:
    json_text_release(&r);
    val_aud_release(&in);
    return rc;
}

static int v1_item(bulk *b, json_t *item, size_t i)
{
    v1_segment_in in;
    int rc = -1;
    json_text r = {0};
    memset(&in, 0, sizeof in);
    if (val_v1_segment(item, b->op == BULK_UPDATE, &in, &b->item_err))
        goto done;
    JSON_TEXT_LIT(&r, "{");
    if (b->op == BULK_CREATE) {
        if (ids_seg_id(b->ids[i])) {
            err_set(&b->item_err, 503, "no_entropy", "no random source available");
            goto done;
        }
        rec_str(&r, "id", b->ids[i]);
        rec_str(&r, "name", in.name);
        rec_str(&r, "description", in.has_description ? in.description : NULL);
        json_text_key(&r, "constraints");
        json_text_raw(&r, in.constraints_json); /* canonical JSON already */
        rec_lifecycle(&r, &in.lc);
    } else {
        unsigned mask = (in.name ? V1_SET_NAME : 0) | (in.has_description ? V1_SET_DESCRIPTION : 0) |
                        (in.constraints_json ? V1_SET_CONSTRAINTS : 0) | in.lc.set;
        snprintf(b->ids[i], sizeof b->ids[i], "%s", in.id);
        rec_str(&r, "id", in.id);
        json_text_key(&r, "mask");
        json_text_int(&r, (long long)mask);
        rec_str(&r, "name", in.name);
        rec_str(&r, "description", in.description);
        json_text_key(&r, "constraints");
        json_text_raw(&r, in.constraints_json);
        rec_lifecycle(&r, &in.lc);
    }
    JSON_TEXT_LIT(&r, "}");
    if (rec_keep(b, &r, i))
        goto done;
    if (in.warnings && json_array_size(in.warnings)) {
        b->warns[i] = in.warnings;
        in.warnings = NULL;
    }
    rc = 0;
done:
    json_text_release(&r);
    val_v1_segment_release(&in);
    return rc;
}

/* A device's record (DEVICE_RECORD in store/statements.c): its id and each field it sets
 * by the representation's name (a field left out reads as NULL), integers as the decimal
 * text the validator wrote, tags and attributes as the compact JSON it wrote. */
static int dv_item(bulk *b, json_t *item, size_t i)
{
    device_in in;
    int rc = -1;
    json_text r = {0};
    bool no_id = json_object_get(item, "id") == NULL;
    if (val_device(item, NULL, &in, &b->item_err) || no_id) {
        if (no_id) /* after the others: the problems stay in the representation's order */
            err_add(&b->item_err, "/id", "required: a bulk item names its device by \"id\"");
        goto done;
    }
    snprintf(b->ids[i], sizeof b->ids[i], "%s", in.id);
    JSON_TEXT_LIT(&r, "{");
    rec_str(&r, "id", in.id);
    for (size_t k = 0; k < VAL_FIELD_COUNT; k++) {
        if (!in.scalar[k])
            continue; /* the id, the tags, and every field left out or null */
        json_text_key(&r, val_field_at(k)->name);
        if (in.scalar[k] == in.numbers[k])
            json_text_raw(&r, in.numbers[k]);
        else
            json_text_cstr(&r, in.scalar[k], JSON_ESC_PG);
    }
    json_text_key(&r, "tags");
    json_text_raw(&r, in.tags_json);
    json_text_key(&r, "attributes");
    json_text_raw(&r, in.attributes_json);
    JSON_TEXT_LIT(&r, "}");
    rc = rec_keep(b, &r, i);
done:
    json_text_release(&r);
    val_device_release(&in);
    return rc;
}

void h_bulk_item(bulk *b, json_t *item, size_t i)
{
    err_clear(&b->item_err);
    if (!json_is_object(item)) {
        err_set(&b->item_err, 422, "validation_failed", "expected an object, got %s", val_type_name(item));
        add_item_errors(b, i);
        return;
    }
    int rc = b->op == BULK_DELETE ? id_only_item(b, item, i)
             : b->devices          ? dv_item(b, item, i)
             : b->v1               ? v1_item(b, item, i)
                                   : aud_item(b, item, i);
    if (rc != 0)
        add_item_errors(b, i);
}

int h_bulk_step(bulk *b, val_bulk_walk *w)
{
    json_t *item = b->n < VAL_BULK_MAX_ITEMS ? val_bulk_item(w) : NULL;
    if (!item)
        return -1;
    h_bulk_item(b, item, b->n);
    json_decref(item);
    b->n++;
    return val_bulk_next(w);
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

/* Drops item i's record: it is not applied. */
static void drop_item(bulk *b, size_t i)
{
    free(b->records[i]);
    b->records[i] = NULL;
    json_decref(b->warns[i]);
    b->warns[i] = NULL;
}

int h_bulk_duplicates(bulk *b)
{
    id_ref *refs = malloc((b->n + 1) * sizeof *refs);
    size_t *later = malloc((b->n + 1) * sizeof *later); /* devices: the item that supersedes item i */
    size_t m = 0;
    int rc = -1;
    if (!refs || !later)
        goto done;
    for (size_t i = 0; i < b->n; i++) {
        later[i] = SIZE_MAX;
        if (b->records[i])
            refs[m++] = (id_ref){b->ids[i], i};
    }
    qsort(refs, m, sizeof *refs, cmp_ref);
    for (size_t first = 0, end; first < m; first = end) {
        for (end = first + 1; end < m && !strcmp(refs[end].id, refs[first].id); end++)
            ;
        for (size_t k = first; k + 1 < end; k++) {
            char detail[128];
            if (b->devices) { /* the last one wins: warned in request order below */
                later[refs[k].index] = refs[end - 1].index;
                continue;
            }
            size_t i = refs[k + 1].index;
            snprintf(detail, sizeof detail, "this id is already named by item %zu of this request",
                     refs[first].index);
            h_bulk_problem(b, i, "duplicate_id", "Duplicate id", "/id", detail);
            drop_item(b, i);
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        if (later[i] == SIZE_MAX)
            continue;
        char detail[160];
        snprintf(detail, sizeof detail,
                 "item %zu of this request names the same device: the last item naming an id is the "
                 "one applied, this one is not", later[i]);
        problem p = {.kind = PROBLEM_WARNING, .code = "superseded", .title = "Superseded",
                     .detail = detail, .pointer = "/id", .item = (long)i, .trace_id = b->trace_id};
        problem_write(&b->warnings, &p);
        drop_item(b, i);
    }
    rc = 0;
done:
    free(refs);
    free(later);
    return rc;
}

void h_bulk_drop_records(bulk *b)
{
    json_text_release(&b->warnings); /* they were about items applied or not: none is */
    for (size_t i = 0; i < b->n; i++) {
        free(b->records[i]);
        b->records[i] = NULL;
    }
}

char *h_bulk_join(const bulk *b, size_t from, size_t to, bool *oom)
{
    json_text all = {0};
    size_t len;
    for (size_t i = from; i < to; i++)
        if (b->records[i]) {
            json_text_put(&all, all.len ? "," : "[", 1);
            json_text_put(&all, b->records[i], strlen(b->records[i]));
        }
    if (all.len)
        JSON_TEXT_LIT(&all, "]");
    *oom = all.failed;
    return json_text_take(&all, &len);
}

int h_bulk_alloc(bulk *b, size_t cap)
{
    bool spans = !b->v1 && b->op == BULK_CREATE;
    b->records = calloc(cap, sizeof *b->records);
    b->ids = calloc(cap, sizeof *b->ids);
    b->warns = calloc(cap, sizeof *b->warns);
    b->spans = spans ? calloc(cap, sizeof *b->spans) : NULL;
    if (!b->records || !b->ids || !b->warns || (spans && !b->spans))
        return -1;
    return 0;
}

void h_bulk_free(bulk *b)
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
    json_text_release(&b->errors);
    json_text_release(&b->warnings);
}
