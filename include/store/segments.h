/* Segments of both dialects, as the handlers see them: typed results and finished JSON
 * text (PostgreSQL writes the representations); the statements' columns stay in here. */
#ifndef SEGMENTD_STORE_SEGMENTS_H
#define SEGMENTD_STORE_SEGMENTS_H

#include "core/model.h"
#include "store/store.h"


/* A segment's representation as PostgreSQL wrote it (JSON text, not NUL-terminated) and
 * its version (the ETag). The text lives as long as the request's arena (store_open). */
typedef struct store_doc {
    const char *json;
    size_t len;
    long long version;
    const char *broken_rule;   /* STORE_INVALID: "end_date" or "extend" (segment_dates_problem) */
} store_doc;

/* What became of a read or a write: it happened, there is no such segment (of this
 * tenant), If-Match named none of the current version, or an update's dates would break a
 * lifecycle rule with the values it keeps (out->broken_rule says which; nothing changed).
 * The functions below return one of these, or -1 with err set (database errors). */
typedef enum { STORE_DONE = 0, STORE_MISSING = 1, STORE_STALE = 2, STORE_INVALID = 3 } store_outcome;

#define STORE_PAGE_KEY_MAX 288   /* a device page's key: 20 digits, ':', an id of 255 */

/* A page of a list, newest first: up to limit items, written by the store as JSON text
 * (each exactly as GET by id answers it) and joined with commas, and the paging key of the
 * last one when more follow (more: next_key holds it as decimal text). */
typedef struct store_page {
    int n;
    char *items;             /* items_len bytes in the request's arena, with STORE_PAGE_HEAD
                              * writable bytes before them and STORE_PAGE_TAIL after: the
                              * answer is written around them in place, not copied */
    size_t items_len;
    bool more;
    char next_key[STORE_PAGE_KEY_MAX]; /* decimal text; for devices "µs:id" */
    int replica_lag_ms;      /* read on the read replica, this far behind; -1: the primary */
} store_page;

#define STORE_PAGE_HEAD 16
#define STORE_PAGE_TAIL 448

/* What an update is, as its revision names it (migrations/0006_history.sql): a PATCH of the
 * fields it sends (`update`), a JSON merge patch (`merge_patch`), POST …/end-date (`end_date`).
 * Every write below writes its segment's revision in its own statement, naming the author
 * of c (store_set_author). */
typedef enum { STORE_UPDATE, STORE_MERGE_PATCH, STORE_END_DATE } store_update_kind;

int store_aud_insert(store_conn *c, const char *tenant, const char *id, const aud_segment_in *in,
                     store_doc *out, seg_error *err) MUSTCHECK;
int store_aud_get(store_conn *c, const char *tenant, const char *id, store_doc *out,
                  seg_error *err) MUSTCHECK;
/* versions: bigint[] text of acceptable versions (If-Match), NULL for no check. On
 * STORE_STALE out->version is the current version. */
int store_aud_update(store_conn *c, const char *tenant, const char *id, const aud_segment_in *in,
                     const char *versions, store_update_kind kind, store_doc *out,
                     seg_error *err) MUSTCHECK;
int store_aud_delete(store_conn *c, const char *tenant, const char *id, const char *versions,
                     seg_error *err) MUSTCHECK;
int store_aud_list(store_conn *c, const char *tenant, const aud_list_query *q, store_page *out,
                   seg_error *err) MUSTCHECK;

/* /v1/segments: the same shapes. set holds V1_SET_* bits; NULL description = null. */
typedef struct v1_segment_row {
    unsigned set;                /* V1_SET_* and LC_SET_* bits */
    const char *name;
    const char *description;
    const char *constraints;     /* canonical JSON text */
    const lifecycle_in *lc;      /* the lifecycle fields (LC_SET_* bits in set) */
} v1_segment_row;

int store_v1_insert(store_conn *c, const char *tenant, const char *id, const v1_segment_row *in,
                    store_doc *out, seg_error *err) MUSTCHECK;
int store_v1_get(store_conn *c, const char *tenant, const char *id, store_doc *out,
                 seg_error *err) MUSTCHECK;
int store_v1_update(store_conn *c, const char *tenant, const char *id, const v1_segment_row *in,
                    const char *versions, store_update_kind kind, store_doc *out,
                    seg_error *err) MUSTCHECK;
int store_v1_delete(store_conn *c, const char *tenant, const char *id, const char *versions,
                    seg_error *err) MUSTCHECK;
int store_v1_list(store_conn *c, const char *tenant, const v1_list_query *q, store_page *out,
                  seg_error *err) MUSTCHECK;

/* The highest migration version applied to the database. */
int store_migration_applied(store_conn *c, long long *out, seg_error *err) MUSTCHECK;

/* A row a bulk statement returned for an item. */
typedef struct store_bulk_row {
    const char *id;             /* the item's id */
    const char *json;           /* the stored representation (json_len bytes); NULL for an
                                 * /audiences/segments create, whose answer the handler writes */
    size_t json_len;
    /* /audiences/segments creates: what PostgreSQL made (JSON text) */
    const char *no, *properties, *deprecated_properties;
    size_t no_len, properties_len, deprecated_properties_len;
    const char *created_us, *updated_us; /* the timestamps in microseconds since the epoch */
    const char *start_us, *end_us;       /* NULL: no date */
    const char *active, *extend;         /* "t" or "f" */
    const char *extend_days, *status;
    /* updates: the lifecycle rule the item's dates would break ("end_date", "extend"), with
     * json NULL: the row was left as it was */
    const char *broken_rule;
} store_bulk_row;

/* The rows of a bulk statement (or of all the parts of one), in the request's arena; their
 * text lives in the statements' results until store_bulk_done or the request's end. */
typedef struct store_bulk_rows {
    store_bulk_row *rows;
    size_t n;
    void **results;          /* the results the rows point into */
    int nresults;
} store_bulk_rows;

/* Gives back the results of rows (up to a megabyte for 1000 items) once the caller has
 * written what it needs of them; rows is empty afterwards. */
void store_bulk_done(store_conn *c, store_bulk_rows *rows);

/* Runs one bulk statement (STMT_*_BULK_*) with $2 = records, a JSON array, through a
 * handle of store_open ($3, $4: its author, as store_set_author set it). */
int store_bulk(store_conn *c, stmt_id id, const char *tenant, const char *records,
               store_bulk_rows *out, seg_error *err) MUSTCHECK;
/* Ends a transaction in parts of statement id (store_parts_end) and reads the rows of its
 * nparts parts; with commit false it rolls back and out is empty. As store_parts_end. */
int store_bulk_parts_end(store_conn *c, stmt_id id, bool commit, int nparts, store_bulk_rows *out,
                         seg_error *err);

#endif
