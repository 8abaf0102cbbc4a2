/* Private to handlers/bulk*.c: one bulk request's items, their records and problems,
 * and the answer's envelope; none of it touches the store (only its row type) or the
 * HTTP request. The segments' routes of both dialects and /v1/devices share it. */
#ifndef SEGMENTD_HANDLERS_BULK_PRIVATE_H
#define SEGMENTD_HANDLERS_BULK_PRIVATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/json_text.h"
#include "store/segments.h"
#include "validate/bulk_body.h"

/* BULK_UPSERT: /v1/devices/bulk, each item created or replaced whole. */
typedef enum { BULK_CREATE, BULK_UPDATE, BULK_DELETE, BULK_UPSERT } bulk_op;

/* The longest id an item names, in bytes: a device id (DEVICE_ID_MAX, ASCII); segment ids
 * are 36 at most. */
#define BULK_ID_MAX 255

/* Where a value lies in an item's record: an /audiences/segments create's answer reuses
 * the JSON text of the values it stored. */
typedef struct bulk_span {
    uint32_t off, len;
} bulk_span;
enum { SP_MANAGEMENT_TYPE, SP_NAME, SP_OWNER_ID, SP_SIZE, SP_DESCRIPTION, SP__COUNT };

typedef struct bulk {
    bulk_op op;
    bool v1;
    bool devices;             /* /v1/devices (op BULK_UPSERT or BULK_DELETE); v1 is false */
    const char *trace_id;     /* the request's id: each problem's traceId */
    size_t n;                 /* items validated so far */
    char **records;           /* per item: the record for the statement as JSON text, NULL when refused */
    char (*ids)[BULK_ID_MAX + 1]; /* per item: the id it names or was given */
    json_t **warns;           /* per item: warnings (v1), or NULL */
    bulk_span (*spans)[SP__COUNT]; /* per item (/audiences/segments creates): values in its record */
    json_text errors;         /* the envelope's "errors" so far: problems, comma-separated */
    size_t n_errors;
    json_text warnings;       /* warnings on items not applied (superseded), comma-separated */
    seg_error item_err;
} bulk;

/* A row a statement returned for an item, as the store reads it (store/segments.h). */
typedef store_bulk_row bulk_row;

/* ---- bulk_items.c ------------------------------------------------------------------ */

/* Room for cap items of b (op, v1 and trace_id set). 0, or -1 when memory ran out. */
int h_bulk_alloc(bulk *b, size_t cap);
void h_bulk_free(bulk *b);

/* Validates item i (b->n must be i): its record is kept, or its problems are added. */
void h_bulk_item(bulk *b, json_t *item, size_t i);

/* The next item of a create's walk validated as item b->n (then counted): 1 when
 * another follows, 0 when the body ended well after it, -1 when the walk gives up
 * (then start over on the whole body). */
int h_bulk_step(bulk *b, val_bulk_walk *w);

/* Items naming an id another item names (updates and deletes; every device route). For
 * segments each later one is refused (duplicate_id); for devices the last one wins and
 * every earlier one is dropped with a superseded warning naming the later item. 0, or -1
 * when memory ran out (then nothing was dropped: the request must not be run). */
int h_bulk_duplicates(bulk *b) MUSTCHECK;

/* Adds a problem of item i to the envelope's errors; pointer is inside the item. */
void h_bulk_problem(bulk *b, size_t i, const char *code, const char *title, const char *pointer,
                    const char *detail);

/* Drops every record: nothing is stored, the envelope keeps only the errors. */
void h_bulk_drop_records(bulk *b);

/* The kept records of items [from, to) as one JSON array, the statement's parameter;
 * NULL when none is kept (*oom false) or memory ran out (*oom true). malloc'd. */
char *h_bulk_join(const bulk *b, size_t from, size_t to, bool *oom);

/* ---- bulk_envelope.c --------------------------------------------------------------- */

/* {"data":[…],"errors":[…],"warnings":[…]} (seed 002): rows (sorted here by id) in
 * request order; the items with a record but no row become not_found errors. malloc'd,
 * *len bytes; NULL when memory ran out or a timestamp is not one PostgreSQL holds. */
char *h_bulk_envelope(bulk *b, bulk_row *rows, size_t nrows, size_t *len);

#endif
