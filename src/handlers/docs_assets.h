/* Private to handlers/: the files of the API reference page (GET /docs), built into the
 * binary, and the If-None-Match test its answers use. */
#ifndef SEGMENTD_HANDLERS_DOCS_ASSETS_H
#define SEGMENTD_HANDLERS_DOCS_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct docs_asset {
    const char *name;           /* under /docs/; the page itself (GET /docs) has "" */
    const char *content_type;
    const unsigned char *data;  /* static, len bytes (and a NUL byte after them) */
    size_t len;
    const char *etag;           /* strong: a quoted hash of data, "\"0123456789abcdef\"" */
} docs_asset;

/* The page itself, served at /docs. Never NULL; lent, static. */
const docs_asset *docs_page(void);

/* The asset served at /docs/<name>, or NULL (the page is not one: "" and "index.html"
 * give NULL, so its relative links always resolve under /docs/). Lent, static. */
const docs_asset *docs_asset_find(const char *name);

/* The assets one by one, for the tests: i from 0; NULL past the last. */
const docs_asset *docs_asset_at(size_t i);

/* Whether an If-None-Match value names etag (RFC 9110 13.1.2: "*", or a list of entity
 * tags compared weakly, so W/"x" matches "x"). NULL (no header) gives false. */
bool docs_etag_matches(const char *if_none_match, const char *etag);

#endif
