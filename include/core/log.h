/* Structured logging: one JSON object per line on stderr, written with one write(2)
 * so lines from different threads never interleave. */
#ifndef SEGMENTD_CORE_LOG_H
#define SEGMENTD_CORE_LOG_H

#include <stddef.h>

#include "core/config.h"
#include "core/error.h"

void log_set_level(log_level level);
int log_enabled(log_level level);

/* A message with an optional list of extra string fields: key, value, …, NULL. */
void log_msg(log_level level, const char *msg, ...) __attribute__((sentinel));

#endif
