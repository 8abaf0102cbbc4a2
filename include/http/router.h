/* Matching a method and path against the routing table. */
#ifndef SEGMENTD_HTTP_ROUTER_H
#define SEGMENTD_HTTP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"

typedef enum { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_BAD_METHOD, ROUTE_BAD_PARAM } route_result;

#define ROUTER_MAX 64

/* A routing table prepared once for matching: its routes with literal patterns first
 * (in table order, then those with a "{name}"), each with the length of its pattern
 * before the first "{". A request then costs a length comparison per route and one
 * memcmp per candidate instead of a scan of every pattern. */
typedef struct {
    struct {
        const http_route *route;
        size_t prefix;  /* bytes before the first "{": the whole pattern when literal */
        bool literal;
    } e[ROUTER_MAX];
    size_t n, n_literal;
} http_router;

/* -1 when the table has more than ROUTER_MAX routes. r keeps pointers into routes. */
int router_init(http_router *r, const http_route *routes, size_t n);

/* On ROUTE_FOUND *out is the route, param holds the first path parameter (if any) and
 * param2 the second (both param_cap bytes). On ROUTE_BAD_METHOD allow is "GET, PATCH, …".
 * On ROUTE_BAD_PARAM *out is the route, *second says which parameter is wrong and why
 * says what is wrong with it. Literal patterns win over "{name}" ones, so
 * /segments/bulk is never read as /segments/{id}. */
route_result router_match(const http_router *r, const char *method, const char *path,
                          const http_route **out, char *param, char *param2, size_t param_cap,
                          char *allow, size_t allow_cap, const char **why, bool *second);

#endif
