/* Matching a method and path against the routing table. */
#ifndef SEGMENTD_HTTP_ROUTER_H
#define SEGMENTD_HTTP_ROUTER_H

#include <stddef.h>

#include "http/request.h"

typedef enum { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_BAD_METHOD, ROUTE_BAD_PARAM } route_result;

/* On ROUTE_FOUND *out is the route and param holds the path parameter (if any).
 * On ROUTE_BAD_METHOD allow is "GET, PATCH, …". On ROUTE_BAD_PARAM *out is the route
 * and why says what is wrong with param. */
route_result router_match(const http_route *routes, size_t n, const char *method,
                          const char *path, const http_route **out, char *param,
                          size_t param_cap, char *allow, size_t allow_cap, const char **why);

#endif
