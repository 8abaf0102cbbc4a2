/* Private to store/: the request handle's execute path (store.c), for the store's other modules. */
#ifndef SEGMENTD_STORE_PRIVATE_H
#define SEGMENTD_STORE_PRIVATE_H

#include "store/slots.h"

/* Runs a statement of the table with text parameters (NULL = SQL NULL) through c: a
 * handle's statement joins its loop's batches, a slot's runs alone. On success *out holds
 * the result (NULL out: dropped). 0, or -1 with err set. */
int store_exec(store_conn *c, stmt_id id, const char *const *params, store_rows **out,
               seg_error *err) MUSTCHECK;
/* Gives a handle's slot back (or a slot). */
void store_release(store_conn *c);
/* The slot a statement on c runs on alone: c itself, or the handle's own slot, borrowed
 * on first need. NULL with err set. */
store_conn *store_slot_for(store_conn *c, seg_error *err);
/* Runs a statement through c; on success returns its result, which lives in c's arena
 * (store_open), or NULL with err set. */
PGresult *store_run(store_conn *c, stmt_id id, const char *const *params, seg_error *err);

#endif
