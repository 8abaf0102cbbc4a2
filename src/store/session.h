/* Private to store/: a slot's PostgreSQL session (session.c). */
#ifndef SEGMENTD_STORE_SESSION_H
#define SEGMENTD_STORE_SESSION_H

#include "store/slots.h"

/* A slot of this loop, connected (slots_take + session_ensure). NULL with err set. */
store_conn *session_borrow(seg_error *err);
/* Maps a failed result (or a lost session: r NULL) into err, marks c broken when the
 * session is gone, counts the error. */
void session_fail(store_conn *c, PGresult *r, seg_error *err);
/* A new blocking session with segmentd's keepalive/timeout defaults (migrations); the
 * caller checks PQstatus and PQfinishes it. */
PGconn *store_connect_raw(const seg_config *cfg);
/* A blocking session of a background worker's own (the sweeper, imports), connected and
 * set up (statement_timeout_ms, UTC); NULL when the database cannot be reached (logged as
 * a warning naming who). */
PGconn *session_open_own(const seg_config *cfg, int statement_timeout_ms, const char *who);
/* The same on the database of url (NULL: the primary's); who NULL: a failure is not logged. */
PGconn *session_open_own_at(const seg_config *cfg, const char *url, int statement_timeout_ms,
                            const char *who);
/* Connects (without blocking the loop on a fiber) and prepares every statement when c
 * has no healthy session; rolls back a session left in a transaction. 0 or -1 (503). */
int session_ensure(store_conn *c, seg_error *err) MUSTCHECK;
/* Sends a statement of the table on pg (prepared, or as text when it has no name). */
int session_send(PGconn *pg, stmt_id id, const char *const *params);
/* Waits for the whole answer to what was sent and returns its last result (the first
 * failed one, if one failed), as PQexec would; NULL when the session broke. */
PGresult *session_await(PGconn *pg);
/* session_send + session_await. */
PGresult *session_run(PGconn *pg, stmt_id id, const char *const *params);
/* session_run of a write that answers its count: the rows it wrote (its command tag's count),
 * or, when it returns a row, the number in that row's first column; -1 with a 503 in err
 * ("the <what> failed", the server's message in the log detail). */
long long session_run_count(PGconn *pg, stmt_id id, const char *const *params, const char *what,
                            seg_error *err);
/* Runs a purge statement that deletes at most batch rows, each run its own transaction, until
 * one deletes fewer or stop() says so. The rows deleted, or -1 with err (as session_run_count). */
long long session_purge(PGconn *pg, stmt_id id, const char *const *params, long long batch,
                        bool (*stop)(void), const char *what, seg_error *err);
/* Flushes a non-blocking session, reading what the server answers meanwhile. 0 or -1. */
int session_flush_reading(PGconn *pg);
/* PQgetResult that waits by yielding on a fiber. */
PGresult *session_next_result(PGconn *pg);
bool session_result_ok(const PGresult *r);

#endif
