/* Device bodies → device_in: each field of the device table by its type and format, tags and attributes. */
#include "validate/device.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "validate/attributes.h"
#include "validate/validate.h"

/* The keys a device body may hold, in the representation's order: id, the table's other
 * fields, then the two the table does not describe. */
#define N_BODY_KEYS (VAL_FIELD_COUNT + 2)

static void body_keys(const char *names[N_BODY_KEYS])
{
    size_t n = 0;
    names[n++] = "id";
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++)
        if (strcmp(val_field_at(i)->name, "id"))
            names[n++] = val_field_at(i)->name;
    names[n++] = "attributes";
    names[n++] = "updatedAt"; /* server-set: accepted so that a GET body can be sent back */
}

static bool id_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == ':' || c == '@';
}

/* The literal routes under /v1/devices/ (and imports, the next step's): the router tries
 * a literal path before "{id}" (http/router.c), so a device of one of these ids could
 * never be read, replaced or deleted by its path. */
static const char *const reserved_ids[] = {"bulk", "bulk-delete", "imports"};

bool val_device_id_reserved(const char *s)
{
    for (size_t i = 0; s && i < sizeof reserved_ids / sizeof reserved_ids[0]; i++)
        if (!strcmp(s, reserved_ids[i]))
            return true;
    return false;
}

bool val_device_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (val_device_id_reserved(s))
        return false;
    if (n < 1 || n > DEVICE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!id_char_ok(s[i]))
            return false;
    return true;
}

/* true when v is a string without an embedded NUL: jansson refuses \u0000 unless asked
 * not to, but a merged or built document is not parsed text, and PostgreSQL text holds
 * no NUL either. */
static bool is_c_string(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* Checks that v is a NUL-free string of lo to hi characters; says what else it is. */
static bool check_text(val_path *p, json_t *v, const char *what, size_t lo, size_t hi)
{
    if (!json_is_string(v)) {
        val_fail(p, "expected %s, got %s", what, val_type_name(v));
        return false;
    }
    if (!is_c_string(v)) {
        val_fail(p, "must not contain a NUL character");
        return false;
    }
    size_t chars = val_utf8_chars(json_string_value(v), json_string_length(v));
    if (chars < lo || chars > hi) {
        val_fail(p, "expected %zu to %zu characters, got %zu", lo, hi, chars);
        return false;
    }
    return true;
}

static bool check_id(val_path *p, json_t *v, const char *path_id, device_in *out)
{
    char ex[VAL_EXCERPT_BUF], ex_path[VAL_EXCERPT_BUF];
    if (!check_text(p, v, "a device id (a string)", 1, DEVICE_ID_MAX))
        return false;
    const char *id = json_string_value(v);
    if (val_device_id_reserved(id)) {
        val_fail(p, "\"%s\" is reserved: " VAL_DEVICE_RESERVED_WHY, id);
        return false;
    }
    if (!val_device_id(id)) {
        val_fail(p, "\"%s\" is not a device id: expected only letters, digits and - _ . : @",
                 val_excerpt(ex, id));
        return false;
    }
    if (path_id && strcmp(id, path_id)) {
        val_fail(p, "the body's id \"%s\" differs from the id in the path, \"%s\"",
                 val_excerpt(ex, id), val_excerpt(ex_path, path_id));
        return false;
    }
    out->id = id;
    return true;
}

/* A string or integer field of the table at index i (v not null): fills scalar[i]. */
static bool check_scalar(val_path *p, const val_field *f, size_t i, json_t *v, device_in *out)
{
    char ex[VAL_EXCERPT_BUF], why[160];
    int64_t min, max;
    if (!val_field_type_range(f->type, &min, &max)) {
        if (!check_text(p, v, "a string or null", 1, DEVICE_STRING_MAX))
            return false;
        const char *s = json_string_value(v);
        if (!val_field_format_ok(f, s, why, sizeof why)) {
            val_fail(p, "\"%s\" is not %s: %s", val_excerpt(ex, s), f->what, why);
            return false;
        }
        out->scalar[i] = s;
        return true;
    }
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
    if (!json_is_integer(v))
        val_fail(p, "expected an integer or null, got %s", val_type_name(v));
    else if (n < min || n > max)
        val_fail(p, "%" JSON_INTEGER_FORMAT " is out of range for an %s: expected %" PRId64
                 " to %" PRId64, n, val_field_type_name(f->type), min, max);
    else if (f->timestamp && n < 0)
        val_fail(p, "%" JSON_INTEGER_FORMAT " is negative: expected epoch milliseconds, 0 or more", n);
    else {
        snprintf(out->numbers[i], sizeof out->numbers[i], "%" JSON_INTEGER_FORMAT, n);
        out->scalar[i] = out->numbers[i];
        return true;
    }
    return false;
}

/* tags: at most DEVICE_TAGS_MAX distinct strings of 1 to DEVICE_TAG_MAX characters; a
 * repeat is reported at the later item. Returns true when there was no problem. */
static bool check_tags(val_path *p, json_t *v)
{
    bool ok = true;
    size_t i, j;
    json_t *tag;
    if (!json_is_array(v)) {
        val_fail(p, "expected an array of tags (strings) or null, got %s", val_type_name(v));
        return false;
    }
    if (json_array_size(v) > DEVICE_TAGS_MAX) {
        val_fail(p, "expected at most %d tags, got %zu", DEVICE_TAGS_MAX, json_array_size(v));
        return false;
    }
    json_array_foreach(v, i, tag) {
        size_t old = val_path_push_index(p, i);
        bool tag_ok = check_text(p, tag, "a tag (a string)", 1, DEVICE_TAG_MAX);
        for (j = 0; tag_ok && j < i; j++) {
            if (json_equal(tag, json_array_get(v, j))) {
                val_fail(p, "duplicate tag: the same as item %zu", j);
                tag_ok = false;
            }
        }
        ok = ok && tag_ok;
        val_path_pop(p, old);
    }
    return ok;
}

/* Compact JSON of v, or of empty when v is absent or null (malloc'd; NULL when memory ran out). */
static char *dump_or(json_t *v, const char *empty)
{
    return v && !json_is_null(v) ? json_dumps(v, JSON_COMPACT) : strdup(empty);
}

int val_device(json_t *root, const char *path_id, device_in *out, seg_error *err)
{
    const char *names[N_BODY_KEYS], *key;
    char ex[VAL_EXCERPT_BUF];
    bool ok = true; /* each check says whether it failed: a full problem list counts no more */
    val_path p;
    json_t *v;

    memset(out, 0, sizeof *out);
    if (!json_is_object(root)) {
        err_add(err, "", "the request body must be a JSON object, got %s",
                root ? val_type_name(root) : "nothing");
        return -1;
    }
    val_path_init(&p, err);
    body_keys(names);
    json_object_foreach(root, key, v) {
        size_t k;
        for (k = 0; k < N_BODY_KEYS && strcmp(key, names[k]); k++)
            ;
        if (k < N_BODY_KEYS)
            continue;
        for (k = 0; k < N_BODY_KEYS && strcasecmp(key, names[k]); k++)
            ;
        size_t old = val_path_push(&p, key);
        if (k < N_BODY_KEYS)
            val_fail(&p, "unknown field \"%s\": names are case-sensitive, expected \"%s\"",
                     val_excerpt(ex, key), names[k]);
        else
            val_fail_one_of(&p, names, N_BODY_KEYS, "unknown field \"%s\": ", val_excerpt(ex, key));
        val_path_pop(&p, old);
        ok = false;
    }

    json_t *id = json_object_get(root, "id");
    if (id) {
        size_t old = val_path_push(&p, "id");
        ok = check_id(&p, id, path_id, out) && ok;
        val_path_pop(&p, old);
    }
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++) {
        const val_field *f = val_field_at(i);
        v = json_object_get(root, f->name);
        if (!v || json_is_null(v) || !strcmp(f->name, "id"))
            continue;
        size_t old = val_path_push(&p, f->name);
        if (f->type == VAL_FIELD_STRING_ARRAY)
            ok = check_tags(&p, v) && ok;
        else
            ok = check_scalar(&p, f, i, v, out) && ok;
        val_path_pop(&p, old);
    }
    json_t *attributes = json_object_get(root, "attributes");
    if (attributes && !json_is_null(attributes)) {
        size_t old = val_path_push(&p, "attributes");
        ok = val_attribute_lists(&p, attributes) && ok;
        val_path_pop(&p, old);
    }
    if (!ok)
        goto fail;

    json_t *tags = json_object_get(root, "tags"), *tag;
    size_t i;
    json_array_foreach(tags, i, tag) /* checked: at most DEVICE_TAGS_MAX strings */
        out->tag[out->n_tags++] = json_string_value(tag);
    out->tags_json = dump_or(tags, "[]");
    out->attributes_json = dump_or(attributes, "{}");
    if (!out->tags_json || !out->attributes_json) {
        err_set(err, 500, "internal", "the server ran out of memory validating the device");
        err_log(err, "val_device: allocation failed");
        goto fail;
    }
    return 0;

fail:
    val_device_release(out);
    memset(out, 0, sizeof *out);
    return -1;
}

int val_device_line(const char *line, size_t len, size_t max, json_t **root, device_in *out,
                    seg_error *err)
{
    json_error_t je;
    *root = NULL;
    memset(out, 0, sizeof *out);
    if (len > max) {
        err_add(err, "", "the line is %zu bytes: at most %zu bytes are accepted", len, max);
        return -1;
    }
    *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!*root) {
        err_add(err, "", "not JSON: %s at column %d", je.text, je.column);
        return -1;
    }
    if (json_is_object(*root) && !json_object_get(*root, "id")) {
        err_add(err, "/id", "a device of an import needs its id");
        return -1;
    }
    return val_device(*root, NULL, out, err);
}

void val_device_release(device_in *in)
{
    free(in->tags_json);
    free(in->attributes_json);
    in->tags_json = NULL;
    in->attributes_json = NULL;
}
