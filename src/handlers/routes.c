/* The routing table: method + path pattern → handler, scope, body kind, id check. */
#include "auth/auth.h"
#include "handlers/handlers.h"

#define R AUTH_SCOPE_READ
#define W AUTH_SCOPE_WRITE
#define DR AUTH_SCOPE_DEVICES_READ
#define DW AUTH_SCOPE_DEVICES_WRITE
#define WH AUTH_SCOPE_WEBHOOKS
/* the last column, true: rate-limited as an evaluation (SEGMENTD_RATE_LIMIT_EVAL) */

const http_route handlers_routes[] = {
    {"GET", "/healthz", h_healthz, 0, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/readyz", h_readyz, 0, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/metrics", h_metrics, 0, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/openapi.yaml", h_openapi, 0, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/docs", h_docs, 0, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/docs/{asset}", h_docs_asset, 0, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},

    {"POST", "/audiences/segments", h_aud_create, W, BODY_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"POST", "/audiences/segments/bulk", h_aud_bulk_create, W, BODY_BULK_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"PATCH", "/audiences/segments/bulk", h_aud_bulk_update, W, BODY_BULK_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"POST", "/audiences/segments/bulk-delete", h_aud_bulk_delete, W, BODY_BULK_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"PATCH", "/audiences/segments", h_aud_replace, W, BODY_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/audiences/segments", h_aud_list, R, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/audiences/segments/{id}", h_aud_get, R, BODY_NONE, h_check_uuid, "segment id", NULL, NULL, NULL, NULL, false},
    {"PATCH", "/audiences/segments/{id}", h_aud_merge, W, BODY_MERGE_PATCH, h_check_uuid, "segment id", NULL, NULL, NULL, NULL, false},
    {"DELETE", "/audiences/segments/{id}", h_aud_delete, W, BODY_NONE, h_check_uuid, "segment id", NULL, NULL, NULL, NULL, false},
    {"POST", "/audiences/segments/{id}/end-date", h_aud_end_date, W, BODY_JSON, h_check_uuid, "segment id", NULL, NULL, NULL, NULL, false},
    {"POST", "/audiences/segments/preview", h_aud_preview, R, BODY_JSON, NULL, NULL, NULL, NULL, NULL, NULL, true},
    {"GET", "/audiences/segments/{id}/count", h_aud_count, R, BODY_NONE, h_check_uuid, "segment id", NULL, NULL, NULL, NULL, true},
    {"GET", "/audiences/segments/{id}/members", h_aud_members, R, BODY_NONE, h_check_uuid, "segment id", NULL, NULL, NULL, NULL, true},
    {"PATCH", "/audiences/segments/{id}/members", h_aud_members_patch, W, BODY_JSON, h_check_uuid, "segment id", NULL, NULL, NULL, NULL, false},
    {"GET", "/audiences/segments/{id}/members/{deviceId}", h_aud_member_check, R, BODY_NONE, h_check_uuid,
     "segment id", NULL, h_check_device_id, "device id", "/path/deviceId", false},
    {"GET", "/audiences/segments/{id}/history", h_aud_history, R, BODY_NONE, h_check_uuid, "segment id", NULL, NULL, NULL, NULL, false},

    {"POST", "/v1/segments", h_v1_create, W, BODY_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"POST", "/v1/segments/bulk", h_v1_bulk_create, W, BODY_BULK_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"PATCH", "/v1/segments/bulk", h_v1_bulk_update, W, BODY_BULK_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"POST", "/v1/segments/bulk-delete", h_v1_bulk_delete, W, BODY_BULK_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"PATCH", "/v1/segments", h_v1_patch, W, BODY_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/v1/segments", h_v1_list, R, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/v1/segments/{id}", h_v1_get, R, BODY_NONE, h_check_seg_id, "segment id", NULL, NULL, NULL, NULL, false},
    {"DELETE", "/v1/segments/{id}", h_v1_delete, W, BODY_NONE, h_check_seg_id, "segment id", NULL, NULL, NULL, NULL, false},
    {"POST", "/v1/segments/{id}/end-date", h_v1_end_date, W, BODY_JSON, h_check_seg_id, "segment id", NULL, NULL, NULL, NULL, false},
    {"POST", "/v1/segments/preview", h_v1_preview, R, BODY_JSON, NULL, NULL, NULL, NULL, NULL, NULL, true},
    {"GET", "/v1/segments/{id}/count", h_v1_count, R, BODY_NONE, h_check_seg_id, "segment id", NULL, NULL, NULL, NULL, true},
    {"GET", "/v1/segments/{id}/members", h_v1_members, R, BODY_NONE, h_check_seg_id, "segment id", NULL, NULL, NULL, NULL, true},
    {"PATCH", "/v1/segments/{id}/members", h_v1_members_patch, W, BODY_JSON, h_check_seg_id, "segment id", NULL, NULL, NULL, NULL, false},
    {"GET", "/v1/segments/{id}/members/{deviceId}", h_v1_member_check, R, BODY_NONE, h_check_seg_id,
     "segment id", NULL, h_check_device_id, "device id", "/path/deviceId", false},
    {"GET", "/v1/segments/{id}/history", h_v1_history, R, BODY_NONE, h_check_seg_id, "segment id", NULL, NULL, NULL, NULL, false},

    {"GET", "/v1/devices", h_device_list, DR, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"POST", "/v1/devices/imports", NULL, DW, BODY_STREAM, NULL, NULL, &h_import_stream, NULL, NULL, NULL, false},
    {"GET", "/v1/devices/imports", h_import_list, DR, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/v1/devices/imports/{id}", h_import_get, DR, BODY_NONE, h_check_import_id, "import id", NULL, NULL, NULL, NULL, false},
    {"POST", "/v1/devices/bulk", h_device_bulk_upsert, DW, BODY_BULK_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"POST", "/v1/devices/bulk-delete", h_device_bulk_delete, DW, BODY_BULK_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/v1/devices/{id}", h_device_get, DR, BODY_NONE, h_check_device_id, "device id", NULL, NULL, NULL, NULL, false},
    {"PUT", "/v1/devices/{id}", h_device_put, DW, BODY_JSON, h_check_device_id, "device id", NULL, NULL, NULL, NULL, false},
    {"PATCH", "/v1/devices/{id}", h_device_patch, DW, BODY_MERGE_PATCH, h_check_device_id, "device id", NULL, NULL, NULL, NULL, false},
    {"DELETE", "/v1/devices/{id}", h_device_delete, DW, BODY_NONE, h_check_device_id, "device id", NULL, NULL, NULL, NULL, false},
    {"GET", "/v1/devices/{id}/segments", h_device_segments, R, BODY_NONE, h_check_device_id, "device id", NULL, NULL, NULL, NULL, false},

    {"POST", "/v1/webhooks", h_webhook_create, WH, BODY_JSON, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/v1/webhooks", h_webhook_list, WH, BODY_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"GET", "/v1/webhooks/{id}", h_webhook_get, WH, BODY_NONE, h_check_webhook_id, "webhook id", NULL, NULL, NULL, NULL, false},
    {"DELETE", "/v1/webhooks/{id}", h_webhook_delete, WH, BODY_NONE, h_check_webhook_id, "webhook id", NULL, NULL, NULL, NULL, false},
    {"POST", "/v1/webhooks/{id}/rotate-secret", h_webhook_rotate, WH, BODY_NONE, h_check_webhook_id, "webhook id", NULL, NULL, NULL, NULL, false},
    {"GET", "/v1/webhooks/{id}/deliveries", h_webhook_deliveries, WH, BODY_NONE, h_check_webhook_id, "webhook id", NULL, NULL, NULL, NULL, false},
    {"POST", "/v1/webhooks/{id}/deliveries/{delivery}/retry", h_webhook_retry, WH, BODY_NONE, h_check_webhook_id,
     "webhook id", NULL, h_check_delivery_id, "delivery id", "/path/delivery", false},
};

const size_t handlers_n_routes = sizeof handlers_routes / sizeof handlers_routes[0];
