/* The list routes' query parameters (validate/list_query.h): paging and cursors, the
 * audience filters and the v1 name filter, every refusal a 400 at /query/NAME. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "validate/list_query.h"

/* A query string as the server would hand it over: name, value, and whether it is
 * unusable (a NUL byte, too long). */
typedef struct param {
    const char *name, *value;
    bool bad;
} param;

typedef struct query {
    param p[12];
} query;

#define Q1(name, value) (&(query){{{name, value, false}}})
#define Q1_BAD(name, value) (&(query){{{name, value, true}}})

static const char *lookup(void *cls, const char *name, bool *bad)
{
    query *q = cls;
    for (size_t i = 0; i < 12 && q->p[i].name; i++)
        if (!strcmp(q->p[i].name, name)) {
            if (q->p[i].bad)
                *bad = true;
            return q->p[i].value;
        }
    return NULL;
}

/* Runs the audience list query; err is cleared first. */
static int aud(query *q, seg_arena *a, aud_list_query *out, seg_error *err)
{
    err_clear(err);
    return val_aud_list_query(lookup, q, a, out, err);
}

static int v1(query *q, seg_arena *a, v1_list_query *out, seg_error *err)
{
    err_clear(err);
    return val_v1_list_query(lookup, q, a, out, err);
}

/* err is a 400 invalid_query_parameter naming exactly these parameters, in order. */
static void refused(const seg_error *err, const char *const *names, int n)
{
    char ptr[96];
    assert_int_equal(err->status, 400);
    assert_string_equal(err->code, "invalid_query_parameter");
    assert_string_equal(err->detail, "a query parameter is not valid; see errors");
    if (err->n_items != n)
        fail_msg("%d problems, expected %d (first: %s %s)", err->n_items, n,
                 err->n_items ? err->items[0].pointer : "-",
                 err->n_items ? err->items[0].detail : "");
    for (int i = 0; i < n; i++) {
        snprintf(ptr, sizeof ptr, "/query/%s", names[i]);
        assert_string_equal(err->items[i].pointer, ptr);
    }
}

/* The audience list refuses qs with one problem, at /query/NAME, saying detail; *out is
 * what it left (NULL fields, since the texts went with the arena). */
static void aud_refuses(query *qs, aud_list_query *out, const char *name, const char *detail)
{
    seg_arena a;
    seg_error err;
    arena_init(&a);
    assert_int_equal(aud(qs, &a, out, &err), -1);
    refused(&err, &name, 1);
    assert_string_equal(err.items[0].detail, detail);
    arena_release(&a);
}

static void v1_refuses(query *qs, v1_list_query *out, const char *name, const char *detail)
{
    seg_arena a;
    seg_error err;
    arena_init(&a);
    assert_int_equal(v1(qs, &a, out, &err), -1);
    refused(&err, &name, 1);
    assert_string_equal(err.items[0].detail, detail);
    arena_release(&a);
}

/* n copies of the UTF-8 text unit. */
static char *repeat(char *buf, const char *unit, int n)
{
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        strcat(buf, unit);
    return buf;
}

static void test_defaults(void **state)
{
    seg_arena a;
    seg_error err;
    aud_list_query q;
    v1_list_query v;
    query none = {{{NULL}}};
    arena_init(&a);
    memset(&q, 0x5a, sizeof q); /* every field is set */
    assert_int_equal(aud(&none, &a, &q, &err), 0);
    assert_int_equal(err.status, 0);
    assert_int_equal(q.limit, VAL_PAGE_DEFAULT);
    assert_int_equal(q.limit, 50);
    assert_null(q.before_no);
    assert_null(q.owner_id);
    assert_null(q.management_type);
    assert_null(q.name);
    assert_null(q.property);
    assert_null(q.property_num);
    assert_null(q.updated_since);
    memset(&v, 0x5a, sizeof v);
    assert_int_equal(v1(&none, &a, &v, &err), 0);
    assert_int_equal(v.limit, 50);
    assert_null(v.before_seq);
    assert_null(v.name);

    int limit = 0;
    char before[24] = "junk";
    err_clear(&err);
    assert_int_equal(val_list_paging(lookup, &none, 'a', &limit, before, &err), 0);
    assert_int_equal(limit, 50);
    assert_string_equal(before, "");
    arena_release(&a);
}

static void test_limit_bounds(void **state)
{
    seg_arena a;
    seg_error err;
    aud_list_query q;
    v1_list_query v;
    const char *why = "expected an integer from 1 to 500";
    arena_init(&a);
    const char *ok[][2] = {{"1", "1"}, {"500", "500"}, {"50", "50"}, {"0042", "42"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(aud(Q1("limit", ok[i][0]), &a, &q, &err), 0);
        assert_int_equal(q.limit, atoi(ok[i][1]));
        assert_int_equal(v1(Q1("limit", ok[i][0]), &a, &v, &err), 0);
        assert_int_equal(v.limit, atoi(ok[i][1]));
    }
    const char *bad[] = {"0", "501", "-1", "junk", "", "5x", "1.5", "99999999999999999999", "0x10",
                         "+5", " 5", "5 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aud_refuses(Q1("limit", bad[i]), &q, "limit", why);
        assert_int_equal(q.limit, 50);
        v1_refuses(Q1("limit", bad[i]), &v, "limit", why);
    }
    aud_refuses(Q1_BAD("limit", "5"), &q, "limit", why);
    /* an unusable cursor does not make the limit refused too, nor the other way round */
    seg_error e2;
    err_clear(&e2);
    query mixed = {{{"limit", "7", false}, {"cursor", "x", true}}};
    int limit;
    char before[24];
    assert_int_equal(val_list_paging(lookup, &mixed, 'a', &limit, before, &e2), -1);
    assert_int_equal(e2.n_items, 1);
    assert_string_equal(e2.items[0].pointer, "/query/cursor");
    assert_int_equal(limit, 7);
    err_clear(&e2);
    query pv = {{{"property_code", "interest", false}, {"property_value", "x", true}}};
    assert_int_equal(val_aud_list_query(lookup, &pv, &a, &q, &e2), -1);
    assert_int_equal(e2.n_items, 1);
    assert_string_equal(e2.items[0].pointer, "/query/property_value");
    arena_release(&a);
}

static void test_cursor(void **state)
{
    seg_arena a;
    seg_error err;
    aud_list_query q;
    v1_list_query v;
    char ca[VAL_CURSOR_MAX], cv[VAL_CURSOR_MAX], c[VAL_CURSOR_MAX];
    const char *wrong = "not a cursor returned by this list: pass next_cursor as it came";
    arena_init(&a);
    val_cursor_encode('a', "12345", ca);
    val_cursor_encode('v', "987", cv);
    assert_string_equal(ca, "YToxMjM0NQ"); /* base64url of "a:12345", unpadded */

    query qa = {{{"cursor", ca, false}, {"limit", "7", false}}};
    assert_int_equal(aud(&qa, &a, &q, &err), 0);
    assert_string_equal(q.before_no, "12345");
    assert_int_equal(q.limit, 7);
    assert_int_equal(v1(Q1("cursor", cv), &a, &v, &err), 0);
    assert_string_equal(v.before_seq, "987");

    /* one list's cursor is refused by the other */
    v1_refuses(&qa, &v, "cursor", wrong);
    assert_null(v.before_seq);
    aud_refuses(Q1("cursor", cv), &q, "cursor", wrong);
    assert_null(q.before_no);

    /* 18 digits at most (below 2^63), digits only, not empty */
    val_cursor_encode('a', "999999999999999999", c);
    assert_int_equal(aud(Q1("cursor", c), &a, &q, &err), 0);
    assert_string_equal(q.before_no, "999999999999999999");
    const char *keys[] = {"1234567890123456789", "12a", "", "-1", " 1"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        val_cursor_encode('a', keys[i], c);
        aud_refuses(Q1("cursor", c), &q, "cursor", wrong);
    }
    const char *junk[] = {"", "!!!!", "YToxMjM0NQ==", "YToxMjM0NQ YToxMjM0NQ",
                          "YToxMjM0NQYToxMjM0NQYToxMjM0NQYToxMjM0NQYToxMjM0NQ"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        aud_refuses(Q1("cursor", junk[i]), &q, "cursor", wrong);
    aud_refuses(Q1_BAD("cursor", ca), &q, "cursor", wrong);
    arena_release(&a);
}

static void test_owner_and_management_type(void **state)
{
    seg_arena a;
    seg_error err;
    aud_list_query q;
    arena_init(&a);
    query qo = {{{"owner_id", "0190A7A2-3C4D-7E5F-8A6B-1C2D3E4F5A6B", false},
                 {"management_type", "selfmanaged", false}}};
    assert_int_equal(aud(&qo, &a, &q, &err), 0);
    assert_string_equal(q.owner_id, "0190a7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6b");
    assert_string_equal(q.management_type, "selfmanaged");
    qo.p[1].value = "systemmanaged";
    assert_int_equal(aud(&qo, &a, &q, &err), 0);
    assert_string_equal(q.management_type, "systemmanaged");

    const char *types[] = {"SelfManaged", "self", "", "systemmanaged "};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        aud_refuses(Q1("management_type", types[i]), &q, "management_type",
                    "expected selfmanaged or systemmanaged");
        assert_null(q.management_type);
    }
    const char *length = "not a uuid: expected 36 characters in the form 8-4-4-4-12 hex digits";
    const char *owners[][2] = {
        {"nope", length},
        {"", length},
        {"0190a7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6", length},
        {"0190a7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6bb", length},
        {"0190a7a2x3c4d-7e5f-8a6b-1c2d3e4f5a6b",
         "not a uuid: expected '-' at positions 9, 14, 19 and 24"},
        {"0190a7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6g",
         "not a uuid: contains a character that is not a hexadecimal digit"},
    };
    for (size_t i = 0; i < sizeof owners / sizeof owners[0]; i++) {
        aud_refuses(Q1("owner_id", owners[i][0]), &q, "owner_id", owners[i][1]);
        assert_null(q.owner_id);
    }
    aud_refuses(Q1_BAD("owner_id", "0190a7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6b"), &q, "owner_id",
                "not a uuid: contains a NUL byte");
    arena_release(&a);
}

static void test_name(void **state)
{
    seg_arena a;
    seg_error err;
    aud_list_query q;
    v1_list_query v;
    static char name[2048];
    const char *why = "expected 1 to 255 characters of UTF-8 text";
    arena_init(&a);
    /* 255 characters of two bytes each: counted in characters, not bytes */
    repeat(name, "\xc3\xa9", 255);
    assert_int_equal(aud(Q1("name", name), &a, &q, &err), 0);
    assert_string_equal(q.name, name);
    assert_ptr_not_equal(q.name, name); /* kept in the arena */
    assert_int_equal(v1(Q1("name", name), &a, &v, &err), 0);
    assert_string_equal(v.name, name);
    repeat(name, "\xe2\x82\xac", 255); /* three bytes each */
    assert_int_equal(aud(Q1("name", name), &a, &q, &err), 0);
    assert_int_equal(strlen(q.name), 765);

    repeat(name, "\xc3\xa9", 256);
    aud_refuses(Q1("name", name), &q, "name", why);
    assert_null(q.name);
    v1_refuses(Q1("name", name), &v, "name", why);

    const char *bad[] = {"", "\xff", "ab\xc3", "\xc0\xaf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aud_refuses(Q1("name", bad[i]), &q, "name", why);
        v1_refuses(Q1("name", bad[i]), &v, "name", why);
    }
    v1_refuses(Q1_BAD("name", "x"), &v, "name", why);
    arena_release(&a);
}

static void test_updated_since(void **state)
{
    seg_arena a;
    seg_error err;
    aud_list_query q;
    arena_init(&a);
    assert_int_equal(aud(Q1("updated_since", "2023-11-07T05:31:56Z"), &a, &q, &err), 0);
    assert_string_equal(q.updated_since, "2023-11-07T05:31:56Z");
    assert_int_equal(aud(Q1("updated_since", "2023-11-07T05:31:56.123+02:00"), &a, &q, &err), 0);
    assert_string_equal(q.updated_since, "2023-11-07T05:31:56.123+02:00");
    const char *bad[] = {"yesterday", "2023-11-07", "2023-13-07T05:31:56Z", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aud_refuses(Q1("updated_since", bad[i]), &q, "updated_since",
                    "expected an RFC 3339 date-time like 2023-11-07T05:31:56Z");
        assert_null(q.updated_since);
    }
    arena_release(&a);
}

static void test_property(void **state)
{
    seg_arena a;
    seg_error err;
    aud_list_query q;
    static char code[1024], text[1100];
    const char *too_long = "the attribute code is longer than 128 characters";
    arena_init(&a);
    assert_int_equal(aud(Q1("property", "interest:sports"), &a, &q, &err), 0);
    assert_string_equal(q.property, "{\"interest\":[\"sports\"]}");
    assert_null(q.property_num);

    /* a numeric value is also looked for as a number */
    assert_int_equal(aud(Q1("property", "age:42"), &a, &q, &err), 0);
    assert_string_equal(q.property, "{\"age\":[\"42\"]}");
    assert_string_equal(q.property_num, "{\"age\":[42]}");
    assert_int_equal(aud(Q1("property", "score:-1.5"), &a, &q, &err), 0);
    assert_string_equal(q.property, "{\"score\":[\"-1.5\"]}");
    assert_string_equal(q.property_num, "{\"score\":[-1.5]}");
    assert_int_equal(aud(Q1("property", "flag:true"), &a, &q, &err), 0);
    assert_null(q.property_num);

    /* split at the first ':'; quotes are escaped by the JSON writer */
    assert_int_equal(aud(Q1("property", "a:b:\"c\""), &a, &q, &err), 0);
    assert_string_equal(q.property, "{\"a\":[\"b:\\\"c\\\"\"]}");

    /* the pair form takes codes holding ':' */
    query pair = {{{"property_code", "ns:interest", false}, {"property_value", "7", false}}};
    assert_int_equal(aud(&pair, &a, &q, &err), 0);
    assert_string_equal(q.property, "{\"ns:interest\":[\"7\"]}");
    assert_string_equal(q.property_num, "{\"ns:interest\":[7]}");

    /* 128 characters of code at most, counted in characters */
    snprintf(text, sizeof text, "%s:v", repeat(code, "\xc3\xa9", 128));
    assert_int_equal(aud(Q1("property", text), &a, &q, &err), 0);
    snprintf(text, sizeof text, "%s:v", repeat(code, "c", 129));
    aud_refuses(Q1("property", text), &q, "property", too_long);
    assert_null(q.property);
    pair.p[0].value = code;
    aud_refuses(&pair, &q, "property_code", too_long);

    const char *bad[] = {"nocolon", ":value", "code:", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aud_refuses(Q1("property", bad[i]), &q, "property",
                    "expected code:value, like interest:sports");
        assert_null(q.property);
    }
    aud_refuses(Q1_BAD("property", "a:b"), &q, "property", "contains a NUL byte or is too long");
    aud_refuses(Q1("property", "a:\xff"), &q, "property", "code and value must be UTF-8 text");
    arena_release(&a);
}

static void test_property_pairs(void **state)
{
    aud_list_query q;
    const char *together = "property_code and property_value go together";
    const char *either = "use either property or property_code with property_value";
    aud_refuses(Q1("property_code", "interest"), &q, "property_value", together);
    aud_refuses(Q1("property_value", "sports"), &q, "property_code", together);
    aud_refuses(&(query){{{"property_code", "", false}, {"property_value", "x", false}}}, &q,
                "property_code", "expected code:value, like interest:sports");

    /* both forms at once: refused, whichever half of the pair came */
    query both = {{{"property", "interest:sports", false}, {"property_code", "interest", false},
                   {"property_value", "sports", false}}};
    aud_refuses(&both, &q, "property", either);
    assert_null(q.property);
    both.p[2].name = "other";
    aud_refuses(&both, &q, "property", either);
}

static void test_problems_collected(void **state)
{
    seg_arena a;
    seg_error err;
    aud_list_query q;
    v1_list_query v;
    arena_init(&a);
    query all = {{{"limit", "0", false}, {"cursor", "!!", false}, {"owner_id", "x", false},
                  {"management_type", "y", false}, {"name", "", false},
                  {"updated_since", "z", false}, {"property", "nocolon", false}}};
    assert_int_equal(aud(&all, &a, &q, &err), -1);
    const char *names[] = {"limit", "cursor", "owner_id", "management_type", "name",
                           "updated_since", "property"};
    refused(&err, names, 7);

    assert_int_equal(v1(&all, &a, &v, &err), -1);
    const char *v1_names[] = {"limit", "cursor", "name"};
    refused(&err, v1_names, 3);

    /* val_list_paging adds to problems already found */
    int limit;
    char before[24];
    err_clear(&err);
    val_query_fail(&err, "other", "made up");
    assert_int_equal(val_list_paging(lookup, Q1("limit", "900"), 'a', &limit, before, &err), -1);
    const char *both[] = {"other", "limit"};
    refused(&err, both, 2);
    assert_string_equal(err.items[0].detail, "made up");

    /* an error already set keeps its status and code; the problem joins it */
    err_clear(&err);
    err_set(&err, 500, "internal", "out of memory");
    val_query_fail(&err, "limit", "made up");
    assert_int_equal(err.status, 500);
    assert_string_equal(err.code, "internal");
    assert_int_equal(err.n_items, 1);
    assert_string_equal(err.items[0].pointer, "/query/limit");
    arena_release(&a);
}

/* status=a,b,…: a text[] of the statuses in a canonical order, duplicates folded; both lists. */
static void test_status_filter(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"active", "{active}"},
        {"scheduled,active", "{active,scheduled}"},
        {"paused,expired,paused", "{expired,paused}"},
        {"active,scheduled,expired,paused", "{active,scheduled,expired,paused}"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        seg_arena a;
        seg_error err;
        aud_list_query q;
        v1_list_query vq;
        arena_init(&a);
        assert_int_equal(aud(Q1("status", ok[i].in), &a, &q, &err), 0);
        assert_string_equal(q.statuses, ok[i].out);
        assert_null(q.active_at_us);
        assert_int_equal(v1(Q1("status", ok[i].in), &a, &vq, &err), 0);
        assert_string_equal(vq.statuses, ok[i].out);
        arena_release(&a);
    }
    static const char *const bad[] = {"", ",", "active,", "Active", "live", "active, paused",
                                      "{active}", "active;paused"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aud_list_query q;
        aud_refuses(Q1("status", bad[i]), &q, "status",
                    "expected one or more of active, scheduled, expired, paused, separated by commas");
    }
    aud_list_query q;
    aud_refuses(Q1_BAD("status", "active"), &q, "status",
                "expected one or more of active, scheduled, expired, paused, separated by commas");
}

/* active_at: RFC 3339 on /audiences, epoch milliseconds on /v1; microseconds out. */
static void test_active_at(void **state)
{
    (void)state;
    seg_arena a;
    seg_error err;
    aud_list_query q;
    v1_list_query vq;
    arena_init(&a);
    assert_int_equal(aud(Q1("active_at", "2026-12-06T10:00:00.5+01:00"), &a, &q, &err), 0);
    assert_string_equal(q.active_at_us, "1796547600500000");
    assert_int_equal(v1(Q1("active_at", "1796547600500"), &a, &vq, &err), 0);
    assert_string_equal(vq.active_at_us, "1796547600500000");
    assert_int_equal(v1(Q1("active_at", "-62135596800000"), &a, &vq, &err), 0);
    assert_string_equal(vq.active_at_us, "-62135596800000000");
    assert_int_equal(v1(Q1("active_at", "253402300799999"), &a, &vq, &err), 0);
    static const char *const bad_ms[] = {"", "-", "1.5", "1e3", "+1", " 1", "253402300800000",
                                         "-62135596800001", "99999999999999999999", "2026-12-06T10:00:00Z"};
    for (size_t i = 0; i < sizeof bad_ms / sizeof bad_ms[0]; i++) {
        assert_int_equal(v1(Q1("active_at", bad_ms[i]), &a, &vq, &err), -1);
        refused(&err, (const char *[]){"active_at"}, 1);
    }
    static const char *const bad_ts[] = {"", "1796547600500", "2026-12-06", "10000-01-01T00:00:00Z",
                                         "2026-02-30T00:00:00Z"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
        assert_int_equal(aud(Q1("active_at", bad_ts[i]), &a, &q, &err), -1);
        refused(&err, (const char *[]){"active_at"}, 1);
    }
    arena_release(&a);
}

/* GET /v1/devices: limit, a cursor of kind d carrying "µs:id", updated_since in epoch ms. */
static void test_device_list(void **state)
{
    (void)state;
    seg_arena a;
    seg_error err;
    device_list_query q;
    char cursor[VAL_CURSOR_MAX], key[VAL_CURSOR_KEY_MAX];
    arena_init(&a);
    err_clear(&err);
    assert_int_equal(val_device_list_query(lookup, Q1("limit", "500"), &a, &q, &err), 0);
    assert_int_equal(q.limit, 500);
    assert_null(q.after_us);
    assert_null(q.updated_since_us);
    /* a cursor made from a page's key reads back as it: the longest id too */
    static const char *const ids[] = {"d1", "a@b.c:x_y-z", NULL};
    char long_id[256];
    memset(long_id, 'z', 255);
    long_id[255] = '\0';
    for (int i = 0; i < 3; i++) {
        const char *id = ids[i] ? ids[i] : long_id;
        snprintf(key, sizeof key, "%s:%s", i == 1 ? "-5" : "1796555783069534", id);
        val_cursor_encode('d', key, cursor);
        err_clear(&err);
        assert_int_equal(val_device_list_query(lookup, Q1("cursor", cursor), &a, &q, &err), 0);
        assert_string_equal(q.after_us, i == 1 ? "-5" : "1796555783069534");
        assert_string_equal(q.after_id, id);
    }
    err_clear(&err);
    assert_int_equal(val_device_list_query(lookup, Q1("updated_since", "1796555783069"), &a, &q, &err), 0);
    assert_string_equal(q.updated_since_us, "1796555783069000");
    /* refusals: another list's cursor, a key without an id or µs, a bad id */
    static const char *const bad_keys[] = {"123", ":id", "12x:id", "1:", "1:a b", "1:a/b"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        val_cursor_encode('d', bad_keys[i], cursor);
        err_clear(&err);
        assert_int_equal(val_device_list_query(lookup, Q1("cursor", cursor), &a, &q, &err), -1);
        refused(&err, (const char *[]){"cursor"}, 1);
    }
    val_cursor_encode('a', "12", cursor);
    err_clear(&err);
    assert_int_equal(val_device_list_query(lookup, Q1("cursor", cursor), &a, &q, &err), -1);
    refused(&err, (const char *[]){"cursor"}, 1);
    /* later than year 9999 reads as its end: nothing changed after it */
    err_clear(&err);
    assert_int_equal(val_device_list_query(lookup, Q1("updated_since", "9223372036854775807"), &a, &q, &err), 0);
    assert_string_equal(q.updated_since_us, "253402300799999000");
    static const char *const bad_since[] = {"", "-1", "1.5", "x", "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad_since / sizeof bad_since[0]; i++) {
        err_clear(&err);
        assert_int_equal(val_device_list_query(lookup, Q1("updated_since", bad_since[i]), &a, &q, &err), -1);
        refused(&err, (const char *[]){"updated_since"}, 1);
    }
    err_clear(&err);
    assert_int_equal(val_device_list_query(lookup, Q1("limit", "0"), &a, &q, &err), -1);
    refused(&err, (const char *[]){"limit"}, 1);
    arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_limit_bounds),
        cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_owner_and_management_type),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_updated_since),
        cmocka_unit_test(test_property),
        cmocka_unit_test(test_property_pairs),
        cmocka_unit_test(test_problems_collected),
        cmocka_unit_test(test_status_filter),
        cmocka_unit_test(test_active_at),
        cmocka_unit_test(test_device_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
