/* Validation of /audiences/segments bodies (create, update, merge). */
#ifndef SEGMENTD_VALIDATE_AUDIENCE_H
#define SEGMENTD_VALIDATE_AUDIENCE_H

#include <jansson.h>

#include "core/error.h"
#include "core/model.h"

typedef enum {
    AUD_CREATE,        /* POST: management_type, name, owner_id required */
    AUD_REPLACE,       /* PATCH /audiences/segments: id too */
    AUD_WHOLE,         /* the result of a merge patch, validated as a whole */
} aud_mode;
/* OR-ed into the mode: leave properties/deprecated_properties as NULL text (the caller
 * uses the JSON values of root, as the bulk handler does) instead of dumping them. */
#define AUD_NO_TEXT 0x100

#define AUD_MAX_PROPERTY_VALUES 1000
#define AUD_MAX_CODE_CHARS 128
#define AUD_MAX_NAME_CHARS 255
#define AUD_MAX_DESCRIPTION_CHARS 4096
#define AUD_MAX_DEPTH 32
#define AUD_MAX_VALUE_CHARS 1024         /* one attribute value in properties (as /v1 values) */
#define AUD_MAX_DEPRECATED_CHARS 4096    /* any key or string in deprecated_properties */

/* Validates root (borrowed; out borrows strings from it, so keep root alive) and
 * reports every problem at once with JSON Pointers. Returns 0 or -1. Release out
 * with val_aud_release in both cases. */
int val_aud_segment(json_t *root, int mode, aud_segment_in *out, seg_error *err) MUSTCHECK;
void val_aud_release(aud_segment_in *in);

/* Applies an RFC 7396 merge patch to target in place (patch borrowed). */
void val_merge_patch(json_t *target, json_t *patch);

#endif
