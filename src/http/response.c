/* Answers: JSON bodies, ETags, and the one place a request's error becomes its RFC 9457
 * problem document (application/problem+json, written by core/problem.c). */
#include "http/response.h"

#include "core/problem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void free_malloced(void *p)
{
    free(p);
}

void http_reply(http_request *rq, int status, const char *content_type, const char *body,
                size_t len, http_free_fn free_fn, void *cls)
{
    if (rq->body_free)
        rq->body_free(rq->body_free_cls);
    rq->status = status;
    rq->content_type = content_type;
    rq->body_out = body;
    rq->body_out_len = len;
    rq->body_free = free_fn;
    rq->body_free_cls = cls;
}

void http_reply_json(http_request *rq, int status, json_t *owned_body)
{
    char *s = owned_body ? json_dumps(owned_body, JSON_COMPACT) : NULL;
    json_decref(owned_body);
    if (!s) {
        err_set(&rq->err, 500, "internal", "the response could not be encoded");
        return;
    }
    http_reply(rq, status, "application/json", s, strlen(s), free_malloced, s);
}

void http_reply_empty(http_request *rq, int status)
{
    http_reply(rq, status, NULL, "", 0, NULL, NULL);
}

void http_set_etag(http_request *rq, long long version)
{
    /* "\"%lld\"" without snprintf's format parsing (on every read and write) */
    char digits[24];
    size_t n = 0, len = 0;
    unsigned long long v = version < 0 ? 0ull - (unsigned long long)version : (unsigned long long)version;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    rq->etag[len++] = '"';
    if (version < 0)
        rq->etag[len++] = '-';
    while (n)
        rq->etag[len++] = digits[--n];
    rq->etag[len++] = '"';
    rq->etag[len] = '\0';
}

void http_set_location(http_request *rq, const char *prefix, const char *id)
{
    snprintf(rq->location, sizeof rq->location, "%s/%s", prefix, id);
}

void http_set_replica_lag(http_request *rq, int lag_ms)
{
    if (lag_ms >= 0)
        snprintf(rq->replica_lag, sizeof rq->replica_lag, "%d", lag_ms);
    else
        rq->replica_lag[0] = '\0';
}

char *http_problem_render(const seg_error *e, const char *request_id, size_t *len)
{
    json_text t = {0};
    problem p = problem_of_error(e, request_id);
    problem_write(&t, &p);
    char *s = json_text_take(&t, len);
    if (!s) {
        /* Only reached when a detail holds invalid UTF-8 or memory ran out. */
        static const char fallback[] =
            "{\"type\":\"https://segmentd.dev/problems/internal\",\"title\":\"Internal Server "
            "Error\",\"status\":500,\"detail\":\"the error could not be encoded\",\"code\":\"internal\"}";
        s = strdup(fallback);
        *len = s ? strlen(s) : 0;
    }
    return s;
}
