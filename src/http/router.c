/* Method + path pattern → handler. Patterns are literal segments and "{name}". */
#include "http/router.h"

#include <stdio.h>
#include <string.h>

/* Matches one pattern, character by character (a mismatch ends it at the first
 * differing one); a "{name}" matches one non-empty path segment, copied to param. */
static bool pattern_match(const char *pat, const char *path, char *param, size_t cap)
{
    while (*pat) {
        if (*pat == '{') {
            size_t slen = strcspn(path, "/");
            if (slen == 0)
                return false;
            if (param) {
                size_t n = slen >= cap ? cap - 1 : slen; /* over-long ids fail check_param anyway */
                memcpy(param, path, n);
                param[n] = '\0';
            }
            while (*pat && *pat != '}')
                pat++;
            if (*pat)
                pat++;
            path += slen;
            continue;
        }
        if (*pat != *path)
            return false;
        pat++;
        path++;
    }
    return *path == '\0';
}

route_result router_match(const http_route *routes, size_t n, const char *method,
                          const char *path, const http_route **out, char *param,
                          size_t param_cap, char *allow, size_t allow_cap, const char **why)
{
    bool path_known = false;
    size_t alen = 0;
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    allow[0] = '\0';
    /* Literal patterns first, so /segments/bulk is never read as /segments/{id}. */
    for (int pass = 0; pass < 2 && !path_known; pass++) {
        for (size_t i = 0; i < n; i++) {
            bool literal = strchr(routes[i].pattern, '{') == NULL;
            if (literal != (pass == 0))
                continue;
            if (!pattern_match(routes[i].pattern, path, param, param_cap))
                continue;
            path_known = true;
            if (strcmp(routes[i].method, m) == 0) {
                *out = &routes[i];
                if (routes[i].check_param && !routes[i].check_param(param, why))
                    return ROUTE_BAD_PARAM;
                return ROUTE_FOUND;
            }
            if (!strstr(allow, routes[i].method)) {
                int w = snprintf(allow + alen, allow_cap - alen, "%s%s", alen ? ", " : "",
                                 routes[i].method);
                if (w > 0 && (size_t)w < allow_cap - alen)
                    alen += (size_t)w;
                if (!strcmp(routes[i].method, "GET") && !strstr(allow, "HEAD")) {
                    w = snprintf(allow + alen, allow_cap - alen, ", HEAD");
                    if (w > 0 && (size_t)w < allow_cap - alen)
                        alen += (size_t)w;
                }
            }
        }
    }
    return path_known ? ROUTE_BAD_METHOD : ROUTE_NOT_FOUND;
}
