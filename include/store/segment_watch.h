/* Word that a tenant's segments changed, from any segmentd process: a thread reads a
 * fingerprint of the segments of each tenant the caller keeps copies of (their count,
 * highest sequence number and sum of versions, which any committed change moves) every
 * STORE_WATCH_PERIOD_MS, on a session of its own. Changes this process writes are told at
 * once as well (store_on_segments_changed in store/store.h). */
#ifndef SEGMENTD_STORE_SEGMENT_WATCH_H
#define SEGMENTD_STORE_SEGMENT_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/error.h"

#define STORE_WATCH_PERIOD_MS 200

typedef struct store_watch_fns {
    /* the tenants to read: a text[] literal of them (malloc'd), or NULL for none */
    char *(*tenants)(void);
    /* tenant's fingerprint now */
    void (*seen)(const char *tenant, const char *fingerprint);
    /* reading or not: while not, changes of other processes go unseen */
    void (*watching)(bool on);
} store_watch_fns;

/* Starts the thread (it reconnects by itself while the database is down). The callbacks
 * run on it. 0, or -1 with err. */
int store_watch_start(const seg_config *cfg, const store_watch_fns *fns, seg_error *err) MUSTCHECK;
/* Stops it (watching(false) is called). Safe when never started. */
void store_watch_stop(void);

#endif
