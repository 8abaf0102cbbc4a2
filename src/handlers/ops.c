/* Operational routes, no token needed: liveness, readiness, metrics, the spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/handlers.h"
#include "core/metrics.h"
#include "store/segments.h"

extern const unsigned char segmentd_openapi_yaml[];
extern const unsigned long segmentd_openapi_yaml_len;

static long long expected_migration;

void handlers_init(const seg_config *cfg)
{
    expected_migration = store_migrations_expected(cfg);
    h_imports_init(cfg);
    h_webhooks_init(cfg);
}

void h_healthz(http_request *rq)
{
    static const char body[] = "{\"status\":\"ok\"}";
    http_reply(rq, 200, "application/json", body, sizeof body - 1, NULL, NULL);
}

void h_readyz(http_request *rq)
{
    long long applied;
    store_conn *c = store_open(&rq->arena, &rq->err);
    if (!c || store_migration_applied(c, &applied, &rq->err))
        return;
    if (applied < expected_migration) {
        err_set(&rq->err, 503, "migrations_pending",
                "the database schema is at version %lld, this server needs %lld: run segmentd migrate",
                applied, expected_migration);
        rq->err.retry_after = 5;
        return;
    }
    http_reply_json(rq, 200, json_pack("{s:s, s:s, s:{s:I, s:I}}", "status", "ready", "database",
                                       "ok", "migrations", "applied", (json_int_t)applied,
                                       "expected", (json_int_t)expected_migration));
}

void h_metrics(http_request *rq)
{
    char *text = metrics_render();
    if (!text) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return;
    }
    http_reply(rq, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text), free, text);
}

void h_openapi(http_request *rq)
{
    http_reply(rq, 200, "application/yaml", (const char *)segmentd_openapi_yaml,
               (size_t)segmentd_openapi_yaml_len, NULL, NULL);
}
