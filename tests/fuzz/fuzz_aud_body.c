/* libFuzzer target: an /audiences/segments request body, as POST, PATCH (replace) and
 * PATCH /{id} (RFC 7396 merge onto a stored segment) see it: val_parse_body, then
 * val_aud_segment in every mode, then val_merge_patch + AUD_WHOLE; and the end-date
 * operation's body of both dialects. */
#include <ctype.h>
#include <stdbool.h>

#include "fuzz_common.h"
#include "validate/audience.h"
#include "validate/lifecycle.h"
#include "validate/validate.h"

/* What store_aud_get hands h_aud_merge: the stored representation of a segment. */
static const char stored_segment[] =
    "{\"id\":\"0b7c3a10-8d63-4c52-9a1e-2f4c1d7e9b01\",\"no\":7,"
    "\"management_type\":\"selfmanaged\",\"name\":\"Sports fans\","
    "\"owner_id\":\"6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9\",\"approximated_size\":1200,"
    "\"description\":\"people who read the sports pages\","
    "\"properties\":{\"interest\":[\"sports\",\"football\"],\"age\":[18,24]},"
    "\"deprecated_properties\":{},\"created_at\":\"2023-11-07T05:31:56Z\","
    "\"updated_at\":\"2023-11-07T05:31:56Z\",\"start_date\":\"2023-11-08T00:00:00.000000Z\","
    "\"end_date\":\"2024-11-08T00:00:00.000000Z\",\"active\":true,\"extend\":true,"
    "\"extend_days\":30,\"status\":\"active\"}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_seed_jansson();
    return 0;
}

static bool lower_uuid(const char *s)
{
    if (!val_uuid(s, strlen(s), NULL))
        return false;
    for (; *s; s++)
        if (isupper((unsigned char)*s))
            return false;
    return true;
}

/* What a successful validation promises the store. */
static void check_output(const aud_segment_in *in, aud_mode mode)
{
    json_error_t je;
    if (mode != AUD_WHOLE || in->management_type)
        FUZZ_CHECK(in->management_type && (!strcmp(in->management_type, "selfmanaged") ||
                                           !strcmp(in->management_type, "systemmanaged")),
                   "management_type %s", in->management_type ? in->management_type : "(null)");
    if (mode != AUD_WHOLE)
        FUZZ_CHECK(in->name && *in->name && !val_is_blank(in->name), "name missing or blank");
    if (in->name)
        FUZZ_CHECK(val_utf8_chars(in->name, strlen(in->name)) <= AUD_MAX_NAME_CHARS, "name too long");
    if (mode != AUD_WHOLE || in->owner_id[0])
        FUZZ_CHECK(lower_uuid(in->owner_id), "owner_id \"%s\"", in->owner_id);
    if (mode == AUD_REPLACE)
        FUZZ_CHECK(lower_uuid(in->id), "id \"%s\"", in->id);
    if (in->size[0]) {
        char *end;
        long long n = strtoll(in->size, &end, 10);
        FUZZ_CHECK(*end == '\0' && n >= 0, "approximated_size \"%s\"", in->size);
    }
    if (in->description)
        FUZZ_CHECK(val_utf8_chars(in->description, strlen(in->description)) <=
                       AUD_MAX_DESCRIPTION_CHARS, "description too long");
    if (in->created_at)
        FUZZ_CHECK(val_rfc3339(in->created_at, NULL), "created_at \"%s\"", in->created_at);
    fuzz_check_lifecycle(&in->lc, mode != AUD_REPLACE);
    FUZZ_CHECK((in->set & LC_SET_ALL) == (mode == AUD_WHOLE ? (unsigned)LC_SET_ALL : in->lc.set),
               "lifecycle bits of set 0x%x, of lc 0x%x", in->set, in->lc.set);
    const char *texts[2] = {in->properties, in->deprecated_properties};
    for (int i = 0; i < 2; i++) {
        if (!texts[i])
            continue;
        json_t *j = json_loads(texts[i], JSON_REJECT_DUPLICATES, &je);
        FUZZ_CHECK(json_is_object(j), "stored JSON is not an object: %s", texts[i]);
        FUZZ_CHECK(val_depth(j) <= AUD_MAX_DEPTH, "stored JSON too deep");
        json_decref(j);
    }
}

static void validate(json_t *root, aud_mode mode)
{
    aud_segment_in in;
    seg_error err;
    err_clear(&err);
    int rc = val_aud_segment(root, mode, &in, &err);
    if (rc == 0) {
        FUZZ_CHECK(err.status == 0 && err.n_items == 0, "success with an error set");
        check_output(&in, mode);
    } else {
        FUZZ_CHECK(err.status == 422 && (err.n_items > 0 || err.truncated),
                   "failure without problems (status %d)", err.status);
        fuzz_check_problem(&err);
    }
    val_aud_release(&in);
}

/* The end-date operation's body (either dialect): only end date and extend are set. */
static void end_date_body(json_t *root, bool v1)
{
    lifecycle_in lc;
    seg_error err;
    err_clear(&err);
    if (val_end_date_body(root, v1, &lc, &err) == 0) {
        FUZZ_CHECK(err.status == 0 && (lc.set & LC_SET_END), "success without an end date");
        FUZZ_CHECK((lc.set & ~(unsigned)(LC_SET_END | LC_SET_EXTEND)) == 0, "bits 0x%x", lc.set);
        fuzz_check_lifecycle(&lc, 0);
    } else {
        FUZZ_CHECK(err.status == 422 && (err.n_items > 0 || err.truncated), "status %d", err.status);
        fuzz_check_problem(&err);
    }
}

/* RFC 7396 section 2, applied to the result: nulls removed, objects merged, any other
 * value replaces. */
static void check_merged(json_t *result, json_t *patch)
{
    const char *key;
    json_t *v;
    json_object_foreach(patch, key, v) {
        json_t *r = json_object_get(result, key);
        if (json_is_null(v))
            FUZZ_CHECK(r == NULL, "\"%s\" set to null by the patch is still there", key);
        else if (json_is_object(v)) {
            FUZZ_CHECK(json_is_object(r), "\"%s\" should be an object", key);
            check_merged(r, v);
        } else
            FUZZ_CHECK(json_equal(r, v), "\"%s\" not replaced", key);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *root = fuzz_parse_body(data, size);
    if (!root)
        return 0;
    validate(root, AUD_CREATE);
    validate(root, AUD_REPLACE);
    validate(root, AUD_WHOLE);
    end_date_body(root, false);
    end_date_body(root, true);

    json_t *doc = json_loads(stored_segment, 0, &je);
    FUZZ_CHECK(doc != NULL, "fixture: %s", je.text);
    val_merge_patch(doc, root);
    check_merged(doc, root);
    validate(doc, AUD_WHOLE);
    json_decref(doc);
    json_decref(root);
    return 0;
}
