/* Private to store/: the request handle's execute path (store.c), for the store's other modules. */
#ifndef SEGMENTD_STORE_PRIVATE_H
#define SEGMENTD_STORE_PRIVATE_H

#include "store/idempotency.h"
#include "store/segments.h"
#include "store/slots.h"

/* Runs a statement of the table with text parameters (NULL = SQL NULL) through c: a
 * handle's statement joins its loop's batches, a slot's runs alone. On success *out holds
 * the result (NULL out: dropped). 0, or -1 with err set. */
int store_exec(store_conn *c, stmt_id id, const char *const *params, store_rows **out,
               seg_error *err) MUSTCHECK;
/* Tells store_on_segments_changed's function when statement id writes segments (of params[0]). */
void store_segments_written(stmt_id id, const char *const *params);
/* Gives a handle's slot back (or a slot). */
void store_release(store_conn *c);
/* The slot a statement on c runs on alone: c itself, or the handle's own slot, borrowed
 * on first need. NULL with err set. */
store_conn *store_slot_for(store_conn *c, seg_error *err);
/* Runs a statement through c; on success returns its result, which lives in c's arena
 * (store_open), or NULL with err set. */
PGresult *store_run(store_conn *c, stmt_id id, const char *const *params, seg_error *err);
/* store_run of a list: on the read replica when SEGMENTD_READ_REPLICA_LISTS allows and it
 * can be read now (*lag_ms: its lag), else on the primary (*lag_ms = -1). */
PGresult *store_run_list(store_conn *c, stmt_id id, const char *const *params, int *lag_ms,
                         seg_error *err);

/* Typed reads of the results of the segment and device statements (store/segments.h):
 * column col of row r as a document whose version is in column vcol; a single-row read or
 * insert (body, version) as STORE_DONE, or STORE_MISSING when there is no row; a delete's
 * (version, deleted version) row as STORE_DONE, STORE_STALE (If-Match) or STORE_MISSING.
 * -1 with err set when the statement failed. */
void store_doc_of(const PGresult *res, int r, int col, int vcol, store_doc *out);
int store_one_doc(store_conn *c, stmt_id id, const char *const *p, store_doc *out, seg_error *err);
int store_deleted(store_conn *c, stmt_id id, const char *const *p, seg_error *err);

/* Room in c's arena for a page's items of at most items_cap bytes, with STORE_PAGE_HEAD
 * bytes before and STORE_PAGE_TAIL after (the answer is written around them); NULL with
 * err set (500). store_page_done then fills out: the items at items, and the key of the
 * last one shown when more follow (NULL: none follow). */
char *store_page_room(store_conn *c, size_t items_cap, seg_error *err);
void store_page_done(store_page *out, char *items, size_t len, const char *last_key);
/* A page from a list statement's result: its rows' column 0 (representations) joined, at
 * most limit of them (the statement asks one more, to know whether more follow), the key of
 * the last one shown from column 1. STORE_DONE or -1 with err. */
int store_page_of(store_conn *c, const PGresult *res, int limit, store_page *out, seg_error *err);
/* An empty last page. STORE_DONE or -1 with err. */
int store_page_empty(store_conn *c, store_page *out, seg_error *err);

/* store/idempotency.c: the 11 parameters of answer a kept for request q's key (STMT_IDEM_SAVE
 * and its kin); t holds the numbers as text. */
void store_idem_params(const store_idem_request *q, const store_idem_answer *a, char t[2][16],
                       const char *p[11]);

#endif
