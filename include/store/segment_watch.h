/* Word that a tenant's segments changed, from any segmentd process: a thread LISTENs on
 * the channel the segment tables' triggers NOTIFY (migrations/0005_evaluation.sql). */
#ifndef SEGMENTD_STORE_SEGMENT_WATCH_H
#define SEGMENTD_STORE_SEGMENT_WATCH_H

#include <stdbool.h>

#include "core/config.h"
#include "core/error.h"

typedef struct store_watch_fns {
    /* a committed change to the segments of tenant */
    void (*changed)(const char *tenant);
    /* listening or not: while not, word may be missed (on true, everything said before
     * may have been missed too) */
    void (*listening)(bool on);
} store_watch_fns;

/* Starts the thread (it reconnects by itself, every second, while the database is down).
 * The callbacks run on it. 0, or -1 with err. */
int store_watch_start(const seg_config *cfg, const store_watch_fns *fns, seg_error *err) MUSTCHECK;
/* Stops it (listening(false) is called). Safe when never started. */
void store_watch_stop(void);

#endif
