/* Method + path pattern → handler. Patterns are literal segments and "{name}". */
#include "http/router.h"

#include <stdio.h>
#include <string.h>

int router_init(http_router *r, const http_route *routes, size_t n)
{
    if (n > ROUTER_MAX)
        return -1;
    r->n = r->n_literal = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            const char *brace = strchr(routes[i].pattern, '{');
            if ((brace == NULL) != (pass == 0))
                continue;
            r->e[r->n].route = &routes[i];
            r->e[r->n].literal = brace == NULL;
            r->e[r->n].prefix = brace ? (size_t)(brace - routes[i].pattern) : strlen(routes[i].pattern);
            r->n++;
            if (!brace)
                r->n_literal++;
        }
    return 0;
}

/* Matches the rest of a pattern, character by character (a mismatch ends it at the
 * first differing one); a "{name}" matches one non-empty path segment, copied to param. */
static bool pattern_match(const char *pat, const char *path, char *param, char *param2, size_t cap)
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
                param = param2; /* the next "{name}" fills the second parameter */
                param2 = NULL;
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

static void allow_add(char *allow, size_t *alen, size_t cap, const char *method)
{
    if (strstr(allow, method))
        return;
    int w = snprintf(allow + *alen, cap - *alen, "%s%s", *alen ? ", " : "", method);
    if (w > 0 && (size_t)w < cap - *alen)
        *alen += (size_t)w;
    if (!strcmp(method, "GET"))
        allow_add(allow, alen, cap, "HEAD");
}

route_result router_match(const http_router *r, const char *method, const char *path,
                          const http_route **out, char *param, char *param2, size_t param_cap,
                          char *allow, size_t allow_cap, const char **why, bool *second)
{
    bool path_known = false;
    size_t alen = 0, len = strlen(path);
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    allow[0] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        if (i == r->n_literal && path_known) /* a literal path hides the "{name}" ones */
            break;
        const http_route *rt = r->e[i].route;
        size_t pre = r->e[i].prefix;
        if (r->e[i].literal ? pre != len || memcmp(rt->pattern, path, len) != 0
                            : pre >= len || memcmp(rt->pattern, path, pre) != 0 ||
                                  !pattern_match(rt->pattern + pre, path + pre, param, param2, param_cap))
            continue;
        path_known = true;
        if (strcmp(rt->method, m) == 0) {
            *out = rt;
            *second = false;
            if (rt->check_param && !rt->check_param(param, why))
                return ROUTE_BAD_PARAM;
            *second = true;
            if (rt->check_param2 && !rt->check_param2(param2, why))
                return ROUTE_BAD_PARAM;
            return ROUTE_FOUND;
        }
        allow_add(allow, &alen, allow_cap, rt->method);
    }
    return path_known ? ROUTE_BAD_METHOD : ROUTE_NOT_FOUND;
}
