/* The API reference page, no token needed: GET /docs (Swagger UI on /openapi.yaml) and
 * GET /docs/{asset} (its script, style sheet, icon and licences), from the copies built
 * into the binary (handlers/docs_assets.c). */
#include <stdio.h>

#include "handlers/docs_assets.h"
#include "handlers/handlers.h"

/* Every answer of the page and its assets. The policy: scripts only from this server (the
 * page's start-up is reference.js, not inline; no eval), styles only from swagger-ui.css
 * (Swagger UI sets element styles from script, which CSP does not govern), images from this
 * server and data: URIs (swagger-ui.css draws its icons as data: SVG), fetch only to this
 * server (the document and "try it"), nothing framed and no frame of it. Cache-Control:
 * no-cache keeps a copy but asks each time, and the ETag turns that into a 304. */
static const char *const docs_headers[] = {
    "Content-Security-Policy",
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options", "nosniff",
    "Referrer-Policy", "no-referrer",
    "Cache-Control", "no-cache",
    NULL,
};

static void serve(http_request *rq, const docs_asset *a)
{
    rq->extra_headers = docs_headers;
    snprintf(rq->etag, sizeof rq->etag, "%s", a->etag);
    if (docs_etag_matches(http_header(rq, "If-None-Match"), a->etag)) {
        http_reply(rq, 304, NULL, "", 0, NULL, NULL);
        return;
    }
    http_reply(rq, 200, a->content_type, (const char *)a->data, a->len, NULL, NULL);
}

void h_docs(http_request *rq)
{
    serve(rq, docs_page());
}

void h_docs_asset(http_request *rq)
{
    const docs_asset *a = docs_asset_find(rq->param);
    if (!a) {
        err_set(&rq->err, 404, "not_found", "the reference page has no file \"%.64s\"", rq->param);
        return;
    }
    serve(rq, a);
}
