/* The warnings about /v1 constraints that are stored but do nothing: repeats, and AND groups that never match. */
#include "v1_private.h"

#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "validate/validate.h"

/* A constraint value for a message: "text" quoted, integers and booleans as JSON. */
static const char *render_value(char buf[VAL_EXCERPT_BUF + 2], const json_t *v)
{
    char ex[VAL_EXCERPT_BUF];
    if (json_is_string(v))
        snprintf(buf, VAL_EXCERPT_BUF + 2, "\"%s\"", val_excerpt(ex, json_string_value(v)));
    else if (json_is_integer(v))
        snprintf(buf, VAL_EXCERPT_BUF + 2, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, VAL_EXCERPT_BUF + 2, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(buf, VAL_EXCERPT_BUF + 2, "%s", val_type_name(v));
    return buf;
}

static int add_warning(json_t *warnings, const char *code, const char *title, size_t g, size_t c,
                       const char *detail)
{
    char ptr[ERR_POINTER_MAX];
    snprintf(ptr, sizeof ptr, "/constraints/%zu/constraints/%zu", g, c);
    json_t *wo = json_pack("{s:s, s:s, s:s, s:{s:s}}", "code", code, "title", title, "detail",
                           detail, "source", "pointer", ptr);
    return json_array_append_new(warnings, wo); /* NULL wo gives -1 */
}

/* What an AND group has said so far about one field. */
typedef struct field_state {
    bool warned;            /* one unsatisfiable_group warning per field and group */
    int exists;             /* -1 not said, 0 must be missing, 1 must be set */
    const v1_con *eq;       /* first == */
    const v1_con *ne[V1_MAX_CONSTRAINTS];
    size_t n_ne;
    const v1_con *has[V1_MAX_CONSTRAINTS]; /* tags: the ones it must hold */
    size_t n_has;
    bool ranged;            /* numeric bounds below are in use */
    int64_t lo, hi;         /* inclusive; empty when lo > hi */
    const v1_con *lo_src, *hi_src; /* the constraints that set the bounds (NULL: the type's) */
} field_state;

/* "> 10", "== \"x\"" */
static const char *render_con(char buf[VAL_EXCERPT_BUF + 16], const v1_con *c)
{
    char v[VAL_EXCERPT_BUF + 2];
    snprintf(buf, VAL_EXCERPT_BUF + 16, "%s %s", val_v1_relation_name(c->rel),
             render_value(v, c->value));
    return buf;
}

/* Numbers of [lo, hi] that no != of the state rules out: true when none is left. */
static bool ne_covers_range(const field_state *st)
{
    uint64_t span = (uint64_t)st->hi - (uint64_t)st->lo; /* hi - lo, lo <= hi */
    uint64_t distinct = 0;
    if (span >= V1_MAX_CONSTRAINTS)
        return false;
    for (size_t i = 0; i < st->n_ne; i++) {
        json_int_t x = json_integer_value(st->ne[i]->value);
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || json_integer_value(st->ne[j]->value) == x;
        if (!seen && x >= st->lo && x <= st->hi)
            distinct++;
    }
    return distinct > span;
}

/* Applies one numeric constraint to the bounds. Returns false when the range is empty. */
static bool narrow(field_state *st, const v1_con *c)
{
    json_int_t x = json_integer_value(c->value);
    bool raise_lo = false, lower_hi = false;
    int64_t lo = st->lo, hi = st->hi;
    switch (c->rel) {
    case V1_REL_EQ: raise_lo = lower_hi = true; lo = hi = x; break;
    case V1_REL_GE: raise_lo = true; lo = x; break;
    case V1_REL_LE: lower_hi = true; hi = x; break;
    case V1_REL_GT:
        if (x == INT64_MAX) {
            st->lo_src = c;
            return false;
        }
        raise_lo = true;
        lo = x + 1;
        break;
    case V1_REL_LT:
        if (x == INT64_MIN) {
            st->hi_src = c;
            return false;
        }
        lower_hi = true;
        hi = x - 1;
        break;
    default: break;
    }
    if (raise_lo && lo > st->lo) {
        st->lo = lo;
        st->lo_src = c;
    }
    if (lower_hi && hi < st->hi) {
        st->hi = hi;
        st->hi_src = c;
    }
    return st->lo <= st->hi;
}

/* The same for a tag (c is ==, contains or !=): a device may have any number of tags, so
 * only having and lacking one tag, or lacking every tag and having one, contradict. */
static bool tag_contradicts(field_state *st, const v1_con *c, char *detail, size_t cap)
{
    char va[VAL_EXCERPT_BUF + 2];
    static const char *const never = "in an AND group; this group never matches";
    bool has = c->rel != V1_REL_NE;
    if (has && st->exists == 0) {
        snprintf(detail, cap, "field \"tags\" cannot be empty and hold %s %s",
                 render_value(va, c->value), never);
        return true;
    }
    const v1_con **same = has ? st->ne : st->has;
    size_t n = has ? st->n_ne : st->n_has;
    for (size_t i = 0; i < n; i++) {
        if (json_equal(same[i]->value, c->value)) {
            snprintf(detail, cap, "field \"tags\" cannot both hold and lack %s %s",
                     render_value(va, c->value), never);
            return true;
        }
    }
    if (has)
        st->has[st->n_has++] = c;
    else
        st->ne[st->n_ne++] = c;
    return false;
}

/* Checks constraint c against what the group said before about its field; on a
 * contradiction writes why into detail and returns true. */
static bool contradicts(field_state *st, const v1_con *c, char *detail, size_t cap)
{
    const char *name = c->field->name;
    char a[VAL_EXCERPT_BUF + 16], b[VAL_EXCERPT_BUF + 16];
    char va[VAL_EXCERPT_BUF + 2], vb[VAL_EXCERPT_BUF + 2];
    static const char *const never = "in an AND group; this group never matches";

    if (c->rel == V1_REL_EXISTS) {
        int want = json_is_true(c->value) ? 1 : 0;
        if (st->exists == 1 - want) {
            snprintf(detail, cap, "field \"%s\" cannot both exist and not exist %s", name, never);
            return true;
        }
        if (!want && st->n_has) {
            snprintf(detail, cap, "field \"tags\" cannot be empty and hold %s %s",
                     render_value(va, st->has[0]->value), never);
            return true;
        }
        if (!want && st->eq) {
            snprintf(detail, cap, "field \"%s\" cannot be missing and equal %s %s", name,
                     render_value(va, st->eq->value), never);
            return true;
        }
        st->exists = want;
        return false;
    }
    if (c->field->type == VAL_FIELD_STRING_ARRAY) /* tags: a device has many */
        return tag_contradicts(st, c, detail, cap);
    if (c->rel == V1_REL_EQ) {
        if (st->eq && !json_equal(st->eq->value, c->value)) {
            snprintf(detail, cap, "field \"%s\" cannot equal both %s and %s %s", name,
                     render_value(va, st->eq->value), render_value(vb, c->value), never);
            return true;
        }
        if (st->exists == 0) {
            snprintf(detail, cap, "field \"%s\" cannot be missing and equal %s %s", name,
                     render_value(va, c->value), never);
            return true;
        }
        for (size_t i = 0; i < st->n_ne; i++) {
            if (json_equal(st->ne[i]->value, c->value)) {
                snprintf(detail, cap, "field \"%s\" cannot both equal and not equal %s %s", name,
                         render_value(va, c->value), never);
                return true;
            }
        }
        if (!st->eq)
            st->eq = c;
    } else if (c->rel == V1_REL_NE) {
        if (st->eq && json_equal(st->eq->value, c->value)) {
            snprintf(detail, cap, "field \"%s\" cannot both equal and not equal %s %s", name,
                     render_value(va, c->value), never);
            return true;
        }
        st->ne[st->n_ne++] = c;
    }

    if (!st->ranged) {
        if (!val_field_type_range(c->field->type, &st->lo, &st->hi))
            return false;
        st->ranged = true;
    }
    if (!narrow(st, c)) {
        if (st->lo_src && st->hi_src && st->lo_src != st->hi_src)
            snprintf(detail, cap, "field \"%s\" cannot be %s and %s at once %s", name,
                     render_con(a, st->lo_src), render_con(b, st->hi_src), never);
        else
            snprintf(detail, cap, "no %s value of field \"%s\" is %s %s",
                     val_field_type_name(c->field->type), name, render_con(a, c), never);
        return true;
    }
    if (st->n_ne && ne_covers_range(st)) {
        snprintf(detail, cap, "no value of field \"%s\" is left by the ==, !=, <, <=, > and >= constraints %s",
                 name, never);
        return true;
    }
    return false;
}

int val_v1_warnings(const v1_groups *groups, json_t *warnings)
{
    char detail[ERR_DETAIL_MAX], a[VAL_EXCERPT_BUF + 16];
    for (size_t g = 0; g < groups->n; g++) {
        const v1_group *grp = &groups->groups[g];
        field_state st[VAL_FIELD_COUNT];
        for (size_t f = 0; f < VAL_FIELD_COUNT; f++)
            st[f] = (field_state){.exists = -1};

        for (size_t c = 0; c < grp->n; c++) {
            const v1_con *con = &grp->cons[c];
            bool dup = false;
            for (size_t e = 0; e < c && !dup; e++) {
                const v1_con *prev = &grp->cons[e];
                if (prev->field == con->field && prev->rel == con->rel &&
                    json_equal(prev->value, con->value)) {
                    snprintf(detail, sizeof detail,
                             "constraint repeats /constraints/%zu/constraints/%zu (%s %s); the repeat changes nothing",
                             g, e, con->field->name, render_con(a, con));
                    if (add_warning(warnings, "duplicate_constraint", "Duplicate constraint", g, c,
                                    detail) != 0)
                        return -1;
                    dup = true;
                }
            }
            if (dup || grp->is_or)
                continue;
            field_state *fs = &st[val_field_index(con->field)];
            if (fs->warned)
                continue;
            if (contradicts(fs, con, detail, sizeof detail)) {
                fs->warned = true;
                if (add_warning(warnings, "unsatisfiable_group", "Group never matches", g, c,
                                detail) != 0)
                    return -1;
            }
        }
    }
    return 0;
}

