/* handlers/bulk_items.c and bulk_envelope.c for devices: each item's record, repeated ids
 * (the last one wins, the earlier ones warned) and the envelope written from the rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "handlers/bulk_private.h"
#include "validate/device.h"

/* A device request's bulk state over the items of json (an array), each validated. */
static void run_items(bulk *b, bulk_op op, const char *json)
{
    json_error_t je;
    json_t *items = json_loads(json, 0, &je);
    assert_non_null(items);
    memset(b, 0, sizeof *b);
    b->op = op;
    b->devices = true;
    b->trace_id = "t-1";
    assert_int_equal(h_bulk_alloc(b, json_array_size(items)), 0);
    for (b->n = 0; b->n < json_array_size(items); b->n++)
        h_bulk_item(b, json_array_get(items, b->n), b->n);
    json_decref(items);
}

/* The envelope of b with a row (representation {"id": <id>}) for every item still kept,
 * except those whose id is missing (the store did not find them); parsed. */
static json_t *envelope_of(bulk *b, const char *missing)
{
    bulk_row rows[16];
    char text[16][300];
    size_t n = 0, len;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->records[i] || (missing && !strcmp(b->ids[i], missing)))
            continue;
        snprintf(text[n], sizeof text[n], "{\"id\":\"%s\"}", b->ids[i]);
        rows[n] = (bulk_row){.id = b->ids[i], .json = text[n], .json_len = strlen(text[n])};
        n++;
    }
    char *out = h_bulk_envelope(b, rows, n, &len);
    assert_non_null(out);
    json_error_t je;
    json_t *env = json_loadb(out, len, 0, &je);
    assert_non_null(env);
    free(out);
    return env;
}

static const char *at(json_t *list, size_t k, const char *what)
{
    json_t *p = json_array_get(list, k);
    if (!strcmp(what, "pointer"))
        return json_string_value(json_object_get(json_object_get(p, "source"), "pointer"));
    return json_string_value(json_object_get(p, what));
}

/* A record names each field set by the representation's name, integers as numbers, and
 * leaves out what is absent or null; strings are escaped as PostgreSQL's escape_json. */
static void test_record(void **state)
{
    (void)state;
    bulk b;
    run_items(&b, BULK_UPSERT,
              "[{\"id\":\"Dev-1@x\",\"country\":\"PL\",\"appVersionCode\":41201,\"customUserId\":\"a\\\"b\\u00e9\","
              "\"email\":null,\"firstSession\":0,\"tags\":[\"b\",\"a\"],\"attributes\":{\"k\":[1,\"v\"]},"
              "\"updatedAt\":5}, {\"id\":\"d2\"}]");
    assert_int_equal(b.n_errors, 0);
    assert_string_equal(b.records[0],
                        "{\"id\":\"Dev-1@x\",\"country\":\"PL\",\"appVersionCode\":41201,"
                        "\"customUserId\":\"a\\\"b\xc3\xa9\",\"firstSession\":0,\"tags\":[\"b\",\"a\"],"
                        "\"attributes\":{\"k\":[1,\"v\"]}}");
    assert_string_equal(b.records[1], "{\"id\":\"d2\",\"tags\":[],\"attributes\":{}}");
    assert_string_equal(b.ids[0], "Dev-1@x");
    bool oom;
    char *all = h_bulk_join(&b, 0, b.n, &oom);
    assert_false(oom);
    assert_non_null(strstr(all, "},{\"id\":\"d2\""));
    free(all);
    h_bulk_free(&b);
}

/* An item's problems at their pointers; an item without an id is refused at /id, after
 * its other problems; a reserved id is refused with its own reason. */
static void test_refused_items(void **state)
{
    (void)state;
    bulk b;
    run_items(&b, BULK_UPSERT,
              "[{\"country\":\"pl\"}, {}, {\"id\":\"bulk-delete\"}, {\"id\":\"ok\"}, 7, {\"id\":\"a b\"}]");
    assert_null(b.records[0]);
    assert_null(b.records[1]);
    assert_null(b.records[2]);
    assert_non_null(b.records[3]);
    assert_null(b.records[4]);
    assert_int_equal(b.n_errors, 6);
    json_t *env = envelope_of(&b, NULL), *errors = json_object_get(env, "errors");
    const char *want[] = {"/data/0/country", "/data/0/id", "/data/1/id", "/data/2/id", "/data/4", "/data/5/id"};
    for (size_t k = 0; k < 6; k++)
        assert_string_equal(at(errors, k, "pointer"), want[k]);
    assert_string_equal(at(errors, 1, "detail"), "required: a bulk item names its device by \"id\"");
    assert_string_equal(at(errors, 3, "detail"), "\"bulk-delete\" is reserved: " VAL_DEVICE_RESERVED_WHY);
    assert_int_equal(json_array_size(json_object_get(env, "data")), 1);
    json_decref(env);
    h_bulk_free(&b);
}

/* The last valid item naming an id is kept; each earlier one is dropped with a superseded
 * warning naming it, in request order; an invalid item supersedes nothing. */
static void test_last_one_wins(void **state)
{
    (void)state;
    bulk b;
    run_items(&b, BULK_UPSERT,
              "[{\"id\":\"a\",\"type\":\"phone\"}, {\"id\":\"b\"}, {\"id\":\"a\",\"type\":\"tablet\"},"
              " {\"id\":\"c\"}, {\"id\":\"a\",\"type\":\"desktop\"}, {\"id\":\"c\",\"type\":\"car\"}]");
    assert_int_equal(h_bulk_duplicates(&b), 0);
    assert_null(b.records[0]);
    assert_non_null(b.records[1]);
    assert_null(b.records[2]);
    assert_non_null(b.records[3]);
    assert_non_null(strstr(b.records[4], "desktop"));
    assert_null(b.records[5]);
    json_t *env = envelope_of(&b, NULL), *warnings = json_object_get(env, "warnings");
    assert_int_equal(json_array_size(warnings), 2);
    assert_string_equal(at(warnings, 0, "pointer"), "/data/0/id");
    assert_string_equal(at(warnings, 1, "pointer"), "/data/2/id");
    assert_string_equal(at(warnings, 0, "code"), "superseded");
    assert_string_equal(at(warnings, 0, "title"), "Superseded");
    assert_string_equal(at(warnings, 0, "traceId"), "t-1");
    assert_string_equal(at(warnings, 1, "detail"),
                        "item 4 of this request names the same device: the last item naming an id is the one "
                        "applied, this one is not");
    json_t *data = json_object_get(env, "data");
    assert_int_equal(json_array_size(data), 3); /* b, c, a: request order */
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "id")), "b");
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 2), "id")), "a");
    assert_int_equal(json_array_size(json_object_get(env, "errors")), 1);
    json_decref(env);
    /* refused whole (atomic): no data and no warnings, only the errors */
    h_bulk_drop_records(&b);
    env = envelope_of(&b, NULL);
    assert_int_equal(json_array_size(json_object_get(env, "data")), 0);
    assert_int_equal(json_array_size(json_object_get(env, "warnings")), 0);
    assert_int_equal(json_array_size(json_object_get(env, "errors")), 1);
    json_decref(env);
    h_bulk_free(&b);
}

/* Deletes take {"id"} only; a device id keeps its case (segment uuids are lower-cased);
 * an id the store did not find is a not_found error naming a device. */
static void test_delete(void **state)
{
    (void)state;
    bulk b;
    run_items(&b, BULK_DELETE,
              "[{\"id\":\"ABC-def\"}, {\"id\":\"gone\"}, {\"id\":\"x\",\"country\":\"PL\"}, {\"id\":\"imports\"},"
              " {\"id\":\"ABC-def\"}]");
    assert_int_equal(h_bulk_duplicates(&b), 0);
    assert_null(b.records[0]);
    assert_string_equal(b.records[4], "\"ABC-def\"");
    assert_string_equal(b.ids[4], "ABC-def");
    bool oom;
    char *all = h_bulk_join(&b, 0, b.n, &oom);
    assert_string_equal(all, "[\"gone\",\"ABC-def\"]");
    free(all);
    json_t *env = envelope_of(&b, "gone"), *errors = json_object_get(env, "errors");
    assert_int_equal(json_array_size(errors), 3);
    assert_string_equal(at(errors, 0, "pointer"), "/data/2/id");
    assert_string_equal(at(errors, 1, "pointer"), "/data/3/id");
    assert_string_equal(at(errors, 2, "pointer"), "/data/1/id");
    assert_string_equal(at(errors, 2, "code"), "not_found");
    assert_string_equal(at(errors, 2, "detail"), "no device with this id");
    assert_string_equal(at(json_object_get(env, "warnings"), 0, "pointer"), "/data/0/id");
    json_decref(env);
    h_bulk_free(&b);
}

/* The longest device id fits the ids kept per item whole. */
static void test_long_id(void **state)
{
    (void)state;
    char json[600], id[256];
    memset(id, 'x', 255);
    id[255] = '\0';
    snprintf(json, sizeof json, "[{\"id\":\"%s\"}, {\"id\":\"%s\"}]", id, id);
    bulk b;
    run_items(&b, BULK_UPSERT, json);
    assert_string_equal(b.ids[0], id);
    assert_int_equal(h_bulk_duplicates(&b), 0);
    assert_null(b.records[0]);
    assert_non_null(b.records[1]);
    h_bulk_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_refused_items),
        cmocka_unit_test(test_last_one_wins),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_long_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
