/* Runs the validator cases kept as data, tests/cases/<validator>/NNN-name.json. */
/* Each file is one call of one validator with its whole expected outcome, so a new case is
 * a new file (tests/cases/README.md). */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/model.h"
#include "validate/audience.h"
#include "validate/device.h"
#include "validate/formats.h"
#include "validate/v1_segment.h"
#include "validate/validate.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CASES_DIR "tests/cases" /* ctest runs in the source directory */
#define WHY_MAX 1024

/* check_case's answers */
enum { CASE_PASS = 0, CASE_MISMATCH = -1, CASE_MALFORMED = -2 };

static void say(char *why, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void say(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, WHY_MAX, fmt, ap);
    va_end(ap);
}

/* ---- what each validator gives back, as JSON in the cases' own form ------------------- */

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* {"status", "code", "detail", "problems": [{"pointer", "detail"}], "truncated": true};
 * "problems" only when there are some, "truncated" only when set. */
static json_t *error_json(const seg_error *e)
{
    json_t *o = json_pack("{s:i, s:s, s:s}", "status", e->status, "code", e->code ? e->code : "",
                          "detail", e->detail);
    if (e->n_items) {
        json_t *items = json_array();
        for (int i = 0; i < e->n_items; i++)
            json_array_append_new(items, json_pack("{s:s, s:s}", "pointer", e->items[i].pointer,
                                                   "detail", e->items[i].detail));
        json_object_set_new(o, "problems", items);
    }
    if (e->truncated)
        json_object_set_new(o, "truncated", json_true());
    return json_pack("{s:o}", "error", o);
}

/* The names of the LC_SET_* bits in each dialect, in the order of the representation. */
typedef struct bit_name {
    unsigned bit;
    const char *name;
} bit_name;

static const bit_name aud_lc_names[] = {
    {LC_SET_START, "start_date"}, {LC_SET_END, "end_date"},       {LC_SET_ACTIVE, "active"},
    {LC_SET_EXTEND, "extend"},    {LC_SET_EXTEND_DAYS, "extend_days"},
};
static const bit_name v1_lc_names[] = {
    {LC_SET_START, "startDate"}, {LC_SET_END, "endDate"},       {LC_SET_ACTIVE, "active"},
    {LC_SET_EXTEND, "extend"},   {LC_SET_EXTEND_DAYS, "extendDays"},
};

/* Appends to list the names of the bits of set that names holds; returns the bits left. */
static unsigned append_names(json_t *list, unsigned set, const bit_name *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (set & names[i].bit)
            json_array_append_new(list, json_string(names[i].name));
        set &= ~names[i].bit;
    }
    return set;
}

/* {"set": [names], "start_us", "end_us" (null without a date), "active", "extend",
 * "extend_days"}, or NULL with why filled when lc.set holds a bit that is no LC_SET_*. */
static json_t *lifecycle_json(const lifecycle_in *lc, const bit_name *names, size_t n_names,
                              char *why)
{
    json_t *set = json_array();
    unsigned left = append_names(set, lc->set, names, n_names);
    if (left) {
        say(why, "lc.set holds bits 0x%x that are no LC_SET_* bit", left);
        json_decref(set);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:o, s:b, s:b, s:i}", "set", set, "start_us",
                     lc->has_start ? json_integer(lc->start_us) : json_null(), "end_us",
                     lc->has_end ? json_integer(lc->end_us) : json_null(), "active", lc->active,
                     "extend", lc->extend, "extend_days", lc->extend_days);
}

/* Each runner reads its inputs from case c and returns the actual outcome (a new
 * reference shaped like the case's "expect"), or NULL with why filled when the case is
 * malformed or the validator broke a promise its header makes. */
typedef json_t *(*run_fn)(json_t *c, char *why);

static json_t *run_v1_segment(json_t *c, char *why)
{
    const char *mode = json_string_value(json_object_get(c, "mode"));
    json_t *body = json_object_get(c, "body");
    if (!mode || (strcmp(mode, "create") && strcmp(mode, "patch"))) {
        say(why, "\"mode\" must be \"create\" or \"patch\"");
        return NULL;
    }
    seg_error err;
    v1_segment_in in;
    err_clear(&err);
    int rc = val_v1_segment(body, !strcmp(mode, "patch"), &in, &err);
    if (rc != 0) {
        if (rc != -1 || in.id || in.name || in.description || in.has_description ||
            in.constraints_json || in.warnings || in.lc.set || in.lc.has_start ||
            in.lc.has_end || in.lc.start_us || in.lc.end_us || in.lc.active || in.lc.extend ||
            in.lc.extend_days) {
            say(why, "val_v1_segment returned %d without zeroing its output", rc);
            val_v1_segment_release(&in);
            return NULL;
        }
        return error_json(&err);
    }
    if (err.status || err.n_items || !json_is_array(in.warnings)) {
        say(why, "val_v1_segment succeeded with an error set or without a warnings array");
        val_v1_segment_release(&in);
        return NULL;
    }
    json_t *lc = lifecycle_json(&in.lc, v1_lc_names, ARRAY_LEN(v1_lc_names), why);
    json_t *out = !lc ? NULL
                      : json_pack("{s:{s:o, s:o, s:o, s:b, s:o, s:o}, s:O}", "output", "id",
                                  string_or_null(in.id), "name", string_or_null(in.name),
                                  "description", string_or_null(in.description),
                                  "has_description", in.has_description, "constraints",
                                  string_or_null(in.constraints_json), "lifecycle", lc,
                                  "warnings", in.warnings);
    val_v1_segment_release(&in);
    return out;
}

/* The AUD_SET_* bits besides the lifecycle's (aud_lc_names names those). */
static const bit_name aud_set_names[] = {
    {AUD_SET_MANAGEMENT_TYPE, "management_type"}, {AUD_SET_NAME, "name"},
    {AUD_SET_OWNER_ID, "owner_id"},               {AUD_SET_SIZE, "approximated_size"},
    {AUD_SET_DESCRIPTION, "description"},         {AUD_SET_PROPERTIES, "properties"},
    {AUD_SET_DEPRECATED, "deprecated_properties"},
};

static json_t *run_aud_segment(json_t *c, char *why)
{
    static const struct {
        const char *name;
        aud_mode mode;
    } modes[] = {{"create", AUD_CREATE}, {"replace", AUD_REPLACE}, {"whole", AUD_WHOLE}};
    const char *mode = json_string_value(json_object_get(c, "mode"));
    json_t *no_text = json_object_get(c, "no_text");
    json_t *body = json_object_get(c, "body");
    int flags = -1;
    for (size_t i = 0; mode && i < ARRAY_LEN(modes); i++)
        if (!strcmp(mode, modes[i].name))
            flags = (int)modes[i].mode;
    if (flags < 0 || (no_text && !json_is_boolean(no_text)) || !json_is_object(body)) {
        say(why, "expected \"mode\" create, replace or whole, \"no_text\" a boolean when given "
                 "and \"body\" an object");
        return NULL;
    }
    if (json_is_true(no_text))
        flags |= AUD_NO_TEXT;
    seg_error err;
    aud_segment_in in;
    err_clear(&err);
    if (val_aud_segment(body, flags, &in, &err) != 0) {
        val_aud_release(&in);
        return error_json(&err);
    }
    json_t *set = json_array(), *lc = NULL, *out = NULL;
    unsigned left = append_names(set, in.set, aud_set_names, ARRAY_LEN(aud_set_names));
    left = append_names(set, left, aud_lc_names, ARRAY_LEN(aud_lc_names));
    if (left)
        say(why, "val_aud_segment set unknown bits 0x%x", left);
    else if (in.lc.set & ~in.set) /* model.h: lc's LC_SET_* bits are in set too */
        say(why, "val_aud_segment's lc.set (0x%x) holds bits its set (0x%x) lacks", in.lc.set,
            in.set);
    else if ((lc = lifecycle_json(&in.lc, aud_lc_names, ARRAY_LEN(aud_lc_names), why)))
        out = json_pack("{s:{s:O, s:s, s:o, s:o, s:s, s:b, s:s, s:o, s:o, s:o, s:o, s:o}}",
                        "output", "set", set, "id", in.id, "management_type",
                        string_or_null(in.management_type), "name", string_or_null(in.name),
                        "owner_id", in.owner_id, "size_is_null", in.size_is_null, "size", in.size,
                        "description", string_or_null(in.description), "properties",
                        string_or_null(in.properties), "deprecated_properties",
                        string_or_null(in.deprecated_properties), "created_at",
                        string_or_null(in.created_at), "lifecycle", lc);
    json_decref(set);
    val_aud_release(&in);
    return out;
}

static json_t *run_merge_patch(json_t *c, char *why)
{
    json_t *target = json_object_get(c, "target"), *patch = json_object_get(c, "patch");
    if (!json_is_object(target) || !json_is_object(patch)) {
        say(why, "\"target\" and \"patch\" must be objects");
        return NULL;
    }
    json_t *result = json_deep_copy(target);
    val_merge_patch(result, patch);
    return json_pack("{s:o}", "result", result);
}

static json_t *run_parse_body(json_t *c, char *why)
{
    json_t *text = json_object_get(c, "text");
    if (!json_is_string(text)) {
        say(why, "\"text\" must be a string");
        return NULL;
    }
    seg_error err;
    err_clear(&err);
    json_t *root = val_parse_body(json_string_value(text), json_string_length(text), &err);
    if (!root)
        return error_json(&err);
    return json_pack("{s:o}", "output", root);
}

static json_t *run_formats(json_t *c, char *why)
{
    const char *name = json_string_value(json_object_get(c, "field"));
    const char *value = json_string_value(json_object_get(c, "value"));
    const val_field *f = name ? val_field_find(name) : NULL;
    char reason[160] = "";
    if (!f || !value) {
        say(why, "\"field\" must name a device field and \"value\" be a string");
        return NULL;
    }
    if (val_field_format_ok(f, value, reason, sizeof reason))
        return json_pack("{s:b}", "valid", true);
    return json_pack("{s:b, s:s, s:s}", "valid", false, "what", f->what, "why", reason);
}

/* A device_in that holds nothing: what val_device leaves after a failure. */
static bool device_empty(const device_in *in)
{
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++)
        if (in->scalar[i])
            return false;
    return !in->id && !in->tags_json && !in->attributes_json;
}

/* {"output": {"id", "scalar": {field: text} for each field set, "tags_json",
 * "attributes_json"}}; refuses an outcome that breaks device.h's promises about where each
 * text lives. */
static json_t *run_device(json_t *c, char *why)
{
    json_t *path_id = json_object_get(c, "path_id"), *body = json_object_get(c, "body");
    *why = '\0'; /* set below when the outcome breaks a promise */
    if ((path_id && !json_is_string(path_id)) || !body) {
        say(why, "\"path_id\" must be a string when given, and \"body\" is required");
        return NULL;
    }
    seg_error err;
    device_in in;
    err_clear(&err);
    if (val_device(body, json_string_value(path_id), &in, &err) != 0) {
        bool empty = device_empty(&in);
        val_device_release(&in);
        if (!empty) {
            say(why, "val_device failed without emptying its output");
            return NULL;
        }
        return error_json(&err);
    }
    json_t *scalar = json_object();
    for (size_t i = 0; i < VAL_FIELD_COUNT && !*why; i++) {
        const val_field *f = val_field_at(i);
        bool integer = val_field_type_range(f->type, NULL, NULL);
        const char *s = in.scalar[i];
        if (!s)
            continue;
        if (integer ? s != in.numbers[i]
                    : s != json_string_value(json_object_get(body, f->name)))
            say(why, "scalar of \"%s\" is not %s", f->name,
                integer ? "its numbers[] text" : "borrowed from the body");
        json_object_set_new(scalar, f->name, json_string(s));
    }
    if (!*why && (!in.tags_json || !in.attributes_json))
        say(why, "val_device succeeded without tags_json or attributes_json");
    if (!*why && in.id && in.id != json_string_value(json_object_get(body, "id")))
        say(why, "id is not borrowed from the body");
    json_t *out = *why ? NULL
                       : json_pack("{s:{s:o, s:O, s:s, s:s}}", "output", "id", string_or_null(in.id),
                                   "scalar", scalar, "tags_json", in.tags_json, "attributes_json",
                                   in.attributes_json);
    json_decref(scalar);
    val_device_release(&in);
    return out;
}

/* ---- the kinds of case: a folder each ------------------------------------------------- */

typedef struct case_kind {
    const char *dir;
    run_fn run;
    const char *const inputs[4]; /* keys besides "about" and "expect"; all required */
    const char *optional;        /* one more key that may be left out, or NULL */
} case_kind;

static const case_kind kinds[] = {
    {"v1_segment", run_v1_segment, {"mode", "body"}, NULL},
    {"aud_segment", run_aud_segment, {"mode", "body"}, "no_text"},
    {"merge_patch", run_merge_patch, {"target", "patch"}, NULL},
    {"parse_body", run_parse_body, {"text"}, NULL},
    {"formats", run_formats, {"field", "value"}, NULL},
    {"device", run_device, {"body"}, "path_id"},
};

static const case_kind *kind_named(const char *dir)
{
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
        if (!strcmp(kinds[i].dir, dir))
            return &kinds[i];
    return NULL;
}

/* Refuses a case that is not {"about": text, <inputs>, "expect": object}. */
static bool well_formed(const case_kind *k, json_t *c, char *why)
{
    const char *key;
    json_t *v;
    if (!json_is_object(c)) {
        say(why, "a case must be a JSON object");
        return false;
    }
    const char *about = json_string_value(json_object_get(c, "about"));
    if (!about || !*about) {
        say(why, "\"about\" must say in a sentence what the case shows");
        return false;
    }
    if (!json_is_object(json_object_get(c, "expect"))) {
        say(why, "\"expect\" must be an object: the whole expected outcome");
        return false;
    }
    for (size_t i = 0; i < ARRAY_LEN(k->inputs) && k->inputs[i]; i++) {
        if (!json_object_get(c, k->inputs[i])) {
            say(why, "\"%s\" is missing", k->inputs[i]);
            return false;
        }
    }
    json_object_foreach(c, key, v) {
        bool known = !strcmp(key, "about") || !strcmp(key, "expect") ||
                     (k->optional && !strcmp(key, k->optional));
        for (size_t i = 0; i < ARRAY_LEN(k->inputs) && k->inputs[i]; i++)
            known = known || !strcmp(key, k->inputs[i]);
        if (!known) {
            say(why, "unknown key \"%s\" in a %s case", key, k->dir);
            return false;
        }
    }
    return true;
}

/* ---- comparing ---------------------------------------------------------------------------- */

static void dump_into(char *buf, size_t cap, const json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(buf, cap, "%s", s ? s : "(nothing)");
    free(s);
}

/* Compares expected with actual; where they differ, says where (a JSON Pointer into
 * "expect", built in at) and what each holds there, and returns false. */
static bool same(const json_t *exp, const json_t *act, char *at, char *why)
{
    char e[400], a[400];
    size_t len = strlen(at), i;
    const char *key;
    json_t *v;
    if (json_is_object(exp) && json_is_object(act) && json_object_size(exp) == json_object_size(act)) {
        json_object_foreach((json_t *)exp, key, v) {
            snprintf(at + len, WHY_MAX / 2 - len, "/%s", key);
            if (!same(v, json_object_get(act, key), at, why))
                return false;
        }
        return true;
    }
    if (json_is_array(exp) && json_is_array(act) && json_array_size(exp) == json_array_size(act)) {
        json_array_foreach(exp, i, v) {
            snprintf(at + len, WHY_MAX / 2 - len, "/%zu", i);
            if (!same(v, json_array_get(act, i), at, why))
                return false;
        }
        return true;
    }
    if (act && json_equal((json_t *)exp, (json_t *)act))
        return true;
    dump_into(e, sizeof e, exp);
    dump_into(a, sizeof a, act);
    say(why, "at %s: expected %s, got %s", len ? at : "/", e, a);
    return false;
}

/* Runs case c of kind k and compares. Warnings go to the client as they are, so their key
 * order is compared too (as text); everything else is compared as JSON values. */
static int check_case(const case_kind *k, json_t *c, char *why)
{
    char at[WHY_MAX / 2] = "";
    if (!well_formed(k, c, why))
        return CASE_MALFORMED;
    json_t *actual = k->run(c, why);
    if (!actual)
        return CASE_MALFORMED;
    json_t *expect = json_object_get(c, "expect");
    int rc = same(expect, actual, at, why) ? CASE_PASS : CASE_MISMATCH;
    if (rc == CASE_PASS && json_object_get(expect, "warnings")) {
        char *e = json_dumps(json_object_get(expect, "warnings"), JSON_COMPACT);
        char *a = json_dumps(json_object_get(actual, "warnings"), JSON_COMPACT);
        if (!e || !a || strcmp(e, a)) {
            say(why, "warnings differ in key order: expected %.400s, got %.400s", e ? e : "?",
                a ? a : "?");
            rc = CASE_MISMATCH;
        }
        free(e);
        free(a);
    }
    json_decref(actual);
    return rc;
}

/* The first string in v, depth first; NULL when it holds none. */
static json_t *first_string(json_t *v)
{
    const char *key;
    size_t i;
    json_t *item, *found = NULL;
    if (json_is_string(v))
        return v;
    if (json_is_object(v)) {
        json_object_foreach(v, key, item) {
            if (!found)
                found = first_string(item);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            if (!found)
                found = first_string(item);
        }
    }
    return found;
}

/* Changes c's expectation in place (its first string gets a "!" more; with no string, a
 * key is added), so that a runner comparing nothing would be caught passing it. */
static void spoil(json_t *c)
{
    json_t *expect = json_object_get(c, "expect");
    json_t *text = first_string(expect);
    char buf[64];
    snprintf(buf, sizeof buf, "%.40s!", text ? json_string_value(text) : "");
    if (text)
        json_string_set(text, buf);
    else
        json_object_set_new(expect, "spoiled", json_true());
}

/* ---- the cases on disk -------------------------------------------------------------------- */

typedef struct case_file {
    char path[1024];
    const case_kind *kind;
} case_file;

static int visible(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* find_cases says why it refuses a folder here; the self-test below silences it */
static FILE *complaints;

#define COMPLAIN(...) (complaints ? (void)fprintf(complaints, __VA_ARGS__) : (void)0)

/* "NNN-name.json": three digits, a dash, a name, .json */
static bool case_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n >= 10 && name[0] >= '0' && name[0] <= '9' && name[1] >= '0' && name[1] <= '9' &&
           name[2] >= '0' && name[2] <= '9' && name[3] == '-' && !strcmp(name + n - 5, ".json");
}

/* Lists every case below root into *out (malloc'd, sorted by path). Refuses, with a line on
 * stderr, a root that cannot be read or holds no case, a folder that is no validator, a
 * validator folder without cases and a file not named NNN-name.json: a runner that finds
 * nothing must not pass. Returns the number of cases, or -1. */
static int find_cases(const char *root, case_file **out)
{
    struct dirent **dirs = NULL, **names = NULL;
    case_file *files = NULL;
    int n_dirs = scandir(root, &dirs, visible, alphasort), n = 0, rc = -1;
    *out = NULL;
    if (n_dirs < 0)
        COMPLAIN("cannot read %s: %s (run from the source directory)\n", root, strerror(errno));
    for (int d = 0; d < n_dirs; d++) {
        char dir[512];
        const case_kind *k = kind_named(dirs[d]->d_name);
        int n_names = -1;
        snprintf(dir, sizeof dir, "%s/%s", root, dirs[d]->d_name);
        if (!k && !strcmp(dirs[d]->d_name, "README.md"))
            continue;
        if (!k || (n_names = scandir(dir, &names, visible, alphasort)) <= 0) {
            COMPLAIN("%s: %s\n", dir, !k ? "no validator is named so (README.md may sit here)"
                                       : n_names ? strerror(errno) : "a validator without cases");
            goto out;
        }
        case_file *more = realloc(files, (size_t)(n + n_names) * sizeof *files);
        bool named = more != NULL;
        files = more ? more : files;
        for (int i = 0; named && i < n_names; i++) {
            named = case_name_ok(names[i]->d_name);
            if (!named)
                COMPLAIN("%s/%s: a case file is named NNN-name.json\n", dir, names[i]->d_name);
            snprintf(files[n].path, sizeof files[n].path, "%s/%s", dir, names[i]->d_name);
            files[n++].kind = k;
        }
        for (int i = 0; i < n_names; i++)
            free(names[i]);
        free(names);
        if (!named)
            goto out;
    }
    if (n_dirs >= 0 && n == 0)
        COMPLAIN("%s: no cases found\n", root);
    if (n > 0) {
        *out = files;
        files = NULL;
        rc = n;
    }
out:
    free(files);
    for (int d = 0; d < n_dirs; d++)
        free(dirs[d]);
    free(dirs);
    return rc;
}

static json_t *load_case(const char *path, char *why)
{
    json_error_t je;
    json_t *c = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!c)
        say(why, "not JSON: line %d column %d: %s", je.line, je.column, je.text);
    return c;
}

/* ---- cmocka tests --------------------------------------------------------------------------- */

/* One case file: it passes, and it would fail with one expected value changed. */
static void test_case(void **state)
{
    const case_file *f = *state;
    char why[WHY_MAX];
    json_t *c = load_case(f->path, why);
    if (!c)
        fail_msg("%s: %s", f->path, why);
    if (check_case(f->kind, c, why) != CASE_PASS)
        fail_msg("%s: %s", f->path, why);
    spoil(c);
    if (check_case(f->kind, c, why) != CASE_MISMATCH)
        fail_msg("%s: still passes with a changed expectation", f->path);
    json_decref(c);
}

/* The runner itself: malformed cases and empty or stray folders are refused, not passed. */
static void test_runner_refuses_malformed_cases(void **state)
{
    static const char *const bad[] = {
        "[]",
        "{\"mode\":\"create\",\"body\":{},\"expect\":{}}",                     /* no about */
        "{\"about\":\"\",\"mode\":\"create\",\"body\":{},\"expect\":{}}",      /* empty about */
        "{\"about\":\"x\",\"mode\":\"create\",\"body\":{}}",                   /* no expect */
        "{\"about\":\"x\",\"mode\":\"create\",\"body\":{},\"expect\":[]}",     /* expect not object */
        "{\"about\":\"x\",\"body\":{},\"expect\":{}}",                         /* no mode */
        "{\"about\":\"x\",\"mode\":\"put\",\"body\":{},\"expect\":{}}",        /* bad mode */
        "{\"about\":\"x\",\"mode\":\"create\",\"expect\":{}}",                 /* no body */
        "{\"about\":\"x\",\"mode\":\"create\",\"body\":{},\"expect\":{},\"bogus\":1}",
    };
    char why[WHY_MAX];
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        json_t *c = json_loads(bad[i], 0, NULL);
        assert_non_null(c);
        if (check_case(kind_named("v1_segment"), c, why) != CASE_MALFORMED)
            fail_msg("accepted the malformed case %s", bad[i]);
        json_decref(c);
    }
    /* a well-formed case whose expectation is empty does not pass either */
    json_t *c = json_loads("{\"about\":\"x\",\"mode\":\"create\",\"body\":{},\"expect\":{}}", 0, NULL);
    assert_int_equal(check_case(kind_named("v1_segment"), c, why), CASE_MISMATCH);
    json_decref(c);
}

/* Makes root/rel, a folder or an empty file, or with remove set removes it. */
static void make(const char *root, const char *rel, bool folder, bool remove_it)
{
    char path[600];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    if (remove_it)
        assert_int_equal(remove(path), 0);
    else if (folder)
        assert_int_equal(mkdir(path, 0700), 0);
    else
        assert_int_equal(!(f = fopen(path, "w")) || fclose(f), 0);
}

static void test_runner_refuses_empty_folders(void **state)
{
    char root[] = "/tmp/validator-cases-XXXXXX";
    case_file *files;
    FILE *was = complaints;
    complaints = NULL;
    assert_non_null(mkdtemp(root));
    assert_int_equal(find_cases(root, &files), -1); /* nothing at all */
    make(root, "v1_segment", true, false);
    assert_int_equal(find_cases(root, &files), -1); /* a validator without cases */
    make(root, "v1_segment/notes.txt", false, false);
    assert_int_equal(find_cases(root, &files), -1); /* a file not named as a case */
    make(root, "v1_segment/notes.txt", false, true);
    make(root, "v1_segment/001-x.json", false, false);
    assert_int_equal(find_cases(root, &files), 1);
    free(files);
    make(root, "nobody", true, false);
    assert_int_equal(find_cases(root, &files), -1); /* a folder no validator owns */
    make(root, "nobody", true, true);
    make(root, "v1_segment/001-x.json", false, true);
    make(root, "v1_segment", true, true);
    assert_int_equal(rmdir(root), 0);
    complaints = was;
}

/* --print FILE...: each case with "expect" replaced by what the validator gives now, for
 * writing a new case (check the outcome by eye before keeping it). */
static int print_cases(int n, char **paths)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char why[WHY_MAX], dir[1024];
        snprintf(dir, sizeof dir, "%s", paths[i]);
        const case_kind *k = kind_named(basename(dirname(dir))); /* .../<validator>/NNN-x.json */
        json_t *c = k ? load_case(paths[i], why) : NULL;
        json_t *actual = NULL;
        if (!k)
            say(why, "the folder names no validator");
        else if (c)
            actual = k->run(c, why);
        if (!actual) {
            fprintf(stderr, "%s: %s\n", paths[i], why);
            rc = 1;
        } else {
            json_object_set_new(c, "expect", actual);
            json_dumpf(c, stdout, JSON_INDENT(2));
            putchar('\n');
        }
        json_decref(c);
    }
    return rc;
}

int main(int argc, char **argv)
{
    case_file *files;
    complaints = stderr;
    if (argc > 1 && !strcmp(argv[1], "--print"))
        return print_cases(argc - 2, argv + 2);
    int n = find_cases(argc > 1 ? argv[1] : CASES_DIR, &files);
    if (n < 0)
        return 1;
    struct CMUnitTest *tests = calloc((size_t)n + 2, sizeof *tests);
    if (!tests)
        return 1;
    tests[0] = (struct CMUnitTest)cmocka_unit_test(test_runner_refuses_malformed_cases);
    tests[1] = (struct CMUnitTest)cmocka_unit_test(test_runner_refuses_empty_folders);
    for (int i = 0; i < n; i++)
        tests[i + 2] = (struct CMUnitTest){files[i].path, test_case, NULL, NULL, &files[i]};
    int failed = _cmocka_run_group_tests("validator_cases", tests, (size_t)n + 2, NULL, NULL);
    free(tests);
    free(files);
    return failed;
}
