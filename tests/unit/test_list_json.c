/* List items written from columns: string escaping (every byte at every place of a word),
 * timestamps, nulls, the length bound. Rows are built as libpq results, which is what
 * store_rows are. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "store/list_json.h"

/* One row of text columns; NULL is SQL NULL. */
static store_rows *row_of(int n, const char *const *vals)
{
    PGresAttDesc att[24];
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(r);
    memset(att, 0, sizeof att);
    for (int i = 0; i < n; i++)
        att[i].name = (char *)"c";
    assert_true(PQsetResultAttrs(r, n, att));
    for (int i = 0; i < n; i++)
        assert_true(PQsetvalue(r, 0, i, (char *)vals[i], vals[i] ? (int)strlen(vals[i]) : -1));
    return (store_rows *)r;
}

static char *v1_item(const char *name, const char *desc, const char *created, const char *updated)
{
    /* the lifecycle: no start, ends at 2000-01-01, active, not renewing */
    const char *vals[14] = {"seg_0123456789abc", name, desc, "[]", created, updated,
                            NULL, "0000000000000000", "t", "f", "30", "active",
                            "{\"count\" : 3, \"precision\" : \"exact\", \"computedAt\" : 946684800000}", "7"};
    store_rows *rows = row_of(14, vals);
    size_t max = store_list_item_max(rows, 0, STORE_LIST_V1);
    char *out = malloc(max + 1);
    assert_non_null(out);
    memset(out, '#', max + 1);
    size_t n = store_list_item_write(rows, 0, STORE_LIST_V1, out);
    assert_true(n <= max);
    assert_true(max - n <= 3 * 40 + 1); /* exact but for three timestamps and a boolean */
    assert_int_equal(out[max], '#');
    out[n] = '\0';
    assert_string_equal(store_list_key(rows, 0, STORE_LIST_V1), "7");
    PQclear((PGresult *)rows);
    return out;
}

/* escape_json as PostgreSQL writes it, one byte at a time */
static void reference(const char *s, char *out)
{
    *out++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '\b': out += sprintf(out, "\\b"); break;
        case '\f': out += sprintf(out, "\\f"); break;
        case '\n': out += sprintf(out, "\\n"); break;
        case '\r': out += sprintf(out, "\\r"); break;
        case '\t': out += sprintf(out, "\\t"); break;
        case '"': out += sprintf(out, "\\\""); break;
        case '\\': out += sprintf(out, "\\\\"); break;
        default:
            if (c < ' ')
                out += sprintf(out, "\\u%04x", c);
            else
                *out++ = (char)c;
        }
    }
    *out++ = '"';
    *out = '\0';
}

#define EPOCH0 "0000000000000000" /* 2000-01-01 00:00:00 */

static void test_every_byte_everywhere(void **state)
{
    (void)state;
    char name[32], want[256], item[1024];
    for (int c = 1; c < 256; c++)
        for (int len = 1; len <= 19; len++)
            for (int at = 0; at < len; at++) {
                memset(name, c == 'x' ? 'y' : 'x', (size_t)len);
                name[at] = (char)c;
                name[len] = '\0';
                reference(name, want);
                snprintf(item, sizeof item, "{\"id\" : \"seg_0123456789abc\", \"name\" : %s, "
                         "\"description\" : null, \"constraints\" : [], \"createdAt\" : 946684800000, "
                         "\"updatedAt\" : 946684800000, \"startDate\" : null, \"endDate\" : 946684800000, "
                         "\"active\" : true, \"extend\" : false, \"extendDays\" : 30, \"status\" : \"active\", "
                         "\"size\" : {\"count\" : 3, \"precision\" : \"exact\", \"computedAt\" : 946684800000}}",
                         want);
                char *got = v1_item(name, NULL, EPOCH0, EPOCH0);
                assert_string_equal(got, item);
                free(got);
            }
}

static void test_timestamps_as_ms(void **state)
{
    (void)state;
    /* -1 µs after 2000: floor to the millisecond before; infinity is null */
    char *got = v1_item("n", "d", "ffffffffffffffff", "7fffffffffffffff");
    assert_non_null(strstr(got, "\"createdAt\" : 946684799999, \"updatedAt\" : null, "));
    assert_non_null(strstr(got, "\"description\" : \"d\""));
    free(got);
    got = v1_item("n", "d", "not hex at all!!", "00000000000003e8"); /* 1000 µs */
    assert_non_null(strstr(got, "\"createdAt\" : null, \"updatedAt\" : 946684800001, "));
    free(got);
}

static char *aud_item(const char *created, const char *updated)
{
    /* the lifecycle: starts when updated_at, no end, paused, renewing every 7 days */
    const char *vals[18] = {"3c90c3cc-0d44-4b50-8888-8dd25736052a", "selfmanaged", "n", "12",
                            "3c90c3cc-0d44-4b50-8888-8dd25736052b", NULL, created, "{}", NULL,
                            "{\"a\": [1]}", updated, updated, NULL, "f", "t", "7", "paused", NULL};
    store_rows *rows = row_of(18, vals);
    size_t max = store_list_item_max(rows, 0, STORE_LIST_AUD);
    char *out = malloc(max + 1);
    assert_non_null(out);
    size_t n = store_list_item_write(rows, 0, STORE_LIST_AUD, out);
    assert_true(n <= max);
    out[n] = '\0';
    assert_string_equal(store_list_key(rows, 0, STORE_LIST_AUD), "12");
    PQclear((PGresult *)rows);
    return out;
}

static void test_audience_item(void **state)
{
    (void)state;
    static const struct {
        const char *hex, *text;
    } cases[] = {
        {EPOCH0, "\"2000-01-01T00:00:00.000000Z\""},
        {"ffffffffffffffff", "\"1999-12-31T23:59:59.999999Z\""},
        {"000304ea8f1c8000", "\"2026-12-06T00:00:00.000000Z\""},
        {"7fffffffffffffff", "null"},
        {"8000000000000000", "null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[1024];
        snprintf(want, sizeof want,
                 "{\"id\" : \"3c90c3cc-0d44-4b50-8888-8dd25736052a\", \"management_type\" : \"selfmanaged\", "
                 "\"name\" : \"n\", \"no\" : 12, \"owner_id\" : \"3c90c3cc-0d44-4b50-8888-8dd25736052b\", "
                 "\"approximated_size\" : null, \"created_at\" : %s, \"deprecated_properties\" : {}, "
                 "\"description\" : null, \"properties\" : {\"a\": [1]}, \"updated_at\" : %s, "
                 "\"start_date\" : %s, \"end_date\" : null, \"active\" : false, \"extend\" : true, "
                 "\"extend_days\" : 7, \"status\" : \"paused\", \"size\" : null}",
                 cases[i].text, cases[i].text, cases[i].text);
        char *got = aud_item(cases[i].hex, cases[i].hex);
        assert_string_equal(got, want);
        free(got);
        /* a row's two timestamps differ: the second is not the first one's text again */
        size_t j = (i + 1) % (sizeof cases / sizeof cases[0]);
        snprintf(want, sizeof want, "\"created_at\" : %s, ", cases[i].text);
        got = aud_item(cases[i].hex, cases[j].hex);
        assert_non_null(strstr(got, want));
        snprintf(want, sizeof want, "\"updated_at\" : %s, \"start_date\" : %s, ", cases[j].text, cases[j].text);
        assert_non_null(strstr(got, want));
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_byte_everywhere),
        cmocka_unit_test(test_timestamps_as_ms),
        cmocka_unit_test(test_audience_item),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
