/* The device fields table (names, types, formats) and the format checks of their values. */
#include "validate/formats.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "validate/codes.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

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
    for (size_t i = 0; i < ARRAY_LEN(device_types); i++)
        if (strcmp(s, device_types[i]) == 0)
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

/* ---- the table ------------------------------------------------------------------------------- */

/* The device fields, in the documentation's order (which is also the order listed in
 * the "not a device field" message). */
static const val_field fields[] = {
    {"country", VAL_FIELD_STRING, false, fmt_country, "an ISO 3166-1 alpha-2 country code"},
    {"language", VAL_FIELD_STRING, false, fmt_language, "an ISO 639-2 alpha-3 language code"},
    {"timezone", VAL_FIELD_STRING, false, fmt_timezone, "an IANA time zone name"},
    {"appVersion", VAL_FIELD_STRING, false, fmt_version, "a version"},
    {"appVersionCode", VAL_FIELD_INT, false, NULL, NULL},
    {"osApi", VAL_FIELD_STRING, false, fmt_digits, "an OS API level"},
    {"osVersion", VAL_FIELD_STRING, false, fmt_version, "a version"},
    {"customUserId", VAL_FIELD_STRING, false, NULL, NULL},
    {"email", VAL_FIELD_STRING, false, fmt_email, "a plausible email address"},
    {"type", VAL_FIELD_STRING, false, fmt_device_type, "a device type"},
    {"firstSession", VAL_FIELD_LONG, true, NULL, NULL},
    {"lastSession", VAL_FIELD_LONG, true, NULL, NULL},
    {"sessionCount", VAL_FIELD_INT, false, NULL, NULL},
    {"createdAt", VAL_FIELD_LONG, true, NULL, NULL},
    {"id", VAL_FIELD_STRING, false, NULL, NULL},
    {"pushToken", VAL_FIELD_STRING, false, NULL, NULL},
    {"unRegisteredAt", VAL_FIELD_LONG, true, NULL, NULL},
    {"deviceModel", VAL_FIELD_STRING, false, NULL, NULL},
    {"deviceManufacturer", VAL_FIELD_STRING, false, NULL, NULL},
    {"tags", VAL_FIELD_STRING_ARRAY, false, NULL, NULL},
};

_Static_assert(ARRAY_LEN(fields) == VAL_FIELD_COUNT, "VAL_FIELD_COUNT counts the table");

static const char *const type_names[] = {
    [VAL_FIELD_STRING] = "String",
    [VAL_FIELD_INT] = "Int",
    [VAL_FIELD_LONG] = "Long",
    [VAL_FIELD_STRING_ARRAY] = "String Array",
};

const val_field *val_field_find(const char *name)
{
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++)
        if (strcmp(name, fields[i].name) == 0)
            return &fields[i];
    return NULL;
}

const val_field *val_field_find_casefold(const char *name)
{
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++)
        if (strcasecmp(name, fields[i].name) == 0)
            return &fields[i];
    return NULL;
}

const val_field *val_field_at(size_t i)
{
    return i < VAL_FIELD_COUNT ? &fields[i] : NULL;
}

size_t val_field_index(const val_field *f)
{
    return (size_t)(f - fields);
}

const char *val_field_type_name(val_field_type t)
{
    return type_names[t];
}

bool val_field_type_range(val_field_type t, int64_t *min, int64_t *max)
{
    int64_t lo, hi;
    if (t == VAL_FIELD_INT) {
        lo = INT32_MIN;
        hi = INT32_MAX;
    } else if (t == VAL_FIELD_LONG) {
        lo = INT64_MIN;
        hi = INT64_MAX;
    } else {
        return false;
    }
    if (min)
        *min = lo;
    if (max)
        *max = hi;
    return true;
}

bool val_field_format_ok(const val_field *f, const char *s, char *why, size_t cap)
{
    return !f->format || f->format(s, why, cap);
}
