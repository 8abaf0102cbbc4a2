/* Operational routes, no token needed: liveness, readiness, metrics, the spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/handlers.h"
#include "http/metrics.h"
#include "store/segments.h"

extern const unsigned char segmentd_openapi_yaml[];
extern const unsigned long segmentd_openapi_yaml_len;

static long long expected_migration;

void handlers_init(const seg_config *cfg)
{
    expected_migration = store_migrations_expected(cfg);
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
    store_stats s;
    char extra[3072];
    store_stats_get(&s);
    snprintf(extra, sizeof extra,
             "# HELP segmentd_db_pool_connections Database connections by state.\n"
             "# TYPE segmentd_db_pool_connections gauge\n"
             "segmentd_db_pool_connections{state=\"size\"} %d\n"
             "segmentd_db_pool_connections{state=\"in_use\"} %d\n"
             "segmentd_db_pool_connections{state=\"open\"} %d\n"
             "# HELP segmentd_db_pool_acquired_total Connections handed to requests.\n"
             "# TYPE segmentd_db_pool_acquired_total counter\n"
             "segmentd_db_pool_acquired_total %llu\n"
             "# HELP segmentd_db_pool_waits_total Requests that had to wait for a connection.\n"
             "# TYPE segmentd_db_pool_waits_total counter\n"
             "segmentd_db_pool_waits_total %llu\n"
             "# HELP segmentd_db_pool_timeouts_total Requests refused with 503 because no connection freed up.\n"
             "# TYPE segmentd_db_pool_timeouts_total counter\n"
             "segmentd_db_pool_timeouts_total %llu\n"
             "# HELP segmentd_db_errors_total Database errors (connect failures and failed statements).\n"
             "# TYPE segmentd_db_errors_total counter\n"
             "segmentd_db_errors_total %llu\n"
             "# HELP segmentd_db_reconnects_total Connections re-established after a loss.\n"
             "# TYPE segmentd_db_reconnects_total counter\n"
             "segmentd_db_reconnects_total %llu\n"
             "# HELP segmentd_db_pipeline_batches_total Pipelines of two or more statements sent (SEGMENTD_DB_PIPELINE).\n"
             "# TYPE segmentd_db_pipeline_batches_total counter\n"
             "segmentd_db_pipeline_batches_total %llu\n"
             "# HELP segmentd_db_pipeline_statements_total Statements sent in those pipelines.\n"
             "# TYPE segmentd_db_pipeline_statements_total counter\n"
             "segmentd_db_pipeline_statements_total %llu\n"
             "# HELP segmentd_db_pipeline_reruns_total Statements run again alone after another statement of their pipeline failed.\n"
             "# TYPE segmentd_db_pipeline_reruns_total counter\n"
             "segmentd_db_pipeline_reruns_total %llu\n"
             "# HELP segmentd_db_parts_total Statements sent as parts of one transaction (bulk creates stored while their body is read).\n"
             "# TYPE segmentd_db_parts_total counter\n"
             "segmentd_db_parts_total %llu\n",
             s.size, s.in_use, s.connected, s.acquired, s.waits, s.timeouts, s.errors, s.reconnects,
             s.batches, s.batched, s.reruns, s.parts);
    char *text = metrics_render(extra);
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
