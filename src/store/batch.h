/* Private to store/: statements batched in pipelines (batch.c). */
#ifndef SEGMENTD_STORE_BATCH_H
#define SEGMENTD_STORE_BATCH_H

#include "store/slots.h"

/* The execute path of a request's handle: runs on an idle lane of this loop at once, or
 * joins the batch queued on a busy one (one pipeline, one Sync). */
int batch_exec(stmt_id id, const char *const *params, store_rows **out, seg_error *err);
/* One statement alone on slot c (its own implicit transaction). */
PGresult *batch_exec_alone(store_conn *c, stmt_id id, const char *const *params, seg_error *err);
/* The order in which a batch sends statements: < 0 when a goes before b. Statements that
 * lock no existing row first (in arrival order: 0 among them), then by the table they
 * lock, the tenant ($1) and the id ($2). */
int batch_lock_order(stmt_id a, const char *const *pa, stmt_id b, const char *const *pb);
/* The next statement's result in a pipeline, its ending NULL consumed; NULL when the
 * session broke or the Sync came first. */
PGresult *batch_pipeline_result(PGconn *pg);
/* Reads the Sync (unless lost) and leaves pipeline mode; marks s broken on failure.
 * Returns whether the session was lost. */
bool batch_pipeline_close(store_conn *s, bool lost);

#endif
