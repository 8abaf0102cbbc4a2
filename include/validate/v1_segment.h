/* The /v1/segments body (create and PATCH): validation, canonical constraint JSON and
 * the warnings about constraints that are stored but do nothing useful. */
#ifndef SEGMENTD_VALIDATE_V1_SEGMENT_H
#define SEGMENTD_VALIDATE_V1_SEGMENT_H

#include <jansson.h>
#include <stdbool.h>

#include "core/error.h"
#include "core/model.h"

/* Limits. 10 constraints per group is the documented "max size: 10"; the documentation
 * gives no limit on groups, so the same 10 keeps a segment at most 100 constraints. */
#define V1_MAX_GROUPS 10
#define V1_MAX_CONSTRAINTS 10
#define V1_NAME_MAX 255           /* Unicode characters */
#define V1_DESCRIPTION_MAX 4096   /* Unicode characters */
#define V1_VALUE_MAX 1024         /* Unicode characters in a string constraint value */
#define V1_ID_PREFIX "seg_"
#define V1_ID_SUFFIX_LEN 13       /* base62 characters after the prefix: seg_jfeZ4NrGegjV9 */

typedef struct v1_segment_in {
    const char *id;            /* PATCH: required "seg_" + 13 base62 chars, borrowed from root; create: NULL */
    const char *name;          /* borrowed from root, NULL when absent */
    const char *description;   /* borrowed, NULL when absent or null */
    bool has_description;      /* key present with a string value (create: null means "no description") */
    char *constraints_json;    /* canonical compact JSON of the constraint groups (malloc'd), NULL when absent */
    json_t *warnings;          /* new reference, JSON array (possibly empty) of warning objects */
    lifecycle_in lc;           /* startDate, endDate, active, extend, extendDays */
} v1_segment_in;

/* Validates a parsed body. is_patch selects the PATCH /v1/segments rules. Returns 0 and
 * fills out, or -1 with every problem in err (status 422, code validation_failed) and out
 * zeroed; -1 with status 500 "internal_error" only when memory runs out. The borrowed
 * strings in out live as long as root. err should be clear on entry.
 * Canonical constraints: [{"type":"AND","constraints":[{"field":"x","relation":"==","value":1}]}]
 * with upper-case types and canonical relations (exists == != starts_with ends_with
 * contains > >= < <=). Warnings: {"code","title","detail","source":{"pointer"}} with code
 * "duplicate_constraint" or "unsatisfiable_group". */
int val_v1_segment(json_t *root, bool is_patch, v1_segment_in *out, seg_error *err) MUSTCHECK;

/* Frees constraints_json, decrefs warnings and zeroes the struct; safe on a zeroed struct
 * and on one that val_v1_segment failed to fill. */
void val_v1_segment_release(v1_segment_in *in);

/* true for "seg_" followed by exactly 13 characters [0-9A-Za-z]. NULL is false. */
bool val_v1_id(const char *s);

#endif
