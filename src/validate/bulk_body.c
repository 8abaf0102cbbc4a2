/* The bulk body {"data":[…]}: its text walked item by item, or its parse checked whole. */
#include "validate/bulk_body.h"

#include <string.h>

#include "validate/validate.h"

static void walk_space(val_bulk_walk *w)
{
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r'))
        w->p++;
}

static bool walk_lit(val_bulk_walk *w, char c)
{
    walk_space(w);
    if (w->p < w->end && *w->p == c) {
        w->p++;
        return true;
    }
    return false;
}

bool val_bulk_open(val_bulk_walk *w, const char *body, size_t len)
{
    w->p = body;
    w->end = body ? body + len : NULL;
    if (!body || !walk_lit(w, '{') || !walk_lit(w, '"') || w->end - w->p < 5 || memcmp(w->p, "data\"", 5))
        return false;
    w->p += 5;
    if (!walk_lit(w, ':') || !walk_lit(w, '['))
        return false;
    const char *item = w->p;
    if (walk_lit(w, ']'))
        return false; /* no item: the whole parse says so */
    w->p = item;
    return true;
}

json_t *val_bulk_item(val_bulk_walk *w)
{
    json_error_t je;
    size_t left = (size_t)(w->end - w->p);
    json_t *v = json_loadb(w->p, left, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY,
                           &je);
    if (!v)
        return NULL;
    size_t used = je.position > 0 ? (size_t)je.position : 0;
    /* in the whole body an item is two levels deeper than on its own */
    if (!used || used > left ||
        (used >= 2 * (JSON_PARSER_MAX_DEPTH - 2) && val_depth(v) > JSON_PARSER_MAX_DEPTH - 2)) {
        json_decref(v);
        return NULL;
    }
    w->p += used;
    return v;
}

int val_bulk_next(val_bulk_walk *w)
{
    if (walk_lit(w, ','))
        return 1;
    if (!walk_lit(w, ']') || !walk_lit(w, '}'))
        return -1;
    walk_space(w);
    return w->p == w->end ? 0 : -1;
}

json_t *val_bulk_data(json_t *root, int max, seg_error *err)
{
    json_t *data = json_object_get(root, "data");
    if (json_object_size(root) != 1 || !json_is_array(data)) {
        const char *k;
        json_t *v;
        val_path p;
        val_path_init(&p, err);
        json_object_foreach(root, k, v) if (strcmp(k, "data"))
            val_fail_at(&p, k, "unknown field \"%.60s\": a bulk body holds only \"data\"", k);
        if (!json_is_array(data))
            err_add(err, "/data", "expected an array of 1 to %d items", max);
        return NULL;
    }
    size_t n = json_array_size(data);
    if (n < 1 || n > (size_t)max) {
        err_set(err, 422, n ? "too_many_items" : "validation_failed", "a bulk request holds 1 to %d items, got %zu",
                max, n);
        err_add(err, "/data", "expected 1 to %d items, got %zu", max, n);
        return NULL;
    }
    return data;
}
