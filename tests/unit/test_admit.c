/* Admission (http/admit.h): a request decided from its line and headers with the server's
 * routing table: request id, Transfer-Encoding, 404/405/400, token and scope, media type,
 * Content-Length against the route's limit, Idempotency-Key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "core/config.h"
#include "handlers/handlers.h"
#include "http/admit.h"
#include "http/router.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define MAX_BODY 4096
#define MAX_BULK 16384
#define UUID "0190a7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6b"

static seg_config cfg;
static http_router router;
static char *bearer_r, *bearer_w, *bearer_rw;

/* The request's headers: NULL-terminated name, value pairs. */
typedef struct headers {
    const char *kv[16][2];
} headers;

static const char *header(void *cls, const char *name)
{
    headers *h = cls;
    for (size_t i = 0; i < 16 && h->kv[i][0]; i++)
        if (!strcasecmp(h->kv[i][0], name))
            return h->kv[i][1];
    return NULL;
}

static char *bearer(const char *scope)
{
    seg_error e;
    err_clear(&e);
    char *tok = auth_mint("acme", "tester", scope, 3600, (long long)time(NULL), &e);
    if (!tok)
        return NULL;
    char *out = malloc(strlen(tok) + 8);
    if (out)
        sprintf(out, "Bearer %s", tok);
    free(tok);
    return out;
}

static int setup(void **state)
{
    seg_error e;
    err_clear(&e);
    if (config_load_from_string(&cfg,
                                "SEGMENTD_JWT_SECRET=" SECRET "\n"
                                "SEGMENTD_MAX_BODY_BYTES=4096\n"
                                "SEGMENTD_MAX_BULK_BODY_BYTES=16384\n",
                                &e))
        return -1;
    auth_init(&cfg);
    if (router_init(&router, handlers_routes, handlers_n_routes))
        return -1;
    bearer_r = bearer("segments:read");
    bearer_w = bearer("segments:write");
    bearer_rw = bearer("segments:read segments:write");
    return bearer_r && bearer_w && bearer_rw ? 0 : -1;
}

static int teardown(void **state)
{
    free(bearer_r);
    free(bearer_w);
    free(bearer_rw);
    config_free(&cfg);
    return 0;
}

/* The route of the table with this method and pattern. */
static const http_route *route_of(const char *method, const char *pattern)
{
    for (size_t i = 0; i < handlers_n_routes; i++)
        if (!strcmp(handlers_routes[i].method, method) &&
            !strcmp(handlers_routes[i].pattern, pattern))
            return &handlers_routes[i];
    fail_msg("no route %s %s", method, pattern);
    return NULL;
}

/* A fresh request (it is big: on the heap) put through admission with these headers;
 * asserts the outcome: admitted (status 0) or refused with this status and code. */
static http_request *decide(const char *method, const char *url, headers *h, http_admission *adm,
                            int status, const char *code)
{
    http_request *rq = calloc(1, sizeof *rq);
    assert_non_null(rq);
    err_clear(&rq->err);
    memset(adm, 0xff, sizeof *adm); /* http_admit must reset every flag */
    int rc = http_admit(&router, &cfg, method, url, header, h, rq, adm);
    if (rc != (status ? -1 : 0) || rq->err.status != status ||
        (code && (!rq->err.code || strcmp(rq->err.code, code))))
        fail_msg("%s %s: rc %d status %d code %s (%s), expected %d %s", method, url, rc,
                 rq->err.status, rq->err.code ? rq->err.code : "(none)", rq->err.detail, status,
                 code ? code : "");
    return rq;
}

static http_request *refused(const char *method, const char *url, headers *h, int status,
                             const char *code, http_admission *adm)
{
    return decide(method, url, h, adm, status, code);
}

static http_request *accepted(const char *method, const char *url, headers *h, http_admission *adm)
{
    return decide(method, url, h, adm, 0, NULL);
}

static bool hex16(const char *s)
{
    if (strlen(s) != 16)
        return false;
    for (int i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void test_request_id_echoed(void **state)
{
    headers h = {{{"x-request-id", "client-42:a.b_c"}}};
    http_admission adm;
    http_request *rq = accepted("GET", "/healthz", &h, &adm);
    assert_string_equal(rq->request_id, "client-42:a.b_c");
    assert_ptr_equal(rq->route, route_of("GET", "/healthz"));
    assert_false(adm.authenticated);
    assert_false(adm.close_after);
    assert_false(adm.too_big);
    free(rq);

    char id64[65];
    memset(id64, 'Z', 64);
    id64[64] = '\0';
    h.kv[0][1] = id64;
    rq = accepted("GET", "/healthz", &h, &adm);
    assert_string_equal(rq->request_id, id64);
    free(rq);

    /* refused requests carry the id too */
    h.kv[0][1] = "refused-1";
    rq = refused("GET", "/nowhere", &h, 404, "not_found", &adm);
    assert_string_equal(rq->request_id, "refused-1");
    free(rq);
}

static void test_request_id_generated(void **state)
{
    char id65[66];
    memset(id65, 'a', 65);
    id65[65] = '\0';
    const char *unusable[] = {NULL, "", "has space", "quote\"", id65, "caf\xc3\xa9"};
    char prev[72] = "";
    for (size_t i = 0; i < sizeof unusable / sizeof unusable[0]; i++) {
        headers h = {{{"X-Request-Id", unusable[i]}}};
        http_admission adm;
        http_request *rq = accepted("GET", "/healthz", unusable[i] ? &h : &(headers){0}, &adm);
        if (!hex16(rq->request_id))
            fail_msg("request id \"%s\" for \"%s\" is not 16 hex digits", rq->request_id,
                     unusable[i] ? unusable[i] : "(none)");
        assert_string_not_equal(rq->request_id, prev);
        strcpy(prev, rq->request_id);
        free(rq);
    }
}

static void test_transfer_encoding(void **state)
{
    http_admission adm;
    headers h = {{{"Transfer-Encoding", "gzip"}, {"Authorization", bearer_w},
                  {"Content-Type", "application/json"}}};
    http_request *rq =
        refused("POST", "/v1/segments", &h, 501, "unsupported_transfer_encoding", &adm);
    assert_true(adm.close_after);
    assert_false(adm.too_big);
    assert_non_null(strstr(rq->err.detail, "\"gzip\""));
    free(rq);
    /* before routing: an unknown path is refused the same way */
    h.kv[0][1] = "gzip, chunked";
    rq = refused("GET", "/nowhere", &h, 501, "unsupported_transfer_encoding", &adm);
    assert_true(adm.close_after);
    free(rq);
    h.kv[0][1] = "Chunked";
    rq = accepted("POST", "/v1/segments", &h, &adm);
    assert_false(adm.close_after);
    free(rq);
}

static void test_not_found(void **state)
{
    headers h = {{{NULL}}};
    http_admission adm;
    const char *paths[] = {"/", "/v1", "/v1/segments/", "/audiences/segments/" UUID "/x",
                           "/healthz/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        http_request *rq = refused("GET", paths[i], &h, 404, "not_found", &adm);
        assert_false(adm.close_after);
        assert_null(rq->route);
        free(rq);
    }
}

static void test_method_not_allowed(void **state)
{
    headers h = {{{NULL}}};
    http_admission adm;
    http_request *rq = refused("PUT", "/v1/segments", &h, 405, "method_not_allowed", &adm);
    assert_string_equal(rq->location, "POST, PATCH, GET, HEAD");
    assert_string_equal(rq->err.detail, "PUT is not allowed here: use POST, PATCH, GET, HEAD");
    free(rq);
    rq = refused("POST", "/audiences/segments/" UUID, &h, 405, "method_not_allowed", &adm);
    assert_string_equal(rq->location, "GET, HEAD, PATCH, DELETE");
    free(rq);
    rq = refused("DELETE", "/healthz", &h, 405, "method_not_allowed", &adm);
    assert_string_equal(rq->location, "GET, HEAD");
    free(rq);
}

static void test_bad_path_id(void **state)
{
    headers h = {{{NULL}}}; /* no token: the id is checked first */
    http_admission adm;
    http_request *rq = refused("GET", "/v1/segments/abc", &h, 400, "invalid_path_parameter", &adm);
    assert_ptr_equal(rq->route, route_of("GET", "/v1/segments/{id}"));
    assert_string_equal(rq->err.detail, "\"abc\" is not a valid segment id: expected \"seg_\" "
                                        "followed by 13 letters or digits");
    assert_int_equal(rq->err.n_items, 1);
    assert_string_equal(rq->err.items[0].pointer, "/path/id");
    assert_string_equal(rq->err.items[0].detail,
                        "expected \"seg_\" followed by 13 letters or digits");
    free(rq);

    rq = refused("DELETE", "/audiences/segments/0190a7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6", &h, 400,
                 "invalid_path_parameter", &adm);
    assert_ptr_equal(rq->route, route_of("DELETE", "/audiences/segments/{id}"));
    assert_int_equal(rq->err.n_items, 1);
    assert_string_equal(rq->err.items[0].pointer, "/path/id");
    assert_false(adm.authenticated);
    free(rq);
}

static void test_token_missing_or_invalid(void **state)
{
    http_admission adm;
    headers none = {{{NULL}}};
    http_request *rq = refused("GET", "/v1/segments", &none, 401, "unauthorized", &adm);
    assert_non_null(rq->err.www_authenticate);
    assert_false(adm.authenticated);
    free(rq);

    headers empty = {{{"Authorization", ""}}};
    rq = refused("GET", "/v1/segments", &empty, 401, "unauthorized", &adm);
    free(rq);

    const char *bad[] = {"Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer a.b.c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        headers h = {{{"Authorization", bad[i]}}};
        rq = refused("GET", "/v1/segments", &h, 401, "invalid_token", &adm);
        assert_false(adm.authenticated);
        free(rq);
    }

    /* a token signed with another secret */
    char *forged = strdup(bearer_rw);
    assert_non_null(forged);
    char *sig = strrchr(forged, '.') + 1;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    headers h = {{{"Authorization", forged}}};
    rq = refused("GET", "/v1/segments", &h, 401, "invalid_token", &adm);
    free(rq);
    free(forged);

    /* authentication before the media type */
    headers both = {{{"Content-Type", "text/plain"}}};
    rq = refused("POST", "/v1/segments", &both, 401, "unauthorized", &adm);
    free(rq);
}

static void test_wrong_scope(void **state)
{
    http_admission adm;
    headers r = {{{"Authorization", bearer_r}, {"Content-Type", "application/json"}}};
    http_request *rq = refused("POST", "/v1/segments", &r, 403, "insufficient_scope", &adm);
    assert_non_null(strstr(rq->err.www_authenticate, "segments:write"));
    assert_false(adm.authenticated);
    free(rq);
    headers w = {{{"Authorization", bearer_w}}};
    rq = refused("GET", "/audiences/segments", &w, 403, "insufficient_scope", &adm);
    assert_non_null(strstr(rq->err.www_authenticate, "segments:read"));
    free(rq);
    /* routes without a scope need no token at all */
    rq = accepted("GET", "/metrics", &(headers){{{"Authorization", "Bearer junk"}}}, &adm);
    assert_false(adm.authenticated);
    free(rq);
}

static void test_media_type(void **state)
{
    http_admission adm;
    headers h = {{{"Authorization", bearer_rw}, {"Content-Type", "text/plain"}}};
    http_request *rq = refused("POST", "/v1/segments", &h, 415, "unsupported_media_type", &adm);
    assert_string_equal(rq->err.detail,
                        "the body must be sent with Content-Type: application/json");
    assert_true(adm.authenticated);
    free(rq);

    h.kv[1][0] = "X-Other"; /* no Content-Type at all */
    rq = refused("POST", "/v1/segments", &h, 415, "unsupported_media_type", &adm);
    free(rq);

    /* merge-patch only where the route takes it */
    h.kv[1][0] = "Content-Type";
    h.kv[1][1] = "application/merge-patch+json";
    rq = refused("PATCH", "/v1/segments", &h, 415, "unsupported_media_type", &adm);
    free(rq);
    rq = refused("POST", "/audiences/segments", &h, 415, "unsupported_media_type", &adm);
    free(rq);
    rq = refused("POST", "/v1/segments/bulk", &h, 415, "unsupported_media_type", &adm);
    free(rq);
    rq = accepted("PATCH", "/audiences/segments/" UUID, &h, &adm);
    assert_int_equal(rq->err.status, 0);
    free(rq);

    h.kv[1][1] = "Application/JSON; charset=utf-8";
    rq = accepted("PATCH", "/audiences/segments/" UUID, &h, &adm);
    free(rq);
    rq = accepted("PATCH", "/v1/segments", &h, &adm);
    free(rq);

    h.kv[1][1] = "text/json";
    rq = refused("PATCH", "/audiences/segments/" UUID, &h, 415, "unsupported_media_type", &adm);
    assert_string_equal(rq->err.detail, "the body must be sent with Content-Type: "
                                        "application/merge-patch+json or application/json");
    free(rq);

    /* routes without a body do not look at it */
    rq = accepted("DELETE", "/audiences/segments/" UUID, &h, &adm);
    free(rq);
}

static void test_body_limits(void **state)
{
    assert_int_equal(http_body_limit(&cfg, route_of("POST", "/v1/segments")), MAX_BODY);
    assert_int_equal(http_body_limit(&cfg, route_of("PATCH", "/audiences/segments/{id}")),
                     MAX_BODY);
    assert_int_equal(http_body_limit(&cfg, NULL), MAX_BODY);
    const char *bulk[][2] = {{"POST", "/audiences/segments/bulk"},
                             {"PATCH", "/audiences/segments/bulk"},
                             {"POST", "/audiences/segments/bulk-delete"},
                             {"POST", "/v1/segments/bulk"},
                             {"PATCH", "/v1/segments/bulk"},
                             {"POST", "/v1/segments/bulk-delete"}};
    for (size_t i = 0; i < sizeof bulk / sizeof bulk[0]; i++)
        assert_int_equal(http_body_limit(&cfg, route_of(bulk[i][0], bulk[i][1])), MAX_BULK);
}

static void test_too_big(void **state)
{
    http_admission adm;
    headers h = {{{"Authorization", bearer_w}, {"Content-Type", "application/json"},
                  {"Content-Length", "4096"}}};
    http_request *rq = accepted("POST", "/v1/segments", &h, &adm);
    assert_false(adm.too_big);
    free(rq);

    h.kv[2][1] = "4097";
    rq = refused("POST", "/v1/segments", &h, 413, "body_too_large", &adm);
    assert_true(adm.too_big);
    assert_false(adm.close_after);
    assert_string_equal(rq->err.detail, "the body is 4097 bytes: at most 4096 bytes are accepted");
    free(rq);

    /* a bulk route has its own limit */
    h.kv[2][1] = "16384";
    rq = accepted("POST", "/v1/segments/bulk", &h, &adm);
    assert_false(adm.too_big);
    free(rq);
    h.kv[2][1] = "16385";
    rq = refused("PATCH", "/audiences/segments/bulk", &h, 413, "body_too_large", &adm);
    assert_true(adm.too_big);
    assert_string_equal(rq->err.detail,
                        "the body is 16385 bytes: at most 16384 bytes are accepted");
    free(rq);

    /* the media type is refused before the length */
    h.kv[1][1] = "text/plain";
    rq = refused("POST", "/v1/segments/bulk", &h, 415, "unsupported_media_type", &adm);
    assert_false(adm.too_big);
    free(rq);
}

static void test_admitted(void **state)
{
    http_admission adm;
    headers h = {{{"Authorization", bearer_r}, {"X-Request-Id", "r-1"}}};
    http_request *rq = accepted("GET", "/audiences/segments/" UUID, &h, &adm);
    assert_int_equal(rq->err.status, 0);
    assert_ptr_equal(rq->route, route_of("GET", "/audiences/segments/{id}"));
    assert_string_equal(rq->param, UUID);
    assert_string_equal(rq->principal.tenant, "acme");
    assert_string_equal(rq->principal.subject, "tester");
    assert_int_equal(rq->principal.scopes, AUTH_SCOPE_READ);
    assert_true(adm.authenticated);
    assert_false(adm.too_big);
    assert_false(adm.close_after);
    assert_string_equal(rq->request_id, "r-1");
    free(rq);

    /* HEAD is GET */
    rq = accepted("HEAD", "/v1/segments/seg_0123456789abc", &h, &adm);
    assert_ptr_equal(rq->route, route_of("GET", "/v1/segments/{id}"));
    assert_string_equal(rq->param, "seg_0123456789abc");
    free(rq);

    headers w = {{{"Authorization", bearer_rw}, {"Content-Type", "application/json"},
                  {"Content-Length", "2"}}};
    rq = accepted("POST", "/audiences/segments/bulk-delete", &w, &adm);
    assert_ptr_equal(rq->route, route_of("POST", "/audiences/segments/bulk-delete"));
    assert_int_equal(rq->principal.scopes, AUTH_SCOPE_READ | AUTH_SCOPE_WRITE);
    assert_string_equal(rq->param, "");
    assert_true(adm.authenticated);
    free(rq);
}

/* Idempotency-Key: kept on the POSTs (device imports' too, before their body), refused when
 * malformed, ignored on other methods. */
static void test_idempotency_key(void **state)
{
    http_admission adm;
    headers h = {{{"Authorization", bearer_rw}, {"Content-Type", "application/json"},
                  {"Idempotency-Key", "order-42 retry"}}};
    http_request *rq = accepted("POST", "/v1/segments", &h, &adm);
    assert_string_equal(rq->idempotency_key, "order-42 retry");
    free(rq);
    rq = accepted("POST", "/audiences/segments/" UUID "/end-date", &h, &adm);
    assert_string_equal(rq->idempotency_key, "order-42 retry");
    free(rq);
    rq = accepted("PATCH", "/v1/segments", &h, &adm);
    assert_null(rq->idempotency_key);
    free(rq);
    rq = accepted("POST", "/v1/segments/bulk", &h, &adm);
    assert_string_equal(rq->idempotency_key, "order-42 retry");
    free(rq);
    char *devices = bearer("devices:write");
    assert_non_null(devices);
    headers im = {{{"Authorization", devices}, {"Content-Type", "application/x-ndjson"},
                   {"Idempotency-Key", "import-1"}}};
    rq = accepted("POST", "/v1/devices/imports", &im, &adm);
    assert_string_equal(rq->idempotency_key, "import-1");
    free(rq);
    free(devices);
    h.kv[2][1] = "tab\there";
    rq = refused("POST", "/v1/segments", &h, 400, "invalid_idempotency_key", &adm);
    assert_string_equal(rq->err.items[0].pointer, "/header/Idempotency-Key");
    free(rq);
    h.kv[2][1] = "";
    free(refused("POST", "/audiences/segments", &h, 400, "invalid_idempotency_key", &adm));
    h.kv[2][1] = NULL;
    h.kv[2][0] = NULL;
    rq = accepted("POST", "/v1/segments", &h, &adm);
    assert_null(rq->idempotency_key);
    free(rq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_id_echoed),
        cmocka_unit_test(test_request_id_generated),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_bad_path_id),
        cmocka_unit_test(test_token_missing_or_invalid),
        cmocka_unit_test(test_wrong_scope),
        cmocka_unit_test(test_media_type),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_admitted),
        cmocka_unit_test(test_idempotency_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
