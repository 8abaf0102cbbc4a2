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

/* Appends s to buf as a JSON string literal (with quotes), escaped as JSON_ESC_LOG;
 * cut short to fit, keeping 8 bytes after each character (core/json_text.h, fixed
 * text). Returns the new length: at most cap - 1, even when len was past it. */
size_t log_json_str(char *buf, size_t len, size_t cap, const char *s);

#endif
