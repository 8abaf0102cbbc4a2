/* libFuzzer target: query strings. The input is the text after '?' of
 * GET /audiences/segments and GET /v1/segments, split and unescaped the way
 * libmicrohttpd does it with the server's own unescape callback, then read by the real
 * list handlers (paging cursor, owner_id, management_type, name, updated_since,
 * property filter). The store is stood in for: its list functions check what the
 * handlers promise to bind as SQL parameters. The same bytes also go straight to
 * val_rfc3339, val_uuid and the base64url cursor codec. */
#include "fuzz_http.h"

#include "core/ids.h"
#include "validate/validate.h"

/* The handlers call these store functions; in this file they are the stand-ins below. */
#define store_acquire fuzz_store_acquire
#define store_release fuzz_store_release
#define store_aud_list fuzz_store_aud_list
#define store_v1_list fuzz_store_v1_list
#include "handlers/audiences.c"
#define not_found v1_not_found   /* both files have a static not_found */
#include "handlers/v1_segments.c"
#undef not_found

static int list_calls;

store_conn *fuzz_store_acquire(seg_error *err)
{
    static int token;
    return (store_conn *)(void *)&token;
}

void fuzz_store_release(store_conn *c)
{
}

static bool is_utf8(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/* A keyset cursor is bound as $n::bigint: it must be digits that fit. */
static void check_before(const char *before)
{
    if (!before)
        return;
    char *end;
    errno = 0;
    long long v = strtoll(before, &end, 10);
    FUZZ_CHECK(*before && *end == '\0' && errno == 0 && v >= 0,
               "cursor position \"%s\" is not a bigint: the database would refuse it (422, "
               "not 400)", before);
}

static void check_filter_json(const char *text, bool number)
{
    json_error_t je;
    if (!text)
        return;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    const char *k;
    json_t *v;
    FUZZ_CHECK(json_object_size(j) == 1, "property filter %s", text);
    json_object_foreach(j, k, v) {
        FUZZ_CHECK(json_array_size(v) == 1, "property filter %s", text);
        json_t *x = json_array_get(v, 0);
        FUZZ_CHECK(number ? json_is_number(x) : json_is_string(x), "property filter %s", text);
    }
    json_decref(j);
}

int fuzz_store_aud_list(store_conn *c, const char *tenant, const aud_list_query *q,
                        store_rows **out, seg_error *err)
{
    const char *why;
    list_calls++;
    FUZZ_CHECK(q->limit >= 2 && q->limit <= 501, "limit %d", q->limit);
    check_before(q->before_no);
    if (q->owner_id)
        FUZZ_CHECK(val_uuid(q->owner_id, strlen(q->owner_id), &why), "owner_id %s", q->owner_id);
    if (q->management_type)
        FUZZ_CHECK(!strcmp(q->management_type, "selfmanaged") ||
                       !strcmp(q->management_type, "systemmanaged"),
                   "management_type %s", q->management_type);
    if (q->name)
        FUZZ_CHECK(*q->name && is_utf8(q->name),
                   "name filter is not UTF-8 text: PostgreSQL refuses it (22021 -> 422), the "
                   "handler should answer 400 for the parameter");
    if (q->updated_since)
        FUZZ_CHECK(val_rfc3339(q->updated_since, NULL), "updated_since %s", q->updated_since);
    check_filter_json(q->property, false);
    check_filter_json(q->property_num, true);
    FUZZ_CHECK(!q->property_num || q->property, "numeric filter without the text one");
    err_set(err, 503, "fuzz_store", "no database in the fuzzer");
    return -1;
}

int fuzz_store_v1_list(store_conn *c, const char *tenant, const char *before_seq,
                       const char *name, int limit, store_rows **out, seg_error *err)
{
    list_calls++;
    FUZZ_CHECK(limit >= 2 && limit <= 501, "limit %d", limit);
    check_before(before_seq);
    if (name)
        FUZZ_CHECK(*name && is_utf8(name),
                   "name filter is not UTF-8 text: PostgreSQL refuses it (22021 -> 422), the "
                   "handler should answer 400 for the parameter");
    err_set(err, 503, "fuzz_store", "no database in the fuzzer");
    return -1;
}

static const http_route routes[] = {
    {"GET", "/audiences/segments", h_aud_list, AUTH_SCOPE_READ, BODY_NONE, NULL, NULL},
    {"GET", "/v1/segments", h_v1_list, AUTH_SCOPE_READ, BODY_NONE, NULL, NULL},
};

static char *auth; /* a read token, minted once */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_http_init(routes, sizeof routes / sizeof routes[0]);
    auth = fuzz_token_for("@r", 2);
    return 0;
}

/* The bytes as a cursor, a date-time and a uuid, without the HTTP around them. */
static void direct(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    int64_t us;
    const char *why = NULL;
    unsigned char raw[64];

    if (val_rfc3339(s, &us))
        FUZZ_CHECK(strlen(s) >= 20, "date-time \"%s\" too short", s);
    if (val_uuid(s, strlen(s), &why))
        FUZZ_CHECK(strlen(s) == 36 && why == NULL, "uuid \"%s\"", s);
    else
        FUZZ_CHECK(why != NULL, "uuid refused without a reason");

    size_t cap = size ? data[0] % sizeof raw : 0;
    int n = ids_b64url_decode(s, raw, cap);
    FUZZ_CHECK(n <= (int)cap, "decoded %d bytes into %zu", n, cap);

    /* round trip: encode the bytes, decode them back */
    size_t len = size < 48 ? size : 48;
    char enc[4 * 16 + 1];
    unsigned char back[48];
    ids_b64url_encode(data, len, enc);
    FUZZ_CHECK(strlen(enc) <= 4 * ((len + 2) / 3), "encoded too long");
    n = ids_b64url_decode(enc, back, sizeof back);
    FUZZ_CHECK(n == (int)len && !memcmp(back, data, len), "base64url round trip");
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const paths[] = {"/audiences/segments", "/v1/segments"};
    direct(data, size);
    for (int i = 0; i < 2; i++) {
        fake_conn fc;
        memset(&fc, 0, sizeof fc);
        fake_add(&fc, MHD_HEADER_KIND, "Authorization", 13, auth, strlen(auth));
        fake_parse_query(&fc, (const char *)data, size);
        list_calls = 0;
        unsigned status = fuzz_request(&fc, "GET", paths[i], NULL, 0, 1, NULL, NULL);
        FUZZ_CHECK(status == 400 || (status == 503 && list_calls == 1),
                   "GET %s?%.*s gave %u", paths[i], (int)size, (const char *)data, status);
        fake_free(&fc);
    }
    return 0;
}
