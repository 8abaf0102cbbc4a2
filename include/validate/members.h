/* The body of PATCH …/segments/{id}/members (both dialects): an operation and the device
 * ids it applies to. */
#ifndef SEGMENTD_VALIDATE_MEMBERS_H
#define SEGMENTD_VALIDATE_MEMBERS_H

#include <jansson.h>
#include <stdbool.h>

#include "core/error.h"

#define MEMBERS_IDS_MAX 10000

typedef struct members_in {
    bool add;          /* "add", or "remove" */
    size_t n;          /* ids in the body, repeats included */
    char *ids;         /* text[] literal of the ids in the body's order (malloc'd) */
} members_in;

/* Validates root: {"operation": "add" | "remove", "ids": [1 to MEMBERS_IDS_MAX device ids]},
 * no other key; every problem at its pointer (422). 0 with out filled, or -1 with err
 * (500 when memory ran out). */
int val_members(json_t *root, members_in *out, seg_error *err) MUSTCHECK;
void val_members_release(members_in *in);

#endif
