/* Private to http/: problem rendering for dispatch.c. */
#ifndef SEGMENTD_HTTP_RESPONSE_PRIVATE_H
#define SEGMENTD_HTTP_RESPONSE_PRIVATE_H

#include <stddef.h>

#include "http/request.h"

/* Renders e as application/problem+json; malloc'd, caller frees. */
char *http_problem_render(const seg_error *e, const char *request_id, size_t *len);

#endif
