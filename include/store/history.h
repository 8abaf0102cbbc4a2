/* Segment history (migrations/0006_history.sql): a page of a segment's revisions, and the
 * retention purge. The revisions themselves are written by the statements that change
 * segments (store/segments.h), each in its own transaction. */
#ifndef SEGMENTD_STORE_HISTORY_H
#define SEGMENTD_STORE_HISTORY_H

#include <stdbool.h>

#include "store/segments.h"

/* Segment id's revisions of dialect v1 (id as the path names it, a canonical uuid for
 * /audiences/segments), newest first, before the revision before_seq (decimal text, NULL: from
 * the newest), at most limit of them, written as JSON text (next_key: the seq of the last one
 * shown). STORE_MISSING when the tenant has no such segment and no revision of one, else
 * STORE_DONE (an empty page once past the oldest); -1 with err. */
int store_history_page(store_conn *c, bool v1, const char *tenant, const char *id,
                       const char *before_seq, int limit, store_page *out, seg_error *err) MUSTCHECK;

/* Deletes the revisions older than days on pg, the sweeper's session, batch at a time until
 * none is left or stop() says so. Returns how many, or -1 with err. */
long long store_history_purge(void *pg, int days, int batch, bool (*stop)(void), seg_error *err);

#endif
