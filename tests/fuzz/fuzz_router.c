/* libFuzzer target: the front end of a request. The input is a small HTTP request
 *
 *     METHOD URL\n  (Header: value\n)*  \n  body
 *
 * split as libmicrohttpd would, the path percent-decoded with the server's own function,
 * then decided by the admission unit (http/admit.c: request id, routing with the server's
 * table, authentication, media type, Content-Length) and checked against what the router
 * promises a handler; the If-Match and Accept parsers read the headers of every admitted
 * request. An Authorization value of @rw, @r or @w becomes a valid token. */
#include <strings.h>
#include <time.h>

#include "auth/auth.h"
#include "core/config.h"
#include "fuzz_common.h"
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "http/admit.h"
#include "http/request_parse.h"
#include "http/router.h"

#define MAX_HEADERS 64

typedef struct headers {
    size_t n;
    char *name[MAX_HEADERS], *value[MAX_HEADERS];
} headers;

/* libmicrohttpd 0.9.75 compares names without regard to case and returns the first match. */
static const char *header(void *cls, const char *name)
{
    headers *h = cls;
    for (size_t i = 0; i < h->n; i++)
        if (!strcasecmp(h->name[i], name))
            return h->value[i];
    return NULL;
}

static void add_header(headers *h, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (h->n >= MAX_HEADERS)
        return;
    h->name[h->n] = strndup(name, nlen);
    h->value[h->n] = strndup(value, vlen);
    if (!h->name[h->n] || !h->value[h->n])
        abort();
    h->n++;
}

static void headers_free(headers *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->name[i]);
        free(h->value[i]);
    }
}

static seg_config cfg;
static http_router router;

/* HS256 with a 32-byte secret, small body limits so that 413 is reachable. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    seg_error err;
    err_clear(&err);
    fuzz_seed_jansson();
    if (config_load_from_string(&cfg,
                                "SEGMENTD_JWT_SECRET=fuzz-secret-0123456789abcdef0123456789\n"
                                "SEGMENTD_MAX_BODY_BYTES=4096\n"
                                "SEGMENTD_MAX_BULK_BODY_BYTES=16384\n",
                                &err)) {
        fprintf(stderr, "fuzz config: %s\n", err.detail);
        abort();
    }
    auth_init(&cfg);
    if (router_init(&router, handlers_routes, handlers_n_routes))
        abort();
    return 0;
}

/* A token the server accepts, so that inputs get past authentication: the header value
 * "@rw", "@r" or "@w" is replaced with one carrying those scopes. */
static char *token_for(const char *value, size_t len)
{
    seg_error err;
    const char *scope;
    err_clear(&err);
    if (len == 3 && !memcmp(value, "@rw", 3))
        scope = "segments:read segments:write";
    else if (len == 2 && !memcmp(value, "@r", 2))
        scope = "segments:read";
    else if (len == 2 && !memcmp(value, "@w", 2))
        scope = "segments:write";
    else
        return NULL;
    char *tok = auth_mint("tenant-a", "fuzzer", scope, 3600, (long long)time(NULL), &err);
    FUZZ_CHECK(tok != NULL, "auth_mint: %s", err.detail);
    char *hdr = malloc(strlen(tok) + 8);
    if (!hdr)
        abort();
    sprintf(hdr, "Bearer %s", tok);
    free(tok);
    return hdr;
}

/* Checks router_match directly on the decoded path: a found route's pattern matches
 * segment for segment, and 405 lists only methods some route of the path has. */
static void check_router(const char *method, const char *path)
{
    const http_route *r = NULL;
    char param[96], param2[96], allow[128];
    const char *why = NULL;
    bool second = false;
    route_result rr = router_match(&router, method, path, &r, param, param2, sizeof param, allow,
                                   sizeof allow, &why, &second);
    if (rr == ROUTE_FOUND || rr == ROUTE_BAD_PARAM) {
        FUZZ_CHECK(r != NULL, "no route for a match");
        const char *m = strcmp(method, "HEAD") ? method : "GET";
        FUZZ_CHECK(!strcmp(r->method, m), "%s matched a %s route", method, r->method);
        FUZZ_CHECK(rr == ROUTE_FOUND || why != NULL, "bad param without a reason");
        if (!strchr(r->pattern, '{'))
            FUZZ_CHECK(!strcmp(r->pattern, path), "literal %s matched %s", r->pattern, path);
    } else if (rr == ROUTE_BAD_METHOD) {
        FUZZ_CHECK(allow[0] != '\0', "405 with an empty Allow");
    }
}

/* What an admitted request promises its handler. */
static void check_admitted(const http_request *rq, const http_admission *adm)
{
    const http_route *r = rq->route;
    const char *why = NULL;
    FUZZ_CHECK(r != NULL, "admitted without a route");
    FUZZ_CHECK(!adm->too_big && !adm->close_after, "admitted yet refused");
    if (strchr(r->pattern, '{')) {
        FUZZ_CHECK(rq->param[0] && !strchr(rq->param, '/'), "param \"%s\" for %s", rq->param,
                   r->pattern);
        FUZZ_CHECK(!r->check_param || r->check_param(rq->param, &why), "param \"%s\" fails %s",
                   rq->param, r->pattern);
    }
    if (r->scope)
        FUZZ_CHECK(adm->authenticated && rq->principal.tenant[0] &&
                       (rq->principal.scopes & r->scope) == r->scope,
                   "%s %s admitted without the scope", r->method, r->pattern);
}

/* A refusal is a problem the client can read, with a request id libmicrohttpd accepts as
 * a header value. */
static void check_refused(const http_request *rq)
{
    static const int statuses[] = {400, 401, 403, 404, 405, 413, 415, 501};
    bool known = false;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        known = known || rq->err.status == statuses[i];
    FUZZ_CHECK(known, "refused with %d", rq->err.status);
    FUZZ_CHECK(rq->err.status != 405 || rq->location[0], "405 without an Allow list");
    fuzz_check_problem(&rq->err);
}

/* The two If-Match readers must agree: every version the list names is accepted by
 * http_if_match_allows, and the list never holds more than it was given room for; what
 * the handlers bind as $n::bigint[] is "{1,2}", or NULL when there is no condition. */
static void check_if_match(const char *h)
{
    long long v[4];
    bool present = true;
    int n = http_parse_if_match(h, v, 4, &present);
    FUZZ_CHECK(n <= 4, "%d versions in room for 4", n);
    if (!present)
        FUZZ_CHECK(n == 0 && http_if_match_allows(h, 1), "no If-Match but %d versions", n);
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(v[i] >= 0 && http_if_match_allows(h, v[i]),
                   "If-Match \"%s\" names %lld but does not match it", h, v[i]);
    char buf[H_IF_MATCH_BUF];
    const char *versions = NULL;
    if (h_versions_array(h, buf, &versions) == 0)
        FUZZ_CHECK(!versions || (versions[0] == '{' && versions[strlen(versions) - 1] == '}' &&
                                 strspn(versions + 1, "0123456789,") == strlen(versions) - 2),
                   "If-Match array literal \"%s\"", versions);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    headers hs = {0};
    char *text = fuzz_cstr(data, size);   /* the request line and headers are C strings */
    const char *body = NULL;
    size_t body_len = 0;

    /* request line */
    char *eol = strchr(text, '\n');
    if (eol)
        *eol = '\0';
    char *sp = strchr(text, ' ');
    if (!sp || sp == text)
        goto out;
    *sp = '\0';
    char *method = text, *url = sp + 1;
    char *vsp = strchr(url, ' ');
    if (vsp)
        *vsp = '\0';
    size_t ul = strlen(url);
    if (ul && url[ul - 1] == '\r')
        url[--ul] = '\0';
    if (strpbrk(method, "\r\t") || !*url)
        goto out;

    /* headers, then the body after an empty line */
    char *line = eol ? eol + 1 : NULL;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next)
            *next = '\0';
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r')
            line[--ll] = '\0';
        if (ll == 0) {
            if (next) {
                body = (const char *)data + (next + 1 - text);
                body_len = size - (size_t)(next + 1 - text);
            }
            break;
        }
        char *colon = strchr(line, ':');
        if (colon && colon != line) {
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = strlen(v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            char *tok = token_for(v, vl);
            if (tok)
                add_header(&hs, line, (size_t)(colon - line), tok, strlen(tok));
            else
                add_header(&hs, line, (size_t)(colon - line), v, vl);
            free(tok);
        }
        line = next ? next + 1 : NULL;
    }

    /* what libmicrohttpd hands the access handler: the path decoded by the server's
     * unescape callback (the query string is the list routes' fuzzer's) */
    char *q = strchr(url, '?');
    if (q)
        *q = '\0';
    http_unescape(url);
    check_router(method, url);

    http_request *rq = calloc(1, sizeof *rq);
    http_admission adm;
    if (!rq)
        abort();
    err_clear(&rq->err);
    if (http_admit(&router, &cfg, method, url, header, &hs, rq, &adm) == 0) {
        check_admitted(rq, &adm);
        FUZZ_CHECK(rq->err.status == 0, "admitted with an error %d", rq->err.status);
        check_if_match(header(&hs, "If-Match"));
        (void)http_accept_allows(header(&hs, "Accept"), "application/json");
        (void)http_accept_allows(header(&hs, "Accept"), "text/plain");
        (void)body;
        (void)body_len;
    } else {
        check_refused(rq);
    }
    FUZZ_CHECK(rq->request_id[0] && !strpbrk(rq->request_id, "\r\n"), "request id \"%s\"",
               rq->request_id);
    free(rq);
out:
    headers_free(&hs);
    free(text);
    return 0;
}
