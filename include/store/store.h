/* PostgreSQL access: a bounded connection pool, prepared statements by id, results
 * handed out as opaque rows, SQLSTATE mapped to HTTP status. No libpq type crosses
 * this header. */
#ifndef SEGMENTD_STORE_H
#define SEGMENTD_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/error.h"
#include "store/statements.h"

typedef struct store_conn store_conn;
typedef struct store_rows store_rows;

typedef struct store_stats {
    int size, in_use, connected;
    unsigned long long acquired, waits, timeouts, errors, reconnects;
    unsigned long long batches, batched, reruns; /* pipelines sent, statements in them, reruns */
    unsigned long long parts;                   /* statements sent by store_parts_send */
} store_stats;

/* Sets up the pool (connections open lazily). Returns 0 or -1. */
int store_init(const seg_config *cfg, seg_error *err) MUSTCHECK;
/* Closes every connection; callers must have released them. */
void store_close(void);

/* A request's handle on the pool, in its arena: the handle is returned, and every result
 * read through it freed, when the arena is released (arena_run_now(a, handle) returns it
 * early). Statements through it wait for a connection up to SEGMENTD_POOL_WAIT_MS (503
 * with Retry-After past it). Only on a fiber of an event loop; NULL with err set. */
store_conn *store_open(seg_arena *a, seg_error *err) MUSTCHECK;

/* Who the changes made through handle c are by: the token's sub (NULL or "": none) and the
 * request id, written in the revisions of the segments they change (store/segments.h).
 * Borrowed: both must live as long as c. */
void store_set_author(store_conn *c, const char *actor, const char *request_id);

/* The statements of the store's modules (store/segments.h) go through such a handle; on
 * failure err carries a status mapped from the SQLSTATE (store/sqlstate.h). */

/* Runs several statements in one transaction on c's own connection: store_begin …
 * store_commit. On any error call store_rollback. Begun inside another transaction of c
 * (an Idempotency-Key's), it is a savepoint of that one, which then commits it or not. */
int store_begin(store_conn *c, seg_error *err) MUSTCHECK;
int store_commit(store_conn *c, seg_error *err) MUSTCHECK;
void store_rollback(store_conn *c);

/* One transaction sent in parts on c's own connection (a libpq pipeline): BEGIN, then
 * each part as soon as the caller has it, not waited for, so PostgreSQL executes one
 * part while the caller prepares the next; store_parts_end sends COMMIT (or ROLLBACK)
 * and one Sync and only then reads the answers. After store_parts_begin, whatever
 * happens, call store_parts_end once: with commit false it rolls everything back. On
 * success rows[k] holds part k's rows (free each with store_rows_free) and the parts
 * are committed: success is the COMMIT's own answer, so a session lost after it (say,
 * PostgreSQL shutting down before it answers the Sync) still counts as committed. A
 * part's error makes every part fail (err as for store_exec). */
int store_parts_begin(store_conn *c, seg_error *err) MUSTCHECK;
int store_parts_send(store_conn *c, stmt_id id, const char *const *params, seg_error *err) MUSTCHECK;
int store_parts_end(store_conn *c, bool commit, store_rows **rows, int nrows, seg_error *err);

/* Frees a part's rows (store_parts_end); void * so that it fits arena_defer. */
void store_rows_free(void *r);

void store_stats_get(store_stats *s);

/* fn(tenant) runs on the request's thread after each statement that writes segments of
 * tenant succeeded (and when a transaction in parts sends one): what a process keeps of
 * them is dropped at once (store/segment_watch.h tells the other processes). Set once, at
 * start-up. */
void store_on_segments_changed(void (*fn)(const char *tenant));

/* Applies pending migrations under an advisory lock on a dedicated connection.
 * Returns the number applied, or -1 with err set. */
int store_migrate(const seg_config *cfg, seg_error *err) MUSTCHECK;
/* Highest migration version present in the migrations folder (0 if none). */
long long store_migrations_expected(const seg_config *cfg);

#endif
