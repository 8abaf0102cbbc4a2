/* libFuzzer target: a device body, as PUT and PATCH see it (and as a line of an import): val_parse_body, then val_device
 * without a path id, with the body's own id as the path id, and on the RFC 7396 merge of the
 * body onto a stored device. A success must keep every promise the store relies on. */
#include <errno.h>
#include <stdbool.h>

#include "fuzz_common.h"
#include "validate/attributes.h"
#include "validate/audience.h"
#include "validate/device.h"
#include "validate/validate.h"

/* What a GET of a device gives back: the document a PATCH is merged onto. */
static const char stored_device[] =
    "{\"id\":\"dev-1\",\"country\":\"PL\",\"language\":\"pol\",\"timezone\":\"Europe/Warsaw\","
    "\"appVersion\":\"1.3.54\",\"appVersionCode\":135,\"osApi\":\"35\",\"osVersion\":\"15.1\","
    "\"customUserId\":\"u42\",\"email\":\"name@example.com\",\"type\":\"phone\","
    "\"firstSession\":1700000000000,\"lastSession\":1700000100000,\"sessionCount\":12,"
    "\"createdAt\":1690000000000,\"pushToken\":null,\"unRegisteredAt\":null,"
    "\"deviceModel\":\"Pixel 8\",\"deviceManufacturer\":null,\"tags\":[\"vip\"],"
    "\"attributes\":{\"plan\":[\"pro\"],\"score\":[1,2.5]},\"updatedAt\":1700000200000}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    device_in in;
    seg_error err;
    fuzz_seed_jansson();
    /* an empty patch must leave a valid device: the stored one is one */
    json_t *stored = json_loads(stored_device, 0, NULL);
    err_clear(&err);
    FUZZ_CHECK(stored && val_device(stored, "dev-1", &in, &err) == 0, "the stored device is refused");
    val_device_release(&in);
    json_decref(stored);
    return 0;
}

static size_t chars(const char *s)
{
    return val_utf8_chars(s, strlen(s));
}

/* A string field's text: bounded, valid UTF-8, passing its format. */
static void check_string(const val_field *f, const char *s)
{
    char why[160];
    FUZZ_CHECK(chars(s) >= 1 && chars(s) <= DEVICE_STRING_MAX, "%s has %zu characters", f->name,
               chars(s));
    FUZZ_CHECK(val_utf8_valid(s), "%s is not UTF-8", f->name);
    FUZZ_CHECK(val_field_format_ok(f, s, why, sizeof why), "%s \"%s\" fails its format: %s",
               f->name, s, why);
}

/* An integer field's text: the whole of it a decimal within the type, >= 0 for a timestamp. */
static void check_integer(const val_field *f, const char *s)
{
    int64_t min, max;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    FUZZ_CHECK(*s && *end == '\0' && errno == 0, "%s \"%s\" is not a decimal", f->name, s);
    val_field_type_range(f->type, &min, &max);
    FUZZ_CHECK(n >= min && n <= max, "%s %lld out of range", f->name, n);
    FUZZ_CHECK(!f->timestamp || n >= 0, "%s %lld is a negative timestamp", f->name, n);
}

/* tags_json: an array of at most DEVICE_TAGS_MAX distinct strings of 1 to DEVICE_TAG_MAX
 * characters. */
static void check_tags(const char *text)
{
    json_t *tags = json_loads(text, JSON_REJECT_DUPLICATES, NULL), *t;
    size_t i, j;
    FUZZ_CHECK(json_is_array(tags), "tags_json is not an array: %s", text);
    FUZZ_CHECK(json_array_size(tags) <= DEVICE_TAGS_MAX, "%zu tags", json_array_size(tags));
    json_array_foreach(tags, i, t) {
        FUZZ_CHECK(json_is_string(t), "tag %zu is not a string: %s", i, text);
        size_t n = val_utf8_chars(json_string_value(t), json_string_length(t));
        FUZZ_CHECK(n >= 1 && n <= DEVICE_TAG_MAX, "tag %zu has %zu characters", i, n);
        for (j = 0; j < i; j++)
            FUZZ_CHECK(!json_equal(t, json_array_get(tags, j)), "tags %zu and %zu repeat", j, i);
    }
    json_decref(tags);
}

/* attributes_json: an object of code → 1 to AUD_MAX_PROPERTY_VALUES strings or numbers,
 * which val_attribute_lists accepts again once stored and read back. */
static void check_attributes(const char *text)
{
    json_t *attrs = json_loads(text, JSON_REJECT_DUPLICATES, NULL), *list, *v;
    const char *code;
    size_t i;
    seg_error err;
    val_path p;
    FUZZ_CHECK(json_is_object(attrs), "attributes_json is not an object: %s", text);
    json_object_foreach(attrs, code, list) {
        FUZZ_CHECK(json_is_array(list) && json_array_size(list) >= 1 &&
                       json_array_size(list) <= AUD_MAX_PROPERTY_VALUES,
                   "attribute %s is not a list of 1 to %d values", code, AUD_MAX_PROPERTY_VALUES);
        json_array_foreach(list, i, v)
            FUZZ_CHECK(json_is_string(v) || json_is_number(v), "attribute %s value %zu", code, i);
    }
    err_clear(&err);
    val_path_init(&p, &err);
    FUZZ_CHECK(val_attribute_lists(&p, attrs) && err.n_items == 0,
               "stored attributes refused when read back: %s", text);
    json_decref(attrs);
}

static void validate(json_t *root, const char *path_id)
{
    device_in in;
    seg_error err;
    err_clear(&err);
    int rc = val_device(root, path_id, &in, &err);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1, "val_device returned %d", rc);
        FUZZ_CHECK(err.status == 422 && (err.n_items > 0 || err.truncated),
                   "failure without problems (status %d)", err.status);
        FUZZ_CHECK(!in.id && !in.tags_json && !in.attributes_json, "out not empty on failure");
        for (size_t i = 0; i < VAL_FIELD_COUNT; i++)
            FUZZ_CHECK(!in.scalar[i], "scalar %zu set on failure", i);
        fuzz_check_problem(&err);
        val_device_release(&in);
        return;
    }
    FUZZ_CHECK(err.status == 0 && err.n_items == 0, "success with an error set");
    json_t *body_id = json_object_get(root, "id");
    FUZZ_CHECK(in.id == (body_id ? json_string_value(body_id) : NULL), "id not the body's");
    FUZZ_CHECK(!in.id || val_device_id(in.id), "id \"%s\" is not a device id", in.id);
    FUZZ_CHECK(!in.id || !path_id || !strcmp(in.id, path_id), "id \"%s\" is not the path's", in.id);
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++) {
        const val_field *f = val_field_at(i);
        json_t *v = json_object_get(root, f->name);
        const char *s = in.scalar[i];
        if (!strcmp(f->name, "id") || f->type == VAL_FIELD_STRING_ARRAY) {
            FUZZ_CHECK(!s, "%s has a scalar", f->name);
            continue;
        }
        FUZZ_CHECK(!s == (!v || json_is_null(v)), "%s set %s", f->name, s ? "from nothing" : "lost");
        if (!s)
            continue;
        if (val_field_type_range(f->type, NULL, NULL)) {
            FUZZ_CHECK(s == in.numbers[i], "%s not in numbers[]", f->name);
            check_integer(f, s);
            FUZZ_CHECK(json_integer_value(v) == strtoll(s, NULL, 10), "%s changed value", f->name);
        } else {
            FUZZ_CHECK(s == json_string_value(v), "%s not borrowed from the body", f->name);
            check_string(f, s);
        }
    }
    FUZZ_CHECK(in.tags_json && in.attributes_json, "success without tags or attributes text");
    check_tags(in.tags_json);
    check_attributes(in.attributes_json);
    val_device_release(&in);
}

/* The same bytes as a line of an import: refused with one problem at least, or a device
 * with its id whose tags one by one are the tags of its JSON text. */
static void import_line(const uint8_t *data, size_t size)
{
    json_t *root;
    device_in in;
    seg_error err;
    err_clear(&err);
    int rc = val_device_line((const char *)data, size, 4096, &root, &in, &err);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1 && err.status == 422 && (err.n_items > 0 || err.truncated),
                   "an import line refused without a problem (rc %d, status %d)", rc, err.status);
        FUZZ_CHECK(size > 4096 || root || err.items[0].pointer[0] == '\0',
                   "a line that is not JSON refused at \"%s\"", err.items[0].pointer);
    } else {
        FUZZ_CHECK(in.id && val_device_id(in.id), "an import line accepted without its id");
        json_t *tags = json_loads(in.tags_json, 0, NULL);
        FUZZ_CHECK(tags && json_array_size(tags) == in.n_tags, "the tags one by one are not the tags");
        for (size_t i = 0; i < in.n_tags; i++)
            FUZZ_CHECK(!strcmp(json_string_value(json_array_get(tags, i)), in.tag[i]), "tag %zu differs", i);
        json_decref(tags);
    }
    val_device_release(&in);
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    import_line(data, size);
    json_t *root = fuzz_parse_body(data, size);
    if (!root)
        return 0;
    validate(root, NULL);
    validate(root, json_string_value(json_object_get(root, "id")));

    /* PATCH: merged onto the stored device, then validated whole against its path id */
    json_t *merged = json_loads(stored_device, 0, NULL);
    FUZZ_CHECK(merged != NULL, "the stored device does not parse");
    val_merge_patch(merged, root);
    validate(merged, "dev-1");
    json_decref(merged);
    json_decref(root);
    return 0;
}
