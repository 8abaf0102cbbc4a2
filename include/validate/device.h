/* Device bodies (PUT, and a merged PATCH) → device_in: the fields of the device table of
 * validate/formats.c (the one /v1 constraints use), tags, and attributes with the rules of
 * /audiences/segments properties. */
#ifndef SEGMENTD_VALIDATE_DEVICE_H
#define SEGMENTD_VALIDATE_DEVICE_H

#include <jansson.h>
#include <stdbool.h>

#include "core/error.h"
#include "validate/formats.h"

#define DEVICE_ID_MAX 255          /* characters of a device id */
#define DEVICE_STRING_MAX 1024     /* characters of any other string field */
#define DEVICE_TAGS_MAX 100
#define DEVICE_TAG_MAX 255         /* characters of one tag */

/* A device body after validation. scalar[i] is the value of the field val_field_at(i) as
 * the text PostgreSQL is given (a string as it is, an integer in decimal), NULL when the
 * body leaves it out or sends null; scalar[] of the id and tags fields are always NULL
 * (they are id, tags_json). Strings are borrowed from the body (keep it alive); the texts
 * the validator writes live in the struct or are malloc'd (released by val_device_release). */
typedef struct device_in {
    const char *id;                       /* borrowed: the body's id, or NULL when it has none */
    const char *scalar[VAL_FIELD_COUNT];
    char numbers[VAL_FIELD_COUNT][24];    /* the decimal texts scalar[] points to for integers */
    char *tags_json;                      /* JSON array of the tags, compact, malloc'd ("[]" when none) */
    const char *tag[DEVICE_TAGS_MAX];     /* the same tags, borrowed from the body */
    size_t n_tags;
    char *attributes_json;                /* JSON object, compact, malloc'd ("{}" when none) */
} device_in;

/* true when s is a device id: 1 to DEVICE_ID_MAX characters of [A-Za-z0-9-_.:@], and not
 * a reserved one. */
bool val_device_id(const char *s);

/* true when s is one of the ids the routes under /v1/devices/ take for themselves (bulk,
 * bulk-delete, imports): a device of that id would be hidden by the route. */
bool val_device_id_reserved(const char *s);
#define VAL_DEVICE_RESERVED_WHY                                                           \
    "bulk, bulk-delete and imports are routes under /v1/devices/, not device ids"

/* Validates root (a JSON object), reporting every problem at once with its JSON Pointer
 * (422 validation_failed), unknown keys included; "updatedAt" is accepted and ignored.
 * path_id, when not NULL, is the id the route names: a body id must equal it (422 at /id).
 * Returns 0 and fills out, or -1 with err set (status 500 when memory ran out) and out
 * holding nothing to release but what val_device_release frees. */
int val_device(json_t *root, const char *path_id, device_in *out, seg_error *err) MUSTCHECK;

/* One NDJSON line of a device import (without its line ending): at most max bytes, JSON, and
 * a device body with its id. *root gets the parsed line (the caller decrefs it, NULL when it
 * is not JSON); 0 with out filled, or -1 with err's problems (the first is the line's). */
int val_device_line(const char *line, size_t len, size_t max, json_t **root, device_in *out,
                    seg_error *err) MUSTCHECK;

/* Frees what val_device allocated; safe on a zeroed struct. */
void val_device_release(device_in *in);

#endif
