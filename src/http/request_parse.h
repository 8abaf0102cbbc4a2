/* The pure parsing behind request.h, on plain header and path strings (for http/, handlers
 * that hold a header value, tests and fuzzers), with no libmicrohttpd in sight. */
#ifndef SEGMENTD_HTTP_REQUEST_PARSE_H
#define SEGMENTD_HTTP_REQUEST_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* The versions an If-Match value names (weak and foreign tags never match, so they are
 * left out). *present is false for NULL or "*". Returns the count, or -1 when the value is
 * malformed or names more than cap tags. */
int http_parse_if_match(const char *h, long long *out, int cap, bool *present);
/* True when h (an If-Match value, or NULL) lets a request on version `current` go on. */
bool http_if_match_allows(const char *h, long long current);
/* Does an Accept value (NULL: none sent) accept this media type, exactly or by wildcard? */
bool http_accept_allows(const char *accept, const char *media_type);
/* A Content-Type value's media type, without parameters, compared case-insensitively. */
bool http_content_type_is(const char *ct, const char *want);
/* A client's X-Request-Id we echo: 1 to 64 of [A-Za-z0-9-_.:]. */
bool http_request_id_ok(const char *s);
/* An Idempotency-Key we keep: 1 to 255 printable ASCII characters (space to tilde). */
#define HTTP_IDEMPOTENCY_KEY_MAX 255
bool http_idempotency_key_ok(const char *s);
/* Percent-decodes s in place, never producing a NUL byte ("%00" stays as it is). Returns
 * the new length. */
size_t http_unescape(char *s);

#endif
