/* The /v1/segments body walk: every problem of a create or PATCH body at its JSON Pointer. */
#include "validate/v1_segment.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "v1_private.h"
#include "validate/lifecycle.h"
#include "validate/validate.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define ID_EXAMPLE "seg_jfeZ4NrGegjV9" /* from the API documentation */

/* ---- relations ---------------------------------------------------------------------- */

#define REL_BIT(r) (1u << (r))

/* What is accepted, compared ignoring ASCII case. The word forms appear in the
 * documentation ("EQUALS") and in other push APIs' segment filters. */
static const struct rel_alias {
    const char *text;
    v1_relation rel;
} rel_aliases[] = {
    {"exists", V1_REL_EXISTS},
    {"==", V1_REL_EQ},
    {"equals", V1_REL_EQ},
    {"!=", V1_REL_NE},
    {"not_equals", V1_REL_NE},
    {"starts_with", V1_REL_STARTS_WITH},
    {"ends_with", V1_REL_ENDS_WITH},
    {"contains", V1_REL_CONTAINS},
    {">", V1_REL_GT},
    {"greater_than", V1_REL_GT},
    {">=", V1_REL_GE},
    {"greater_than_or_equals", V1_REL_GE},
    {"<", V1_REL_LT},
    {"less_than", V1_REL_LT},
    {"<=", V1_REL_LE},
    {"less_than_or_equals", V1_REL_LE},
};

#define ALL_RELATIONS "exists, ==, !=, starts_with, ends_with, contains, >, >=, <, <="

/* The relations each field type takes, and the same set for messages. */
static const struct type_relations {
    unsigned relations; /* REL_BIT set */
    const char *expected;
} type_relations[] = {
    [VAL_FIELD_STRING] = {REL_BIT(V1_REL_EXISTS) | REL_BIT(V1_REL_EQ) | REL_BIT(V1_REL_NE) |
                              REL_BIT(V1_REL_STARTS_WITH) | REL_BIT(V1_REL_ENDS_WITH) |
                              REL_BIT(V1_REL_CONTAINS),
                          "exists, ==, !=, starts_with, ends_with, contains"},
    [VAL_FIELD_INT] = {REL_BIT(V1_REL_EQ) | REL_BIT(V1_REL_NE) | REL_BIT(V1_REL_GT) |
                           REL_BIT(V1_REL_GE) | REL_BIT(V1_REL_LT) | REL_BIT(V1_REL_LE),
                       "==, !=, >, >=, <, <="},
    [VAL_FIELD_LONG] = {REL_BIT(V1_REL_EQ) | REL_BIT(V1_REL_NE) | REL_BIT(V1_REL_GT) |
                            REL_BIT(V1_REL_GE) | REL_BIT(V1_REL_LT) | REL_BIT(V1_REL_LE),
                        "==, !=, >, >=, <, <="},
    /* contains on tags is ==: has the tag (kept for the clients that wrote it first) */
    [VAL_FIELD_STRING_ARRAY] = {REL_BIT(V1_REL_EXISTS) | REL_BIT(V1_REL_EQ) | REL_BIT(V1_REL_NE) |
                                    REL_BIT(V1_REL_CONTAINS),
                                "exists, ==, !=, contains"},
};

/* ---- keys of each object --------------------------------------------------------------- */

static const char *const body_keys[] = {"id", "name", "description", "constraints",
                                        "createdAt", "updatedAt", "startDate", "endDate",
                                        "active", "extend", "extendDays", "status", "size"};
static const char *const group_keys[] = {"type", "constraints"};
static const char *const constraint_keys[] = {"field", "relation", "value"};

/* ---- the walk's state -------------------------------------------------------------------- */

typedef struct walk {
    val_path path;
    v1_groups groups;
} walk;

/* ---- small helpers -------------------------------------------------------------------------- */

static bool in_list(const char *key, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, list[i]) == 0)
            return true;
    return false;
}

/* Reports every key of obj not in list at its own pointer. */
static void reject_unknown_keys(val_path *p, json_t *obj, const char *const *list, size_t n,
                                const char *where, const char *expected)
{
    const char *key;
    json_t *v;
    char ex[VAL_EXCERPT_BUF];
    json_object_foreach(obj, key, v) {
        if (in_list(key, list, n))
            continue;
        val_fail_at(p, key, "unknown field \"%s\"%s: expected %s", val_excerpt(ex, key), where,
                    expected);
        if (p->err->truncated)
            return;
    }
}

/* true when v is a string without an embedded NUL (jansson refuses \u0000 unless the
 * body was parsed with JSON_ALLOW_NUL; the check keeps C strings honest regardless). */
static bool is_c_string(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* val_type_name, but says why a string that is_c_string refused is wrong */
static const char *kind_of(const json_t *v)
{
    return json_is_string(v) ? "a string with a NUL character" : val_type_name(v);
}

static size_t chars_of(const json_t *s)
{
    return val_utf8_chars(json_string_value(s), json_string_length(s));
}

/* ---- one constraint ---------------------------------------------------------------------- */

/* "field "x" is not a device field: expected one of country, ..., and N more". */
static void fail_unknown_field(val_path *p, const char *name)
{
    const char *names[VAL_FIELD_COUNT];
    char ex[VAL_EXCERPT_BUF];
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++)
        names[i] = val_field_at(i)->name;
    val_fail_one_of(p, names, VAL_FIELD_COUNT, "field \"%s\" is not a device field: ",
                    val_excerpt(ex, name));
}

/* Resolves the "field" key; NULL after reporting the problem. */
static const val_field *walk_field(val_path *p, json_t *v)
{
    char ex[VAL_EXCERPT_BUF];
    size_t old = val_path_push(p, "field");
    const val_field *f = NULL;
    if (!is_c_string(v)) {
        val_fail(p, "\"field\" must be a string, got %s: expected a device field such as country or sessionCount",
                 kind_of(v));
        goto out;
    }
    const char *name = json_string_value(v);
    f = val_field_find(name);
    if (f)
        goto out;
    const val_field *other_case = val_field_find_casefold(name);
    if (other_case)
        val_fail(p, "field \"%s\" is not a device field: names are case-sensitive, expected \"%s\"",
                 val_excerpt(ex, name), other_case->name);
    else
        fail_unknown_field(p, name);
out:
    val_path_pop(p, old);
    return f;
}

/* Resolves the "relation" key for field f (NULL when the field is unknown: then only
 * "is it a relation at all" is checked). Returns false after reporting a problem. */
static bool walk_relation(val_path *p, json_t *v, const val_field *f, v1_relation *out)
{
    char ex[VAL_EXCERPT_BUF];
    size_t old = val_path_push(p, "relation");
    bool ok = false;
    if (!is_c_string(v)) {
        val_fail(p, "\"relation\" must be a string, got %s: expected one of %s",
                 kind_of(v),
                 f ? type_relations[f->type].expected : ALL_RELATIONS);
        goto out;
    }
    const char *text = json_string_value(v);
    const struct rel_alias *a = NULL;
    for (size_t i = 0; i < ARRAY_LEN(rel_aliases); i++) {
        if (strcasecmp(text, rel_aliases[i].text) == 0) {
            a = &rel_aliases[i];
            break;
        }
    }
    if (!f) {
        if (!a)
            val_fail(p, "relation \"%s\" is not valid: expected one of %s", val_excerpt(ex, text),
                     ALL_RELATIONS);
        goto out;
    }
    if (!a || !(type_relations[f->type].relations & REL_BIT(a->rel))) {
        val_fail(p, "relation \"%s\" is not valid for field \"%s\" (%s): expected one of %s",
                 val_excerpt(ex, text), f->name, val_field_type_name(f->type),
                 type_relations[f->type].expected);
        goto out;
    }
    *out = a->rel;
    ok = true;
out:
    val_path_pop(p, old);
    return ok;
}

static void walk_string_value(val_path *p, json_t *v, const val_field *f, v1_relation rel)
{
    char ex[VAL_EXCERPT_BUF], why[160];
    if (!json_is_string(v)) {
        if (f->type == VAL_FIELD_STRING_ARRAY)
            val_fail(p, "value for relation \"%s\" on field \"%s\" (%s) must be a string (one tag), got %s",
                     val_v1_relation_name(rel), f->name, val_field_type_name(f->type), val_type_name(v));
        else
            val_fail(p, "value for field \"%s\" (%s) must be a string, got %s", f->name,
                     val_field_type_name(f->type), val_type_name(v));
        return;
    }
    if (!is_c_string(v)) {
        val_fail(p, "value for field \"%s\" must not contain a NUL character", f->name);
        return;
    }
    size_t n = chars_of(v);
    if (n == 0) {
        val_fail(p, "value for field \"%s\" must not be empty: expected 1 to %d characters",
                 f->name, V1_VALUE_MAX);
        return;
    }
    if (n > V1_VALUE_MAX) {
        val_fail(p, "value for field \"%s\" is too long: expected at most %d characters, got %zu",
                 f->name, V1_VALUE_MAX, n);
        return;
    }
    if (f->format && (rel == V1_REL_EQ || rel == V1_REL_NE) &&
        !f->format(json_string_value(v), why, sizeof why)) {
        val_fail(p, "value \"%s\" is not %s: %s", val_excerpt(ex, json_string_value(v)), f->what, why);
    }
}

static void walk_number_value(val_path *p, json_t *v, const val_field *f)
{
    if (json_is_real(v)) {
        char num[32];
        snprintf(num, sizeof num, "%g", json_real_value(v));
        if (!strpbrk(num, ".e"))
            strcat(num, ".0"); /* 5.0 prints as "5"; show it as a real */
        val_fail(p, "value for field \"%s\" (%s) must be an integer, got a real number (%s): write whole numbers without a decimal point or exponent",
                 f->name, val_field_type_name(f->type), num);
        return;
    }
    if (!json_is_integer(v)) {
        val_fail(p, "value for field \"%s\" (%s) must be an integer, got %s", f->name,
                 val_field_type_name(f->type), val_type_name(v));
        return;
    }
    json_int_t n = json_integer_value(v);
    int64_t min, max;
    val_field_type_range(f->type, &min, &max);
    if (n < min || n > max) {
        val_fail(p, "value %" JSON_INTEGER_FORMAT " is out of range for field \"%s\" (%s): expected %" PRId64 " to %" PRId64,
                 n, f->name, val_field_type_name(f->type), min, max);
        return;
    }
    if (f->timestamp && n < 0) {
        val_fail(p, "value %" JSON_INTEGER_FORMAT " for field \"%s\" is negative: expected a Unix timestamp in milliseconds, 0 or more",
                 n, f->name);
    }
}

static void walk_value(val_path *p, json_t *v, const val_field *f, v1_relation rel)
{
    size_t old = val_path_push(p, "value");
    if (rel == V1_REL_EXISTS) {
        if (!json_is_boolean(v))
            val_fail(p, "value for relation \"exists\" must be a boolean (true: the field is set, false: it is not), got %s",
                     val_type_name(v));
    } else if (val_field_type_range(f->type, NULL, NULL)) {
        walk_number_value(p, v, f);
    } else {
        walk_string_value(p, v, f, rel);
    }
    val_path_pop(p, old);
}

/* Validates one constraint at the current pointer; fills out when it is valid. */
static bool walk_constraint(val_path *p, json_t *c, v1_con *out)
{
    if (!json_is_object(c)) {
        val_fail(p, "a constraint must be an object with \"field\", \"relation\" and \"value\", got %s",
                 val_type_name(c));
        return false;
    }
    int before = p->err->n_items;
    reject_unknown_keys(p, c, constraint_keys, ARRAY_LEN(constraint_keys), " in a constraint",
                        "field, relation, value");
    json_t *jf = json_object_get(c, "field");
    json_t *jr = json_object_get(c, "relation");
    json_t *jv = json_object_get(c, "value");
    const val_field *f = NULL;
    v1_relation rel = V1_REL_EQ;
    bool rel_ok = false;

    if (!jf)
        val_fail_at(p, "field", "\"field\" is required: expected a device field such as country or sessionCount");
    else
        f = walk_field(p, jf);
    if (!jr)
        val_fail_at(p, "relation", "\"relation\" is required: expected one of %s",
                    f ? type_relations[f->type].expected : ALL_RELATIONS);
    else
        rel_ok = walk_relation(p, jr, f, &rel);
    if (!jv)
        val_fail_at(p, "value", "\"value\" is required: expected the value to compare the field with");
    else if (f && rel_ok)
        walk_value(p, jv, f, rel);
    if (p->err->n_items != before || p->err->truncated || !f || !rel_ok || !jv)
        return false;
    out->field = f;
    out->rel = rel;
    out->value = jv;
    return true;
}

/* ---- groups and the body -------------------------------------------------------------------- */

/* Checks that v is an array of 1..max elements; "what" names the elements. */
static void check_array(val_path *p, json_t *v, const char *key, size_t max, const char *what)
{
    size_t n = json_array_size(v);
    if (!json_is_array(v))
        val_fail(p, "\"%s\" must be an array of 1 to %zu %s, got %s", key, max, what,
                 val_type_name(v));
    else if (n == 0)
        val_fail(p, "\"%s\" must not be empty: expected 1 to %zu %s", key, max, what);
    else if (n > max) /* the caller still checks every element */
        val_fail(p, "\"%s\" must contain at most %zu %s, got %zu", key, max, what, n);
}

static void walk_group(walk *w, json_t *g, v1_group *out)
{
    val_path *p = &w->path;
    char ex[VAL_EXCERPT_BUF];
    if (!json_is_object(g)) {
        val_fail(p, "a constraint group must be an object with \"type\" and \"constraints\", got %s",
                 val_type_name(g));
        return;
    }
    reject_unknown_keys(p, g, group_keys, ARRAY_LEN(group_keys), " in a constraint group",
                        "type, constraints");

    json_t *type = json_object_get(g, "type");
    if (!type) {
        val_fail_at(p, "type", "\"type\" is required: expected AND or OR");
    } else if (!is_c_string(type)) {
        val_fail_at(p, "type", "\"type\" must be a string, got %s: expected AND or OR",
                    kind_of(type));
    } else if (strcasecmp(json_string_value(type), "AND") == 0) {
        if (out)
            out->is_or = false;
    } else if (strcasecmp(json_string_value(type), "OR") == 0) {
        if (out)
            out->is_or = true;
    } else {
        val_fail_at(p, "type", "group type \"%s\" is not valid: expected AND or OR",
                    val_excerpt(ex, json_string_value(type)));
    }

    json_t *cons = json_object_get(g, "constraints");
    if (!cons) {
        val_fail_at(p, "constraints", "\"constraints\" is required: expected an array of 1 to %d constraints",
                    V1_MAX_CONSTRAINTS);
        return;
    }
    size_t old = val_path_push(p, "constraints");
    check_array(p, cons, "constraints", V1_MAX_CONSTRAINTS, "constraints");
    if (json_is_array(cons)) {
        size_t i;
        json_t *c;
        json_array_foreach(cons, i, c) {
            if (p->err->truncated)
                break;
            v1_con tmp;
            size_t old_i = val_path_push_index(p, i);
            if (walk_constraint(p, c, &tmp) && out && i < V1_MAX_CONSTRAINTS)
                out->cons[i] = tmp;
            val_path_pop(p, old_i);
        }
        if (out)
            out->n = json_array_size(cons) < V1_MAX_CONSTRAINTS ? json_array_size(cons)
                                                                : V1_MAX_CONSTRAINTS;
    }
    val_path_pop(p, old);
}

static void walk_groups(walk *w, json_t *groups)
{
    val_path *p = &w->path;
    size_t old = val_path_push(p, "constraints");
    check_array(p, groups, "constraints", V1_MAX_GROUPS, "constraint groups");
    if (json_is_array(groups)) {
        size_t i;
        json_t *g;
        json_array_foreach(groups, i, g) {
            if (p->err->truncated)
                break;
            size_t old_i = val_path_push_index(p, i);
            walk_group(w, g, i < V1_MAX_GROUPS ? &w->groups.groups[i] : NULL);
            val_path_pop(p, old_i);
        }
        w->groups.n = json_array_size(groups) < V1_MAX_GROUPS ? json_array_size(groups)
                                                               : V1_MAX_GROUPS;
    }
    val_path_pop(p, old);
}

/* A string member with a length limit in characters; returns it, or NULL after
 * reporting (or when it is null/absent and allowed to be). */
static const char *walk_text(val_path *p, json_t *v, const char *key, size_t max, bool nonblank)
{
    if (!is_c_string(v)) {
        val_fail_at(p, key, "\"%s\" must be a string, got %s: expected %s%zu characters%s", key,
                    kind_of(v),
                    nonblank ? "1 to " : "at most ", max, nonblank ? "" : ", or null");
        return NULL;
    }
    size_t n = chars_of(v);
    if (nonblank && val_is_blank(json_string_value(v))) {
        val_fail_at(p, key, "\"%s\" must not be blank: expected 1 to %zu characters, not only white space",
                    key, max);
        return NULL;
    }
    if (n > max) {
        val_fail_at(p, key, "\"%s\" is too long: expected at most %zu characters, got %zu", key,
                    max, n);
        return NULL;
    }
    return json_string_value(v);
}

static bool is_alnum_ascii(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool val_v1_id(const char *s)
{
    if (!s || strncmp(s, V1_ID_PREFIX, strlen(V1_ID_PREFIX)) != 0)
        return false;
    s += strlen(V1_ID_PREFIX);
    for (int i = 0; i < V1_ID_SUFFIX_LEN; i++)
        if (!is_alnum_ascii(s[i]))
            return false;
    return s[V1_ID_SUFFIX_LEN] == '\0';
}

static void walk_id(val_path *p, json_t *v, v1_segment_in *out)
{
    char ex[VAL_EXCERPT_BUF];
    if (!v || json_is_null(v)) {
        val_fail_at(p, "id", "\"id\" is required when updating a segment: expected a segment id such as %s",
                    ID_EXAMPLE);
    } else if (!is_c_string(v)) {
        val_fail_at(p, "id", "\"id\" must be a string, got %s: expected a segment id such as %s",
                    kind_of(v), ID_EXAMPLE);
    } else if (!val_v1_id(json_string_value(v))) {
        val_fail_at(p, "id", "id \"%s\" is not a segment id: expected \"%s\" followed by %d letters or digits, such as %s",
                    val_excerpt(ex, json_string_value(v)), V1_ID_PREFIX, V1_ID_SUFFIX_LEN, ID_EXAMPLE);
    } else {
        out->id = json_string_value(v);
    }
}

/* ---- entry points ----------------------------------------------------------------------------------- */

int val_v1_segment(json_t *root, bool is_patch, v1_segment_in *out, seg_error *err)
{
    walk w; /* about 2.6 KiB, bounded by the limits */
    json_t *warnings = NULL;
    char *cjson = NULL;
    int start_items = err->n_items, start_truncated = err->truncated;

    memset(out, 0, sizeof *out);
    if (!root || !json_is_object(root)) {
        err_add(err, "", "the request body must be a JSON object, got %s",
                root ? val_type_name(root) : "nothing");
        return -1;
    }
    memset(&w, 0, sizeof w);
    val_path_init(&w.path, err);
    val_path *p = &w.path;

    reject_unknown_keys(p, root, body_keys, ARRAY_LEN(body_keys), "",
                        "id, name, description, constraints, startDate, endDate, active, extend, "
                        "extendDays");

    json_t *id = json_object_get(root, "id");
    if (is_patch)
        walk_id(p, id, out);

    json_t *name = json_object_get(root, "name");
    if (!name || (is_patch && json_is_null(name))) {
        if (!is_patch)
            val_fail_at(p, "name", "\"name\" is required: expected 1 to %d characters", V1_NAME_MAX);
    } else {
        out->name = walk_text(p, name, "name", V1_NAME_MAX, true);
    }

    json_t *desc = json_object_get(root, "description");
    if (desc && !json_is_null(desc)) {
        out->description = walk_text(p, desc, "description", V1_DESCRIPTION_MAX, false);
        out->has_description = out->description != NULL;
    }

    json_t *groups = json_object_get(root, "constraints");
    bool have_groups = groups && !(is_patch && json_is_null(groups));
    if (have_groups)
        walk_groups(&w, groups);
    else if (!is_patch)
        val_fail_at(p, "constraints", "\"constraints\" is required: expected an array of 1 to %d constraint groups",
                    V1_MAX_GROUPS);

    lifecycle_in lc;
    val_lifecycle(p, root, true, !is_patch, &lc);

    if (err->n_items != start_items || err->truncated != start_truncated)
        goto fail;

    warnings = json_array();
    if (!warnings)
        goto oom;
    if (have_groups) {
        cjson = val_v1_canonical_json(&w.groups);
        if (!cjson || val_v1_warnings(&w.groups, warnings) != 0)
            goto oom;
    }
    out->constraints_json = cjson;
    out->warnings = warnings;
    out->lc = lc;
    return 0;

oom:
    err_set(err, 500, "internal", "the server ran out of memory validating the segment");
    err_log(err, "val_v1_segment: allocation failed");
fail:
    free(cjson);
    json_decref(warnings);
    memset(out, 0, sizeof *out);
    return -1;
}

void val_v1_segment_release(v1_segment_in *in)
{
    if (!in)
        return;
    free(in->constraints_json);
    json_decref(in->warnings);
    memset(in, 0, sizeof *in);
}
