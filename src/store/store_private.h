/* Private to store/: shared between the pool and the migration runner. */
#ifndef SEGMENTD_STORE_PRIVATE_H
#define SEGMENTD_STORE_PRIVATE_H

#include <libpq-fe.h>

#include "core/config.h"

/* A new session with segmentd's keepalive/timeout defaults; the caller checks
 * PQstatus and PQfinishes it. */
PGconn *store_connect_raw(const seg_config *cfg);

#endif
