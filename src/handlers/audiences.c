/* /audiences/segments: the A2 dialect (seeds 000 and 001). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/ids.h"
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "store/segments.h"
#include "validate/audience.h"
#include "validate/validate.h"

#define AUD_PATH "/audiences/segments"
#define MERGE_RETRIES 3

bool h_check_uuid(const char *value, const char **why)
{
    return val_uuid(value, strlen(value), why);
}

/* Lower-cases the path id so that upper-case uuids name the same segment. */
static void canonical_uuid(const char *in, char out[37])
{
    for (int i = 0; i < 36; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'F' ? in[i] + 32 : in[i]);
    out[36] = '\0';
}

static void not_found(http_request *rq)
{
    err_set(&rq->err, 404, "not_found", "no segment with this id");
}

static void precondition_failed(http_request *rq)
{
    err_set(&rq->err, 412, "precondition_failed",
            "the segment changed since the ETag in If-Match was issued: fetch it again");
}

void h_aud_create(http_request *rq)
{
    aud_segment_in in;
    store_rows *rows = NULL;
    store_conn *c = NULL;
    char id[37];
    json_t *root = val_parse_body(rq->body, rq->body_len, &rq->err);
    if (!root)
        return;
    if (val_aud_segment(root, AUD_CREATE, &in, &rq->err))
        goto done;
    if (ids_uuid_v7(id)) {
        err_set(&rq->err, 503, "no_entropy", "no random source available; retry shortly");
        goto done;
    }
    if (!(c = store_acquire(&rq->err)))
        goto done;
    if (store_aud_insert(c, rq->principal.tenant, id, &in, &rows, &rq->err))
        goto done;
    http_set_etag(rq, store_ll(rows, 0, 1));
    http_set_location(rq, AUD_PATH, id);
    h_reply_row(rq, 201, rows, 0);
done:
    store_release(c);
    val_aud_release(&in);
    json_decref(root);
}

void h_aud_get(http_request *rq)
{
    store_rows *rows = NULL;
    char id[37];
    store_conn *c = store_acquire(&rq->err);
    if (!c)
        return;
    canonical_uuid(rq->param, id);
    int rc = store_aud_get(c, rq->principal.tenant, id, &rows, &rq->err);
    store_release(c);
    if (rc)
        return;
    if (store_rows_count(rows) == 0) {
        store_rows_free(rows);
        not_found(rq);
        return;
    }
    http_set_etag(rq, store_ll(rows, 0, 1));
    h_reply_row(rq, 200, rows, 0);
}

/* Answers from an update's rows: none → 404, NULL body → 412, else 200. */
static void answer_update(http_request *rq, store_rows *rows)
{
    if (store_rows_count(rows) == 0) {
        store_rows_free(rows);
        not_found(rq);
    } else if (store_is_null(rows, 0, 1)) {
        store_rows_free(rows);
        precondition_failed(rq);
    } else {
        http_set_etag(rq, store_ll(rows, 0, 2));
        h_reply_row(rq, 200, rows, 1);
    }
}

void h_aud_replace(http_request *rq)
{
    aud_segment_in in;
    store_rows *rows = NULL;
    store_conn *c = NULL;
    char vbuf[H_IF_MATCH_BUF];
    const char *versions;
    json_t *root = val_parse_body(rq->body, rq->body_len, &rq->err);
    if (!root)
        return;
    if (val_aud_segment(root, AUD_REPLACE, &in, &rq->err) || h_if_match(rq, vbuf, &versions))
        goto done;
    if (!(c = store_acquire(&rq->err)))
        goto done;
    if (store_aud_update(c, rq->principal.tenant, in.id, &in, versions, &rows, &rq->err))
        goto done;
    answer_update(rq, rows);
done:
    store_release(c);
    val_aud_release(&in);
    json_decref(root);
}

void h_aud_merge(http_request *rq)
{
    aud_segment_in in;
    store_rows *cur = NULL, *rows = NULL;
    store_conn *c = NULL;
    json_t *doc = NULL, *patch_id;
    char vbuf[H_IF_MATCH_BUF], current[32];
    const char *versions;
    char id[37];
    memset(&in, 0, sizeof in);
    json_t *patch = val_parse_body(rq->body, rq->body_len, &rq->err);
    if (!patch)
        return;
    canonical_uuid(rq->param, id);
    patch_id = json_object_get(patch, "id");
    if (patch_id && !(json_is_string(patch_id) && !strcasecmp(json_string_value(patch_id), id))) {
        err_add(&rq->err, "/id", "the id of a segment cannot change: omit it or send %s", id);
        goto done;
    }
    if (h_if_match(rq, vbuf, &versions) || !(c = store_acquire(&rq->err)))
        goto done;
    for (int attempt = 0; attempt < MERGE_RETRIES; attempt++) {
        json_error_t je;
        if (store_aud_get(c, rq->principal.tenant, id, &cur, &rq->err))
            goto done;
        if (store_rows_count(cur) == 0) {
            not_found(rq);
            goto done;
        }
        long long version = store_ll(cur, 0, 1);
        if (versions && !http_if_match_ok(rq, version)) {
            precondition_failed(rq);
            goto done;
        }
        doc = json_loads(store_value(cur, 0, 0), 0, &je);
        if (!doc) {
            err_set(&rq->err, 500, "internal", "the stored segment could not be read");
            goto done;
        }
        val_merge_patch(doc, patch);
        val_aud_release(&in);
        if (val_aud_segment(doc, AUD_WHOLE, &in, &rq->err))
            goto done;
        snprintf(current, sizeof current, "{%lld}", version);
        if (store_aud_update(c, rq->principal.tenant, id, &in, current, &rows, &rq->err))
            goto done;
        if (store_rows_count(rows) == 0 || !store_is_null(rows, 0, 1) || versions) {
            answer_update(rq, rows);
            rows = NULL;
            goto done;
        }
        /* changed between read and write without If-Match: merge again onto the new one */
        store_rows_free(rows);
        store_rows_free(cur);
        json_decref(doc);
        rows = cur = NULL;
        doc = NULL;
    }
    err_set(&rq->err, 409, "conflict", "the segment kept changing while the patch was applied; retry");
done:
    store_release(c);
    store_rows_free(cur);
    store_rows_free(rows);
    val_aud_release(&in);
    json_decref(doc);
    json_decref(patch);
}

void h_aud_delete(http_request *rq)
{
    store_rows *rows = NULL;
    store_conn *c = NULL;
    char vbuf[H_IF_MATCH_BUF];
    const char *versions;
    char id[37];
    canonical_uuid(rq->param, id);
    if (h_if_match(rq, vbuf, &versions) || !(c = store_acquire(&rq->err)))
        return;
    int rc = store_aud_delete(c, rq->principal.tenant, id, versions, &rows, &rq->err);
    store_release(c);
    if (rc)
        return;
    if (store_rows_count(rows) == 0)
        not_found(rq);
    else if (store_is_null(rows, 0, 1))
        precondition_failed(rq);
    else
        http_reply_empty(rq, 204);
    store_rows_free(rows);
}

/* {"code":["value"]} and, for a numeric value, {"code":[n]}: the jsonb containment
 * documents for the GIN index. name is the query parameter blamed on error. */
static int property_filter(http_request *rq, const char *name, const char *code, size_t clen,
                           const char *value, char **as_text, char **as_num)
{
    char buf[AUD_MAX_CODE_CHARS * 4 + 1];
    json_t *j;
    if (clen == 0 || !*value) {
        h_bad_query(rq, name, "expected code:value, like interest:sports");
        return -1;
    }
    if (clen >= sizeof buf || val_utf8_chars(code, clen) > AUD_MAX_CODE_CHARS) {
        h_bad_query(rq, name, "the attribute code is longer than %d characters", AUD_MAX_CODE_CHARS);
        return -1;
    }
    memcpy(buf, code, clen);
    buf[clen] = '\0';
    j = json_pack("{s:[s]}", buf, value);
    *as_text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!*as_text) {
        h_bad_query(rq, name, "code and value must be UTF-8 text");
        return -1;
    }
    json_error_t je;
    json_t *num = json_loads(value, JSON_DECODE_ANY, &je);
    if (json_is_number(num)) {
        j = json_pack("{s:[O]}", buf, num);
        *as_num = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    }
    json_decref(num);
    return 0;
}

void h_aud_list(http_request *rq)
{
    static const char *const allowed[] = {"limit", "cursor", "owner_id", "management_type", "name",
                                          "property", "property_code", "property_value",
                                          "updated_since", NULL};
    aud_list_query q = {0};
    char before[24], owner[37];
    char *prop = NULL, *prop_num = NULL;
    store_rows *rows = NULL;
    store_conn *c = NULL;
    bool bad = false;
    const char *v, *why;

    if (h_only_query(rq, allowed))
        return;
    h_paging(rq, 'a', &q.limit, before);
    q.before_no = before[0] ? before : NULL;
    if ((v = http_query(rq, "owner_id", &bad))) {
        if (bad || !val_uuid(v, strlen(v), &why))
            h_bad_query(rq, "owner_id", "not a uuid: %s", bad ? "contains a NUL byte" : why);
        else {
            canonical_uuid(v, owner);
            q.owner_id = owner;
        }
    }
    bad = false;
    if ((v = http_query(rq, "management_type", &bad))) {
        if (bad || (strcmp(v, "selfmanaged") && strcmp(v, "systemmanaged")))
            h_bad_query(rq, "management_type", "expected selfmanaged or systemmanaged");
        else
            q.management_type = v;
    }
    bad = false;
    if ((v = http_query(rq, "name", &bad))) {
        if (bad || !*v || !val_utf8_valid(v) || val_utf8_chars(v, strlen(v)) > AUD_MAX_NAME_CHARS)
            h_bad_query(rq, "name", "expected 1 to %d characters of UTF-8 text", AUD_MAX_NAME_CHARS);
        else
            q.name = v;
    }
    bad = false;
    if ((v = http_query(rq, "updated_since", &bad))) {
        if (bad || !val_rfc3339(v, NULL))
            h_bad_query(rq, "updated_since", "expected an RFC 3339 date-time like 2023-11-07T05:31:56Z");
        else
            q.updated_since = v;
    }
    bad = false;
    /* property=code:value splits at the first ':'; codes that hold ':' themselves are
     * filtered with the unambiguous pair property_code + property_value. */
    const char *pc = http_query(rq, "property_code", &bad), *pv = http_query(rq, "property_value", &bad);
    if ((v = http_query(rq, "property", &bad))) {
        const char *colon = strchr(v, ':');
        if (bad)
            h_bad_query(rq, "property", "contains a NUL byte or is too long");
        else if (pc || pv)
            h_bad_query(rq, "property", "use either property or property_code with property_value");
        else
            property_filter(rq, "property", v, colon ? (size_t)(colon - v) : 0, colon ? colon + 1 : "",
                            &prop, &prop_num);
    } else if (pc || pv) {
        if (bad)
            h_bad_query(rq, pc ? "property_code" : "property_value", "contains a NUL byte or is too long");
        else if (!pc || !pv)
            h_bad_query(rq, pc ? "property_value" : "property_code",
                        "property_code and property_value go together");
        else
            property_filter(rq, "property_code", pc, strlen(pc), pv, &prop, &prop_num);
    }
    q.property = prop;
    q.property_num = prop_num;
    if (rq->err.status)
        goto done;
    q.limit += 1; /* one more row tells whether there is a next page */
    if (!(c = store_acquire(&rq->err)))
        goto done;
    if (store_aud_list(c, rq->principal.tenant, &q, &rows, &rq->err))
        goto done;
    h_reply_page(rq, rows, q.limit - 1, 'a');
done:
    store_release(c);
    free(prop);
    free(prop_num);
}
