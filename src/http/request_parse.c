/* Parsing request headers and paths as plain strings: If-Match, Accept, Content-Type, X-Request-Id, percent-decoding. */
#include "http/request_parse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parses a strong entity tag "123" (optionally W/ – which never matches If-Match).
 * Returns the version, -2 for a tag that matches nothing, -1 with *bad when malformed. */
static long long parse_tag(const char **pp, bool *bad)
{
    const char *p = *pp;
    long long v = 0;
    int digits = 0;
    bool weak = false;
    if (!strncmp(p, "W/", 2)) {
        weak = true;
        p += 2;
    }
    if (*p != '"') {
        *bad = true;
        return -1;
    }
    p++;
    while (*p >= '0' && *p <= '9' && digits < 18) {
        v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (*p != '"') {
        /* an opaque tag we never issued: skip it, it matches nothing */
        const char *q = strchr(p, '"');
        if (!q) {
            *bad = true;
            return -1;
        }
        *pp = q + 1;
        return -2;
    }
    *pp = p + 1;
    return weak || digits == 0 ? -2 : v;
}

int http_parse_if_match(const char *h, long long *out, int cap, bool *present)
{
    bool bad = false;
    int n = 0;
    *present = false;
    if (!h)
        return 0;
    while (*h == ' ')
        h++;
    if (!strcmp(h, "*"))
        return 0;
    *present = true;
    while (*h) {
        long long v = parse_tag(&h, &bad);
        if (bad)
            return -1;
        if (v >= 0) {
            if (n == cap)
                return -1;
            out[n++] = v;
        }
        while (*h == ' ')
            h++;
        if (*h == ',') {
            h++;
            while (*h == ' ')
                h++;
        } else if (*h) {
            return -1;
        }
    }
    return n;
}

/* More tags than any client sends: a longer list is refused (h_if_match allows 16). */
#define IF_MATCH_MAX 64

bool http_if_match_allows(const char *h, long long current)
{
    long long v[IF_MATCH_MAX];
    bool present;
    int n = http_parse_if_match(h, v, IF_MATCH_MAX, &present);
    if (!present) /* none, or "*" */
        return n == 0;
    for (int i = 0; i < n; i++) /* a malformed list (n < 0) allows nothing */
        if (v[i] == current)
            return true;
    return false;
}

/* True when a media range's parameters (from after its type up to the next ',') give it
 * q=0: "not acceptable" (RFC 9110 12.4.2). */
static bool q_zero(const char *p)
{
    const char *end = p + strcspn(p, ",");
    while ((p = memchr(p, ';', (size_t)(end - p))) != NULL) {
        p++;
        while (*p == ' ')
            p++;
        if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            p += 2;
            if (*p++ != '0')
                return false;
            if (*p == '.')
                p++;
            while (*p == '0')
                p++;
            return p >= end || *p == ' ' || *p == ';' || *p == ',';
        }
    }
    return false;
}

bool http_accept_allows(const char *a, const char *media_type)
{
    const char *slash = strchr(media_type, '/');
    if (!a)
        return true;
    while (*a) {
        while (*a == ' ' || *a == ',')
            a++;
        size_t n = strcspn(a, ",;");
        while (n && a[n - 1] == ' ')
            n--;
        if (((n == strlen(media_type) && !strncasecmp(a, media_type, n)) ||
             (n == 3 && !strncmp(a, "*/*", 3)) ||
             (slash && n == (size_t)(slash - media_type) + 2 &&
              !strncasecmp(a, media_type, (size_t)(slash - media_type) + 1) && a[n - 1] == '*')) &&
            !q_zero(a + n))
            return true;
        a += strcspn(a, ",");
    }
    return false;
}

bool http_content_type_is(const char *ct, const char *want)
{
    size_t n;
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    n = strcspn(ct, ";");
    while (n && ct[n - 1] == ' ')
        n--;
    return n == strlen(want) && !strncasecmp(ct, want, n);
}

bool http_idempotency_key_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < ' ' || s[n] > '~' || n >= HTTP_IDEMPOTENCY_KEY_MAX)
            return false;
    return n > 0;
}

bool http_request_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

size_t http_unescape(char *s)
{
    char *r = strchr(s, '%'), *w; /* most paths have no escape: nothing to move */
    if (!r)
        return strlen(s);
    w = r;
    while (*r) {
        if (*r == '%' && r[1] && r[2]) {
            char hex[3] = {r[1], r[2], 0};
            char *end;
            unsigned long v = strtoul(hex, &end, 16);
            if (*end == '\0' && v != 0 && isxdigit((unsigned char)r[1])) {
                *w++ = (char)v;
                r += 3;
                continue;
            }
        }
        *w++ = *r++;
    }
    *w = '\0';
    return (size_t)(w - s);
}
