/* What a handler reads of its request: headers, query parameters, If-Match and Accept. */
#include "http/request.h"

#include <string.h>

#include "http/http_private.h"
#include "http/request_parse.h"

const char *http_header(http_request *rq, const char *name)
{
    return MHD_lookup_connection_value(http_conn_of(rq), MHD_HEADER_KIND, name);
}

const char *http_query(http_request *rq, const char *name, bool *bad)
{
    const char *v = NULL;
    size_t len = 0;
    if (MHD_lookup_connection_value_n(http_conn_of(rq), MHD_GET_ARGUMENT_KIND, name, strlen(name),
                                      &v, &len) != MHD_YES)
        return NULL;
    if (!v)
        v = "";
    if (strlen(v) != len || len > 1024)
        *bad = true;
    return v;
}

typedef struct unknown_scan {
    const char *const *allowed;
    const char *first;
} unknown_scan;

static enum MHD_Result scan_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    unknown_scan *s = cls;
    for (const char *const *a = s->allowed; *a; a++)
        if (!strcmp(*a, key))
            return MHD_YES;
    s->first = key;
    return MHD_NO;
}

const char *http_unknown_query(http_request *rq, const char *const *allowed)
{
    unknown_scan s = {allowed, NULL};
    MHD_get_connection_values(http_conn_of(rq), MHD_GET_ARGUMENT_KIND, scan_query, &s);
    return s.first;
}

/* The query's parameters as they came, k=v joined with '&' (counted first, then written). */
typedef struct query_text {
    char *p;
    size_t len;
} query_text;

static void query_put(query_text *t, const char *s, size_t n)
{
    if (t->p)
        memcpy(t->p + t->len, s, n);
    t->len += n;
}

static enum MHD_Result join_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    query_text *t = cls;
    query_put(t, t->len ? "&" : "?", 1);
    query_put(t, key, strlen(key));
    if (value) {
        query_put(t, "=", 1);
        query_put(t, value, strlen(value));
    }
    return MHD_YES;
}

const char *http_target(http_request *rq)
{
    size_t plen = strlen(rq->path);
    query_text t = {NULL, plen};
    MHD_get_connection_values(http_conn_of(rq), MHD_GET_ARGUMENT_KIND, join_query, &t);
    if (t.len == plen)
        return rq->path;
    char *out = arena_alloc(&rq->arena, t.len + 1);
    if (!out)
        return NULL;
    memcpy(out, rq->path, plen);
    t = (query_text){out, plen};
    MHD_get_connection_values(http_conn_of(rq), MHD_GET_ARGUMENT_KIND, join_query, &t);
    out[t.len] = '\0';
    return out;
}

bool http_if_match_ok(http_request *rq, long long current)
{
    return http_if_match_allows(http_header(rq, "If-Match"), current);
}

bool http_accepts(http_request *rq, const char *media_type)
{
    return http_accept_allows(http_header(rq, "Accept"), media_type);
}
