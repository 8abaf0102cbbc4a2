/* A bulk body {"data":[item, …]}: walked item by item as its text is read, or its
 * parsed whole checked for the shape every bulk route asks. */
#ifndef SEGMENTD_VALIDATE_BULK_BODY_H
#define SEGMENTD_VALIDATE_BULK_BODY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

#define VAL_BULK_MAX_ITEMS 1000    /* items a segment bulk request holds at most */
#define VAL_BULK_MAX_DEVICES 10000 /* items a device bulk request holds at most (issue #21) */

/* The walk accepts only what it is sure of: anything else (other keys, "data" spelt
 * with escapes, no item, an item jansson refuses or nested about as deep as jansson's
 * limit, a separator it does not expect) makes it give up, and the caller then parses
 * the body whole (val_parse_body, val_bulk_data), whose problems are the ones to give.
 * When it reaches the end, the body parsed whole is {"data": [the items it gave]}. */
typedef struct val_bulk_walk {
    const char *p, *end;
} val_bulk_walk;

/* Starts a walk over body (len bytes, not NUL-terminated) through {"data":[ up to its
 * first item. false: give up (not that start, or an empty array). */
bool val_bulk_open(val_bulk_walk *w, const char *body, size_t len);

/* The next item, a new reference; NULL: give up. */
json_t *val_bulk_item(val_bulk_walk *w);

/* After an item: 1 when another follows, 0 when it was the last and the body ends
 * there (white space aside), -1: give up. */
int val_bulk_next(val_bulk_walk *w);

/* The items of a body parsed whole (root from val_parse_body): its "data" array,
 * borrowed from root; or NULL with err's problems (other keys, "data" not an array,
 * none or more than max items: VAL_BULK_MAX_ITEMS or VAL_BULK_MAX_DEVICES). */
json_t *val_bulk_data(json_t *root, int max, seg_error *err);

#endif
