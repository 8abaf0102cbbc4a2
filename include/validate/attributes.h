/* Attribute lists (attribute code → list of values): the rules /audiences/segments
 * properties and device attributes share. Their limits are the AUD_MAX_* of
 * validate/audience.h, where they were first written. */
#ifndef SEGMENTD_VALIDATE_ATTRIBUTES_H
#define SEGMENTD_VALIDATE_ATTRIBUTES_H

#include <jansson.h>
#include <stdbool.h>

#include "validate/audience.h"
#include "validate/validate.h"

/* Checks v, found at p's pointer: an object no deeper than AUD_MAX_DEPTH whose keys are
 * codes of 1 to AUD_MAX_CODE_CHARS characters of [A-Za-z0-9_.:-], each naming a list of 1 to
 * AUD_MAX_PROPERTY_VALUES distinct values, strings of at most AUD_MAX_VALUE_CHARS characters
 * or numbers. Every problem is recorded at its own pointer; returns true when there was none. */
bool val_attribute_lists(val_path *p, json_t *v) MUSTCHECK;

#endif
