/* Evaluating a rule against one device in process (the device → segments lookup and the
 * membership check), as the SQL predicate of store/eval_sql.c does in PostgreSQL. */
#ifndef SEGMENTD_EVAL_MATCH_H
#define SEGMENTD_EVAL_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "eval/rule.h"
#include "validate/formats.h"

#define EV_DEVICE_COLUMNS (VAL_FIELD_COUNT + 1)

/* A device as the matcher reads it. text[i] is field i's value as PostgreSQL prints it
 * (NULL: the device lacks it); num[i] the value of an integer field; tags and attributes
 * parsed from their JSON. */
typedef struct ev_device {
    const char *text[VAL_FIELD_COUNT];
    size_t len[VAL_FIELD_COUNT];
    int64_t num[VAL_FIELD_COUNT];
    struct json_t *tags;        /* array of strings (owned) */
    struct json_t *attributes;  /* object of lists (owned) */
    /* the attributes' codes and lists, to find a rule's code without hashing it: a device has
     * a few codes, a tenant's rules ask for them hundreds of times a lookup */
    size_t n_attrs;
    struct ev_attr {
        const char *code;
        size_t len;
        struct json_t *values;
    } *attrs;                   /* malloc'd */
} ev_device;

/* Reads a device from columns in the order store/eval_sql.h's EVAL_DEVICE_COLUMNS lists
 * them: the fields in the table's order (tags as a JSON array), then the attributes as a
 * JSON object. The texts stay borrowed. 0, or -1 with err (500). */
int ev_device_read(ev_device *d, const char *const col[EV_DEVICE_COLUMNS], seg_error *err) MUSTCHECK;
void ev_device_free(ev_device *d);

/* Whether the rule holds for the device (EV_RULE_NONE: never). */
bool ev_match(const ev_rule *r, const ev_device *d);
/* The same, answering the equalities its set's index numbered (eval/lookup_index.h) from
 * bits, the values ev_index_device marked for d (NULL: ev_match). */
bool ev_match_with(const ev_rule *r, const ev_device *d, const uint64_t *bits);

/* A segment's status at now_us from its lifecycle (as segment_status in
 * migrations/0002_lifecycle.sql): "paused", "scheduled", "expired" or "active".
 * has_start/has_end false: no such date. */
const char *ev_status(bool active, bool has_start, int64_t start_us, bool has_end,
                      int64_t end_us, bool extend, int64_t now_us);

/* Whether ev_status would say "active" (without the text). */
bool ev_active(bool active, bool has_start, int64_t start_us, bool has_end, int64_t end_us,
               bool extend, int64_t now_us);

/* The wall clock in microseconds since the Unix epoch (what statuses are read at). */
int64_t ev_now_us(void);

#endif
