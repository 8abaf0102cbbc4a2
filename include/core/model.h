/* Plain validated inputs, the hand-off from validate/ to store/: no json_t inside. */
#ifndef SEGMENTD_CORE_MODEL_H
#define SEGMENTD_CORE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bits of the fields a body sets (a partial update changes only those): the mask the
 * *_UPDATE statements take as $3. */
enum {
    AUD_SET_MANAGEMENT_TYPE = 1, AUD_SET_NAME = 2, AUD_SET_OWNER_ID = 4, AUD_SET_SIZE = 8,
    AUD_SET_DESCRIPTION = 16, AUD_SET_PROPERTIES = 32, AUD_SET_DEPRECATED = 64,
};
enum { V1_SET_NAME = 1, V1_SET_DESCRIPTION = 2, V1_SET_CONSTRAINTS = 4 };
/* The lifecycle fields, the same bits in both dialects' masks (the statements share
 * their SQL). */
enum {
    LC_SET_START = 1 << 8, LC_SET_END = 1 << 9, LC_SET_ACTIVE = 1 << 10, LC_SET_EXTEND = 1 << 11,
    LC_SET_EXTEND_DAYS = 1 << 12, LC_SET_ALL = 0x1f00
};
enum { AUD_SET_ALL = 127 | LC_SET_ALL };

#define LC_EXTEND_DAYS_DEFAULT 30
#define LC_EXTEND_DAYS_MAX 3650
/* The dates of either dialect lie in years 0001 to 9999 UTC, as every RFC 3339 date. */
#define LC_MIN_US (-62135596800LL * 1000000)
#define LC_MAX_US (253402300799LL * 1000000 + 999999)

/* A segment's lifecycle as a body gives it (both dialects). Fields whose LC_SET_* bit is
 * not in set hold their defaults: a create stores them, an update leaves the stored
 * value. */
typedef struct lifecycle_in {
    unsigned set;             /* LC_SET_* bits of the fields present */
    bool has_start, has_end;  /* false: null (no start: live from creation; no end) */
    int64_t start_us, end_us; /* microseconds since the Unix epoch */
    bool active;              /* default true */
    bool extend;              /* default false */
    int extend_days;          /* 1 to LC_EXTEND_DAYS_MAX, default LC_EXTEND_DAYS_DEFAULT */
} lifecycle_in;

/* A segment's status filter: bits of the statuses a list keeps. */
enum { LC_ACTIVE = 1, LC_SCHEDULED = 2, LC_EXPIRED = 4, LC_PAUSED = 8 };

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
    lifecycle_in lc;               /* its LC_SET_* bits are in set too */
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
    const char *statuses;        /* text[] of the statuses kept, like {active,scheduled} */
    const char *active_at_us;    /* live at this instant: microseconds since the epoch */
    int limit;                   /* items of the page (one more row is read to tell "more") */
} aud_list_query;

/* The filters of GET /v1/segments, validated. */
typedef struct v1_list_query {
    const char *before_seq;      /* keyset cursor, decimal text; NULL: the first page */
    const char *name;
    const char *statuses;        /* as aud_list_query */
    const char *active_at_us;
    int limit;
} v1_list_query;

/* The filters of GET /v1/devices, validated: pages in (updated_at, id) order. */
typedef struct device_list_query {
    const char *after_us;        /* keyset cursor: rows after (this updated_at in µs, after_id) */
    const char *after_id;
    const char *updated_since_us; /* updated_at >= this (µs since the epoch); NULL: any */
    int limit;
} device_list_query;

/* A device as the store writes it: its columns' texts in the table's order
 * (migrations/0003_devices.sql), NULL for SQL NULL. */
#define DEVICE_SCALARS 18
typedef struct device_row {
    const char *scalar[DEVICE_SCALARS]; /* country … device_manufacturer */
    const char *tags_json;              /* JSON array of strings */
    const char *const *tags;            /* the same tags one by one (n_tags of them) */
    size_t n_tags;
    const char *attributes_json;        /* JSON object */
} device_row;

#endif
