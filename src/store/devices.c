/* The device statements: their parameters in order, and their columns read into typed
 * results (store/devices.h). */
#include "store/devices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_private.h"

int store_device_put(store_conn *c, const char *tenant, const char *id, const device_row *row,
                     const char *versions, bool create_only, bool replace_only, store_doc *out,
                     bool *created, seg_error *err)
{
    const char *p[25];
    p[0] = tenant;
    p[1] = id;
    memcpy(p + 2, row->scalar, sizeof row->scalar);
    p[20] = row->tags_json;
    p[21] = row->attributes_json;
    p[22] = versions;
    p[23] = create_only ? "t" : "f";
    p[24] = replace_only ? "t" : "f";
    PGresult *res = store_run(c, STMT_DEVICE_PUT, p, err);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        return STORE_STALE;
    store_doc_of(res, 0, 0, 1, out);
    *created = PQgetvalue(res, 0, 2)[0] == 't';
    return STORE_DONE;
}

int store_device_get(store_conn *c, const char *tenant, const char *id, store_doc *out,
                     seg_error *err)
{
    const char *p[2] = {tenant, id};
    return store_one_doc(c, STMT_DEVICE_GET, p, out, err);
}

int store_device_delete(store_conn *c, const char *tenant, const char *id, const char *versions,
                        seg_error *err)
{
    const char *p[3] = {tenant, id, versions};
    return store_deleted(c, STMT_DEVICE_DELETE, p, err);
}

int store_device_list(store_conn *c, const char *tenant, const device_list_query *q,
                      store_page *out, seg_error *err)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", q->limit + 1);
    const char *p[5] = {tenant, q->after_us, q->after_id, q->updated_since_us, limit};
    int lag;
    PGresult *res = store_run_list(c, STMT_DEVICE_LIST, p, &lag, err);
    int rc = res ? store_page_of(c, res, q->limit, out, err) : -1;
    out->replica_lag_ms = lag;
    return rc;
}

int store_device_bulk(store_conn *c, bool delete, const char *tenant, const char *records,
                      store_bulk_rows *out, seg_error *err)
{
    if (!delete)
        return store_bulk(c, STMT_DEVICE_BULK_UPSERT, tenant, records, out, err);
    /* ["a","b"] → {"a","b"}, the text[] STMT_DEVICE_BULK_DELETE takes: a device id holds
     * no double quote and no backslash, so each JSON string is already the array literal's
     * quoted element */
    size_t len = strlen(records);
    char *ids = malloc(len + 1);
    if (!ids) {
        err_set(err, 500, "internal", "out of memory");
        return -1;
    }
    memcpy(ids, records, len + 1);
    if (len >= 2 && ids[0] == '[' && ids[len - 1] == ']') {
        ids[0] = '{';
        ids[len - 1] = '}';
    }
    int rc = store_bulk(c, STMT_DEVICE_BULK_DELETE, tenant, ids, out, err);
    free(ids);
    return rc;
}
