/* Every route handler, wired into the routing table by main.c. */
#ifndef SEGMENTD_HANDLERS_H
#define SEGMENTD_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/error.h"
#include "http/request.h"

/* The routing table (handlers/routes.c), handed to http_server_start by main.c. */
extern const http_route handlers_routes[];
extern const size_t handlers_n_routes;

/* Settings the operational handlers need (readyz's expected migration version). */
void handlers_init(const seg_config *cfg);

void h_healthz(http_request *rq);
void h_readyz(http_request *rq);
void h_metrics(http_request *rq);
void h_openapi(http_request *rq);
/* The API reference page (handlers/docs.c): GET /docs and GET /docs/{asset}. */
void h_docs(http_request *rq);
void h_docs_asset(http_request *rq);

void h_aud_create(http_request *rq);
void h_aud_replace(http_request *rq);     /* PATCH /audiences/segments (the body names the id) */
void h_aud_get(http_request *rq);
void h_aud_merge(http_request *rq);       /* PATCH /audiences/segments/{id} (RFC 7396) */
void h_aud_delete(http_request *rq);
void h_aud_end_date(http_request *rq);    /* POST /audiences/segments/{id}/end-date */
void h_aud_list(http_request *rq);

void h_v1_create(http_request *rq);
void h_v1_patch(http_request *rq);
void h_v1_get(http_request *rq);
void h_v1_delete(http_request *rq);
void h_v1_end_date(http_request *rq);     /* POST /v1/segments/{id}/end-date */
void h_v1_list(http_request *rq);

void h_device_put(http_request *rq);      /* PUT /v1/devices/{id}: create or replace */
void h_device_patch(http_request *rq);    /* PATCH /v1/devices/{id} (RFC 7396) */
void h_device_get(http_request *rq);
void h_device_delete(http_request *rq);
void h_device_list(http_request *rq);     /* GET /v1/devices, oldest change first */

/* Device imports: POST /v1/devices/imports takes its body as a stream
 * (handlers/import_stream.c, its thread in import_receiver.c); the GETs read what the store keeps (handlers/imports.c). */
extern const http_stream_ops h_import_stream;
void h_import_get(http_request *rq);
void h_import_list(http_request *rq);     /* newest first */
/* The receivers' settings; and at shutdown, after the loops stopped: every import still
 * being received fails (interrupted), waiting at most wait_s for them. */
void h_imports_init(const seg_config *cfg);
void h_imports_stop(int wait_s);

/* Bulk operations (handlers/bulk.c): segments' create, update, delete of up to 1000 items;
 * devices' upsert and delete of up to 10 000. */
void h_aud_bulk_create(http_request *rq);
void h_aud_bulk_update(http_request *rq);
void h_aud_bulk_delete(http_request *rq);
void h_v1_bulk_create(http_request *rq);
void h_v1_bulk_update(http_request *rq);
void h_v1_bulk_delete(http_request *rq);
void h_device_bulk_upsert(http_request *rq); /* POST /v1/devices/bulk */
void h_device_bulk_delete(http_request *rq); /* POST /v1/devices/bulk-delete */

/* Evaluation (handlers/evaluate.c, members.c, device_segments.c), on both dialects. */
void h_aud_count(http_request *rq);         /* GET …/{id}/count */
void h_v1_count(http_request *rq);
void h_aud_members(http_request *rq);       /* GET …/{id}/members */
void h_v1_members(http_request *rq);
void h_aud_member_check(http_request *rq);  /* GET …/{id}/members/{deviceId} */
void h_v1_member_check(http_request *rq);
void h_aud_members_patch(http_request *rq); /* PATCH …/{id}/members */
void h_v1_members_patch(http_request *rq);
void h_aud_preview(http_request *rq);       /* POST …/preview */
void h_v1_preview(http_request *rq);
void h_device_segments(http_request *rq);   /* GET /v1/devices/{id}/segments */
/* History (handlers/history.c): GET …/{id}/history, a segment's revisions newest first. */
void h_aud_history(http_request *rq);
void h_v1_history(http_request *rq);
/* The lookup's segment watch (its cache is dropped in every process when segments change):
 * started after the store, stopped before it closes. */
int h_lookup_start(const seg_config *cfg, seg_error *err) MUSTCHECK;
void h_lookup_stop(void);
/* At shutdown, after the loops stopped: member exports still reading end, waiting at most
 * wait_s for their threads (they hold evaluation sessions). */
void h_exports_stop(int wait_s);

/* Webhook subscriptions and their delivery log (handlers/webhooks.c); init keeps the SSRF
 * setting that the create's check of a literal address needs. */
void h_webhooks_init(const seg_config *cfg);
void h_webhook_create(http_request *rq);      /* POST /v1/webhooks */
void h_webhook_list(http_request *rq);        /* GET /v1/webhooks, newest first */
void h_webhook_get(http_request *rq);
void h_webhook_delete(http_request *rq);
void h_webhook_rotate(http_request *rq);      /* POST /v1/webhooks/{id}/rotate-secret */
void h_webhook_deliveries(http_request *rq);  /* GET /v1/webhooks/{id}/deliveries, newest first */
void h_webhook_retry(http_request *rq);       /* POST …/deliveries/{delivery}/retry */

/* Path parameter checks for the router. */
bool h_check_uuid(const char *value, const char **why);
bool h_check_seg_id(const char *value, const char **why);
bool h_check_device_id(const char *value, const char **why);
bool h_check_import_id(const char *value, const char **why);
bool h_check_webhook_id(const char *value, const char **why);
bool h_check_delivery_id(const char *value, const char **why);

#endif
