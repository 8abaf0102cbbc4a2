/* Devices as the handlers see them: typed results and the representation as PostgreSQL
 * writes it; the statements' columns stay in here. */
#ifndef SEGMENTD_STORE_DEVICES_H
#define SEGMENTD_STORE_DEVICES_H

#include <stdbool.h>

#include "core/model.h"
#include "store/segments.h"

/* PUT: writes row as device id. versions (If-Match, bigint[] text) replaces only those
 * versions; create_only (If-None-Match: *) refuses an existing device, replace_only
 * (If-Match: *) a missing one. STORE_DONE with out and *created, STORE_STALE when a
 * precondition failed (nothing written), or -1 with err. */
int store_device_put(store_conn *c, const char *tenant, const char *id, const device_row *row,
                     const char *versions, bool create_only, bool replace_only, store_doc *out,
                     bool *created, seg_error *err) MUSTCHECK;
int store_device_get(store_conn *c, const char *tenant, const char *id, store_doc *out,
                     seg_error *err) MUSTCHECK;
int store_device_delete(store_conn *c, const char *tenant, const char *id, const char *versions,
                        seg_error *err) MUSTCHECK;
/* A page in (updated_at, id) order; next_key is "µs:id" of the last one shown. */
int store_device_list(store_conn *c, const char *tenant, const device_list_query *q,
                      store_page *out, seg_error *err) MUSTCHECK;

/* A bulk upsert (POST /v1/devices/bulk) or delete (bulk-delete) through store_bulk:
 * records is the JSON array of the items' records (handlers/bulk_items.c), whole devices or
 * bare id strings. The rows are (id, representation) of each device written or deleted. */
int store_device_bulk(store_conn *c, bool delete, const char *tenant, const char *records,
                      store_bulk_rows *out, seg_error *err) MUSTCHECK;

#endif
