/* A segment's members read out in batches for GET …/members?format=ndjson: a cursor on an
 * evaluation session of its own, opened on the request's fiber and read from the export's
 * own thread, each FETCH under SEGMENTD_EVAL_TIMEOUT_MS. */
#ifndef SEGMENTD_STORE_EXPORT_H
#define SEGMENTD_STORE_EXPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "eval/rule.h"

typedef struct store_export store_export;

/* Opens the cursor over the members of segment ((rule matches ∪ added) − removed): their
 * ids, or with whole their representations. On a fiber (it waits for an evaluation session
 * as counts do). 0, or -1 with err. */
int store_export_open(const ev_rule *r, const char *tenant, const char *segment, bool whole,
                      store_export **out, seg_error *err) MUSTCHECK;

/* The next up to n members (off a fiber: it blocks), each handed to row as JSON-ready text
 * (an id, or a representation). The number read (0: no more), or -1 with err. */
int store_export_fetch(store_export *x, int n, void (*row)(void *cls, const char *s, size_t len),
                       void *cls, seg_error *err);

/* The read replica's lag (ms) when the export reads there, else -1 (the primary). */
int store_export_lag(const store_export *x);

/* Cancels a FETCH under way (from any thread; the next fetch fails). */
void store_export_cancel(store_export *x);

/* Ends the cursor's transaction and gives the session back; x is freed. */
void store_export_close(store_export *x);

#endif
