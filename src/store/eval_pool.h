/* Private to store/: the sessions evaluations run on (store/eval_pool.c). */
#ifndef SEGMENTD_STORE_EVAL_POOL_H
#define SEGMENTD_STORE_EVAL_POOL_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "store/slots.h"
#include "store/statements.h"

/* Sets up SEGMENTD_EVAL_CONCURRENCY sessions (connected on first use) / closes them. */
int eval_pool_init(const seg_config *cfg);
void eval_pool_close(void);

/* Runs one statement of evaluation (text sql with n text parameters) on an evaluation
 * session of its own, with statement_timeout SEGMENTD_EVAL_TIMEOUT_MS: waits for a free one
 * up to SEGMENTD_POOL_WAIT_MS (503 evaluation_busy), 503 evaluation_timeout when the
 * statement runs past its timeout. It reads on the read replica while store/replica.c allows
 * (then *lag_ms, when lag_ms is not NULL, is raised to the replica's lag; it is left alone
 * after a read on the primary), and again on the primary when the replica fails it. The
 * result (PGRES_TUPLES_OK), or NULL with err set. */
PGresult *eval_pool_run(const char *sql, int n, const char *const *params, int *lag_ms,
                        seg_error *err);
/* The same, with work_mem at 64 MB for the statement when wide (an estimate's per-page
 * aggregate spilled to disk at PostgreSQL's default 4 MB). The sessions otherwise keep the
 * default: with 64 MB session-wide the planner priced bitmap heap scans as exact and chose
 * one for a count of 1.5 M rows of 10 M devices, 4.2 s against 1.7 s for the parallel scan. */
PGresult *eval_pool_run_wide(const char *sql, int n, const char *const *params, bool wide,
                             int *lag_ms, seg_error *err);

/* Runs a statement of the table on the read replica when one may be read and an evaluation
 * session is free right now (no wait), for a list (SEGMENTD_READ_REPLICA_LISTS): its result
 * (PGRES_TUPLES_OK) with *lag_ms set, or NULL (not configured, lagging, busy, or failed: the
 * caller reads the primary; a lost session marks the replica down). */
PGresult *eval_pool_try_replica(stmt_id id, const char *const *params, int *lag_ms);

/* An evaluation session borrowed whole (a member export: many statements, from its own
 * thread once taken, for as long as its client reads): waits as eval_pool_run does (on a
 * fiber). With export, only while exports leave one session (of two or more) to the counts.
 * Its connected session, or NULL with err; eval_pool_give returns it. */
typedef struct eval_session eval_session;
eval_session *eval_pool_take(seg_error *err, bool export);
PGconn *eval_pool_conn(eval_session *s);
/* The read replica's lag (ms) when s reads there, else -1 (the primary). */
int eval_pool_lag(const eval_session *s);
/* Maps a failed result (NULL: the session broke) into err, as eval_pool_run does. */
void eval_pool_fail(eval_session *s, PGresult *r, seg_error *err);
void eval_pool_give(eval_session *s);

#endif
