/* Private to store/: the read replica (SEGMENTD_DATABASE_READ_URL) — whether evaluations may
 * read there now, and how far behind its primary it is (store/replica.c). */
#ifndef SEGMENTD_STORE_REPLICA_H
#define SEGMENTD_STORE_REPLICA_H

#include <stdbool.h>

#include "core/config.h"
#include "core/error.h"

/* Starts the probe when a replica is configured (else nothing). 0, or -1 with err. */
int replica_start(const seg_config *cfg, seg_error *err) MUSTCHECK;
void replica_stop(void);

/* The replica's lag in ms as last probed, when evaluations may read there now (configured,
 * reachable, no further behind than SEGMENTD_READ_MAX_LAG_MS); else -1: read the primary. */
int replica_lag_ms(void);
/* A read on the replica failed (its session lost, or a query cancelled by recovery): reads go
 * to the primary until the next good probe. */
void replica_failed(void);
/* Counts a read by where it ran (metrics). */
void replica_count_read(bool on_replica);

#endif
