/* Prometheus exposition (core/metrics.h): request counters by route and status, latency
 * histograms (cumulative buckets, _sum, _count), unmatched paths, shards summed across
 * threads, and the families providers write. The metrics are process-wide: each test
 * observes routes of its own. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/metrics.h"

/* Names and label sets, to keep the expected lines readable. */
#define REQ "segmentd_http_requests_total"
#define DUR "segmentd_http_request_duration_seconds"
#define HZ "{route=\"/healthz\",method=\"GET\""
#define UN "{route=\"unmatched\",method=\"any\""
#define DEL "{route=\"/v1/segments/{id}\",method=\"DELETE\""

#define R_HEALTHZ 1
#define R_LIST 2    /* labelled, never observed */
#define R_DELETE 3  /* observed from several threads */

static int setup(void **state)
{
    metrics_route(R_HEALTHZ, "GET", "/healthz");
    metrics_route(R_LIST, "GET", "/v1/segments");
    metrics_route(R_DELETE, "DELETE", "/v1/segments/{id}");
    metrics_route(0, "PUT", "/zero");                    /* 0 is the unmatched path's */
    metrics_route(METRICS_MAX_ROUTES + 1, "PUT", "/big"); /* past the table: ignored */
    return 0;
}

/* The rendering, which must hold every line of want (each whole, in this order, one after
 * the other). */
static void has_block(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("the exposition lacks:\n%s\n--- it is:\n%s", want, text);
    /* whole lines: starts after a newline (or at the start) */
    const char *at = strstr(text, want);
    assert_true(at == text || at[-1] == '\n');
    assert_int_equal(want[strlen(want) - 1], '\n');
}

static char *render(void)
{
    char *t = metrics_render();
    assert_non_null(t);
    return t;
}

static void test_counters_and_histogram(void **state)
{
    metrics_observe(R_HEALTHZ, 200, 400);       /* 0.0004 s */
    metrics_observe(R_HEALTHZ, 200, 500);       /* 0.0005 s: on a bound, in its bucket */
    metrics_observe(R_HEALTHZ, 200, 3000);      /* 0.003 s */
    metrics_observe(R_HEALTHZ, 503, 2000000);   /* 2 s */
    metrics_observe(R_HEALTHZ, 418, 5000000);   /* 5 s, a status of no label of its own */
    char *t = render();
    has_block(t, "# HELP segmentd_http_requests_total HTTP requests by route, method and status.\n"
                 "# TYPE segmentd_http_requests_total counter\n");
    has_block(t, REQ HZ ",status=\"200\"} 3\n"
                 REQ HZ ",status=\"503\"} 1\n"
                 REQ HZ ",status=\"other\"} 1\n");
    has_block(t, "# HELP segmentd_http_request_duration_seconds Request latency by route.\n"
                 "# TYPE segmentd_http_request_duration_seconds histogram\n");
#define B DUR "_bucket" HZ ",le="
    has_block(t, B "\"0.0005\"} 2\n" B "\"0.001\"} 2\n" B "\"0.0025\"} 2\n" B "\"0.005\"} 3\n"
                 B "\"0.01\"} 3\n" B "\"0.025\"} 3\n" B "\"0.05\"} 3\n" B "\"0.1\"} 3\n"
                 B "\"0.25\"} 3\n" B "\"0.5\"} 3\n" B "\"1\"} 3\n" B "\"2.5\"} 4\n"
                 B "\"+Inf\"} 5\n"
                 DUR "_sum" HZ "} 7.003900\n"
                 DUR "_count" HZ "} 5\n");
#undef B
    /* the counters come before the histograms */
    assert_true(strstr(t, "segmentd_http_requests_total{route=\"/healthz\"") <
                strstr(t, "# TYPE segmentd_http_request_duration_seconds histogram"));
    /* a route never observed has no sample; out-of-table labels were ignored */
    assert_null(strstr(t, "/v1/segments\""));
    assert_null(strstr(t, "/zero"));
    assert_null(strstr(t, "/big"));
    free(t);

    metrics_observe(R_HEALTHZ, 200, 1);
    t = render();
    has_block(t, REQ HZ ",status=\"200\"} 4\n");
    has_block(t, DUR "_count" HZ "} 6\n");
    has_block(t, DUR "_sum" HZ "} 7.003901\n");
    free(t);
}

static void test_unmatched(void **state)
{
    metrics_observe(0, 404, 100);
    metrics_observe(R_DELETE + 1, 404, 100);            /* labelled by no metrics_route */
    metrics_observe(METRICS_MAX_ROUTES + 1, 404, 100);
    metrics_observe(SIZE_MAX, 405, 100);
    char *t = render();
    has_block(t, REQ UN ",status=\"404\"} 3\n"
                 REQ UN ",status=\"405\"} 1\n");
    has_block(t, DUR "_bucket" UN ",le=\"0.0005\"} 4\n");
    has_block(t, DUR "_bucket" UN ",le=\"+Inf\"} 4\n"
                 DUR "_sum" UN "} 0.000400\n"
                 DUR "_count" UN "} 4\n");
    /* unmatched comes first, in route order */
    assert_true(strstr(t, "route=\"unmatched\"") < strstr(t, "route=\"/healthz\""));
    free(t);
}

static void *observe_many(void *arg)
{
    for (int i = 0; i < 1000; i++)
        metrics_observe(R_DELETE, 204, 20000); /* 0.02 s */
    return NULL;
}

static void test_threads_summed(void **state)
{
    pthread_t th[20]; /* more threads than shards: some share one */
    for (int i = 0; i < 20; i++)
        assert_int_equal(pthread_create(&th[i], NULL, observe_many, NULL), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    char *t = render();
    has_block(t, REQ DEL ",status=\"204\"} 20000\n");
#define B DUR "_bucket" DEL ",le="
    has_block(t, B "\"0.01\"} 0\n" B "\"0.025\"} 20000\n");
#undef B
    has_block(t, DUR "_sum" DEL "} 400.000000\n"
                 DUR "_count" DEL "} 20000\n");
    free(t);
}

static int provider_calls;

static void pool_provider(metrics_out *o)
{
    provider_calls++;
    metrics_family(o, "segmentd_pool_connections", "gauge", "Pool sessions by state.");
    metrics_sample(o, "segmentd_pool_connections", "state=\"idle\"", 3);
    metrics_sample(o, "segmentd_pool_connections", "state=\"busy\"", 1);
    metrics_family(o, "segmentd_pool_waits_total", "counter", "Borrowers that waited.");
    metrics_sample(o, "segmentd_pool_waits_total", "", 18446744073709551615ULL);
}

static void big_provider(metrics_out *o)
{
    metrics_family(o, "segmentd_test_big", "gauge", "Many samples, past the first buffer.");
    for (unsigned i = 0; i < 3000; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "i=\"%u\"", i);
        metrics_sample(o, "segmentd_test_big", labels, i);
    }
}

static void test_providers(void **state)
{
    metrics_provide(pool_provider);
    metrics_provide(big_provider);
    char *t = render();
    assert_int_equal(provider_calls, 1);
    has_block(t, "# HELP segmentd_pool_connections Pool sessions by state.\n"
                 "# TYPE segmentd_pool_connections gauge\n"
                 "segmentd_pool_connections{state=\"idle\"} 3\n"
                 "segmentd_pool_connections{state=\"busy\"} 1\n"
                 "# HELP segmentd_pool_waits_total Borrowers that waited.\n"
                 "# TYPE segmentd_pool_waits_total counter\n"
                 "segmentd_pool_waits_total 18446744073709551615\n"
                 "# HELP segmentd_test_big Many samples, past the first buffer.\n"
                 "# TYPE segmentd_test_big gauge\n"
                 "segmentd_test_big{i=\"0\"} 0\n");
    /* after the built-in families, in registration order, the last sample last */
    assert_true(strstr(t, "# HELP segmentd_pool_connections") >
                strstr(t, "# TYPE segmentd_http_request_duration_seconds histogram"));
    const char *last = "segmentd_test_big{i=\"2999\"} 2999\n";
    assert_true(strlen(t) > 16384);
    assert_string_equal(t + strlen(t) - strlen(last), last);
    free(t);

    t = render(); /* providers run at every rendering */
    assert_int_equal(provider_calls, 2);
    has_block(t, "segmentd_pool_connections{state=\"busy\"} 1\n");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_and_histogram),
        cmocka_unit_test(test_unmatched),
        cmocka_unit_test(test_threads_summed),
        cmocka_unit_test(test_providers),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
