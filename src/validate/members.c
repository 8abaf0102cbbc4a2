/* PATCH …/members bodies: the operation, and the ids as the text[] literal the store takes
 * (each quoted: an id holds no quote or backslash, and a quoted NULL is an id, not a null). */
#include "validate/members.h"

#include <stdlib.h>
#include <string.h>

#include "validate/device.h"
#include "validate/validate.h"

static void check_keys(val_path *p, json_t *root)
{
    const char *key;
    json_t *v;
    char ex[VAL_EXCERPT_BUF];
    json_object_foreach(root, key, v) {
        if (strcmp(key, "operation") != 0 && strcmp(key, "ids") != 0)
            val_fail_at(p, key, "unknown field \"%s\": expected operation, ids", val_excerpt(ex, key));
    }
}

static void check_operation(val_path *p, json_t *op, members_in *out)
{
    char ex[VAL_EXCERPT_BUF];
    const char *s = json_string_value(op);
    if (!op)
        val_fail_at(p, "operation", "\"operation\" is required: expected add or remove");
    else if (!json_is_string(op) || strlen(s) != json_string_length(op))
        val_fail_at(p, "operation", "\"operation\" must be a string without NUL, got %s: expected add or remove",
                    json_is_string(op) ? "one with a NUL" : val_type_name(op));
    else if (strcmp(s, "add") == 0 || strcmp(s, "remove") == 0)
        out->add = s[0] == 'a';
    else
        val_fail_at(p, "operation", "operation \"%s\" is not valid: expected add or remove",
                    val_excerpt(ex, s));
}

/* An id as the device routes take it, reserved words included: one that names no device is
 * counted unknown, not refused. */
static bool id_shaped(const char *s)
{
    return val_device_id(s) || val_device_id_reserved(s);
}

static void check_ids(val_path *p, json_t *ids)
{
    char ex[VAL_EXCERPT_BUF];
    size_t n = json_array_size(ids);
    if (!ids) {
        val_fail_at(p, "ids", "\"ids\" is required: expected an array of 1 to %d device ids", MEMBERS_IDS_MAX);
        return;
    }
    if (!json_is_array(ids) || n == 0 || n > MEMBERS_IDS_MAX) {
        if (!json_is_array(ids))
            val_fail_at(p, "ids", "\"ids\" must be an array of 1 to %d device ids, got %s",
                        MEMBERS_IDS_MAX, val_type_name(ids));
        else
            val_fail_at(p, "ids", "\"ids\" must hold 1 to %d device ids, got %zu", MEMBERS_IDS_MAX, n);
        return;
    }
    size_t old = val_path_push(p, "ids");
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        if (p->err->truncated)
            break;
        const char *s = json_string_value(v);
        if (json_is_string(v) && strlen(s) == json_string_length(v) && id_shaped(s))
            continue;
        size_t o = val_path_push_index(p, i);
        if (!json_is_string(v))
            val_fail(p, "a device id must be a string, got %s", val_type_name(v));
        else
            val_fail(p, "\"%s\" is not a device id: expected 1 to 255 letters, digits, '-', '_', "
                        "'.', ':' or '@'",
                     val_excerpt(ex, s));
        val_path_pop(p, o);
    }
    val_path_pop(p, old);
}

int val_members(json_t *root, members_in *out, seg_error *err)
{
    val_path p;
    memset(out, 0, sizeof *out);
    val_path_init(&p, err);
    if (!json_is_object(root)) {
        val_fail(&p, "the body must be an object with \"operation\" and \"ids\", got %s",
                 val_type_name(root));
        return -1;
    }
    check_keys(&p, root);
    check_operation(&p, json_object_get(root, "operation"), out);
    json_t *ids = json_object_get(root, "ids");
    check_ids(&p, ids);
    if (err->n_items || err->status)
        return -1;
    size_t n = json_array_size(ids), len = 2;
    for (size_t i = 0; i < n; i++)
        len += json_string_length(json_array_get(ids, i)) + 3;
    if (!(out->ids = malloc(len + 1))) {
        err_set(err, 500, "internal", "out of memory");
        return -1;
    }
    char *w = out->ids;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(ids, i);
        if (i)
            *w++ = ',';
        *w++ = '"';
        memcpy(w, json_string_value(v), json_string_length(v));
        w += json_string_length(v);
        *w++ = '"';
    }
    *w++ = '}';
    *w = '\0';
    out->n = n;
    return 0;
}

void val_members_release(members_in *in)
{
    free(in->ids);
    in->ids = NULL;
}
