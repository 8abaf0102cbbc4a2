/* Plain validated inputs, the hand-off from validate/ to store/: no json_t inside. */
#ifndef SEGMENTD_CORE_MODEL_H
#define SEGMENTD_CORE_MODEL_H

#include <stdbool.h>

/* An /audiences/segments body after validation. `set` holds AUD_SET_* bits (store/
 * statements.h) of the fields present; strings are borrowed from the parsed body
 * except the two JSON texts, which the validator allocates. */
typedef struct aud_segment_in {
    unsigned set;
    char id[37];                   /* lower-case uuid, "" when absent */
    const char *management_type;
    const char *name;
    char owner_id[37];
    bool size_is_null;
    char size[24];                 /* decimal text of approximated_size */
    const char *description;       /* NULL = null */
    char *properties;              /* compact JSON, malloc'd; NULL when absent */
    char *deprecated_properties;   /* compact JSON, malloc'd; NULL when absent */
    const char *created_at;        /* as sent (RFC 3339), NULL when absent or null */
} aud_segment_in;

#endif
