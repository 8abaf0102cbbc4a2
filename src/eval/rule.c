/* Reading a segment's stored rule (the /v1 constraint groups or the /audiences properties)
 * into the typed ev_rule both evaluators start from. */
#include "eval/rule.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate/formats.h"

static const struct {
    const char *name;
    ev_op op;
} ops[] = {
    {"exists", EV_EXISTS}, {"==", EV_EQ},     {"!=", EV_NE},     {"starts_with", EV_STARTS_WITH},
    {"ends_with", EV_ENDS_WITH}, {"contains", EV_CONTAINS}, {">", EV_GT}, {">=", EV_GE},
    {"<", EV_LT},          {"<=", EV_LE},
};

static int broken(ev_rule *r, seg_error *err, const char *what)
{
    ev_rule_free(r);
    err_set(err, 500, "internal", "a stored rule could not be read");
    err_log(err, "rule: %s", what);
    return -1;
}

static json_t *parse(const char *json, size_t len)
{
    json_error_t je;
    return json_loadb(json, len, 0, &je);
}

/* One stored constraint into c; false when it is not one of the table's. */
static bool read_con(json_t *jc, ev_con *c)
{
    const char *field = json_string_value(json_object_get(jc, "field"));
    const char *rel = json_string_value(json_object_get(jc, "relation"));
    json_t *v = json_object_get(jc, "value");
    const val_field *f = field ? val_field_find(field) : NULL;
    if (!f || !rel || !v)
        return false;
    size_t i;
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(rel, ops[i].name) == 0)
            break;
    if (i == sizeof ops / sizeof ops[0])
        return false;
    c->field = (unsigned)val_field_index(f);
    c->kind = f->type == VAL_FIELD_STRING_ARRAY          ? EV_FIELD_TAGS
              : val_field_type_range(f->type, NULL, NULL) ? EV_FIELD_NUMBER
                                                          : EV_FIELD_TEXT;
    c->op = ops[i].op;
    if (c->op == EV_EXISTS) {
        if (!json_is_boolean(v))
            return false;
        c->flag = json_is_true(v);
        return true;
    }
    if (f->type == VAL_FIELD_STRING_ARRAY && c->op == EV_CONTAINS)
        c->op = EV_EQ; /* contains on tags: has the tag */
    if (val_field_type_range(f->type, NULL, NULL)) {
        if (!json_is_integer(v))
            return false;
        c->num = (int64_t)json_integer_value(v);
        snprintf(c->digits, sizeof c->digits, "%" PRId64, c->num);
        c->text = c->digits;
        c->len = strlen(c->digits);
        return c->op == EV_EQ || c->op == EV_NE || c->op >= EV_GT;
    }
    if (!json_is_string(v) || c->op >= EV_GT)
        return false;
    if (f->type == VAL_FIELD_STRING_ARRAY && c->op != EV_EQ && c->op != EV_NE)
        return false;
    c->text = json_string_value(v);
    c->len = json_string_length(v);
    return strlen(c->text) == c->len;
}

int ev_rule_v1(const char *json, size_t len, ev_rule *out, seg_error *err)
{
    memset(out, 0, sizeof *out);
    out->kind = EV_RULE_V1;
    if (!(out->root = parse(json, len)) || !json_is_array(out->root))
        return broken(out, err, "v1 constraints are not a JSON array");
    size_t ng = json_array_size(out->root), ncons = 0, g;
    if (ng == 0)
        return broken(out, err, "v1 constraints hold no group");
    json_t *jg;
    json_array_foreach(out->root, g, jg) ncons += json_array_size(json_object_get(jg, "constraints"));
    /* one block: the groups, then every group's constraints */
    out->groups = calloc(1, ng * sizeof *out->groups + ncons * sizeof(ev_con) + 1);
    if (!out->groups)
        return broken(out, err, "out of memory");
    ev_con *next = (ev_con *)(void *)(out->groups + ng);
    out->n = ng;
    json_array_foreach(out->root, g, jg) {
        json_t *cons = json_object_get(jg, "constraints");
        const char *type = json_string_value(json_object_get(jg, "type"));
        if (!type || !json_is_array(cons) || json_array_size(cons) == 0)
            return broken(out, err, "a v1 group has no type or constraints");
        ev_group *grp = &out->groups[g];
        grp->is_or = strcmp(type, "OR") == 0;
        grp->cons = next;
        size_t i;
        json_t *jc;
        json_array_foreach(cons, i, jc) {
            if (!read_con(jc, &grp->cons[i]))
                return broken(out, err, "a v1 constraint is not one of the field table's");
        }
        grp->n = json_array_size(cons);
        next += grp->n;
    }
    return 0;
}

int ev_rule_aud(const char *json, size_t len, ev_rule *out, seg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!(out->root = parse(json, len)) || !json_is_object(out->root))
        return broken(out, err, "properties are not a JSON object");
    size_t n = json_object_size(out->root);
    out->kind = n ? EV_RULE_AUD : EV_RULE_NONE;
    if (!n)
        return 0;
    if (!(out->props = calloc(n, sizeof *out->props)))
        return broken(out, err, "out of memory");
    const char *code;
    json_t *vals;
    json_object_foreach(out->root, code, vals) {
        ev_prop *p = &out->props[out->n++];
        size_t nv = json_array_size(vals);
        p->code = code;
        p->code_len = strlen(code);
        if (!json_is_array(vals) || nv == 0 ||
            !(p->values = calloc(nv, sizeof *p->values)) || !(p->contain = calloc(nv, sizeof *p->contain)))
            return broken(out, err, "a property is not a list of values");
        for (size_t i = 0; i < nv; i++) {
            json_t *v = json_array_get(vals, i);
            json_t *one = json_pack("{s:[O]}", code, v);
            p->values[i] = v;
            p->contain[i] = one ? json_dumps(one, JSON_COMPACT) : NULL;
            json_decref(one);
            p->n = i + 1;
            if (!p->contain[i] || !(json_is_string(v) || json_is_number(v)))
                return broken(out, err, "a property value is not a string or a number");
        }
        if (!(p->values_json = json_dumps(vals, JSON_COMPACT)))
            return broken(out, err, "out of memory");
    }
    return 0;
}

void ev_rule_free(ev_rule *r)
{
    if (!r)
        return;
    free(r->groups);
    for (size_t i = 0; r->props && i < r->n; i++) {
        for (size_t j = 0; j < r->props[i].n; j++)
            free(r->props[i].contain[j]);
        free(r->props[i].contain);
        free(r->props[i].values_json);
        free(r->props[i].values);
        free(r->props[i].vids);
    }
    free(r->props);
    json_decref(r->root);
    memset(r, 0, sizeof *r);
}
