/* A segment's rule, typed: the /v1 constraint groups or the /audiences properties read from
 * the JSON a segment keeps (or a preview sends, once validated). The SQL compiler
 * (store/eval_sql.c) and the in-process matcher (eval/match.c) both start from it, so the
 * two ways of evaluating a rule read it the same way. */
#ifndef SEGMENTD_EVAL_RULE_H
#define SEGMENTD_EVAL_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct json_t;

typedef enum ev_op {
    EV_EXISTS,
    EV_EQ,          /* on tags: has the tag (contains on tags reads as this) */
    EV_NE,          /* the exact negation of EV_EQ: a device lacking the field satisfies it */
    EV_STARTS_WITH,
    EV_ENDS_WITH,
    EV_CONTAINS,
    EV_GT,
    EV_GE,
    EV_LT,
    EV_LE,
} ev_op;

/* One constraint. text is the value as PostgreSQL takes it (the string itself, or an
 * integer in decimal), NUL-terminated, len bytes. */
/* How a constraint's field compares (read once from the field table). */
typedef enum ev_kind_of_field { EV_FIELD_TEXT, EV_FIELD_NUMBER, EV_FIELD_TAGS } ev_kind_of_field;

typedef struct ev_con {
    unsigned field;      /* index in the device field table (val_field_at) */
    ev_kind_of_field kind;
    ev_op op;
    bool flag;           /* EV_EXISTS: true when the device must have the field */
    int64_t num;         /* integer fields' value */
    const char *text;    /* borrowed from the rule's JSON, or digits */
    size_t len;
    char digits[24];
    uint32_t vid;        /* == / != on text or tags: the value's number in a set's
                          * eval/lookup_index.h, or 0 */
} ev_con;

typedef struct ev_group {
    bool is_or;
    size_t n;
    ev_con *cons;
} ev_group;

/* One attribute code of /audiences properties and its values. contain[i] is the JSON text
 * {"code": [value i]} that jsonb containment (@>) takes; values[i] the value itself. */
typedef struct ev_prop {
    const char *code;
    size_t code_len;
    size_t n;
    struct json_t **values;   /* borrowed from the rule's JSON */
    char **contain;           /* malloc'd */
    char *values_json;        /* the values as one JSON array (malloc'd) */
    uint32_t *vids;           /* the values' numbers in a set's eval/lookup_index.h (malloc'd), or NULL */
} ev_prop;

typedef enum ev_kind {
    EV_RULE_NONE, /* an /audiences segment without properties: only added devices are members */
    EV_RULE_V1,
    EV_RULE_AUD,
} ev_kind;

typedef struct ev_rule {
    ev_kind kind;
    size_t n;               /* groups (V1) or properties (AUD) */
    ev_group *groups;
    ev_prop *props;
    struct json_t *root;    /* the parsed JSON the rule borrows from (owned) */
} ev_rule;

/* The canonical constraint groups of a /v1 segment (validate/v1_segment.h), len bytes of
 * JSON. 0, or -1 with err (500: stored JSON that is not a rule, or out of memory) and out
 * holding nothing. */
int ev_rule_v1(const char *json, size_t len, ev_rule *out, seg_error *err) MUSTCHECK;
/* The properties object of an /audiences segment ({} gives EV_RULE_NONE). As ev_rule_v1. */
int ev_rule_aud(const char *json, size_t len, ev_rule *out, seg_error *err) MUSTCHECK;
/* Frees what the rule holds; safe on a zeroed rule. */
void ev_rule_free(ev_rule *r);

#endif
