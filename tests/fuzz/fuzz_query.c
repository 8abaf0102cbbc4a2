/* libFuzzer target: query strings. The input is the text after '?' of
 * GET /audiences/segments and GET /v1/segments, split and percent-decoded the way
 * libmicrohttpd does it with the server's own unescape function, then read by the list
 * routes' query unit (validate/list_query.c: paging cursor, owner_id, management_type,
 * name, updated_since, property filter). What it accepts is checked against what the
 * statements bind as SQL parameters; what it refuses must be a complete 400 problem. The
 * same bytes also go straight to val_rfc3339, val_uuid and the base64url cursor codec. */
#include <errno.h>

#include "core/arena.h"
#include "core/ids.h"
#include "fuzz_common.h"
#include "http/request_parse.h"
#include "validate/list_query.h"
#include "validate/validate.h"

#define MAX_ARGS 64

/* The arguments as libmicrohttpd would hold them. */
typedef struct args {
    size_t n;
    char *key[MAX_ARGS];
    char *value[MAX_ARGS];   /* NULL: an argument without '=' */
    size_t value_len[MAX_ARGS];
} args;

/* Splits a query string as MHD_parse_arguments_ does: '&' between arguments, the first
 * '=' between name and value, '+' to space, then the server's unescape on each part. */
static void parse_query(args *a, const char *q, size_t len)
{
    char *copy = fuzz_cstr((const uint8_t *)q, len), *rest = copy;
    while (rest && *rest && a->n < MAX_ARGS) {
        char *amp = strchr(rest, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(rest, '=');
        if (eq)
            *eq++ = '\0';
        for (char *c = rest; *c; c++)
            if (*c == '+')
                *c = ' ';
        size_t klen = http_unescape(rest), vlen = 0;
        if (eq) {
            for (char *c = eq; *c; c++)
                if (*c == '+')
                    *c = ' ';
            vlen = http_unescape(eq);
        }
        a->key[a->n] = strndup(rest, klen);
        a->value[a->n] = eq ? strndup(eq, vlen) : NULL;
        a->value_len[a->n] = vlen;
        if (!a->key[a->n] || (eq && !a->value[a->n]))
            abort();
        a->n++;
        rest = amp ? amp + 1 : NULL;
    }
    free(copy);
}

static void args_free(args *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->key[i]);
        free(a->value[i]);
    }
}

/* http_query's contract over the arguments: the first match, names compared without
 * regard to case (libmicrohttpd 0.9.75); bad for a value holding a NUL byte (the server's
 * unescape never makes one, so only a value cut short) or over 1024 bytes. */
static const char *lookup(void *cls, const char *name, bool *bad)
{
    args *a = cls;
    for (size_t i = 0; i < a->n; i++) {
        if (strcasecmp(a->key[i], name))
            continue;
        const char *v = a->value[i] ? a->value[i] : "";
        if (strlen(v) != a->value_len[i] || a->value_len[i] > 1024)
            *bad = true;
        return v;
    }
    return NULL;
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

static void check_aud(const aud_list_query *q)
{
    const char *why;
    FUZZ_CHECK(q->limit >= 1 && q->limit <= VAL_PAGE_MAX, "limit %d", q->limit);
    check_before(q->before_no);
    if (q->owner_id)
        FUZZ_CHECK(val_uuid(q->owner_id, strlen(q->owner_id), &why) && !strpbrk(q->owner_id, "ABCDEF"),
                   "owner_id %s", q->owner_id);
    if (q->management_type)
        FUZZ_CHECK(!strcmp(q->management_type, "selfmanaged") ||
                       !strcmp(q->management_type, "systemmanaged"),
                   "management_type %s", q->management_type);
    if (q->name)
        FUZZ_CHECK(*q->name && is_utf8(q->name),
                   "name filter is not UTF-8 text: PostgreSQL refuses it (22021 -> 422), the "
                   "query unit should refuse the parameter (400)");
    if (q->updated_since)
        FUZZ_CHECK(val_rfc3339(q->updated_since, NULL), "updated_since %s", q->updated_since);
    check_filter_json(q->property, false);
    check_filter_json(q->property_num, true);
    FUZZ_CHECK(!q->property_num || q->property, "numeric filter without the text one");
}

static void check_v1(const v1_list_query *q)
{
    FUZZ_CHECK(q->limit >= 1 && q->limit <= VAL_PAGE_MAX, "limit %d", q->limit);
    check_before(q->before_seq);
    if (q->name)
        FUZZ_CHECK(*q->name && is_utf8(q->name),
                   "name filter is not UTF-8 text: PostgreSQL refuses it (22021 -> 422), the "
                   "query unit should refuse the parameter (400)");
}

/* A refusal is a 400 naming each parameter at /query/NAME, renderable as a problem. */
static void check_refusal(const seg_error *e)
{
    FUZZ_CHECK(e->status == 400 && !strcmp(e->code, "invalid_query_parameter"), "refused with %d %s",
               e->status, e->code ? e->code : "");
    FUZZ_CHECK(e->n_items >= 1, "a 400 that names no parameter");
    for (int i = 0; i < e->n_items; i++)
        FUZZ_CHECK(!strncmp(e->items[i].pointer, "/query/", 7), "pointer %s", e->items[i].pointer);
    fuzz_check_problem(e);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_seed_jansson();
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
    args a = {0};
    seg_arena arena;
    seg_error err;
    aud_list_query aq;
    v1_list_query vq;
    direct(data, size);
    parse_query(&a, (const char *)data, size);
    arena_init(&arena);
    err_clear(&err);
    if (val_aud_list_query(lookup, &a, &arena, &aq, &err))
        check_refusal(&err);
    else
        check_aud(&aq);
    err_clear(&err);
    if (val_v1_list_query(lookup, &a, &arena, &vq, &err))
        check_refusal(&err);
    else
        check_v1(&vq);
    arena_release(&arena);
    args_free(&a);
    return 0;
}
