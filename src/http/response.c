/* Answers: JSON bodies, ETags, and the one place errors become RFC 9457 problem
 * details (application/problem+json). */
#include "http/response.h"

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

char *http_problem_render(const seg_error *e, const char *request_id, size_t *len)
{
    json_t *p = json_object(), *errors = NULL;
    char type[96];
    char *s;
    snprintf(type, sizeof type, "https://segmentd.dev/problems/%s", e->code ? e->code : "error");
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "title", json_string(e->title ? e->title : err_title_for(e->status)));
    json_object_set_new(p, "status", json_integer(e->status));
    json_object_set_new(p, "detail", json_string(e->detail[0] ? e->detail : "no detail"));
    json_object_set_new(p, "code", json_string(e->code ? e->code : "error"));
    json_object_set_new(p, "request_id", json_string(request_id));
    if (e->n_items > 0) {
        errors = json_array();
        for (int i = 0; i < e->n_items; i++)
            json_array_append_new(errors, json_pack("{s:s, s:s}", "pointer", e->items[i].pointer,
                                                    "detail", e->items[i].detail));
        json_object_set_new(p, "errors", errors);
        if (e->truncated)
            json_object_set_new(p, "errors_truncated", json_true());
    }
    s = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (!s) {
        /* Only reached when a detail holds invalid UTF-8 or memory ran out. */
        static const char fallback[] =
            "{\"type\":\"https://segmentd.dev/problems/internal\",\"title\":\"Internal Server "
            "Error\",\"status\":500,\"detail\":\"the error could not be encoded\",\"code\":\"internal\"}";
        s = strdup(fallback);
    }
    *len = s ? strlen(s) : 0;
    return s;
}
