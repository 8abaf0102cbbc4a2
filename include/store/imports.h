/* Device imports as the store keeps them: the receiver's session (the import's row, its
 * valid lines staged by COPY, its progress and its end), the reads of the request path,
 * and the background merge (store/import_merge.c). */
#ifndef SEGMENTD_STORE_IMPORTS_H
#define SEGMENTD_STORE_IMPORTS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/error.h"
#include "core/model.h"
#include "store/idempotency.h"
#include "store/segments.h"

/* An import being received, on a PostgreSQL session of its own (not the pool's). Its
 * functions run on the receiver's thread only, but store_import_cancel. */
typedef struct store_import store_import;

/* What a receiver counted so far; errors_json is the JSON array of the invalid lines kept. */
typedef struct store_import_counts {
    long long bytes, received, invalid, last_line;
    const char *errors_json;
} store_import_counts;

/* Creates import `id` of tenant (status receiving) on a new session, which holds the
 * import's lock until store_import_close: STORE_IDEM_NEW and *out. With q (the request's
 * Idempotency-Key; its body_sha256 unused here) the session first takes the key's lock,
 * held until store_import_key_release or the close, and looks the key up:
 * STORE_IDEM_BUSY (another request holds it) and STORE_IDEM_OTHER (another method or path
 * had it) leave nothing; STORE_IDEM_REPLAY gives *out a session holding the key's lock but
 * no import, *kept the key's answer and *kept_sha256 the digest of the body it answered,
 * to compare once the body is in (their texts live until the close); STORE_IDEM_NEW
 * creates the import. -1 with err (503 when the database cannot be reached). */
int store_import_open(const seg_config *cfg, const char *tenant, const char *id,
                      const store_idem_request *q, store_import **out, store_idem_answer *kept,
                      const char **kept_sha256, seg_error *err) MUSTCHECK;
/* Gives the Idempotency-Key's lock back (before the answer, so that a repeat sent at once
 * finds it free); nothing when none is held. */
void store_import_key_release(store_import *im);
/* COPY text of staged rows, built by any thread (a growable buffer; zeroed: empty). */
typedef struct store_copy_text {
    char *p;
    size_t len, cap;
} store_copy_text;
/* Appends the row of one valid line (import seq, its line number, the device's id and row).
 * -1 when memory ran out. */
int store_copy_row(store_copy_text *b, const char *seq, long long line, const char *id,
                   const device_row *row) MUSTCHECK;
/* The import's seq, as store_copy_row wants it. */
const char *store_import_seq(const store_import *im);
/* Stages rows: COPY text of whole rows, sent on the import's session (a COPY opened when
 * none is). 0, or -1 with err (503). */
int store_import_copy(store_import *im, const char *text, size_t len, seg_error *err) MUSTCHECK;
/* True when rows were staged since the last progress: a COPY is open. */
bool store_import_pending(const store_import *im);
/* Ends the COPY under way (its rows committed) and records the counts. 0 or -1 (503). */
int store_import_progress(store_import *im, const store_import_counts *n, seg_error *err) MUSTCHECK;
/* The body is complete: the last rows committed, the import merging (or done when no line
 * was valid). *doc gets the representation (malloc'd). With q (the key claimed at the open,
 * body_sha256 the body's), the answer (202, *doc, location) is kept for the key in the same
 * transaction. 0, STORE_IDEM_BUSY (the key has a live answer: nothing done), or -1 with
 * err. */
int store_import_received(store_import *im, const store_import_counts *n,
                          const store_idem_request *q, const char *location, char **doc,
                          seg_error *err) MUSTCHECK;
/* The import failed (code, detail: why): its staged rows deleted, the counts n recorded when
 * not NULL. *doc (when doc is not NULL) gets the representation (malloc'd, NULL when the
 * database could not be told). Best effort: a session gone leaves the import to the merge
 * worker's recovery, which fails it the same way. */
void store_import_fail(store_import *im, const char *code, const char *detail,
                       const store_import_counts *n, char **doc);
/* Cancels the statement under way, from any thread (shutdown). */
void store_import_cancel(store_import *im);
/* Releases the import's lock and the session. */
void store_import_close(store_import *im);

/* The request path: one import of the tenant (STORE_DONE with out->body, STORE_MISSING),
 * and a page of them, newest first (next_key: the seq of the last one shown). */
int store_import_get(store_conn *c, const char *tenant, const char *id, store_doc *out,
                     seg_error *err) MUSTCHECK;
int store_import_list(store_conn *c, const char *tenant, const char *before_seq, int limit,
                      store_page *out, seg_error *err) MUSTCHECK;

/* The merge worker: a thread with a session of its own that merges imports whose body is
 * complete, a chunk of lines per transaction, and fails those whose receiving process is
 * gone (its lock free). It looks at once, every few seconds, and when
 * store_import_merge_wake is called. 0, or -1 with err. */
int store_import_merge_start(const seg_config *cfg, seg_error *err) MUSTCHECK;
void store_import_merge_wake(void);
/* Counts an import finished outside the worker (done at once, or failed) in its metrics. */
void store_import_counted(bool done);
/* Counts the invalid lines of an import received whole. */
void store_import_counted_invalid(long long lines);
/* Stops it: a chunk under way is cancelled (rolled back; the next start resumes there). */
void store_import_merge_stop(void);

#endif
