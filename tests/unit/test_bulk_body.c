/* The bulk body walk and the whole body's check: the walk gives the items jansson finds
 * in the whole body, or gives up; the whole check's problems. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "validate/bulk_body.h"
#include "validate/validate.h"

/* Walks body to its end: the items in *items (a new array), or NULL when it gave up. */
static json_t *walk_all(const char *body, size_t len)
{
    val_bulk_walk w;
    json_t *items = json_array();
    int next;
    if (!val_bulk_open(&w, body, len))
        goto give_up;
    do {
        json_t *item = val_bulk_item(&w);
        if (!item)
            goto give_up;
        json_array_append_new(items, item);
        next = val_bulk_next(&w);
    } while (next > 0);
    if (next < 0)
        goto give_up;
    return items;
give_up:
    json_decref(items);
    return NULL;
}

/* The property every caller relies on: a walk that reaches the end gave the items of
 * the whole parse, and that parse passes val_bulk_data. */
static void check_agrees(const char *body, size_t len)
{
    seg_error err;
    err_clear(&err);
    json_t *walked = walk_all(body, len);
    json_t *root = val_parse_body(body, len, &err);
    json_t *data = root ? val_bulk_data(root, VAL_BULK_MAX_ITEMS, &err) : NULL;
    if (walked) {
        assert_non_null(data);
        assert_true(json_equal(walked, data));
    }
    json_decref(walked);
    json_decref(root);
}

static void walks(const char *body, size_t n_items)
{
    json_t *items = walk_all(body, strlen(body));
    assert_non_null(items);
    assert_int_equal(json_array_size(items), n_items);
    check_agrees(body, strlen(body));
    json_decref(items);
}

static void gives_up(const char *body)
{
    assert_null(walk_all(body, body ? strlen(body) : 0));
    if (body)
        check_agrees(body, strlen(body));
}

static void test_walks(void **state)
{
    walks("{\"data\":[{}]}", 1);
    walks(" \t\r\n{ \"data\" : [ {\"name\":\"a\"} , 2 ,\"x\",[1,{\"b\":null}], true ] } \n", 5);
    walks("{\"data\":[{\"s\":\"\\\"]},\\\\\"}]}", 1); /* separators inside strings */
    walks("{\"data\":[1.5e3,-0,null]}", 3);
}

static void test_gives_up(void **state)
{
    gives_up(NULL);
    gives_up("");
    gives_up("{\"data\":[]}");             /* no item: the whole parse says so */
    gives_up("{\"dat\\u0061\":[{}]}");      /* "data" spelt with an escape */
    gives_up("{\"other\":1,\"data\":[{}]}"); /* another key first */
    gives_up("{\"data\":[{}],\"other\":1}"); /* ... or after */
    gives_up("{\"data\":{}}");
    gives_up("{\"data\":[{}]");              /* not closed */
    gives_up("{\"data\":[{}]}x");            /* trailing data */
    gives_up("{\"data\":[{}]}{}");
    gives_up("{\"data\":[{},]}");            /* a trailing comma */
    gives_up("{\"data\":[{} {}]}");          /* no comma */
    gives_up("{\"data\":[{\"a\":1,\"a\":2}]}"); /* duplicate keys, as the whole parse */
    gives_up("{\"data\":[\"\\u0000\"]}");    /* a NUL escape, as the whole parse */
    gives_up("{\"data\":[\"\xff\"]}");        /* not UTF-8 */
    gives_up("\xef\xbb\xbf{\"data\":[{}]}");  /* a BOM */
}

/* An item as deep as jansson allows on its own is two levels too deep in the body. */
static void test_depth(void **state)
{
    for (int depth = JSON_PARSER_MAX_DEPTH - 4; depth <= JSON_PARSER_MAX_DEPTH + 1; depth++) {
        size_t n = 16 + 2 * (size_t)depth;
        char *body = malloc(n + 16);
        size_t o = (size_t)sprintf(body, "{\"data\":[");
        for (int i = 0; i < depth; i++)
            body[o++] = '[';
        for (int i = 0; i < depth; i++)
            body[o++] = ']';
        o += (size_t)sprintf(body + o, "]}");
        json_t *items = walk_all(body, o);
        if (depth <= JSON_PARSER_MAX_DEPTH - 2)
            assert_non_null(items);
        else
            assert_null(items);
        check_agrees(body, o);
        json_decref(items);
        free(body);
    }
}

static void test_whole_problems(void **state)
{
    static const struct {
        const char *body;
        int status;
        const char *code, *pointer0;
        int n_items;
    } cases[] = {
        {"{\"data\":[{}]}", 0, NULL, NULL, 0},
        {"{\"data\":[]}", 422, "validation_failed", "/data", 1},
        {"{\"data\":{}}", 422, "validation_failed", "/data", 1},
        {"{\"items\":[{}]}", 422, "validation_failed", "/items", 2},
        {"{\"data\":[{}],\"x\":1,\"y\":2}", 422, "validation_failed", "/x", 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        seg_error err;
        err_clear(&err);
        json_t *root = val_parse_body(cases[k].body, strlen(cases[k].body), &err);
        assert_non_null(root);
        json_t *data = val_bulk_data(root, VAL_BULK_MAX_ITEMS, &err);
        assert_int_equal(err.status, cases[k].status);
        if (cases[k].status) {
            assert_null(data);
            assert_string_equal(err.code, cases[k].code);
            assert_int_equal(err.n_items, cases[k].n_items);
            assert_string_equal(err.items[0].pointer, cases[k].pointer0);
        } else {
            assert_true(json_is_array(data));
        }
        json_decref(root);
    }
    /* one item past the limit */
    json_t *root = json_object(), *data = json_array();
    for (int i = 0; i <= VAL_BULK_MAX_ITEMS; i++)
        json_array_append_new(data, json_object());
    json_object_set_new(root, "data", data);
    seg_error err;
    err_clear(&err);
    assert_null(val_bulk_data(root, VAL_BULK_MAX_ITEMS, &err));
    assert_string_equal(err.code, "too_many_items");
    assert_string_equal(err.detail, "a bulk request holds 1 to 1000 items, got 1001");
    /* the same body within the devices' limit, and past it */
    err_clear(&err);
    assert_ptr_equal(val_bulk_data(root, VAL_BULK_MAX_DEVICES, &err), data);
    assert_int_equal(err.status, 0);
    for (int i = VAL_BULK_MAX_ITEMS + 1; i < VAL_BULK_MAX_DEVICES; i++) /* 10 000 in all */
        json_array_append_new(data, json_object());
    assert_ptr_equal(val_bulk_data(root, VAL_BULK_MAX_DEVICES, &err), data);
    json_array_append_new(data, json_object());
    assert_null(val_bulk_data(root, VAL_BULK_MAX_DEVICES, &err));
    assert_string_equal(err.code, "too_many_items");
    assert_string_equal(err.detail, "a bulk request holds 1 to 10000 items, got 10001");
    assert_string_equal(err.items[0].pointer, "/data");
    json_decref(root);
}

/* Bodies put together from pieces that matter to the walk: wherever it goes, a walk that
 * reaches the end agrees with the whole parse. */
static void test_agrees_with_whole_parse(void **state)
{
    static const char *const pieces[] = {"{", "}", "[", "]", ",", ":", " ", "\n", "\"data\"", "\"a\"", "1",
                                         "null", "\"x\\\"]}\"", "{\"data\":[", "]}", "{}", "[]", "\"\\u0000\"",
                                         "\xff", "\"data\\u0000\"", "1e999", "-", "\"d\""};
    unsigned long long r = 0x9e3779b97f4a7c15ull;
    char body[512];
    int walked = 0;
    for (int k = 0; k < 200000; k++) {
        size_t o = 0;
        if (k % 2)
            o += (size_t)sprintf(body, "{\"data\":[");
        int n = (int)(r % 12);
        for (int i = 0; i < n; i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            const char *p = pieces[r % (sizeof pieces / sizeof pieces[0])];
            size_t l = strlen(p);
            if (o + l >= sizeof body)
                break;
            memcpy(body + o, p, l);
            o += l;
        }
        if (k % 4 == 1 && o + 2 < sizeof body)
            o += (size_t)sprintf(body + o, "]}");
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        json_t *w = walk_all(body, o);
        walked += w != NULL;
        json_decref(w);
        check_agrees(body, o);
    }
    assert_true(walked > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walks),
        cmocka_unit_test(test_gives_up),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_whole_problems),
        cmocka_unit_test(test_agrees_with_whole_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
