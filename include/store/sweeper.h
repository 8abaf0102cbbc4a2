/* The lifecycle sweeper: renews the segments whose end date passed with extend true. */
#ifndef SEGMENTD_STORE_SWEEPER_H
#define SEGMENTD_STORE_SWEEPER_H

#include "core/config.h"
#include "core/error.h"

/* Starts the sweeper's thread when cfg->lifecycle_sweep_s > 0: a pass at once, then one
 * every lifecycle_sweep_s seconds, on a PostgreSQL session of its own (not the pool's), which
 * renews the due segments and purges the revisions older than cfg->history_days. With
 * renewals off but a retention set, a pass that only purges, once an hour. Its counters join
 * /metrics. 0, or -1 with err (the thread could not start). */
int store_sweeper_start(const seg_config *cfg, seg_error *err) MUSTCHECK;

/* Stops it: a statement under way is cancelled (the batches before it stay committed).
 * Safe when it never started. */
void store_sweeper_stop(void);

/* One pass on pg, a session set up by the caller: renews every due segment of both
 * dialects in batches. Returns how many were renewed, or -1 with err (the batches before
 * the failure are committed: each is its own transaction). For tests and the thread. */
long long store_sweep_once(void *pg, seg_error *err);

#endif
