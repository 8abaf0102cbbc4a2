/* /audiences/segments bodies → aud_segment_in. The fields are a table walked by one
 * loop; every problem is collected with its JSON Pointer. */
#include "validate/audience.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate/attributes.h"
#include "validate/lifecycle.h"
#include "validate/validate.h"

typedef enum { F_ENUM, F_NAME, F_UUID, F_SIZE, F_DESCRIPTION, F_PROPERTIES, F_DEPRECATED,
               F_DATETIME, F_IGNORED } field_kind;

typedef struct field_def {
    const char *key;
    field_kind kind;
    unsigned set_bit;        /* AUD_SET_* or 0 */
    bool nullable;
    bool required_create;    /* AUD_CREATE and AUD_REPLACE */
    bool required_replace;   /* AUD_REPLACE only */
} field_def;

static const field_def fields[] = {
    {"id", F_UUID, 0, false, false, true},
    {"management_type", F_ENUM, AUD_SET_MANAGEMENT_TYPE, false, true, true},
    {"name", F_NAME, AUD_SET_NAME, false, true, true},
    {"owner_id", F_UUID, AUD_SET_OWNER_ID, false, true, true},
    {"approximated_size", F_SIZE, AUD_SET_SIZE, true, false, false},
    {"description", F_DESCRIPTION, AUD_SET_DESCRIPTION, true, false, false},
    {"properties", F_PROPERTIES, AUD_SET_PROPERTIES, false, false, false},
    {"deprecated_properties", F_DEPRECATED, AUD_SET_DEPRECATED, false, false, false},
    {"created_at", F_DATETIME, 0, true, false, false},
    {"updated_at", F_IGNORED, 0, true, false, false},   /* read-only: accepted, ignored */
    {"no", F_IGNORED, 0, true, false, false},           /* read-only: accepted, ignored */
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

/* deprecated_properties is free-form JSON kept as it is sent, but bounded: every key
 * and every string in it at most AUD_MAX_DEPRECATED_CHARS characters (the depth is
 * checked before). Reports the first long one of each branch. */
static void check_deprecated_strings(val_path *p, json_t *v)
{
    if (json_is_string(v)) {
        size_t chars = val_utf8_chars(json_string_value(v), json_string_length(v));
        if (chars > AUD_MAX_DEPRECATED_CHARS)
            val_fail(p, "expected at most %d characters, got %zu", AUD_MAX_DEPRECATED_CHARS, chars);
    } else if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach(v, key, item) {
            size_t chars = val_utf8_chars(key, strlen(key));
            if (chars > AUD_MAX_DEPRECATED_CHARS) {
                val_fail(p, "a key \"%.40s…\" of %zu characters: keys have at most %d",
                         key, chars, AUD_MAX_DEPRECATED_CHARS);
                continue;
            }
            size_t old = val_path_push(p, key);
            check_deprecated_strings(p, item);
            val_path_pop(p, old);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            size_t old = val_path_push_index(p, i);
            check_deprecated_strings(p, item);
            val_path_pop(p, old);
        }
    }
}

/* deprecated_properties: an object within AUD_MAX_DEPTH whose strings are bounded; true
 * when it is. */
static bool check_deprecated(val_path *p, json_t *v)
{
    int before = p->err->n_items;
    if (!val_object_within(p, v, AUD_MAX_DEPTH))
        return false;
    check_deprecated_strings(p, v);
    return p->err->n_items == before;
}

static void check_field(val_path *p, const field_def *f, json_t *v, aud_segment_in *out,
                        bool want_text)
{
    const char *why;
    if (json_is_null(v)) {
        if (!f->nullable)
            val_fail(p, "must not be null");
        else if (f->set_bit)
            out->set |= f->set_bit;
        if (f->kind == F_SIZE)
            out->size_is_null = true;
        return;
    }
    switch (f->kind) {
    case F_ENUM:
        if (!json_is_string(v))
            val_fail(p, "expected a string, got %s", val_type_name(v));
        else if (strcmp(json_string_value(v), "selfmanaged") && strcmp(json_string_value(v), "systemmanaged"))
            val_fail(p, "\"%.40s\" is not a management type: expected selfmanaged or systemmanaged",
                     json_string_value(v));
        else
            out->management_type = json_string_value(v);
        break;
    case F_NAME: {
        if (!json_is_string(v)) {
            val_fail(p, "expected a string, got %s", val_type_name(v));
            break;
        }
        size_t chars = val_utf8_chars(json_string_value(v), json_string_length(v));
        if (chars < 1 || chars > AUD_MAX_NAME_CHARS)
            val_fail(p, "expected 1 to %d characters, got %zu", AUD_MAX_NAME_CHARS, chars);
        else if (val_is_blank(json_string_value(v)))
            val_fail(p, "must not be blank");
        else
            out->name = json_string_value(v);
        break;
    }
    case F_UUID:
        if (!json_is_string(v)) {
            val_fail(p, "expected a uuid string, got %s", val_type_name(v));
        } else if (!val_uuid(json_string_value(v), json_string_length(v), &why)) {
            val_fail(p, "\"%.40s\" is not a uuid: %s, got %zu characters", json_string_value(v),
                     why, json_string_length(v));
        } else {
            char *dst = !strcmp(f->key, "id") ? out->id : out->owner_id;
            for (int i = 0; i < 36; i++) {
                char c = json_string_value(v)[i];
                dst[i] = (char)(c >= 'A' && c <= 'F' ? c + 32 : c);
            }
            dst[36] = '\0';
        }
        break;
    case F_SIZE:
        if (!json_is_integer(v))
            val_fail(p, "expected a non-negative integer or null, got %s", val_type_name(v));
        else if (json_integer_value(v) < 0)
            val_fail(p, "must not be negative, got %lld", (long long)json_integer_value(v));
        else
            snprintf(out->size, sizeof out->size, "%lld", (long long)json_integer_value(v));
        break;
    case F_DESCRIPTION: {
        if (!json_is_string(v)) {
            val_fail(p, "expected a string or null, got %s", val_type_name(v));
            break;
        }
        size_t chars = val_utf8_chars(json_string_value(v), json_string_length(v));
        if (chars > AUD_MAX_DESCRIPTION_CHARS)
            val_fail(p, "expected at most %d characters, got %zu", AUD_MAX_DESCRIPTION_CHARS, chars);
        else
            out->description = json_string_value(v);
        break;
    }
    case F_PROPERTIES:
    case F_DEPRECATED:
        if (f->kind == F_PROPERTIES ? !val_attribute_lists(p, v) : !check_deprecated(p, v))
            break;
        if (want_text) {
            char *s = json_dumps(v, JSON_COMPACT);
            if (f->kind == F_PROPERTIES) {
                free(out->properties);
                out->properties = s;
            } else {
                free(out->deprecated_properties);
                out->deprecated_properties = s;
            }
        }
        break;
    case F_DATETIME:
        if (!json_is_string(v))
            val_fail(p, "expected an RFC 3339 date-time string or null, got %s", val_type_name(v));
        else if (!val_rfc3339(json_string_value(v), NULL))
            val_fail(p, "\"%.40s\" is not an RFC 3339 date-time like 2023-11-07T05:31:56Z",
                     json_string_value(v));
        else
            out->created_at = json_string_value(v);
        break;
    case F_IGNORED:
        break;
    }
    if (f->set_bit && (f->kind != F_DATETIME))
        out->set |= f->set_bit;
}

int val_aud_segment(json_t *root, int flags, aud_segment_in *out, seg_error *err)
{
    aud_mode mode = (aud_mode)(flags & 0xff);
    bool want_text = !(flags & AUD_NO_TEXT);
    val_path p;
    const char *key;
    json_t *v;
    int before = err->n_items;
    memset(out, 0, sizeof *out);
    val_path_init(&p, err);

    json_object_foreach(root, key, v) {
        size_t i;
        for (i = 0; i < N_FIELDS; i++)
            if (!strcmp(fields[i].key, key))
                break;
        if (i == N_FIELDS && !val_lifecycle_key(key, false)) {
            val_fail_at(&p, key, "unknown field \"%.60s\": expected one of id, management_type, name, "
                        "owner_id, approximated_size, description, properties, deprecated_properties, "
                        "created_at, %s", key, val_lifecycle_names(false));
        }
    }
    for (size_t i = 0; i < N_FIELDS; i++) {
        const field_def *f = &fields[i];
        bool required = f->required_create || (mode == AUD_REPLACE && f->required_replace);
        v = json_object_get(root, f->key);
        if (!v) {
            if (required)
                val_fail_at(&p, f->key, "required field is missing");
            continue;
        }
        if (f->kind == F_UUID && !strcmp(f->key, "id") && mode == AUD_CREATE)
            continue; /* read-only on create: the server assigns ids */
        if (f->kind == F_DATETIME && mode != AUD_CREATE)
            continue; /* created_at is kept from creation: ignored on updates */
        size_t old = val_path_push(&p, f->key);
        check_field(&p, f, v, out, want_text);
        val_path_pop(&p, old);
    }
    val_lifecycle(&p, root, false, mode != AUD_REPLACE, &out->lc);
    out->set |= out->lc.set;
    if (mode == AUD_WHOLE) { /* a merged document always carries every field */
        out->set = AUD_SET_ALL;
        out->lc.set = LC_SET_ALL;
    }
    return err->n_items != before || err->status ? -1 : 0;
}

void val_aud_release(aud_segment_in *in)
{
    free(in->properties);
    free(in->deprecated_properties);
    in->properties = NULL;
    in->deprecated_properties = NULL;
}

void val_merge_patch(json_t *target, json_t *patch)
{
    const char *key;
    json_t *v;
    json_object_foreach(patch, key, v) {
        if (json_is_null(v)) {
            json_object_del(target, key);
        } else if (json_is_object(v)) {
            json_t *t = json_object_get(target, key);
            if (!json_is_object(t)) {
                t = json_object();
                json_object_set_new(target, key, t);
            }
            val_merge_patch(t, v);
        } else {
            json_object_set(target, key, v);
        }
    }
}
