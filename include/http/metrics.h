/* Prometheus counters: requests by route, method and status; a latency histogram. */
#ifndef SEGMENTD_HTTP_METRICS_H
#define SEGMENTD_HTTP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "http/request.h"

void metrics_init(const http_route *routes, size_t n_routes);
/* route NULL = unmatched path. */
void metrics_observe(const http_route *route, int status, uint64_t duration_us);
/* Appends the exposition text to a malloc'd buffer; returns it (caller frees). */
char *metrics_render(const char *extra);

#endif
