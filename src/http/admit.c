/* Admission: a request decided from its line and headers before any body is read (route, auth, media type, length). */
#include "http/admit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "core/fiber.h"
#include "http/rate_limit.h"
#include "http/request_parse.h"

size_t http_body_limit(const seg_config *cfg, const http_route *r)
{
    if (r && r->body == BODY_STREAM)
        return cfg->max_import_bytes;
    return r && r->body == BODY_BULK_JSON ? cfg->max_bulk_body_bytes : cfg->max_body_bytes;
}

/* Request ids: 16 hex digits from a per-thread generator seeded by getrandom(2). */
static void gen_request_id(char *out, size_t cap)
{
    static __thread uint64_t state;
    if (!state) {
        if (getrandom(&state, sizeof state, 0) != sizeof state || !state)
            state = fiber_now_ns() | 1;
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    if (cap < 17)
        return;
    /* "%016llx" without snprintf's format parsing (on every request) */
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--)
        out[15 - i] = hex[(state >> (4 * i)) & 15];
    out[16] = '\0';
}

/* The body's media type and announced length. */
static int admit_body(const seg_config *cfg, const http_route *route, http_header_fn header,
                      void *cls, http_request *rq, http_admission *out)
{
    const char *ct = header(cls, "Content-Type");
    const char *cl = header(cls, "Content-Length");
    bool stream = route->body == BODY_STREAM;
    bool ok = stream ? http_content_type_is(ct, "application/x-ndjson")
                     : http_content_type_is(ct, "application/json") ||
                           (route->body == BODY_MERGE_PATCH &&
                            http_content_type_is(ct, "application/merge-patch+json"));
    if (!ok) {
        err_set(&rq->err, 415, "unsupported_media_type", "the body must be sent with Content-Type: %s",
                stream ? "application/x-ndjson"
                : route->body == BODY_MERGE_PATCH ? "application/merge-patch+json or application/json"
                                                  : "application/json");
        return -1;
    }
    if (cl && cl[0] >= '0' && cl[0] <= '9') { /* libmicrohttpd refuses the others itself */
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (*end == '\0' && n > http_body_limit(cfg, route)) {
            out->too_big = true;
            err_set(&rq->err, 413, "body_too_large", "the body is %llu bytes: at most %zu bytes are accepted",
                    n, http_body_limit(cfg, route));
            return -1;
        }
    }
    return 0;
}

/* A POST's Idempotency-Key (other methods' is ignored: PUT, PATCH and DELETE are
 * idempotent by their If-Match), checked before the body is read. */
static int admit_idempotency_key(const char *method,
                                 http_header_fn header, void *cls, http_request *rq)
{
    if (method[0] != 'P' || strcmp(method, "POST") != 0)
        return 0;
    const char *key = header(cls, "Idempotency-Key");
    if (!key)
        return 0;
    if (!http_idempotency_key_ok(key)) {
        err_set(&rq->err, 400, "invalid_idempotency_key",
                "Idempotency-Key must be 1 to %d printable ASCII characters",
                HTTP_IDEMPOTENCY_KEY_MAX);
        err_add(&rq->err, "/header/Idempotency-Key", "1 to %d printable ASCII characters",
                HTTP_IDEMPOTENCY_KEY_MAX);
        rq->err.status = 400;
        return -1;
    }
    rq->idempotency_key = key;
    return 0;
}

/* The tenant's rate limit for the route's class, when that class is limited: a token taken,
 * or -1 with 429. */
static int admit_rate(const http_route *route, const char *method, http_request *rq)
{
    rate_class c = route->evaluation                                    ? RATE_EVAL
                   : !strcmp(method, "GET") || !strcmp(method, "HEAD") ? RATE_READ
                                                                        : RATE_WRITE;
    if (!rate_limited(c))
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return rate_take(rq->principal.tenant, c, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000,
                     &rq->rate, &rq->err);
}

int http_admit(const http_router *r, const seg_config *cfg, const char *method, const char *url,
               http_header_fn header, void *cls, http_request *rq, http_admission *out)
{
    const char *rid = header(cls, "X-Request-Id");
    char allow[128];
    const char *why = NULL;
    const http_route *route = NULL;

    memset(out, 0, sizeof *out);
    if (rid && http_request_id_ok(rid))
        snprintf(rq->request_id, sizeof rq->request_id, "%s", rid);
    else
        gen_request_id(rq->request_id, sizeof rq->request_id);

    /* RFC 9112 6.1: a transfer coding other than chunked is not implemented. MHD would
     * take the body length as unknown and read until the client closes: refuse it now,
     * before any body is read, and close the connection (its framing is unknown). */
    const char *te = header(cls, "Transfer-Encoding");
    if (te && strcasecmp(te, "chunked") != 0) {
        out->close_after = true;
        err_set(&rq->err, 501, "unsupported_transfer_encoding",
                "Transfer-Encoding \"%.40s\" is not supported: send the body with "
                "Content-Length or Transfer-Encoding: chunked", te);
        return -1;
    }

    bool second = false;
    _Static_assert(sizeof rq->param == sizeof rq->param2, "both path parameters take as much");
    switch (router_match(r, method, url, &route, rq->param, rq->param2, sizeof rq->param, allow,
                         sizeof allow, &why, &second)) {
    case ROUTE_NOT_FOUND:
        err_set(&rq->err, 404, "not_found", "no resource at this path");
        return -1;
    case ROUTE_BAD_METHOD:
        err_set(&rq->err, 405, "method_not_allowed", "%s is not allowed here: use %s", method, allow);
        snprintf(rq->location, sizeof rq->location, "%s", allow);
        return -1;
    case ROUTE_BAD_PARAM:
        rq->route = route;
        err_set(&rq->err, 400, "invalid_path_parameter", "\"%.64s\" is not a valid %s: %s",
                second ? rq->param2 : rq->param,
                (second ? route->param2_what : route->param_what) ? (second ? route->param2_what : route->param_what) : "id",
                why ? why : "malformed");
        err_add(&rq->err, second ? route->param2_name : "/path/id", "%s", why ? why : "malformed");
        rq->err.status = 400;
        return -1;
    case ROUTE_FOUND:
        break;
    }
    rq->route = route;
    if (route->scope) {
        if (auth_verify(header(cls, "Authorization"), (long long)time(NULL), &rq->principal, &rq->err) ||
            auth_require(&rq->principal, route->scope, &rq->err))
            return -1;
        out->authenticated = true;
        if (admit_rate(route, method, rq) || admit_idempotency_key(method, header, cls, rq))
            return -1;
    }
    return route->body ? admit_body(cfg, route, header, cls, rq, out) : 0;
}
