/* Plain validated inputs, the hand-off from validate/ to store/: no json_t inside. */
#ifndef SEGMENTD_CORE_MODEL_H
#define SEGMENTD_CORE_MODEL_H

#include <stdbool.h>

/* Bits of the fields a body sets (a partial update changes only those): the mask the
 * *_UPDATE statements take as $3. */
enum {
    AUD_SET_MANAGEMENT_TYPE = 1, AUD_SET_NAME = 2, AUD_SET_OWNER_ID = 4, AUD_SET_SIZE = 8,
    AUD_SET_DESCRIPTION = 16, AUD_SET_PROPERTIES = 32, AUD_SET_DEPRECATED = 64,
    AUD_SET_ALL = 127
};
enum { V1_SET_NAME = 1, V1_SET_DESCRIPTION = 2, V1_SET_CONSTRAINTS = 4 };

/* An /audiences/segments body after validation. `set` holds AUD_SET_* bits of the fields
 * present; strings are borrowed from the parsed body
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

/* The filters of GET /audiences/segments, validated; NULL = not filtered. */
typedef struct aud_list_query {
    const char *before_no;       /* keyset cursor: rows with no < this (decimal text) */
    const char *owner_id;        /* lower-case uuid */
    const char *management_type;
    const char *name;
    const char *property;        /* jsonb text {"code": ["value"]} */
    const char *property_num;    /* jsonb text {"code": [1.5]} when the value is a number */
    const char *updated_since;
    int limit;                   /* items of the page (one more row is read to tell "more") */
} aud_list_query;

/* The filters of GET /v1/segments, validated. */
typedef struct v1_list_query {
    const char *before_seq;      /* keyset cursor, decimal text; NULL: the first page */
    const char *name;
    int limit;
} v1_list_query;

#endif
