/* Segment rows of both dialects. Reads return PostgreSQL-built JSON text in column 0
 * and the version (or the paging key) in column 1. */
#ifndef SEGMENTD_STORE_SEGMENTS_H
#define SEGMENTD_STORE_SEGMENTS_H

#include "core/model.h"
#include "store/store.h"

/* Filters of GET /audiences/segments; NULL = not filtered. */
typedef struct aud_list_query {
    const char *before_no;       /* keyset cursor: rows with no < this */
    const char *owner_id;
    const char *management_type;
    const char *name;
    const char *property;        /* jsonb text {"code": ["value"]} */
    const char *property_num;    /* jsonb text {"code": [1.5]} when the value is a number */
    const char *updated_since;
    int limit;
} aud_list_query;

int store_aud_insert(store_conn *c, const char *tenant, const char *id, const aud_segment_in *in,
                     store_rows **out, seg_error *err) MUSTCHECK;
int store_aud_get(store_conn *c, const char *tenant, const char *id, store_rows **out,
                  seg_error *err) MUSTCHECK;
/* Rows: none = no such segment; (old_version, NULL, NULL) = If-Match stale;
 * (old_version, body, new_version) = updated. versions: bigint[] text of acceptable
 * versions (If-Match), NULL for no check. */
int store_aud_update(store_conn *c, const char *tenant, const char *id, const aud_segment_in *in,
                     const char *versions, store_rows **out, seg_error *err) MUSTCHECK;
/* Rows: none = no such segment; (version, NULL) = If-Match stale; (version, version) = gone. */
int store_aud_delete(store_conn *c, const char *tenant, const char *id, const char *versions,
                     store_rows **out, seg_error *err) MUSTCHECK;
int store_aud_list(store_conn *c, const char *tenant, const aud_list_query *q, store_rows **out,
                   seg_error *err) MUSTCHECK;

/* /v1/segments: the same shapes. set holds V1_SET_* bits; NULL description = null. */
typedef struct v1_segment_row {
    unsigned set;
    const char *name;
    const char *description;
    const char *constraints;     /* canonical JSON text */
} v1_segment_row;

int store_v1_insert(store_conn *c, const char *tenant, const char *id, const v1_segment_row *in,
                    store_rows **out, seg_error *err) MUSTCHECK;
int store_v1_get(store_conn *c, const char *tenant, const char *id, store_rows **out,
                 seg_error *err) MUSTCHECK;
int store_v1_update(store_conn *c, const char *tenant, const char *id, const v1_segment_row *in,
                    const char *versions, store_rows **out, seg_error *err) MUSTCHECK;
int store_v1_delete(store_conn *c, const char *tenant, const char *id, const char *versions,
                    store_rows **out, seg_error *err) MUSTCHECK;
int store_v1_list(store_conn *c, const char *tenant, const char *before_seq, const char *name,
                  int limit, store_rows **out, seg_error *err) MUSTCHECK;

/* Runs one bulk statement (STMT_*_BULK_*) with $2 = records, a JSON array. */
int store_bulk(store_conn *c, stmt_id id, const char *tenant, const char *records,
               store_rows **out, seg_error *err) MUSTCHECK;

#endif
