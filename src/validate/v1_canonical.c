/* The canonical JSON text of /v1 constraint groups: upper-case types, stored relation symbols, one key order. */
#include "v1_private.h"

/* What is stored: the symbols of the documentation's "All possible relation values". */
static const char *const rel_canonical[V1_REL_COUNT] = {
    [V1_REL_EXISTS] = "exists",
    [V1_REL_EQ] = "==",
    [V1_REL_NE] = "!=",
    [V1_REL_STARTS_WITH] = "starts_with",
    [V1_REL_ENDS_WITH] = "ends_with",
    [V1_REL_CONTAINS] = "contains",
    [V1_REL_GT] = ">",
    [V1_REL_GE] = ">=",
    [V1_REL_LT] = "<",
    [V1_REL_LE] = "<=",
};

const char *val_v1_relation_name(v1_relation rel)
{
    return rel_canonical[rel];
}

/* [{"type":"AND","constraints":[{"field":…,"relation":…,"value":…}]}], compact, keys in
 * that order (jansson keeps insertion order). */
char *val_v1_canonical_json(const v1_groups *g)
{
    json_t *arr = json_array();
    char *text = NULL;
    if (!arr)
        return NULL;
    for (size_t i = 0; i < g->n; i++) {
        const v1_group *grp = &g->groups[i];
        /* each new value is handed to its parent at once: the *_new calls consume it
         * even when they fail, so nothing is left to free but arr */
        json_t *go = json_object();
        if (json_array_append_new(arr, go) != 0 ||
            json_object_set_new(go, "type", json_string(grp->is_or ? "OR" : "AND")) != 0)
            goto out;
        json_t *ca = json_array();
        if (json_object_set_new(go, "constraints", ca) != 0)
            goto out;
        for (size_t c = 0; c < grp->n; c++) {
            const v1_con *con = &grp->cons[c];
            json_t *co = json_object();
            if (json_array_append_new(ca, co) != 0 ||
                json_object_set_new(co, "field", json_string(con->field->name)) != 0 ||
                json_object_set_new(co, "relation", json_string(rel_canonical[con->rel])) != 0 ||
                json_object_set(co, "value", con->value) != 0)
                goto out;
        }
    }
    text = json_dumps(arr, JSON_COMPACT);
out:
    json_decref(arr);
    return text;
}
