/* Steps shared by the resource handlers: the request's store handle and body, zero-copy
 * replies of stored documents and pages, If-Match and query-parameter errors. */
#include "handlers/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_text.h"
#include "core/problem.h"
#include "http/request_parse.h"
#include "validate/list_query.h"
#include "validate/validate.h"


void *h_keep(http_request *rq, size_t n, void (*release)(void *))
{
    void *p = arena_alloc(&rq->arena, n);
    if (!p || arena_defer(&rq->arena, release, p)) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return NULL;
    }
    return p;
}

bool h_missed_as(http_request *rq, int outcome, const char *what)
{
    if (outcome == STORE_MISSING)
        err_set(&rq->err, 404, "not_found", "no %s with this id", what);
    else if (outcome == STORE_STALE)
        err_set(&rq->err, 412, "precondition_failed",
                "the %s changed since the ETag in If-Match was issued: fetch it again", what);
    return outcome != STORE_DONE;
}

bool h_missed(http_request *rq, int outcome)
{
    return h_missed_as(rq, outcome, "segment");
}

const char *h_rule_pointer(const char *rule, bool v1)
{
    if (rule && !strcmp(rule, "extend"))
        return "/extend";
    return v1 ? "/endDate" : "/end_date";
}

const char *h_rule_detail(const char *rule)
{
    if (rule && !strcmp(rule, "extend"))
        return "a segment that renews itself needs an end date, and this one would have none";
    return "the end date must be after the start date, and with the segment's stored dates it "
           "would not be";
}

bool h_update_refused(http_request *rq, int outcome, const store_doc *doc, bool v1)
{
    if (outcome != STORE_INVALID)
        return h_missed(rq, outcome);
    err_add(&rq->err, h_rule_pointer(doc->broken_rule, v1), "%s", h_rule_detail(doc->broken_rule));
    return true;
}

store_conn *h_store(http_request *rq)
{
    if (rq->txn) /* h_idempotent's transaction */
        return rq->txn;
    store_conn *c = store_open(&rq->arena, &rq->err);
    if (c)
        store_set_author(c, rq->principal.subject, rq->request_id);
    return c;
}

static void json_release(void *j)
{
    json_decref(j);
}

json_t *h_body(http_request *rq)
{
    json_t *root = val_parse_body(rq->body, rq->body_len, &rq->err);
    if (root && arena_defer(&rq->arena, json_release, root)) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return NULL;
    }
    return root;
}

void h_put_warnings(json_text *o, json_t *warnings, long item, const char *trace_id)
{
    size_t wi;
    json_t *w;
    json_array_foreach(warnings, wi, w) {
        problem p = {
            .kind = PROBLEM_WARNING,
            .code = json_string_value(json_object_get(w, "code")),
            .title = json_string_value(json_object_get(w, "title")),
            .detail = json_string_value(json_object_get(w, "detail")),
            .pointer = json_string_value(json_object_get(json_object_get(w, "source"), "pointer")),
            .item = item,
            .trace_id = trace_id,
        };
        problem_write(o, &p);
    }
}

void h_reply_doc(http_request *rq, int status, const store_doc *doc)
{
    http_reply(rq, status, "application/json", doc->json, doc->len, NULL, NULL);
}

void h_bad_query(http_request *rq, const char *name, const char *fmt, ...)
{
    char detail[ERR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    val_query_fail(&rq->err, name, "%s", detail);
}

const char *h_query(void *rq, const char *name, bool *bad)
{
    return http_query(rq, name, bad);
}

int h_only_query(http_request *rq, const char *const *allowed)
{
    const char *unknown = http_unknown_query(rq, allowed);
    if (!unknown)
        return 0;
    h_bad_query(rq, unknown, "unknown query parameter \"%.60s\"", unknown);
    return -1;
}

void h_reply_page(http_request *rq, const store_page *page, char kind)
{
    static const char head[] = "{\"items\":[";
    char cursor[VAL_CURSOR_MAX] = "";
    json_text t;
    _Static_assert(sizeof head - 1 <= STORE_PAGE_HEAD, "the page's head fits before its items");
    _Static_assert(VAL_CURSOR_MAX + 32 <= STORE_PAGE_TAIL, "the page's tail fits after its items");
    _Static_assert(STORE_PAGE_KEY_MAX <= VAL_CURSOR_KEY_MAX, "a page's key fits its cursor");
    http_set_replica_lag(rq, page->replica_lag_ms);
    if (page->more)
        val_cursor_encode(kind, page->next_key, cursor);
    /* around the items, in the room the store left: no copy of the page */
    char *start = page->items - (sizeof head - 1);
    memcpy(start, head, sizeof head - 1);
    json_text_fixed(&t, page->items + page->items_len, STORE_PAGE_TAIL, 0);
    JSON_TEXT_LIT(&t, "]");
    json_text_key(&t, "next_cursor");
    if (page->more)
        json_text_cstr(&t, cursor, JSON_ESC_PG); /* base64url: nothing to escape */
    else
        JSON_TEXT_LIT(&t, "null");
    JSON_TEXT_LIT(&t, "}");
    http_reply(rq, 200, "application/json", start, (size_t)(t.p + t.len - start), NULL, NULL);
}

int h_versions_array(const char *if_match, char buf[H_IF_MATCH_BUF], const char **versions)
{
    long long v[16];
    bool present;
    int n = http_parse_if_match(if_match, v, 16, &present);
    size_t len = 0;
    *versions = NULL;
    if (n < 0)
        return -1;
    if (!present)
        return 0;
    /* a PostgreSQL array literal of integers; "{}" (nothing can match) → 412 */
    buf[len++] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, H_IF_MATCH_BUF - len, "%s%lld", i ? "," : "", v[i]);
    buf[len++] = '}';
    buf[len] = '\0';
    *versions = buf;
    return 0;
}

int h_if_match(http_request *rq, char buf[H_IF_MATCH_BUF], const char **versions)
{
    if (!h_versions_array(http_header(rq, "If-Match"), buf, versions))
        return 0;
    err_set(&rq->err, 400, "invalid_if_match",
            "If-Match must be \"*\" or up to 16 entity tags as sent in ETag, like \"3\"");
    return -1;
}

void h_canonical_uuid(const char *in, char out[37])
{
    for (int i = 0; i < 36; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'F' ? in[i] + 32 : in[i]);
    out[36] = '\0';
}

const char *h_segment_id(http_request *rq, bool v1, char buf[37])
{
    if (v1)
        return rq->param;
    h_canonical_uuid(rq->param, buf);
    return buf;
}
