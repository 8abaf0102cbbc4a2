/* Private to http/ (and its fuzzer): deciding a request from its line and headers alone. */
#ifndef SEGMENTD_HTTP_ADMIT_H
#define SEGMENTD_HTTP_ADMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "http/request.h"
#include "http/router.h"

/* A request header by name (case-insensitive), or NULL. */
typedef const char *(*http_header_fn)(void *cls, const char *name);

typedef struct http_admission {
    bool close_after;    /* refused in a way that leaves the connection unusable */
    bool too_big;        /* refused for its Content-Length: the body is not read */
    bool authenticated;  /* the principal is set */
} http_admission;

/* What becomes of a request before its body is read: its request id (the client's
 * X-Request-Id when usable, else a new one), its route and path parameter, its principal
 * (routes with a scope), the body's media type and announced length. Returns 0 to go on
 * (read the body, run the handler) or -1 with rq->err to answer now (for a 405, rq->location
 * holds the Allow list). url is the path, already percent-decoded. */
int http_admit(const http_router *r, const seg_config *cfg, const char *method, const char *url,
               http_header_fn header, void *cls, http_request *rq, http_admission *out);

/* The largest body a route takes (bulk routes have their own limit). */
size_t http_body_limit(const seg_config *cfg, const http_route *r);

#endif
