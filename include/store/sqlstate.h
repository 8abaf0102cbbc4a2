/* SQLSTATE → HTTP: what a client is told when PostgreSQL refuses a statement. */
#ifndef SEGMENTD_STORE_SQLSTATE_H
#define SEGMENTD_STORE_SQLSTATE_H

#include <stdbool.h>

#include "core/error.h"

/* Fills err for a failed statement: state is the SQLSTATE (NULL when the session gave
 * none: it was lost), session_lost whether libpq saw the session go. Returns true when
 * the session must be given up (reconnected before its next use). */
bool store_sqlstate_map(const char *state, bool session_lost, seg_error *err);

#endif
