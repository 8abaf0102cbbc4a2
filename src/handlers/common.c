/* Steps shared by the resource handlers: zero-copy replies from rows, keyset pages,
 * cursors, If-Match and query-parameter errors. */
#include "handlers/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/json_text.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 500

void h_reply_row(http_request *rq, int status, store_rows *rows, int col)
{
    http_reply(rq, status, "application/json", store_value(rows, 0, col),
               store_length(rows, 0, col), store_rows_free, rows);
}

void h_bad_query(http_request *rq, const char *name, const char *fmt, ...)
{
    char detail[ERR_DETAIL_MAX], ptr[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (!rq->err.status)
        err_set(&rq->err, 400, "invalid_query_parameter", "a query parameter is not valid; see errors");
    snprintf(ptr, sizeof ptr, "/query/%.80s", name);
    err_add(&rq->err, ptr, "%s", detail);
}

int h_only_query(http_request *rq, const char *const *allowed)
{
    const char *unknown = http_unknown_query(rq, allowed);
    if (!unknown)
        return 0;
    h_bad_query(rq, unknown, "unknown query parameter \"%.60s\"", unknown);
    return -1;
}

static void encode_cursor(char kind, const char *key, char *out)
{
    char raw[40];
    int n = snprintf(raw, sizeof raw, "%c:%s", kind, key);
    ids_b64url_encode((const unsigned char *)raw, (size_t)n, out);
}

int h_paging(http_request *rq, char kind, int *limit, char before[24])
{
    bool bad = false;
    const char *l = http_query(rq, "limit", &bad);
    const char *c = http_query(rq, "cursor", &bad);
    *limit = PAGE_DEFAULT;
    before[0] = '\0';
    if (l) {
        char *end;
        long v = strtol(l, &end, 10);
        if (bad || !*l || *end || v < 1 || v > PAGE_MAX)
            h_bad_query(rq, "limit", "expected an integer from 1 to %d", PAGE_MAX);
        else
            *limit = (int)v;
    }
    if (c) {
        unsigned char raw[40];
        int n = strlen(c) < 48 ? ids_b64url_decode(c, raw, sizeof raw - 1) : -1;
        bool ok = n > 2 && raw[0] == (unsigned char)kind && raw[1] == ':' && n - 2 <= 18; /* < 2^63 */
        for (int i = 2; ok && i < n; i++)
            ok = raw[i] >= '0' && raw[i] <= '9';
        if (bad || !ok) {
            h_bad_query(rq, "cursor", "not a cursor returned by this list: pass next_cursor as it came");
        } else {
            memcpy(before, raw + 2, (size_t)n - 2);
            before[n - 2] = '\0';
        }
    }
    return rq->err.status ? -1 : 0;
}

void h_reply_page(http_request *rq, store_rows *rows, int limit, char kind)
{
    int n = store_rows_count(rows), shown = n > limit ? limit : n;
    size_t cap = 64, len, lens[PAGE_MAX]; /* each row's length, asked for once */
    json_text t = {0};
    if (shown > PAGE_MAX) { /* h_paging keeps limit within PAGE_MAX */
        store_rows_free(rows);
        err_set(&rq->err, 500, "internal", "a page of %d rows", shown);
        return;
    }
    for (int i = 0; i < shown; i++)
        cap += (lens[i] = store_length(rows, i, 0)) + 1;
    (void)json_text_reserve(&t, cap); /* one allocation; failing, the writes below fail too */
    JSON_TEXT_LIT(&t, "{\"items\":[");
    for (int i = 0; i < shown; i++) {
        if (i)
            JSON_TEXT_LIT(&t, ",");
        json_text_put(&t, store_value(rows, i, 0), lens[i]);
    }
    JSON_TEXT_LIT(&t, "]");
    json_text_key(&t, "next_cursor");
    if (n > limit) {
        char cursor[64];
        encode_cursor(kind, store_value(rows, shown - 1, 1), cursor);
        json_text_cstr(&t, cursor, JSON_ESC_PG); /* base64url: nothing to escape */
    } else {
        JSON_TEXT_LIT(&t, "null");
    }
    JSON_TEXT_LIT(&t, "}");
    store_rows_free(rows);
    char *buf = json_text_take(&t, &len);
    if (!buf) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return;
    }
    http_reply(rq, 200, "application/json", buf, len, free, buf);
}

int h_if_match(http_request *rq, char buf[H_IF_MATCH_BUF], const char **versions)
{
    long long v[16];
    bool present;
    int n = http_if_match_list(rq, v, 16, &present);
    size_t len = 0;
    *versions = NULL;
    if (n < 0) {
        err_set(&rq->err, 400, "invalid_if_match",
                "If-Match must be \"*\" or up to 16 entity tags as sent in ETag, like \"3\"");
        return -1;
    }
    if (!present)
        return 0;
    /* a PostgreSQL array literal of integers; "{}" (nothing can match) → 412 */
    buf[len++] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, H_IF_MATCH_BUF - len, "%s%lld", i ? "," : "", v[i]);
    buf[len++] = '}';
    buf[len] = '\0';
    *versions = buf;
    return 0;
}
