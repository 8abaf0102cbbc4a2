/* libFuzzer target: the front end of a request. The input is a small HTTP request
 *
 *     METHOD URL\n  (Header: value\n)*  \n  body
 *
 * driven through dispatch.c's three-phase access handler (routing with the server's table,
 * unescaping, authentication, media type, Content-Length and body limits) into
 * stand-in handlers that check what the router promised them and parse
 * If-Match and Accept. An Authorization value of @rw, @r or @w becomes a valid token. */
#include "fuzz_http.h"
#include "handlers/common.h"
#include "handlers/handlers.h"

static int handler_calls;

static void check_param_promise(http_request *rq)
{
    const http_route *r = rq->route;
    const char *why = NULL;
    FUZZ_CHECK(r != NULL, "handler without a route");
    if (strchr(r->pattern, '{')) {
        FUZZ_CHECK(rq->param[0] && !strchr(rq->param, '/'), "param \"%s\" for %s", rq->param,
                   r->pattern);
        FUZZ_CHECK(!r->check_param || r->check_param(rq->param, &why), "param \"%s\" fails %s",
                   rq->param, r->pattern);
    }
    if (r->scope)
        FUZZ_CHECK(rq->principal.tenant[0] && (rq->principal.scopes & r->scope) == r->scope,
                   "handler of %s %s ran without the scope", r->method, r->pattern);
    FUZZ_CHECK(rq->body_len <= body_limit(r), "body of %zu bytes passed the limit", rq->body_len);
    FUZZ_CHECK(r->body || rq->body_len == 0, "body handed to a route without one");
}

/* The two If-Match readers must agree: every version the list names is accepted by
 * http_if_match_ok, and the list never holds more than it was given room for. */
static void check_if_match(http_request *rq)
{
    long long v[4];
    bool present = true;
    int n = http_if_match_list(rq, v, 4, &present);
    FUZZ_CHECK(n <= 4, "%d versions in room for 4", n);
    if (!present)
        FUZZ_CHECK(n == 0 && http_if_match_ok(rq, 1), "no If-Match but %d versions", n);
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(v[i] >= 0 && http_if_match_ok(rq, v[i]),
                   "If-Match \"%s\" names %lld but does not match it", http_header(rq, "If-Match"), v[i]);
    /* what the handlers bind as $n::bigint[]: "{1,2}", or NULL when there is no
     * condition; a malformed header is a 400 */
    char buf[H_IF_MATCH_BUF];
    const char *versions = NULL;
    seg_error saved = rq->err;
    if (h_if_match(rq, buf, &versions) == 0) {
        FUZZ_CHECK(!versions || (versions[0] == '{' && versions[strlen(versions) - 1] == '}' &&
                                 strspn(versions + 1, "0123456789,") == strlen(versions) - 2),
                   "If-Match array literal \"%s\"", versions);
    } else {
        FUZZ_CHECK(rq->err.status == 400, "If-Match refused with %d", rq->err.status);
        fuzz_check_problem(&rq->err);
    }
    rq->err = saved;
    (void)http_accepts(rq, "application/json");
    (void)http_accepts(rq, "text/plain");
}

static void stand_in(http_request *rq)
{
    handler_calls++;
    check_param_promise(rq);
    check_if_match(rq);
    http_reply_json(rq, 200, json_pack("{s:s}", "route", rq->route->pattern));
}

/* The server's own table (src/handlers/routes.c), every handler swapped for the
 * stand-in: the patterns, scopes, body kinds and {id} checks are the real ones. */
#define MAX_ROUTES 64
static http_route routes[MAX_ROUTES];
static size_t n_routes;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    n_routes = handlers_n_routes;
    if (n_routes > MAX_ROUTES)
        abort();
    for (size_t i = 0; i < n_routes; i++) {
        routes[i] = handlers_routes[i];
        routes[i].handler = stand_in;
    }
    fuzz_http_init(routes, n_routes);
    return 0;
}

/* Checks router_match directly on the unescaped path: a found route's pattern matches
 * segment for segment, and 405 lists only methods some route of the path has. */
static void check_router(const char *method, const char *path)
{
    const http_route *r = NULL;
    char param[96], allow[128];
    const char *why = NULL;
    route_result rr = router_match(&srouter, method, path, &r, param, sizeof param, allow,
                                   sizeof allow, &why);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_conn fc;
    char *text = fuzz_cstr(data, size);   /* the request line and headers are C strings */
    const char *body = NULL;
    size_t body_len = 0;
    memset(&fc, 0, sizeof fc);

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
            char *tok = fuzz_token_for(v, vl);
            if (tok)
                fake_add(&fc, MHD_HEADER_KIND, line, (size_t)(colon - line), tok, strlen(tok));
            else
                fake_add(&fc, MHD_HEADER_KIND, line, (size_t)(colon - line), v, vl);
            free(tok);
        }
        line = next ? next + 1 : NULL;
    }

    /* what libmicrohttpd hands the access handler: the path unescaped by the server's
     * callback, the query string split into arguments */
    char *q = strchr(url, '?');
    if (q) {
        *q++ = '\0';
        fake_parse_query(&fc, q, strlen(q));
    }
    http_unescape_no_nul(NULL, NULL, url);
    check_router(method, url);

    handler_calls = 0;
    unsigned status = fuzz_request(&fc, method, url, body, body_len, 1000, NULL, NULL);
    /* a body over 4x the limit is cut by closing the connection: no answer then */
    FUZZ_CHECK(status != 0 || body_len > 4 * fuzz_cfg.max_bulk_body_bytes, "no answer");
    FUZZ_CHECK(handler_calls == 0 || status == 200 || status == 413,
               "handler ran but status %u", status);
out:
    fake_free(&fc);
    free(text);
    return 0;
}
