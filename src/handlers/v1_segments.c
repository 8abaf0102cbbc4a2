/* /v1/segments: constraint segments with seg_ ids (seed 003). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/ids.h"
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "store/segments.h"
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

static void not_found(http_request *rq)
{
    err_set(&rq->err, 404, "not_found", "no segment with this id");
}

/* The client asked for the bare id, as seed 003 documents the response. */
static bool wants_plain_id(http_request *rq)
{
    const char *a = http_header(rq, "Accept");
    return a && strcasestr(a, "text/plain") && !strcasestr(a, "application/json");
}

/* Answers with the stored segment (column col) plus "warnings" when there are any,
 * spliced into the JSON text without parsing it again. Takes rows. */
static void reply_with_warnings(http_request *rq, int status, store_rows *rows, int col,
                                json_t *warnings)
{
    if (!warnings || json_array_size(warnings) == 0) {
        h_reply_row(rq, status, rows, col);
        return;
    }
    char *w = json_dumps(warnings, JSON_COMPACT);
    size_t len = store_length(rows, 0, col), wlen = w ? strlen(w) : 0;
    char *buf = w ? malloc(len + wlen + 16) : NULL;
    if (!buf) {
        free(w);
        store_rows_free(rows);
        err_set(&rq->err, 500, "internal", "out of memory");
        return;
    }
    const char *row = store_value(rows, 0, col);
    size_t close = len;
    while (close > 0 && row[close - 1] != '}')
        close--;
    memcpy(buf, row, close - 1);
    size_t n = close - 1;
    n += (size_t)sprintf(buf + n, ", \"warnings\":%s}", w);
    free(w);
    store_rows_free(rows);
    http_reply(rq, status, "application/json", buf, n, free, buf);
}

void h_v1_create(http_request *rq)
{
    v1_segment_in in;
    store_rows *rows = NULL;
    store_conn *c = NULL;
    char id[IDS_SEG_LEN + 1];
    memset(&in, 0, sizeof in);
    json_t *root = val_parse_body(rq->body, rq->body_len, &rq->err);
    if (!root)
        return;
    if (val_v1_segment(root, false, &in, &rq->err))
        goto done;
    if (ids_seg_id(id)) {
        err_set(&rq->err, 503, "no_entropy", "no random source available; retry shortly");
        goto done;
    }
    v1_segment_row row = {V1_SET_NAME | V1_SET_DESCRIPTION | V1_SET_CONSTRAINTS, in.name,
                          in.has_description ? in.description : NULL, in.constraints_json};
    if (!(c = store_acquire(&rq->err)))
        goto done;
    if (store_v1_insert(c, rq->principal.tenant, id, &row, &rows, &rq->err))
        goto done;
    http_set_etag(rq, store_ll(rows, 0, 1));
    http_set_location(rq, V1_PATH, id);
    if (wants_plain_id(rq)) {
        store_rows_free(rows);
        char *plain = strdup(id);
        if (!plain) {
            err_set(&rq->err, 500, "internal", "out of memory");
            goto done;
        }
        http_reply(rq, 201, "text/plain; charset=utf-8", plain, strlen(plain), free, plain);
    } else {
        reply_with_warnings(rq, 201, rows, 0, in.warnings);
    }
done:
    store_release(c);
    val_v1_segment_release(&in);
    json_decref(root);
}

void h_v1_patch(http_request *rq)
{
    v1_segment_in in;
    store_rows *rows = NULL;
    store_conn *c = NULL;
    char vbuf[H_IF_MATCH_BUF];
    const char *versions;
    memset(&in, 0, sizeof in);
    json_t *root = val_parse_body(rq->body, rq->body_len, &rq->err);
    if (!root)
        return;
    if (val_v1_segment(root, true, &in, &rq->err) || h_if_match(rq, vbuf, &versions))
        goto done;
    v1_segment_row row = {0, in.name, in.description, in.constraints_json};
    if (in.name)
        row.set |= V1_SET_NAME;
    if (in.has_description)
        row.set |= V1_SET_DESCRIPTION;
    if (in.constraints_json)
        row.set |= V1_SET_CONSTRAINTS;
    if (!(c = store_acquire(&rq->err)))
        goto done;
    if (store_v1_update(c, rq->principal.tenant, in.id, &row, versions, &rows, &rq->err))
        goto done;
    if (store_rows_count(rows) == 0) {
        store_rows_free(rows);
        not_found(rq);
    } else if (store_is_null(rows, 0, 1)) {
        store_rows_free(rows);
        err_set(&rq->err, 412, "precondition_failed",
                "the segment changed since the ETag in If-Match was issued: fetch it again");
    } else {
        http_set_etag(rq, store_ll(rows, 0, 2));
        reply_with_warnings(rq, 200, rows, 1, in.warnings);
    }
done:
    store_release(c);
    val_v1_segment_release(&in);
    json_decref(root);
}

void h_v1_get(http_request *rq)
{
    store_rows *rows = NULL;
    store_conn *c = store_acquire(&rq->err);
    if (!c)
        return;
    int rc = store_v1_get(c, rq->principal.tenant, rq->param, &rows, &rq->err);
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

void h_v1_delete(http_request *rq)
{
    store_rows *rows = NULL;
    store_conn *c = NULL;
    char vbuf[H_IF_MATCH_BUF];
    const char *versions;
    if (h_if_match(rq, vbuf, &versions) || !(c = store_acquire(&rq->err)))
        return;
    int rc = store_v1_delete(c, rq->principal.tenant, rq->param, versions, &rows, &rq->err);
    store_release(c);
    if (rc)
        return;
    if (store_rows_count(rows) == 0)
        not_found(rq);
    else if (store_is_null(rows, 0, 1))
        err_set(&rq->err, 412, "precondition_failed",
                "the segment changed since the ETag in If-Match was issued: fetch it again");
    else
        http_reply_empty(rq, 204);
    store_rows_free(rows);
}

void h_v1_list(http_request *rq)
{
    static const char *const allowed[] = {"limit", "cursor", "name", NULL};
    char before[24];
    int limit;
    bool bad = false;
    const char *name;
    store_rows *rows = NULL;
    store_conn *c;

    if (h_only_query(rq, allowed))
        return;
    h_paging(rq, 'v', &limit, before);
    if ((name = http_query(rq, "name", &bad)) &&
        (bad || !*name || !val_utf8_valid(name) || val_utf8_chars(name, strlen(name)) > 255))
        h_bad_query(rq, "name", "expected 1 to 255 characters of UTF-8 text");
    if (rq->err.status || !(c = store_acquire(&rq->err)))
        return;
    int rc = store_v1_list(c, rq->principal.tenant, before[0] ? before : NULL, name, limit + 1,
                           &rows, &rq->err);
    store_release(c);
    if (!rc)
        h_reply_page(rq, rows, limit, 'v');
}
