/* What the /v1/segments validator's files share: the relations and the groups of a body that passed. */
/* v1_segment.c fills the groups; v1_canonical.c and v1_warnings.c read them. */
#ifndef SEGMENTD_VALIDATE_V1_PRIVATE_H
#define SEGMENTD_VALIDATE_V1_PRIVATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "validate/formats.h"
#include "validate/v1_segment.h"

typedef enum v1_relation {
    V1_REL_EXISTS,
    V1_REL_EQ,
    V1_REL_NE,
    V1_REL_STARTS_WITH,
    V1_REL_ENDS_WITH,
    V1_REL_CONTAINS,
    V1_REL_GT,
    V1_REL_GE,
    V1_REL_LT,
    V1_REL_LE,
    V1_REL_COUNT
} v1_relation;

/* One valid constraint. */
typedef struct v1_con {
    const val_field *field;
    v1_relation rel;
    json_t *value; /* borrowed from the body */
} v1_con;

typedef struct v1_group {
    bool is_or;
    size_t n;
    v1_con cons[V1_MAX_CONSTRAINTS];
} v1_group;

/* The constraint groups of a body, in its order. */
typedef struct v1_groups {
    size_t n;
    v1_group groups[V1_MAX_GROUPS];
} v1_groups;

/* v1_canonical.c: the stored symbol of a relation ("==", "starts_with" ...), and the
 * canonical compact JSON text of the groups (malloc'd; NULL when memory runs out). */
const char *val_v1_relation_name(v1_relation rel);
char *val_v1_canonical_json(const v1_groups *g);

/* v1_warnings.c: appends to warnings a duplicate_constraint warning for each repeated
 * constraint and an unsatisfiable_group warning for each field an AND group contradicts
 * itself on. Returns 0, or -1 when memory runs out. */
int val_v1_warnings(const v1_groups *g, json_t *warnings);

#endif
