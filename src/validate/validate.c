/* JSON Pointer tracking, body parsing, the format checks and the quoting of client text shared by every dialect. */
#include "validate/validate.h"

#include "core/utf8.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void val_path_init(val_path *p, seg_error *err)
{
    p->err = err;
    p->len = 0;
    p->ptr[0] = '\0';
}

static void path_append(val_path *p, const char *s)
{
    size_t room = sizeof p->ptr - 1;
    for (; *s && p->len < room; s++) {
        /* never cut a UTF-8 sequence: the pointer must stay valid UTF-8 */
        if (((unsigned char)*s & 0xC0) == 0xC0) {
            size_t n = ((unsigned char)*s & 0xE0) == 0xC0 ? 2 : ((unsigned char)*s & 0xF0) == 0xE0 ? 3 : 4;
            if (p->len + n > room)
                break;
        }
        if (*s == '~' || *s == '/') {
            if (p->len + 2 > room)
                break;
            p->ptr[p->len++] = '~';
            p->ptr[p->len++] = *s == '~' ? '0' : '1';
        } else {
            p->ptr[p->len++] = *s;
        }
    }
    p->ptr[p->len] = '\0';
}

size_t val_path_push(val_path *p, const char *key)
{
    size_t old = p->len;
    if (p->len < sizeof p->ptr - 1) {
        p->ptr[p->len++] = '/';
        p->ptr[p->len] = '\0';
    }
    path_append(p, key);
    return old;
}

size_t val_path_push_index(val_path *p, size_t index)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%zu", index);
    return val_path_push(p, buf);
}

void val_path_pop(val_path *p, size_t old_len)
{
    p->len = old_len;
    p->ptr[old_len] = '\0';
}

static void vfail(val_path *p, const char *fmt, va_list ap)
{
    char detail[ERR_DETAIL_MAX];
    vsnprintf(detail, sizeof detail, fmt, ap);
    err_add(p->err, p->ptr, "%s", detail);
}

void val_fail(val_path *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(p, fmt, ap);
    va_end(ap);
}

void val_fail_at(val_path *p, const char *key, const char *fmt, ...)
{
    va_list ap;
    size_t old = val_path_push(p, key);
    va_start(ap, fmt);
    vfail(p, fmt, ap);
    va_end(ap);
    val_path_pop(p, old);
}

void val_fail_one_of(val_path *p, const char *const *names, size_t n, const char *fmt, ...)
{
    char msg[ERR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    int lead = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = lead > 0 ? (size_t)lead : 0;
    if (len < sizeof msg)
        len += (size_t)snprintf(msg + len, sizeof msg - len, "expected one of ");
    for (size_t i = 0; i < n && len < sizeof msg; i++) {
        const char *sep = i ? ", " : "";
        size_t need = strlen(sep) + strlen(names[i]);
        size_t reserve = i + 1 < n ? sizeof " and 20 more" : 0; /* two digits: n < 100 */
        if (len + need + reserve >= sizeof msg) {
            snprintf(msg + len, sizeof msg - len, " and %zu more", n - i);
            break;
        }
        len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", sep, names[i]);
    }
    val_fail(p, "%s", msg);
}

json_t *val_parse_body(const char *body, size_t len, seg_error *err)
{
    json_error_t je;
    json_t *root;
    if (len == 0) {
        err_set(err, 400, "malformed_json", "the request body is empty: expected a JSON object");
        return NULL;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        err_set(err, 400, "malformed_json", "invalid JSON at line %d column %d: %s",
                je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        err_set(err, 400, "malformed_json", "the request body must be a JSON object, got %s",
                val_type_name(root));
        json_decref(root);
        return NULL;
    }
    return root;
}

const char *val_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

size_t val_utf8_chars(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

bool val_utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        size_t n = utf8_seq_len(u);
        if (!n)
            return false;
        u += n;
    }
    return true;
}

bool val_is_blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* isxdigit in the C locale, without a call for the locale's table per character */
static bool is_hex(char c)
{
    unsigned char l = (unsigned char)c | 0x20;
    return (c >= '0' && c <= '9') || (l >= 'a' && l <= 'f');
}

bool val_uuid(const char *s, size_t len, const char **why)
{
    static const char *const too_short = "expected 36 characters in the form 8-4-4-4-12 hex digits";
    const char *w = NULL;
    if (len != 36) {
        w = too_short;
    } else {
        for (size_t i = 0; i < 36; i++) {
            bool dash = i == 8 || i == 13 || i == 18 || i == 23;
            if (dash && s[i] != '-') {
                w = "expected '-' at positions 9, 14, 19 and 24";
                break;
            }
            if (!dash && !is_hex(s[i])) {
                w = "contains a character that is not a hexadecimal digit";
                break;
            }
        }
    }
    if (why)
        *why = w;
    return w == NULL;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

bool val_rfc3339(const char *s, int64_t *us)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t n = strlen(s);
    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return false;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
        se > 60)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        return false;
    const char *p = s + 19;
    int64_t frac_us = 0;
    if (*p == '.') {
        int nd = 0, scale = 100000;
        p++;
        while (isdigit((unsigned char)*p)) {
            if (nd < 6) {
                frac_us += (*p - '0') * scale;
                scale /= 10;
            }
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9)
            return false;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        /* p[3] only when p[1] and p[2] were digits: "+" or "+0" may end the string */
        int oh = digits(p + 1, 2), om = oh >= 0 && p[3] == ':' ? digits(p + 4, 2) : -1;
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return false;
        offset_s = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    {
        struct tm tm = {0};
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = se > 59 ? 59 : se;
        int64_t secs = (int64_t)timegm(&tm) - offset_s;
        /* the instant itself must lie in years 0001 to 9999 UTC (RFC 3339 §5.6) */
        if (secs < -62135596800LL || secs > 253402300799LL)
            return false;
        if (us)
            *us = secs * 1000000 + frac_us;
    }
    return true;
}

int val_depth(const json_t *v)
{
    int best = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c) {
            int d = val_depth(c);
            if (d > best)
                best = d;
        }
        return best + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) {
            int d = val_depth(c);
            if (d > best)
                best = d;
        }
        return best + 1;
    }
    return 0;
}

bool val_object_within(val_path *p, json_t *v, int max_depth)
{
    if (!json_is_object(v)) {
        val_fail(p, "expected an object, got %s", val_type_name(v));
        return false;
    }
    if (val_depth(v) > max_depth) {
        val_fail(p, "nested deeper than %d levels", max_depth);
        return false;
    }
    return true;
}

const char *val_excerpt(char buf[VAL_EXCERPT_BUF], const char *s)
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
        if (o + out_len > VAL_EXCERPT_MAX) {
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
