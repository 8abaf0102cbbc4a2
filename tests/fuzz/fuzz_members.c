/* libFuzzer target: the body of PATCH …/segments/{id}/members (both dialects), as the
 * handler sees it: val_parse_body, then val_members. A success is the text[] literal the
 * store binds, {"a","b"}, one quoted device id per id of the body in its order; a refusal
 * names each problem at /operation, /ids, /ids/<n> or /<unknown key>. */
#include <stdbool.h>

#include "fuzz_common.h"
#include "validate/device.h"
#include "validate/members.h"
#include "validate/validate.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_seed_jansson();
    return 0;
}

/* What check_ids accepts at ids[i]: a string without NUL that is a device id or a reserved one. */
static bool id_ok(json_t *v)
{
    const char *s = json_string_value(v);
    return json_is_string(v) && strlen(s) == json_string_length(v) &&
           (val_device_id(s) || val_device_id_reserved(s));
}

static bool operation_ok(json_t *op)
{
    const char *s = json_string_value(op);
    return json_is_string(op) && strlen(s) == json_string_length(op) &&
           (!strcmp(s, "add") || !strcmp(s, "remove"));
}

static bool ids_shape_ok(json_t *ids)
{
    return json_is_array(ids) && json_array_size(ids) >= 1 && json_array_size(ids) <= MEMBERS_IDS_MAX;
}

/* "/" + key escaped per RFC 6901 into out (cap bytes). */
static void escape_key(const char *key, char *out, size_t cap)
{
    size_t n = 0;
    out[n++] = '/';
    for (; *key && n + 3 < cap; key++) {
        if (*key == '~' || *key == '/') {
            out[n++] = '~';
            out[n++] = *key == '~' ? '0' : '1';
        } else {
            out[n++] = *key;
        }
    }
    out[n] = '\0';
}

/* The pointer of an unknown key: "/" + the escaped key, or, when that does not fit
 * ERR_POINTER_MAX, its longest prefix cut at a character and escape boundary. */
static bool names_key(const char *ptr, const char *key)
{
    char want[4 * ERR_POINTER_MAX * 2 + 8];
    escape_key(key, want, sizeof want);
    size_t n = strlen(ptr), w = strlen(want);
    if (n == w)
        return !strcmp(ptr, want);
    /* cut: a proper prefix, and only because the next piece would not fit */
    if (n > w || memcmp(ptr, want, n) != 0)
        return false;
    size_t piece = want[n] == '~' ? 2 : ((unsigned char)want[n] & 0xC0) == 0xC0 ? 2 : 1;
    if (((unsigned char)want[n] & 0xF0) == 0xE0)
        piece = 3;
    if (((unsigned char)want[n] & 0xF8) == 0xF0)
        piece = 4;
    return n + piece > ERR_POINTER_MAX - 1;
}

/* The text[] literal: '{', quoted elements separated by ',', '}'. Element i (unescaped as
 * PostgreSQL reads it) must be ids[i]. */
static void check_literal(const char *lit, json_t *ids)
{
    size_t n = json_array_size(ids), i = 0;
    const char *p = lit;
    char *el = malloc(strlen(lit) + 1);
    FUZZ_CHECK(el != NULL, "out of memory");
    FUZZ_CHECK(*p == '{', "literal does not start with {: %.80s", lit);
    p++;
    while (*p != '}') {
        FUZZ_CHECK(i < n, "more than %zu elements in %.200s", n, lit);
        if (i) {
            FUZZ_CHECK(*p == ',', "element %zu not after a comma: %.200s", i, lit);
            p++;
        }
        FUZZ_CHECK(*p == '"', "element %zu is not quoted: %.200s", i, lit);
        p++;
        size_t len = 0;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1])
                p++;
            el[len++] = *p++;
        }
        FUZZ_CHECK(*p == '"', "element %zu has no closing quote: %.200s", i, lit);
        p++;
        el[len] = '\0';
        json_t *v = json_array_get(ids, i);
        FUZZ_CHECK(json_is_string(v) && len == json_string_length(v) &&
                       !memcmp(el, json_string_value(v), len),
                   "element %zu \"%s\" is not the body's id \"%s\"", i, el, json_string_value(v));
        FUZZ_CHECK(val_device_id(el) || val_device_id_reserved(el), "element %zu \"%s\" is not a device id",
                   i, el);
        i++;
    }
    FUZZ_CHECK(p[1] == '\0', "text after the closing brace: %.200s", lit);
    FUZZ_CHECK(i == n, "%zu elements for %zu ids: %.200s", i, n, lit);
    free(el);
}

static void check_failure(json_t *root, const seg_error *err)
{
    json_t *op = json_object_get(root, "operation"), *ids = json_object_get(root, "ids");
    bool seen_op = false, seen_ids = false;
    size_t n = json_array_size(ids);
    FUZZ_CHECK(err->status == 422 || (err->status == 500 && err->n_items == 0),
               "failure with status %d and %d items", err->status, err->n_items);
    if (err->status == 500)
        return;
    FUZZ_CHECK(err->n_items > 0 || err->truncated, "422 without problems");
    for (int i = 0; i < err->n_items; i++) {
        const char *ptr = err->items[i].pointer;
        if (!strcmp(ptr, "/operation")) {
            FUZZ_CHECK(!operation_ok(op), "a valid operation refused: %s", err->items[i].detail);
            seen_op = true;
        } else if (!strcmp(ptr, "/ids")) {
            FUZZ_CHECK(!ids_shape_ok(ids), "ids of a valid shape refused as a whole: %s",
                       err->items[i].detail);
            seen_ids = true;
        } else if (!strncmp(ptr, "/ids/", 5) && ptr[5] >= '0' && ptr[5] <= '9' &&
                   (ptr[5] != '0' || !ptr[6]) && strspn(ptr + 5, "0123456789") == strlen(ptr + 5)) {
            size_t k = strtoul(ptr + 5, NULL, 10);
            FUZZ_CHECK(ids_shape_ok(ids) && k < n, "%s names no id (%zu ids)", ptr, n);
            FUZZ_CHECK(!id_ok(json_array_get(ids, k)), "%s is a valid id, refused: %s", ptr,
                       err->items[i].detail);
            seen_ids = true;
        } else {
            const char *key;
            json_t *v;
            bool found = false;
            json_object_foreach(root, key, v) {
                if (strcmp(key, "operation") && strcmp(key, "ids") && names_key(ptr, key)) {
                    found = true;
                    break;
                }
            }
            FUZZ_CHECK(found, "pointer \"%s\" names neither /operation, /ids, /ids/<n> nor an "
                              "unknown key: %s", ptr, err->items[i].detail);
        }
    }
    if (err->truncated)
        return;
    /* every problem is reported */
    FUZZ_CHECK(seen_op == !operation_ok(op), "operation %s but %sreported", operation_ok(op) ? "valid" : "invalid",
               seen_op ? "" : "not ");
    bool ids_bad = !ids_shape_ok(ids);
    for (size_t k = 0; !ids_bad && k < n; k++)
        ids_bad = !id_ok(json_array_get(ids, k));
    FUZZ_CHECK(seen_ids == ids_bad, "ids %s but %sreported", ids_bad ? "invalid" : "valid",
               seen_ids ? "" : "not ");
    size_t unknown = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) unknown += strcmp(key, "operation") && strcmp(key, "ids");
    int other = 0;
    for (int i = 0; i < err->n_items; i++)
        other += strcmp(err->items[i].pointer, "/operation") && strncmp(err->items[i].pointer, "/ids", 4);
    /* an unknown key such as "idsx" starts with /ids: count it by its own match */
    if ((size_t)other != unknown) {
        size_t matched = 0;
        json_object_foreach(root, key, v) {
            if (!strcmp(key, "operation") || !strcmp(key, "ids"))
                continue;
            for (int i = 0; i < err->n_items; i++)
                if (names_key(err->items[i].pointer, key)) {
                    matched++;
                    break;
                }
        }
        FUZZ_CHECK(matched == unknown, "%zu unknown keys, %zu reported", unknown, matched);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root = fuzz_parse_body(data, size);
    if (!root)
        return 0;
    members_in in;
    seg_error err;
    err_clear(&err);
    int rc = val_members(root, &in, &err);
    if (rc == 0) {
        json_t *ids = json_object_get(root, "ids");
        const char *key;
        json_t *v;
        FUZZ_CHECK(err.status == 0 && err.n_items == 0, "success with an error set");
        json_object_foreach(root, key, v)
            FUZZ_CHECK(!strcmp(key, "operation") || !strcmp(key, "ids"), "unknown key \"%s\" accepted", key);
        FUZZ_CHECK(operation_ok(json_object_get(root, "operation")), "operation accepted but not add/remove");
        FUZZ_CHECK(in.add == !strcmp(json_string_value(json_object_get(root, "operation")), "add"),
                   "add is %d", in.add);
        FUZZ_CHECK(ids_shape_ok(ids) && in.n == json_array_size(ids), "n %zu for %zu ids", in.n,
                   json_array_size(ids));
        FUZZ_CHECK(in.ids != NULL, "success without the ids text");
        check_literal(in.ids, ids);
    } else {
        FUZZ_CHECK(rc == -1, "val_members returned %d", rc);
        FUZZ_CHECK(in.ids == NULL, "ids text left on failure");
        check_failure(root, &err);
        fuzz_check_problem(&err);
    }
    val_members_release(&in);
    FUZZ_CHECK(in.ids == NULL, "release left the ids text");
    json_decref(root);
    return 0;
}
