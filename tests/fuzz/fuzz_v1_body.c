/* libFuzzer target: a /v1/segments request body, as POST and PATCH see it:
 * val_parse_body, then val_v1_segment(root, false) and (root, true). */
#include <stdbool.h>

#include "fuzz_common.h"
#include "validate/v1_segment.h"
#include "validate/validate.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_seed_jansson();
    return 0;
}

/* The canonical constraint JSON is what the store keeps: check its shape. */
static void check_constraints(const char *text)
{
    json_error_t je;
    json_t *groups = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    size_t i, j;
    json_t *g, *c;
    FUZZ_CHECK(json_is_array(groups), "constraints_json is not an array: %s", text);
    FUZZ_CHECK(json_array_size(groups) <= V1_MAX_GROUPS, "too many groups kept");
    json_array_foreach(groups, i, g) {
        const char *type = json_string_value(json_object_get(g, "type"));
        json_t *cons = json_object_get(g, "constraints");
        FUZZ_CHECK(json_object_size(g) == 2 && type && (!strcmp(type, "AND") || !strcmp(type, "OR")),
                   "group %zu is not canonical: %s", i, text);
        FUZZ_CHECK(json_is_array(cons) && json_array_size(cons) <= V1_MAX_CONSTRAINTS,
                   "group %zu constraints: %s", i, text);
        json_array_foreach(cons, j, c) {
            FUZZ_CHECK(json_object_size(c) == 3 && json_is_string(json_object_get(c, "field")) &&
                           json_is_string(json_object_get(c, "relation")) &&
                           json_object_get(c, "value"),
                       "constraint %zu/%zu is not canonical: %s", i, j, text);
        }
    }
    json_decref(groups);
}

static void validate(json_t *root, bool is_patch)
{
    v1_segment_in in;
    seg_error err;
    err_clear(&err);
    int rc = val_v1_segment(root, is_patch, &in, &err);
    if (rc == 0) {
        FUZZ_CHECK(err.status == 0 && err.n_items == 0, "success with an error set");
        FUZZ_CHECK(json_is_array(in.warnings), "warnings missing");
        if (is_patch)
            FUZZ_CHECK(val_v1_id(in.id), "id \"%s\"", in.id ? in.id : "(null)");
        else
            FUZZ_CHECK(in.name && in.constraints_json, "create without name or constraints");
        if (in.name)
            FUZZ_CHECK(*in.name && !val_is_blank(in.name) &&
                           val_utf8_chars(in.name, strlen(in.name)) <= V1_NAME_MAX,
                       "name \"%s\"", in.name);
        if (in.description)
            FUZZ_CHECK(val_utf8_chars(in.description, strlen(in.description)) <= V1_DESCRIPTION_MAX,
                       "description too long");
        if (in.constraints_json)
            check_constraints(in.constraints_json);
        fuzz_check_lifecycle(&in.lc, !is_patch);
        char *w = json_dumps(in.warnings, JSON_COMPACT);
        FUZZ_CHECK(w != NULL, "warnings cannot be encoded (not UTF-8?)");
        free(w);
    } else {
        FUZZ_CHECK(err.status == 422 || err.status == 500, "failure with status %d", err.status);
        FUZZ_CHECK(err.status != 422 || err.n_items > 0 || err.truncated, "422 without problems");
        FUZZ_CHECK(in.constraints_json == NULL && in.warnings == NULL, "out not zeroed on failure");
        fuzz_check_problem(&err);
    }
    val_v1_segment_release(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root = fuzz_parse_body(data, size);
    if (!root)
        return 0;
    validate(root, false);
    validate(root, true);
    json_decref(root);
    return 0;
}
