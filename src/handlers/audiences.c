/* /audiences/segments: uuid ids, management_type, owner_id and attribute properties. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/ids.h"
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "store/segments.h"
#include "validate/audience.h"
#include "validate/lifecycle.h"
#include "validate/list_query.h"
#include "validate/validate.h"

#define AUD_PATH "/audiences/segments"
#define MERGE_RETRIES 3

bool h_check_uuid(const char *value, const char **why)
{
    return val_uuid(value, strlen(value), why);
}

static void aud_release(void *in)
{
    val_aud_release(in);
}

/* root validated in mode into a struct of the request (its texts freed with it). */
static aud_segment_in *validated(http_request *rq, json_t *root, int mode)
{
    aud_segment_in *in = h_keep(rq, sizeof *in, aud_release);
    return in && !val_aud_segment(root, mode, in, &rq->err) ? in : NULL;
}

/* Answers an update: 200 with the new representation, 404, 412 or 422 (dates). */
static void answer_update(http_request *rq, int outcome, const store_doc *doc)
{
    if (h_update_refused(rq, outcome, doc, false))
        return;
    http_set_etag(rq, doc->version);
    h_reply_doc(rq, 200, doc);
}

static void aud_create(http_request *rq)
{
    aud_segment_in *in;
    store_conn *c;
    store_doc doc;
    char id[37];
    json_t *root = h_body(rq);
    if (!root || !(in = validated(rq, root, AUD_CREATE)))
        return;
    if (ids_uuid_v7(id)) {
        err_set(&rq->err, 503, "no_entropy", "no random source available; retry shortly");
        return;
    }
    if (!(c = h_store(rq)) || store_aud_insert(c, rq->principal.tenant, id, in, &doc, &rq->err))
        return;
    http_set_etag(rq, doc.version);
    http_set_location(rq, AUD_PATH, id);
    h_reply_doc(rq, 201, &doc);
}

void h_aud_create(http_request *rq)
{
    h_idempotent(rq, aud_create);
}

void h_aud_get(http_request *rq)
{
    store_doc doc;
    char id[37];
    store_conn *c = h_store(rq);
    if (!c)
        return;
    h_canonical_uuid(rq->param, id);
    if (h_missed(rq, store_aud_get(c, rq->principal.tenant, id, &doc, &rq->err)))
        return;
    http_set_etag(rq, doc.version);
    h_reply_doc(rq, 200, &doc);
}

/* Writes the fields of in that it sets onto segment id, under the request's If-Match, and
 * answers; kind names the change in its revision. */
static void update(http_request *rq, const char *id, const aud_segment_in *in, store_update_kind kind)
{
    store_conn *c;
    store_doc doc;
    char vbuf[H_IF_MATCH_BUF];
    const char *versions;
    if (h_if_match(rq, vbuf, &versions) || !(c = h_store(rq)))
        return;
    answer_update(rq, store_aud_update(c, rq->principal.tenant, id, in, versions, kind, &doc,
                                       &rq->err), &doc);
}

void h_aud_replace(http_request *rq)
{
    aud_segment_in *in;
    json_t *root = h_body(rq);
    if (root && (in = validated(rq, root, AUD_REPLACE)))
        update(rq, in->id, in, STORE_UPDATE);
}

static void json_release(void *j)
{
    json_decref(j);
}

/* The stored representation of doc as a JSON value of the request. */
static json_t *doc_value(http_request *rq, const store_doc *doc)
{
    json_error_t je;
    json_t *v = json_loadb(doc->json, doc->len, 0, &je);
    if (!v || arena_defer(&rq->arena, json_release, v)) {
        err_set(&rq->err, 500, "internal", "the stored segment could not be read");
        return NULL;
    }
    return v;
}

void h_aud_merge(http_request *rq)
{
    store_conn *c;
    store_doc cur, doc;
    json_t *patch_id;
    char vbuf[H_IF_MATCH_BUF], current[32];
    const char *versions;
    char id[37];
    json_t *patch = h_body(rq);
    if (!patch)
        return;
    h_canonical_uuid(rq->param, id);
    patch_id = json_object_get(patch, "id");
    if (patch_id && !(json_is_string(patch_id) && !strcasecmp(json_string_value(patch_id), id))) {
        err_add(&rq->err, "/id", "the id of a segment cannot change: omit it or send %s", id);
        return;
    }
    if (h_if_match(rq, vbuf, &versions) || !(c = h_store(rq)))
        return;
    for (int attempt = 0; attempt < MERGE_RETRIES; attempt++) {
        if (h_missed(rq, store_aud_get(c, rq->principal.tenant, id, &cur, &rq->err)) ||
            (versions && !http_if_match_ok(rq, cur.version) && h_missed(rq, STORE_STALE)))
            return;
        json_t *merged = doc_value(rq, &cur);
        aud_segment_in *in;
        if (!merged)
            return;
        val_merge_patch(merged, patch);
        if (!(in = validated(rq, merged, AUD_WHOLE)))
            return;
        snprintf(current, sizeof current, "{%lld}", cur.version);
        int rc = store_aud_update(c, rq->principal.tenant, id, in, current, STORE_MERGE_PATCH, &doc,
                                  &rq->err);
        if (rc != STORE_STALE || versions) {
            answer_update(rq, rc, &doc);
            return;
        }
        /* changed between read and write without If-Match: merge again onto the new one */
    }
    err_set(&rq->err, 409, "conflict", "the segment kept changing while the patch was applied; retry");
}

static void aud_end_date(http_request *rq)
{
    aud_segment_in in = {0};
    char id[37];
    json_t *root = h_body(rq);
    if (!root || val_end_date_body(root, false, &in.lc, &rq->err))
        return;
    in.set = in.lc.set; /* the end date, and extend when given: nothing else changes */
    h_canonical_uuid(rq->param, id);
    update(rq, id, &in, STORE_END_DATE);
}

void h_aud_end_date(http_request *rq)
{
    h_idempotent(rq, aud_end_date);
}

void h_aud_delete(http_request *rq)
{
    store_conn *c;
    char vbuf[H_IF_MATCH_BUF];
    const char *versions;
    char id[37];
    h_canonical_uuid(rq->param, id);
    if (h_if_match(rq, vbuf, &versions) || !(c = h_store(rq)))
        return;
    if (!h_missed(rq, store_aud_delete(c, rq->principal.tenant, id, versions, &rq->err)))
        http_reply_empty(rq, 204);
}

void h_aud_list(http_request *rq)
{
    static const char *const allowed[] = {"limit", "cursor", "owner_id", "management_type", "name",
                                          "property", "property_code", "property_value",
                                          "updated_since", "status", "active_at", NULL};
    aud_list_query q;
    store_page page;
    store_conn *c;
    if (h_only_query(rq, allowed) || val_aud_list_query(h_query, rq, &rq->arena, &q, &rq->err) ||
        !(c = h_store(rq)) || store_aud_list(c, rq->principal.tenant, &q, &page, &rq->err))
        return;
    h_reply_page(rq, &page, 'a');
}
