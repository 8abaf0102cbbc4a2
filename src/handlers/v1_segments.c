/* /v1/segments: seg_ ids and constraint groups over device fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/ids.h"
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "store/segments.h"
#include "validate/lifecycle.h"
#include "validate/list_query.h"
#include "validate/v1_segment.h"
#include "validate/validate.h"

#define V1_PATH "/v1/segments"

bool h_check_seg_id(const char *value, const char **why)
{
    if (val_v1_id(value))
        return true;
    *why = "expected \"seg_\" followed by 13 letters or digits";
    return false;
}

/* The client asked for the bare id (text/plain), as the /v1 dialect answers a create. */
static bool wants_plain_id(http_request *rq)
{
    const char *a = http_header(rq, "Accept");
    return a && strcasestr(a, "text/plain") && !strcasestr(a, "application/json");
}

static void v1_release(void *in)
{
    val_v1_segment_release(in);
}

/* root validated (as a PATCH or a create) into a struct of the request. */
static v1_segment_in *validated(http_request *rq, json_t *root, bool is_patch)
{
    v1_segment_in *in = h_keep(rq, sizeof *in, v1_release);
    return in && !val_v1_segment(root, is_patch, in, &rq->err) ? in : NULL;
}

/* Answers with the stored segment plus "warnings" when there are any, spliced into the
 * JSON text without parsing it again. */
static void reply_with_warnings(http_request *rq, int status, const store_doc *doc,
                                json_t *warnings)
{
    json_text w = {0}, o;
    if (!warnings || json_array_size(warnings) == 0) {
        h_reply_doc(rq, status, doc);
        return;
    }
    h_put_warnings(&w, warnings, -1, NULL);
    size_t close = doc->len, cap = doc->len + w.len + 32;
    char *buf = !w.failed ? arena_alloc(&rq->arena, cap) : NULL;
    if (!buf) {
        json_text_release(&w);
        err_set(&rq->err, 500, "internal", "out of memory");
        return;
    }
    while (close > 0 && doc->json[close - 1] != '}')
        close--;
    json_text_fixed(&o, buf, cap, 0); /* sized above: never cut */
    json_text_put(&o, doc->json, close - 1);
    JSON_TEXT_LIT(&o, ", \"warnings\":[");
    json_text_put(&o, w.p, w.len);
    JSON_TEXT_LIT(&o, "]}");
    json_text_release(&w);
    http_reply(rq, status, "application/json", o.p, o.len, NULL, NULL);
}

static void v1_create(http_request *rq)
{
    v1_segment_in *in;
    store_conn *c;
    store_doc doc;
    char *id = arena_alloc(&rq->arena, IDS_SEG_LEN + 1);
    json_t *root = h_body(rq);
    if (!root || !(in = validated(rq, root, false)))
        return;
    if (!id || ids_seg_id(id)) {
        err_set(&rq->err, 503, "no_entropy", "no random source available; retry shortly");
        return;
    }
    v1_segment_row row = {V1_SET_NAME | V1_SET_DESCRIPTION | V1_SET_CONSTRAINTS | LC_SET_ALL, in->name,
                          in->has_description ? in->description : NULL, in->constraints_json,
                          &in->lc};
    if (!(c = h_store(rq)) || store_v1_insert(c, rq->principal.tenant, id, &row, &doc, &rq->err))
        return;
    http_set_etag(rq, doc.version);
    http_set_location(rq, V1_PATH, id);
    if (wants_plain_id(rq))
        http_reply(rq, 201, "text/plain; charset=utf-8", id, strlen(id), NULL, NULL);
    else
        reply_with_warnings(rq, 201, &doc, in->warnings);
}

void h_v1_create(http_request *rq)
{
    h_idempotent(rq, v1_create);
}

/* Writes the fields row sets onto segment id, under the request's If-Match, and answers
 * with the segment (and warnings, when there are some); kind names the change in its
 * revision. */
static void update(http_request *rq, const char *id, const v1_segment_row *row, json_t *warnings,
                   store_update_kind kind)
{
    store_conn *c;
    store_doc doc;
    char vbuf[H_IF_MATCH_BUF];
    const char *versions;
    if (h_if_match(rq, vbuf, &versions) || !(c = h_store(rq)) ||
        h_update_refused(rq, store_v1_update(c, rq->principal.tenant, id, row, versions, kind,
                                             &doc, &rq->err), &doc, true))
        return;
    http_set_etag(rq, doc.version);
    reply_with_warnings(rq, 200, &doc, warnings);
}

void h_v1_patch(http_request *rq)
{
    v1_segment_in *in;
    json_t *root = h_body(rq);
    if (!root || !(in = validated(rq, root, true)))
        return;
    v1_segment_row row = {in->lc.set, in->name, in->description, in->constraints_json, &in->lc};
    if (in->name)
        row.set |= V1_SET_NAME;
    if (in->has_description)
        row.set |= V1_SET_DESCRIPTION;
    if (in->constraints_json)
        row.set |= V1_SET_CONSTRAINTS;
    update(rq, in->id, &row, in->warnings, STORE_UPDATE);
}

static void v1_end_date(http_request *rq)
{
    lifecycle_in lc;
    json_t *root = h_body(rq);
    if (!root || val_end_date_body(root, true, &lc, &rq->err))
        return;
    v1_segment_row row = {lc.set, NULL, NULL, NULL, &lc}; /* the end date, and extend when given */
    update(rq, rq->param, &row, NULL, STORE_END_DATE);
}

void h_v1_end_date(http_request *rq)
{
    h_idempotent(rq, v1_end_date);
}

void h_v1_get(http_request *rq)
{
    store_doc doc;
    store_conn *c = h_store(rq);
    if (!c)
        return;
    if (h_missed(rq, store_v1_get(c, rq->principal.tenant, rq->param, &doc, &rq->err)))
        return;
    http_set_etag(rq, doc.version);
    h_reply_doc(rq, 200, &doc);
}

void h_v1_delete(http_request *rq)
{
    store_conn *c;
    char vbuf[H_IF_MATCH_BUF];
    const char *versions;
    if (h_if_match(rq, vbuf, &versions) || !(c = h_store(rq)))
        return;
    if (!h_missed(rq, store_v1_delete(c, rq->principal.tenant, rq->param, versions, &rq->err)))
        http_reply_empty(rq, 204);
}

void h_v1_list(http_request *rq)
{
    static const char *const allowed[] = {"limit", "cursor", "name", "status", "active_at", NULL};
    v1_list_query q;
    store_page page;
    store_conn *c;
    if (h_only_query(rq, allowed) || val_v1_list_query(h_query, rq, &rq->arena, &q, &rq->err) ||
        !(c = h_store(rq)) || store_v1_list(c, rq->principal.tenant, &q, &page, &rq->err))
        return;
    h_reply_page(rq, &page, 'v');
}
