/* Parameter order of the segment statements, in one place beside store/statements.c. */
#include "store/segments.h"

#include <stdio.h>

int store_aud_insert(store_conn *c, const char *tenant, const char *id, const aud_segment_in *in,
                     store_rows **out, seg_error *err)
{
    const char *p[10] = {tenant, id, in->management_type, in->name, in->owner_id,
                         in->size_is_null || !in->size[0] ? NULL : in->size, in->description,
                         in->properties, in->deprecated_properties, in->created_at};
    return store_exec(c, STMT_AUD_INSERT, p, out, err);
}

int store_aud_get(store_conn *c, const char *tenant, const char *id, store_rows **out,
                  seg_error *err)
{
    const char *p[2] = {tenant, id};
    return store_exec(c, STMT_AUD_GET, p, out, err);
}

int store_aud_update(store_conn *c, const char *tenant, const char *id, const aud_segment_in *in,
                     const char *versions, store_rows **out, seg_error *err)
{
    char mask[16];
    snprintf(mask, sizeof mask, "%u", in->set);
    const char *p[11] = {tenant, id, mask, versions,
                         in->management_type, in->name, in->owner_id[0] ? in->owner_id : NULL,
                         in->size_is_null || !in->size[0] ? NULL : in->size, in->description,
                         in->properties, in->deprecated_properties};
    return store_exec(c, STMT_AUD_UPDATE, p, out, err);
}

int store_aud_delete(store_conn *c, const char *tenant, const char *id, const char *versions,
                     store_rows **out, seg_error *err)
{
    const char *p[3] = {tenant, id, versions};
    return store_exec(c, STMT_AUD_DELETE, p, out, err);
}

int store_aud_list(store_conn *c, const char *tenant, const aud_list_query *q, store_rows **out,
                   seg_error *err)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", q->limit);
    const char *p[9] = {tenant, q->before_no, q->owner_id, q->management_type, q->name,
                        q->property, q->property_num, q->updated_since, limit};
    return store_exec(c, STMT_AUD_LIST, p, out, err);
}

int store_v1_insert(store_conn *c, const char *tenant, const char *id, const v1_segment_row *in,
                    store_rows **out, seg_error *err)
{
    const char *p[5] = {tenant, id, in->name, in->description, in->constraints};
    return store_exec(c, STMT_V1_INSERT, p, out, err);
}

int store_v1_get(store_conn *c, const char *tenant, const char *id, store_rows **out,
                 seg_error *err)
{
    const char *p[2] = {tenant, id};
    return store_exec(c, STMT_V1_GET, p, out, err);
}

int store_v1_update(store_conn *c, const char *tenant, const char *id, const v1_segment_row *in,
                    const char *versions, store_rows **out, seg_error *err)
{
    char mask[16];
    snprintf(mask, sizeof mask, "%u", in->set);
    const char *p[7] = {tenant, id, mask, versions, in->name,
                        in->description, in->constraints};
    return store_exec(c, STMT_V1_UPDATE, p, out, err);
}

int store_v1_delete(store_conn *c, const char *tenant, const char *id, const char *versions,
                    store_rows **out, seg_error *err)
{
    const char *p[3] = {tenant, id, versions};
    return store_exec(c, STMT_V1_DELETE, p, out, err);
}

int store_v1_list(store_conn *c, const char *tenant, const char *before_seq, const char *name,
                  int limit, store_rows **out, seg_error *err)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[4] = {tenant, before_seq, name, lim};
    return store_exec(c, STMT_V1_LIST, p, out, err);
}

int store_bulk(store_conn *c, stmt_id id, const char *tenant, const char *records,
               store_rows **out, seg_error *err)
{
    const char *p[2] = {tenant, records};
    return store_exec(c, id, p, out, err);
}
