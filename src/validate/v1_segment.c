/* The /v1/segments body: one walk that reports every problem with its JSON Pointer, then
 * the canonical constraint JSON and the warnings (duplicates, AND groups that can never
 * match) for a body that passed. The device fields and relations are tables below. */
#include "validate/v1_segment.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "validate/codes.h"
#include "validate/validate.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Client text quoted in a message is cut to this many bytes (at a character boundary), so
 * that two quotes plus the sentence always fit ERR_DETAIL_MAX and stay valid UTF-8. */
#define EXCERPT_MAX 40
#define EXCERPT_BUF (EXCERPT_MAX + 4)

#define ID_EXAMPLE "seg_jfeZ4NrGegjV9" /* from the API documentation */

/* ---- relations ---------------------------------------------------------------------- */

typedef enum relation {
    REL_EXISTS,
    REL_EQ,
    REL_NE,
    REL_STARTS_WITH,
    REL_ENDS_WITH,
    REL_CONTAINS,
    REL_GT,
    REL_GE,
    REL_LT,
    REL_LE,
    REL_COUNT
} relation;

#define REL_BIT(r) (1u << (r))

/* What is stored: the symbols of the documentation's "All possible relation values". */
static const char *const rel_canonical[REL_COUNT] = {
    [REL_EXISTS] = "exists",
    [REL_EQ] = "==",
    [REL_NE] = "!=",
    [REL_STARTS_WITH] = "starts_with",
    [REL_ENDS_WITH] = "ends_with",
    [REL_CONTAINS] = "contains",
    [REL_GT] = ">",
    [REL_GE] = ">=",
    [REL_LT] = "<",
    [REL_LE] = "<=",
};

/* What is accepted, compared ignoring ASCII case. The word forms appear in the
 * documentation ("EQUALS") and in other push APIs' segment filters. */
static const struct rel_alias {
    const char *text;
    relation rel;
} rel_aliases[] = {
    {"exists", REL_EXISTS},
    {"==", REL_EQ},
    {"equals", REL_EQ},
    {"!=", REL_NE},
    {"not_equals", REL_NE},
    {"starts_with", REL_STARTS_WITH},
    {"ends_with", REL_ENDS_WITH},
    {"contains", REL_CONTAINS},
    {">", REL_GT},
    {"greater_than", REL_GT},
    {">=", REL_GE},
    {"greater_than_or_equals", REL_GE},
    {"<", REL_LT},
    {"less_than", REL_LT},
    {"<=", REL_LE},
    {"less_than_or_equals", REL_LE},
};

#define ALL_RELATIONS "exists, ==, !=, starts_with, ends_with, contains, >, >=, <, <="

/* ---- field types and device fields --------------------------------------------------- */

typedef enum field_type { FT_STRING, FT_INT, FT_LONG, FT_STRING_ARRAY } field_type;

static const struct type_desc {
    const char *name;     /* as the documentation spells it */
    unsigned relations;   /* REL_BIT set */
    const char *expected; /* the same set, for messages */
} types[] = {
    [FT_STRING] = {"String",
                   REL_BIT(REL_EXISTS) | REL_BIT(REL_EQ) | REL_BIT(REL_NE) |
                       REL_BIT(REL_STARTS_WITH) | REL_BIT(REL_ENDS_WITH) | REL_BIT(REL_CONTAINS),
                   "exists, ==, !=, starts_with, ends_with, contains"},
    [FT_INT] = {"Int",
                REL_BIT(REL_EQ) | REL_BIT(REL_NE) | REL_BIT(REL_GT) | REL_BIT(REL_GE) |
                    REL_BIT(REL_LT) | REL_BIT(REL_LE),
                "==, !=, >, >=, <, <="},
    [FT_LONG] = {"Long",
                 REL_BIT(REL_EQ) | REL_BIT(REL_NE) | REL_BIT(REL_GT) | REL_BIT(REL_GE) |
                     REL_BIT(REL_LT) | REL_BIT(REL_LE),
                 "==, !=, >, >=, <, <="},
    [FT_STRING_ARRAY] = {"String Array", REL_BIT(REL_CONTAINS) | REL_BIT(REL_EXISTS),
                         "contains, exists"},
};

/* A format check for == and != values: true when s is valid; otherwise writes into why
 * what would be valid ("expected ..."). */
typedef bool (*format_fn)(const char *s, char *why, size_t cap);

static bool fmt_country(const char *s, char *why, size_t cap);
static bool fmt_language(const char *s, char *why, size_t cap);
static bool fmt_timezone(const char *s, char *why, size_t cap);
static bool fmt_device_type(const char *s, char *why, size_t cap);
static bool fmt_email(const char *s, char *why, size_t cap);
static bool fmt_version(const char *s, char *why, size_t cap);
static bool fmt_digits(const char *s, char *why, size_t cap);

typedef struct field_desc {
    const char *name;
    field_type type;
    bool timestamp;   /* Unix time in milliseconds: never negative */
    format_fn format; /* NULL: free text */
    const char *what; /* names the format in messages: "is not <what>" */
} field_desc;

/* The device fields, in the documentation's order (which is also the order listed in
 * the "not a device field" message). */
static const field_desc fields[] = {
    {"country", FT_STRING, false, fmt_country, "an ISO 3166-1 alpha-2 country code"},
    {"language", FT_STRING, false, fmt_language, "an ISO 639-2 alpha-3 language code"},
    {"timezone", FT_STRING, false, fmt_timezone, "an IANA time zone name"},
    {"appVersion", FT_STRING, false, fmt_version, "a version"},
    {"appVersionCode", FT_INT, false, NULL, NULL},
    {"osApi", FT_STRING, false, fmt_digits, "an OS API level"},
    {"osVersion", FT_STRING, false, fmt_version, "a version"},
    {"customUserId", FT_STRING, false, NULL, NULL},
    {"email", FT_STRING, false, fmt_email, "a plausible email address"},
    {"type", FT_STRING, false, fmt_device_type, "a device type"},
    {"firstSession", FT_LONG, true, NULL, NULL},
    {"lastSession", FT_LONG, true, NULL, NULL},
    {"sessionCount", FT_INT, false, NULL, NULL},
    {"createdAt", FT_LONG, true, NULL, NULL},
    {"id", FT_STRING, false, NULL, NULL},
    {"pushToken", FT_STRING, false, NULL, NULL},
    {"unRegisteredAt", FT_LONG, true, NULL, NULL},
    {"deviceModel", FT_STRING, false, NULL, NULL},
    {"deviceManufacturer", FT_STRING, false, NULL, NULL},
    {"tags", FT_STRING_ARRAY, false, NULL, NULL},
};

#define N_FIELDS ARRAY_LEN(fields)

/* ---- keys of each object --------------------------------------------------------------- */

static const char *const body_keys[] = {"id", "name", "description", "constraints",
                                        "createdAt", "updatedAt"};
static const char *const group_keys[] = {"type", "constraints"};
static const char *const constraint_keys[] = {"field", "relation", "value"};

/* ---- the walk's state -------------------------------------------------------------------- */

typedef struct v1_con {
    const field_desc *field;
    relation rel;
    json_t *value; /* borrowed from root */
} v1_con;

typedef struct v1_group {
    bool is_or;
    size_t n;
    v1_con cons[V1_MAX_CONSTRAINTS];
} v1_group;

typedef struct walk {
    val_path path;
    size_t n_groups;
    v1_group groups[V1_MAX_GROUPS];
} walk;

/* ---- small helpers -------------------------------------------------------------------------- */

/* Copies client text for quoting: at most EXCERPT_MAX bytes cut at a character boundary,
 * '"' and '\\' escaped, control characters shown as '?', "..." appended when cut. */
static const char *excerpt(char buf[EXCERPT_BUF], const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, i = 0;
    while (u[i]) {
        char tmp[4];
        size_t in_len = 1, out_len = 1;
        if (u[i] == '"' || u[i] == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)u[i];
            out_len = 2;
        } else if (u[i] < 0x20 || u[i] == 0x7F) {
            tmp[0] = '?';
        } else if (u[i] < 0x80) {
            tmp[0] = (char)u[i];
        } else {
            size_t n = u[i] >= 0xF0 ? 4 : u[i] >= 0xE0 ? 3 : u[i] >= 0xC0 ? 2 : 1;
            size_t k = 1;
            while (k < n && (u[i + k] & 0xC0) == 0x80)
                k++;
            if (k == n && n > 1) {
                memcpy(tmp, u + i, n);
                in_len = out_len = n;
            } else {
                tmp[0] = '?'; /* not UTF-8 (jansson never hands us this, but be safe) */
                in_len = k;
            }
        }
        if (o + out_len > EXCERPT_MAX) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, tmp, out_len);
        o += out_len;
        i += in_len;
    }
    buf[o] = '\0';
    return buf;
}

/* A constraint value for a message: "text" quoted, integers and booleans as JSON. */
static const char *render_value(char buf[EXCERPT_BUF + 2], const json_t *v)
{
    char ex[EXCERPT_BUF];
    if (json_is_string(v))
        snprintf(buf, EXCERPT_BUF + 2, "\"%s\"", excerpt(ex, json_string_value(v)));
    else if (json_is_integer(v))
        snprintf(buf, EXCERPT_BUF + 2, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, EXCERPT_BUF + 2, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(buf, EXCERPT_BUF + 2, "%s", val_type_name(v));
    return buf;
}

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
    char ex[EXCERPT_BUF];
    json_object_foreach(obj, key, v) {
        if (in_list(key, list, n))
            continue;
        val_fail_at(p, key, "unknown field \"%s\"%s: expected %s", excerpt(ex, key), where,
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

/* ---- formats ------------------------------------------------------------------------------- */

static bool fmt_country(const char *s, char *why, size_t cap)
{
    if (codes_is_country(s))
        return true;
    if (strlen(s) == 2) {
        char up[3] = {s[0], s[1], '\0'};
        for (int i = 0; i < 2; i++)
            if (up[i] >= 'a' && up[i] <= 'z')
                up[i] = (char)(up[i] - 'a' + 'A');
        if (codes_is_country(up)) {
            snprintf(why, cap, "country codes are upper case: expected \"%s\"", up);
            return false;
        }
    }
    snprintf(why, cap, "expected two upper-case letters such as US, PL or UK");
    return false;
}

static bool fmt_language(const char *s, char *why, size_t cap)
{
    size_t n = strlen(s);
    if (codes_is_language(s))
        return true;
    if (n == 3) {
        char low[4] = {s[0], s[1], s[2], '\0'};
        for (int i = 0; i < 3; i++)
            if (low[i] >= 'A' && low[i] <= 'Z')
                low[i] = (char)(low[i] - 'A' + 'a');
        if (codes_is_language(low)) {
            snprintf(why, cap, "language codes are lower case: expected \"%s\"", low);
            return false;
        }
    }
    if (n == 2)
        snprintf(why, cap,
                 "expected a three-letter ISO 639-2 code such as eng or pol, not a two-letter one");
    else
        snprintf(why, cap, "expected three lower-case letters such as eng or pol");
    return false;
}

static bool fmt_timezone(const char *s, char *why, size_t cap)
{
    if (codes_is_timezone(s))
        return true;
    const char *fold = codes_timezone_casefold(s);
    if (fold)
        snprintf(why, cap, "time zone names are case-sensitive: expected \"%s\"", fold);
    else
        snprintf(why, cap, "expected an Area/Location name such as Europe/Warsaw, or UTC");
    return false;
}

static bool fmt_device_type(const char *s, char *why, size_t cap)
{
    static const char *const device_types[] = {"phone", "tablet", "smartwatch", "desktop"};
    if (in_list(s, device_types, ARRAY_LEN(device_types)))
        return true;
    snprintf(why, cap, "expected one of phone, tablet, smartwatch, desktop");
    return false;
}

static bool is_alnum_ascii(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A plausibility check, not RFC 5321: catches typos and non-addresses, lets unusual but
 * real addresses through. Internationalised domains must be sent in their xn-- form. */
static bool fmt_email(const char *s, char *why, size_t cap)
{
    const char *at = strchr(s, '@');
    if (!at || strchr(at + 1, '@')) {
        snprintf(why, cap, "expected exactly one @ between a name and a domain, such as name@example.com");
        return false;
    }
    size_t local = (size_t)(at - s);
    if (local == 0 || local > 64) {
        snprintf(why, cap, "expected 1 to 64 characters before the @, got %zu", local);
        return false;
    }
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7F) {
            snprintf(why, cap, "expected no spaces or control characters before the @");
            return false;
        }
        if (c == '.' && (i == 0 || i == local - 1 || s[i + 1] == '.')) {
            snprintf(why, cap, "expected no dot at the start or end of the name, and no two dots in a row");
            return false;
        }
    }
    const char *d = at + 1;
    size_t dlen = strlen(d), labels = 0;
    if (dlen == 0 || dlen > 253) {
        snprintf(why, cap, "expected a domain of 1 to 253 characters after the @, such as example.com");
        return false;
    }
    for (const char *l = d;;) {
        const char *end = strchr(l, '.');
        size_t llen = end ? (size_t)(end - l) : strlen(l);
        bool ok = llen >= 1 && llen <= 63 && l[0] != '-' && l[llen - 1] != '-';
        for (size_t i = 0; ok && i < llen; i++)
            ok = is_alnum_ascii(l[i]) || l[i] == '-';
        if (!ok) {
            snprintf(why, cap,
                     "expected a domain of dot-separated labels of letters, digits and hyphens, such as example.com");
            return false;
        }
        labels++;
        if (!end)
            break;
        l = end + 1;
    }
    if (labels < 2) {
        snprintf(why, cap, "expected a domain with a dot, such as example.com");
        return false;
    }
    return true;
}

/* 1 to 4 dot-separated runs of digits: "13", "1.0.1", "1.3.54". */
static bool fmt_version(const char *s, char *why, size_t cap)
{
    int parts = 0;
    const char *p = s;
    for (;;) {
        const char *start = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == start || ++parts > 4)
            break;
        if (*p == '\0')
            return true;
        if (*p != '.')
            break;
        p++;
    }
    snprintf(why, cap, "expected 1 to 4 numbers separated by dots, such as 13, 1.0.1 or 1.3.54");
    return false;
}

static bool fmt_digits(const char *s, char *why, size_t cap)
{
    const char *p = s;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p != s && *p == '\0')
        return true;
    snprintf(why, cap, "expected digits only, such as 35");
    return false;
}

/* ---- one constraint ---------------------------------------------------------------------- */

static const field_desc *find_field(const char *name)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (strcmp(name, fields[i].name) == 0)
            return &fields[i];
    return NULL;
}

/* "field "x" is not a device field: expected one of country, ..., and N more": as many
 * names as fit ERR_DETAIL_MAX. */
static void fail_unknown_field(val_path *p, const char *name)
{
    char msg[ERR_DETAIL_MAX], ex[EXCERPT_BUF];
    int n = snprintf(msg, sizeof msg, "field \"%s\" is not a device field: expected one of ",
                     excerpt(ex, name));
    size_t len = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < N_FIELDS && len < sizeof msg; i++) {
        const char *sep = i ? ", " : "";
        size_t need = strlen(sep) + strlen(fields[i].name);
        size_t reserve = i + 1 < N_FIELDS ? sizeof " and 20 more" : 0;
        if (len + need + reserve >= sizeof msg) {
            snprintf(msg + len, sizeof msg - len, " and %zu more", N_FIELDS - i);
            break;
        }
        len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", sep, fields[i].name);
    }
    val_fail(p, "%s", msg);
}

/* Resolves the "field" key; NULL after reporting the problem. */
static const field_desc *walk_field(val_path *p, json_t *v)
{
    char ex[EXCERPT_BUF];
    size_t old = val_path_push(p, "field");
    const field_desc *f = NULL;
    if (!is_c_string(v)) {
        val_fail(p, "\"field\" must be a string, got %s: expected a device field such as country or sessionCount",
                 kind_of(v));
        goto out;
    }
    const char *name = json_string_value(v);
    f = find_field(name);
    if (f)
        goto out;
    for (size_t i = 0; i < N_FIELDS; i++) {
        if (strcasecmp(name, fields[i].name) == 0) {
            val_fail(p, "field \"%s\" is not a device field: names are case-sensitive, expected \"%s\"",
                     excerpt(ex, name), fields[i].name);
            goto out;
        }
    }
    fail_unknown_field(p, name);
out:
    val_path_pop(p, old);
    return f;
}

/* Resolves the "relation" key for field f (NULL when the field is unknown: then only
 * "is it a relation at all" is checked). Returns false after reporting a problem. */
static bool walk_relation(val_path *p, json_t *v, const field_desc *f, relation *out)
{
    char ex[EXCERPT_BUF];
    size_t old = val_path_push(p, "relation");
    bool ok = false;
    if (!is_c_string(v)) {
        val_fail(p, "\"relation\" must be a string, got %s: expected one of %s",
                 kind_of(v),
                 f ? types[f->type].expected : ALL_RELATIONS);
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
            val_fail(p, "relation \"%s\" is not valid: expected one of %s", excerpt(ex, text),
                     ALL_RELATIONS);
        goto out;
    }
    if (!a || !(types[f->type].relations & REL_BIT(a->rel))) {
        val_fail(p, "relation \"%s\" is not valid for field \"%s\" (%s): expected one of %s",
                 excerpt(ex, text), f->name, types[f->type].name, types[f->type].expected);
        goto out;
    }
    *out = a->rel;
    ok = true;
out:
    val_path_pop(p, old);
    return ok;
}

static void walk_string_value(val_path *p, json_t *v, const field_desc *f, relation rel)
{
    char ex[EXCERPT_BUF], why[160];
    if (!json_is_string(v)) {
        if (f->type == FT_STRING_ARRAY)
            val_fail(p, "value for relation \"contains\" on field \"%s\" (%s) must be a string (one tag), got %s",
                     f->name, types[f->type].name, val_type_name(v));
        else
            val_fail(p, "value for field \"%s\" (%s) must be a string, got %s", f->name,
                     types[f->type].name, val_type_name(v));
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
    if (f->format && (rel == REL_EQ || rel == REL_NE) &&
        !f->format(json_string_value(v), why, sizeof why)) {
        val_fail(p, "value \"%s\" is not %s: %s", excerpt(ex, json_string_value(v)), f->what, why);
    }
}

static void walk_number_value(val_path *p, json_t *v, const field_desc *f)
{
    if (json_is_real(v)) {
        char num[32];
        snprintf(num, sizeof num, "%g", json_real_value(v));
        if (!strpbrk(num, ".e"))
            strcat(num, ".0"); /* 5.0 prints as "5"; show it as a real */
        val_fail(p, "value for field \"%s\" (%s) must be an integer, got a real number (%s): write whole numbers without a decimal point or exponent",
                 f->name, types[f->type].name, num);
        return;
    }
    if (!json_is_integer(v)) {
        val_fail(p, "value for field \"%s\" (%s) must be an integer, got %s", f->name,
                 types[f->type].name, val_type_name(v));
        return;
    }
    json_int_t n = json_integer_value(v);
    if (f->type == FT_INT && (n < INT32_MIN || n > INT32_MAX)) {
        val_fail(p, "value %" JSON_INTEGER_FORMAT " is out of range for field \"%s\" (Int): expected %" PRId32 " to %" PRId32,
                 n, f->name, INT32_MIN, INT32_MAX);
        return;
    }
    if (f->timestamp && n < 0) {
        val_fail(p, "value %" JSON_INTEGER_FORMAT " for field \"%s\" is negative: expected a Unix timestamp in milliseconds, 0 or more",
                 n, f->name);
    }
}

static void walk_value(val_path *p, json_t *v, const field_desc *f, relation rel)
{
    size_t old = val_path_push(p, "value");
    if (rel == REL_EXISTS) {
        if (!json_is_boolean(v))
            val_fail(p, "value for relation \"exists\" must be a boolean (true: the field is set, false: it is not), got %s",
                     val_type_name(v));
    } else if (f->type == FT_INT || f->type == FT_LONG) {
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
    const field_desc *f = NULL;
    relation rel = REL_EQ;
    bool rel_ok = false;

    if (!jf)
        val_fail_at(p, "field", "\"field\" is required: expected a device field such as country or sessionCount");
    else
        f = walk_field(p, jf);
    if (!jr)
        val_fail_at(p, "relation", "\"relation\" is required: expected one of %s",
                    f ? types[f->type].expected : ALL_RELATIONS);
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
    char ex[EXCERPT_BUF];
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
                    excerpt(ex, json_string_value(type)));
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
            walk_group(w, g, i < V1_MAX_GROUPS ? &w->groups[i] : NULL);
            val_path_pop(p, old_i);
        }
        w->n_groups = json_array_size(groups) < V1_MAX_GROUPS ? json_array_size(groups)
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
    char ex[EXCERPT_BUF];
    if (!v || json_is_null(v)) {
        val_fail_at(p, "id", "\"id\" is required when updating a segment: expected a segment id such as %s",
                    ID_EXAMPLE);
    } else if (!is_c_string(v)) {
        val_fail_at(p, "id", "\"id\" must be a string, got %s: expected a segment id such as %s",
                    kind_of(v), ID_EXAMPLE);
    } else if (!val_v1_id(json_string_value(v))) {
        val_fail_at(p, "id", "id \"%s\" is not a segment id: expected \"%s\" followed by %d letters or digits, such as %s",
                    excerpt(ex, json_string_value(v)), V1_ID_PREFIX, V1_ID_SUFFIX_LEN, ID_EXAMPLE);
    } else {
        out->id = json_string_value(v);
    }
}

/* ---- canonical JSON ----------------------------------------------------------------------------- */

/* [{"type":"AND","constraints":[{"field":…,"relation":…,"value":…}]}], compact, keys in
 * that order (jansson keeps insertion order). NULL when memory runs out. */
static char *canonical_json(const walk *w)
{
    json_t *arr = json_array();
    char *text = NULL;
    if (!arr)
        return NULL;
    for (size_t g = 0; g < w->n_groups; g++) {
        const v1_group *grp = &w->groups[g];
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

/* ---- warnings ------------------------------------------------------------------------------------ */

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
    bool ranged;            /* numeric bounds below are in use */
    int64_t lo, hi;         /* inclusive; empty when lo > hi */
    const v1_con *lo_src, *hi_src; /* the constraints that set the bounds (NULL: the type's) */
} field_state;

/* "> 10", "== \"x\"" */
static const char *render_con(char buf[EXCERPT_BUF + 16], const v1_con *c)
{
    char v[EXCERPT_BUF + 2];
    snprintf(buf, EXCERPT_BUF + 16, "%s %s", rel_canonical[c->rel], render_value(v, c->value));
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
    case REL_EQ: raise_lo = lower_hi = true; lo = hi = x; break;
    case REL_GE: raise_lo = true; lo = x; break;
    case REL_LE: lower_hi = true; hi = x; break;
    case REL_GT:
        if (x == INT64_MAX) {
            st->lo_src = c;
            return false;
        }
        raise_lo = true;
        lo = x + 1;
        break;
    case REL_LT:
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

/* Checks constraint c against what the group said before about its field; on a
 * contradiction writes why into detail and returns true. */
static bool contradicts(field_state *st, const v1_con *c, char *detail, size_t cap)
{
    const char *name = c->field->name;
    char a[EXCERPT_BUF + 16], b[EXCERPT_BUF + 16];
    char va[EXCERPT_BUF + 2], vb[EXCERPT_BUF + 2];
    static const char *const never = "in an AND group; this group never matches";

    if (c->rel == REL_EXISTS) {
        int want = json_is_true(c->value) ? 1 : 0;
        if (st->exists == 1 - want) {
            snprintf(detail, cap, "field \"%s\" cannot both exist and not exist %s", name, never);
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
    if (c->rel == REL_EQ) {
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
    } else if (c->rel == REL_NE) {
        if (st->eq && json_equal(st->eq->value, c->value)) {
            snprintf(detail, cap, "field \"%s\" cannot both equal and not equal %s %s", name,
                     render_value(va, c->value), never);
            return true;
        }
        st->ne[st->n_ne++] = c;
    }

    if (c->field->type != FT_INT && c->field->type != FT_LONG)
        return false;
    if (!st->ranged) {
        st->ranged = true;
        st->lo = c->field->type == FT_INT ? INT32_MIN : INT64_MIN;
        st->hi = c->field->type == FT_INT ? INT32_MAX : INT64_MAX;
    }
    if (!narrow(st, c)) {
        if (st->lo_src && st->hi_src && st->lo_src != st->hi_src)
            snprintf(detail, cap, "field \"%s\" cannot be %s and %s at once %s", name,
                     render_con(a, st->lo_src), render_con(b, st->hi_src), never);
        else
            snprintf(detail, cap, "no %s value of field \"%s\" is %s %s",
                     types[c->field->type].name, name, render_con(a, c), never);
        return true;
    }
    if (st->n_ne && ne_covers_range(st)) {
        snprintf(detail, cap, "no value of field \"%s\" is left by the ==, !=, <, <=, > and >= constraints %s",
                 name, never);
        return true;
    }
    return false;
}

/* Fills warnings for every group of w. Returns -1 when memory runs out. */
static int find_warnings(const walk *w, json_t *warnings)
{
    char detail[ERR_DETAIL_MAX], a[EXCERPT_BUF + 16];
    for (size_t g = 0; g < w->n_groups; g++) {
        const v1_group *grp = &w->groups[g];
        field_state st[N_FIELDS];
        for (size_t f = 0; f < N_FIELDS; f++)
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
            field_state *fs = &st[con->field - fields];
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
                        "id, name, description, constraints");

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

    if (err->n_items != start_items || err->truncated != start_truncated)
        goto fail;

    warnings = json_array();
    if (!warnings)
        goto oom;
    if (have_groups) {
        cjson = canonical_json(&w);
        if (!cjson || find_warnings(&w, warnings) != 0)
            goto oom;
    }
    out->constraints_json = cjson;
    out->warnings = warnings;
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
