/* Attribute lists, as /audiences/segments properties and device attributes hold them. */
#include "validate/attributes.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* 2^63: the first magnitude a 64-bit integer cannot hold. */
#define ATTRIBUTE_NUMBER_MAX 9223372036854775808.0

static bool code_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.' || c == ':';
}

/* Attribute values are equal when they are the same string or the same number, so
 * 1 and 1.0 are duplicates (PostgreSQL's jsonb would compare them equal too). */
static bool same_value(json_t *a, json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal(a, b);
}

/* A key that equal values share (same_value(a, b) implies value_key(a) == value_key(b)):
 * numbers by their double value, strings by an FNV-1a hash of their bytes. The duplicate
 * scan compares JSON values only when the keys match, so a list of 1000 distinct values
 * costs 500k integer compares, not 500k json_equal calls (measured: a 1 MiB body of
 * 125 such lists took 1.1 s of CPU to validate before). */
static uint64_t value_key(json_t *v)
{
    if (json_is_number(v)) {
        double d = json_number_value(v);
        uint64_t bits;
        if (d == 0)
            d = 0; /* -0.0 == 0.0 */
        memcpy(&bits, &d, sizeof bits);
        return bits;
    }
    uint64_t h = 1469598103934665603ull;
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    for (size_t i = 0, n = json_string_length(v); i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

/* Records a problem at item i of the list at p's pointer. */
static void fail_item(val_path *p, size_t i, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void fail_item(val_path *p, size_t i, const char *fmt, ...)
{
    char detail[ERR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    size_t old = val_path_push_index(p, i);
    val_fail(p, "%s", detail);
    val_path_pop(p, old);
}

static bool check_code(val_path *p, const char *code)
{
    size_t clen = strlen(code), chars = val_utf8_chars(code, clen);
    bool ok = chars >= 1 && chars <= AUD_MAX_CODE_CHARS;
    for (size_t i = 0; ok && i < clen; i++)
        ok = code_char_ok(code[i]);
    if (!ok)
        val_fail(p, "attribute code \"%.40s%s\" is not valid: expected 1 to %d letters, digits, "
                 "'_', '-', '.' or ':'", code, clen > 40 ? "…" : "", AUD_MAX_CODE_CHARS);
    return ok;
}

/* One list of values: an array of 1 to AUD_MAX_PROPERTY_VALUES distinct strings or numbers. */
static bool check_list(val_path *p, json_t *list)
{
    uint64_t keys[AUD_MAX_PROPERTY_VALUES];
    bool ok = true;
    size_t i, j;
    json_t *item;
    if (!json_is_array(list)) {
        val_fail(p, "expected a list of attribute values, got %s", val_type_name(list));
        return false;
    }
    if (json_array_size(list) < 1 || json_array_size(list) > AUD_MAX_PROPERTY_VALUES) {
        val_fail(p, "expected 1 to %d attribute values, got %zu", AUD_MAX_PROPERTY_VALUES,
                 json_array_size(list));
        return false;
    }
    json_array_foreach(list, i, item) {
        keys[i] = 0;
        if (!json_is_string(item) && !json_is_number(item)) {
            fail_item(p, i, "an attribute value must be a string or a number, got %s",
                      val_type_name(item));
            ok = false;
            continue;
        }
        size_t chars = json_is_string(item)
                           ? val_utf8_chars(json_string_value(item), json_string_length(item))
                           : 0;
        if (chars > AUD_MAX_VALUE_CHARS) {
            fail_item(p, i, "an attribute value has at most %d characters, got %zu",
                      AUD_MAX_VALUE_CHARS, chars);
            ok = false;
            continue;
        }
        /* PostgreSQL's jsonb writes numbers without an exponent (1e20 comes back as
         * 100000000000000000000), and a client reading that back, jansson included,
         * may refuse an integer beyond 64 bits: such a value could not be sent back */
        if (json_is_real(item) && fabs(json_real_value(item)) >= ATTRIBUTE_NUMBER_MAX) {
            fail_item(p, i, "an attribute number lies between -9.2e18 and 9.2e18 (64-bit "
                      "integers), got %g", json_real_value(item));
            ok = false;
            continue;
        }
        keys[i] = value_key(item);
        for (j = 0; j < i; j++) {
            if (keys[j] == keys[i] && same_value(item, json_array_get(list, j))) {
                fail_item(p, i, "duplicate attribute value: the same as item %zu", j);
                ok = false;
                break;
            }
        }
    }
    return ok;
}

bool val_attribute_lists(val_path *p, json_t *v)
{
    const char *code;
    json_t *list;
    bool ok = true;
    if (!val_object_within(p, v, AUD_MAX_DEPTH))
        return false;
    json_object_foreach(v, code, list) {
        size_t old = val_path_push(p, code);
        bool code_ok = check_code(p, code); /* both run: every problem is reported */
        bool list_ok = check_list(p, list);
        ok = ok && code_ok && list_ok;
        val_path_pop(p, old);
    }
    return ok;
}
