/* The JSON text writer: a growable or fixed buffer, strings escaped three ways, numbers. */
#include "core/json_text.h"

#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

/* A fixed text keeps this many bytes after the start of each character of a string: the
 * longest escape (6), the closing quote, the NUL and one byte more, which the log
 * lines' writers rely on (log.c, the access log) for their closing brace. */
#define FIXED_STRING_SLACK 8

void json_text_fixed(json_text *t, char *buf, size_t cap, size_t len)
{
    *t = (json_text){.p = buf, .len = len, .cap = cap, .fixed = true};
    if (len >= cap) {
        t->len = cap ? cap - 1 : 0;
        t->failed = true;
    }
    if (cap)
        buf[t->len] = '\0';
}

/* Room for need bytes in all, the NUL included. */
static bool room(json_text *t, size_t need)
{
    if (need <= t->cap)
        return true;
    if (t->fixed || t->failed)
        return false;
    size_t ncap = t->cap ? 2 * t->cap : 256; /* doubling: appends cost O(1) each */
    if (ncap < need)
        ncap = need; /* json_text_reserve's size, exactly */
    char *np = realloc(t->p, ncap);
    if (!np) {
        t->failed = true;
        return false;
    }
    t->p = np;
    t->cap = ncap;
    return true;
}

bool json_text_reserve(json_text *t, size_t more)
{
    return !t->failed && room(t, t->len + more + 1);
}

void json_text_put_more(json_text *t, const char *s, size_t n)
{
    if ((t->failed && !t->fixed) || !room(t, t->len + n + 1)) {
        t->failed = true;
        return;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

void json_text_raw(json_text *t, const char *s)
{
    if (s)
        json_text_put(t, s, strlen(s));
    else
        JSON_TEXT_LIT(t, "null");
}

/* Copies the run [s, s + n) of bytes that need no escape. A fixed text takes only the
 * characters that start with FIXED_STRING_SLACK bytes left, each whole, and returns
 * false when it had to leave some out. */
static bool put_run(json_text *t, const char *s, size_t n)
{
    size_t m = n;
    if (t->fixed) {
        size_t starts = t->len + FIXED_STRING_SLACK < t->cap ? t->cap - FIXED_STRING_SLACK - t->len : 0;
        if (starts < n) {
            m = starts; /* then the rest of the last character: at most 3 bytes */
            for (int k = 0; k < 3 && m > 0 && m < n && ((unsigned char)s[m] & 0xC0) == 0x80; k++)
                m++;
        }
    }
    json_text_put(t, s, m);
    return m == n;
}

/* Writes an escape of n bytes; false when a fixed text has no room for it. */
static bool put_escape(json_text *t, const char *e, size_t n)
{
    if (t->fixed && t->len + FIXED_STRING_SLACK >= t->cap)
        return false;
    json_text_put(t, e, n);
    return true;
}

/* Length of the UTF-8 character at s, n bytes left (0 when it is not one). */
static size_t utf8_len_at(const char *s, size_t n)
{
    unsigned char tail[5] = {0};
    if (n >= 4)
        return utf8_seq_len((const unsigned char *)s);
    memcpy(tail, s, n); /* utf8_seq_len stops at a NUL, so a short tail reads no further */
    return utf8_seq_len(tail);
}

void json_text_escaped(json_text *t, const char *s, size_t n, json_escape esc)
{
    static const char lower[] = "0123456789abcdef", upper[] = "0123456789ABCDEF";
    static const char named[32] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    const char *hex = esc == JSON_ESC_STRICT ? upper : lower;
    const char *run = s, *end = s + n;
    bool check_utf8 = esc != JSON_ESC_PG;

    while (s < end) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || !check_utf8)) {
            s++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_len_at(s, (size_t)(end - s));
            if (k) {
                s += k;
                continue;
            }
            if (esc == JSON_ESC_STRICT) {
                t->failed = true; /* as jansson, which refuses to encode it */
                return;
            }
        }
        if (!put_run(t, run, (size_t)(s - run)))
            goto cut;
        bool fits;
        if (c >= 0x80)
            fits = put_escape(t, "\\ufffd", 6);
        else if (c == '"' || c == '\\')
            fits = put_escape(t, (char[]){'\\', (char)c}, 2);
        else if (named[c] && esc != JSON_ESC_LOG)
            fits = put_escape(t, (char[]){'\\', named[c]}, 2);
        else
            fits = put_escape(t, (char[]){'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]}, 6);
        if (!fits)
            goto cut;
        run = ++s;
    }
    if (put_run(t, run, (size_t)(s - run)))
        return;
cut:
    t->failed = true;
}

void json_text_string(json_text *t, const char *s, size_t n, json_escape esc)
{
    if (t->fixed && t->len + 2 >= t->cap) {
        t->failed = true;
        return;
    }
    json_text_put(t, "\"", 1);
    json_text_escaped(t, s, n, esc);
    json_text_put(t, "\"", 1); /* a fixed text kept room for it */
}

void json_text_cstr(json_text *t, const char *s, json_escape esc)
{
    if (s)
        json_text_string(t, s, strlen(s), esc);
    else
        JSON_TEXT_LIT(t, "null");
}

void json_text_int(json_text *t, long long v)
{
    char digits[24];
    size_t n = sizeof digits;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do
        digits[--n] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        digits[--n] = '-';
    json_text_put(t, digits + n, sizeof digits - n);
}

void json_text_comma(json_text *t)
{
    char last = t->len ? t->p[t->len - 1] : '{';
    if (last != '{' && last != '[' && last != ':')
        json_text_put(t, ",", 1);
}

void json_text_key(json_text *t, const char *key)
{
    json_text_comma(t);
    json_text_put(t, "\"", 1);
    json_text_put(t, key, strlen(key));
    json_text_put(t, "\":", 2);
}

char *json_text_take(json_text *t, size_t *len)
{
    char *p = t->p;
    *len = t->len;
    if (t->fixed) {
        *t = (json_text){0};
        *len = 0;
        return NULL;
    }
    if (t->failed || !t->len) {
        free(p);
        p = NULL;
        *len = 0;
    }
    *t = (json_text){0};
    return p;
}

void json_text_release(json_text *t)
{
    if (!t->fixed)
        free(t->p);
    *t = (json_text){0};
}
