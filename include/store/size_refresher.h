/* The size refresher: keeps the read-only `size` of active segments fresh. */
#ifndef SEGMENTD_STORE_SIZE_REFRESHER_H
#define SEGMENTD_STORE_SIZE_REFRESHER_H

#include "core/config.h"
#include "core/error.h"

/* Starts its thread when cfg->size_refresh_s > 0: a pass at once, then every size_refresh_s
 * seconds, counting (exactly) every active segment whose size is older than that, a
 * tenant's segments up to 32 in one scan of its devices, on a session of its own under
 * SEGMENTD_EVAL_TIMEOUT_MS. One process of a database refreshes at a time. 0, or -1 with err. */
int store_size_refresher_start(const seg_config *cfg, seg_error *err) MUSTCHECK;
/* Stops it (a count under way is cancelled). Safe when it never started. */
void store_size_refresher_stop(void);

#endif
