/* /v1/devices: the devices segments are evaluated against, one by one and as a list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/common.h"
#include "handlers/handlers.h"
#include "store/devices.h"
#include "validate/audience.h"
#include "validate/device.h"
#include "validate/list_query.h"
#include "validate/validate.h"

#define DEVICES_PATH "/v1/devices"
#define MERGE_RETRIES 3

bool h_check_device_id(const char *value, const char **why)
{
    if (val_device_id(value))
        return true;
    *why = val_device_id_reserved(value) ? VAL_DEVICE_RESERVED_WHY
                                         : "expected 1 to 255 letters, digits, '-', '_', '.', ':' or '@'";
    return false;
}

static void device_release(void *in)
{
    val_device_release(in);
}

/* root validated as the device of the path into a struct of the request, and the row the
 * store writes from it: the scalar fields in the table's order (the id and the tags have
 * columns of their own). */
static device_in *validated(http_request *rq, json_t *root, device_row *row)
{
    device_in *in = h_keep(rq, sizeof *in, device_release);
    if (!in || val_device(root, rq->param, in, &rq->err) || h_device_row(in, row, &rq->err))
        return NULL;
    return in;
}

int h_device_row(const device_in *in, device_row *row, seg_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++) {
        const val_field *f = val_field_at(i);
        if (f->type != VAL_FIELD_STRING_ARRAY && strcmp(f->name, "id") != 0 && n < DEVICE_SCALARS)
            row->scalar[n++] = in->scalar[i];
    }
    if (n != DEVICE_SCALARS) { /* the field table and the device table disagree: a bug */
        err_set(err, 500, "internal", "the device fields do not match the device table");
        return -1;
    }
    row->tags_json = in->tags_json;
    row->tags = in->tag;
    row->n_tags = in->n_tags;
    row->attributes_json = in->attributes_json;
    return 0;
}

/* If-Match: * (replace, never create): h_if_match reads it as no precondition, which is
 * what an update of something that exists needs, but a PUT may create. */
static bool replace_only(http_request *rq)
{
    const char *v = http_header(rq, "If-Match");
    while (v && *v == ' ')
        v++;
    return v && v[0] == '*' && strspn(v + 1, " ") == strlen(v + 1);
}

/* If-None-Match: only "*" (create, never replace) means something for a PUT here. */
static int create_only(http_request *rq, bool *out)
{
    const char *v = http_header(rq, "If-None-Match");
    *out = false;
    if (!v)
        return 0;
    while (*v == ' ')
        v++;
    if (strcmp(v, "*") != 0) {
        err_set(&rq->err, 400, "invalid_if_match", "If-None-Match: only * is supported (create, never replace)");
        return -1;
    }
    *out = true;
    return 0;
}

/* Writes row as the path's device under versions (If-Match; NULL: none) and answers. */
static void put_and_answer(http_request *rq, store_conn *c, const device_row *row,
                           const char *versions, bool only_create, bool only_replace, int *outcome)
{
    store_doc doc;
    bool created = false;
    *outcome = store_device_put(c, rq->principal.tenant, rq->param, row, versions, only_create,
                                only_replace, &doc, &created, &rq->err);
    if (*outcome != STORE_DONE)
        return;
    http_set_etag(rq, doc.version);
    if (created)
        http_set_location(rq, DEVICES_PATH, rq->param);
    h_reply_doc(rq, created ? 201 : 200, &doc);
}

void h_device_put(http_request *rq)
{
    device_row row;
    store_conn *c;
    char vbuf[H_IF_MATCH_BUF];
    const char *versions;
    bool only_create;
    int outcome;
    json_t *root = h_body(rq);
    if (!root || !validated(rq, root, &row) || h_if_match(rq, vbuf, &versions) ||
        create_only(rq, &only_create) || !(c = h_store(rq)))
        return;
    put_and_answer(rq, c, &row, versions, only_create, replace_only(rq), &outcome);
    if (outcome == STORE_STALE)
        err_set(&rq->err, 412, "precondition_failed",
                only_create ? "a device with this id exists already (If-None-Match: *)"
                            : "the device changed since the ETag in If-Match was issued, or there is "
                              "none: fetch it again");
}

static void json_release(void *j)
{
    json_decref(j);
}

void h_device_patch(http_request *rq)
{
    store_conn *c;
    store_doc cur;
    char vbuf[H_IF_MATCH_BUF], current[32];
    const char *versions;
    json_t *patch = h_body(rq);
    if (!patch || h_if_match(rq, vbuf, &versions) || !(c = h_store(rq)))
        return;
    for (int attempt = 0; attempt < MERGE_RETRIES; attempt++) {
        device_row row;
        json_error_t je;
        int outcome;
        if (h_missed_as(rq, store_device_get(c, rq->principal.tenant, rq->param, &cur, &rq->err), "device") ||
            (versions && !http_if_match_ok(rq, cur.version) && h_missed_as(rq, STORE_STALE, "device")))
            return;
        json_t *merged = json_loadb(cur.json, cur.len, 0, &je);
        if (!merged || arena_defer(&rq->arena, json_release, merged)) {
            err_set(&rq->err, 500, "internal", "the stored device could not be read");
            return;
        }
        val_merge_patch(merged, patch);
        if (!validated(rq, merged, &row))
            return;
        snprintf(current, sizeof current, "{%lld}", cur.version);
        put_and_answer(rq, c, &row, current, false, false, &outcome);
        if (outcome != STORE_STALE)
            return;
        if (versions) {
            h_missed_as(rq, STORE_STALE, "device");
            return;
        }
        /* changed between read and write without If-Match: merge again onto the new one */
    }
    err_set(&rq->err, 409, "conflict", "the device kept changing while the patch was applied; retry");
}

void h_device_get(http_request *rq)
{
    store_doc doc;
    store_conn *c = h_store(rq);
    if (!c || h_missed_as(rq, store_device_get(c, rq->principal.tenant, rq->param, &doc, &rq->err), "device"))
        return;
    http_set_etag(rq, doc.version);
    h_reply_doc(rq, 200, &doc);
}

void h_device_delete(http_request *rq)
{
    store_conn *c;
    char vbuf[H_IF_MATCH_BUF];
    const char *versions;
    if (h_if_match(rq, vbuf, &versions) || !(c = h_store(rq)))
        return;
    if (!h_missed_as(rq, store_device_delete(c, rq->principal.tenant, rq->param, versions, &rq->err), "device"))
        http_reply_empty(rq, 204);
}

void h_device_list(http_request *rq)
{
    static const char *const allowed[] = {"limit", "cursor", "updated_since", NULL};
    device_list_query q;
    store_page page;
    store_conn *c;
    if (h_only_query(rq, allowed) || val_device_list_query(h_query, rq, &rq->arena, &q, &rq->err) ||
        !(c = h_store(rq)) || store_device_list(c, rq->principal.tenant, &q, &page, &rq->err))
        return;
    h_reply_page(rq, &page, 'd');
}
