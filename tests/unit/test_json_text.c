/* The JSON text writer: the three escapes against what wrote the same text before
 * (PostgreSQL's escape_json, jansson's json_dumps, the log's old writer), numbers,
 * growth, and the fixed buffer's cuts. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/json_text.h"
#include "core/utf8.h"

/* ---- references: the writers this one replaced, as they were ---------------------- */

/* PostgreSQL's escape_json (src/backend/utils/adt/json.c). */
static void pg_escape_json(char *out, const char *s, size_t n)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '\b': o += (size_t)sprintf(out + o, "\\b"); break;
        case '\f': o += (size_t)sprintf(out + o, "\\f"); break;
        case '\n': o += (size_t)sprintf(out + o, "\\n"); break;
        case '\r': o += (size_t)sprintf(out + o, "\\r"); break;
        case '\t': o += (size_t)sprintf(out + o, "\\t"); break;
        case '"': o += (size_t)sprintf(out + o, "\\\""); break;
        case '\\': o += (size_t)sprintf(out + o, "\\\\"); break;
        default:
            if (c < ' ')
                o += (size_t)sprintf(out + o, "\\u%04x", c);
            else
                out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* core/log.c's log_json_str before this writer. */
static size_t old_log_json_str(char *buf, size_t len, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (len + 2 >= cap)
        return len;
    buf[len++] = '"';
    for (; s && *s && len + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20) {
            buf[len++] = '\\';
            buf[len++] = 'u';
            buf[len++] = '0';
            buf[len++] = '0';
            buf[len++] = hex[c >> 4];
            buf[len++] = hex[c & 15];
        } else if (c < 0x80) {
            buf[len++] = (char)c;
        } else {
            size_t n = utf8_seq_len((const unsigned char *)s);
            if (n == 0) {
                memcpy(buf + len, "\\ufffd", 6);
                len += 6;
            } else {
                memcpy(buf + len, s, n);
                len += n;
                s += n - 1;
            }
        }
    }
    buf[len++] = '"';
    buf[len] = '\0';
    return len;
}

static unsigned long long rng = 88172645463325252ull;
static unsigned next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 11);
}

/* Bytes that favour what escaping cares about: controls, quotes, backslashes, UTF-8
 * lead and continuation bytes, and text. */
static size_t random_bytes(char *out, size_t max)
{
    static const char pick[] = {'\0', '\x01', '\b', '\t', '\n', '\x0b', '\f', '\r', '\x1f', ' ', '"', '\\', '/',
                                'a', 'Z', '\x7f', '\x80', '\xbf', '\xc2', '\xc3', '\xa9', '\xe2', '\x82',
                                '\xac', '\xed', '\xa0', '\xf0', '\x9f', '\x98', '\x80', '\xf4', '\x90', '\xff'};
    size_t n = next_rand() % max;
    for (size_t i = 0; i < n; i++)
        out[i] = next_rand() % 3 ? pick[next_rand() % sizeof pick] : (char)(next_rand() & 0xff);
    return n;
}

/* Valid UTF-8 made of the same kinds of pieces (at most max - 1 bytes). */
static size_t random_text(char *out, size_t max)
{
    static const char *const pick[] = {"", "\x01", "\b", "\t", "\n", "\x0b", "\x1f", " ", "\"", "\\", "/",
                                       "a", "\x7f", "\xc2\x80", "\xc3\xa9", "\xe2\x82\xac", "\xef\xbf\xbf",
                                       "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
    size_t n = 0, want = next_rand() % max;
    while (n < want) {
        const char *p = pick[next_rand() % (sizeof pick / sizeof pick[0])];
        size_t k = *p ? strlen(p) : 1; /* "" stands for a NUL byte */
        if (n + k >= max)
            break;
        memcpy(out + n, p, k);
        n += k;
    }
    return n;
}

static char *written(json_text *t, json_escape esc, const char *s, size_t n)
{
    *t = (json_text){0};
    json_text_string(t, s, n, esc);
    return t->p;
}

/* ---- escapes ---------------------------------------------------------------------- */

static void test_pg_escape(void **state)
{
    json_text t;
    char want[64 * 6 + 3], s[64];
    assert_string_equal(written(&t, JSON_ESC_PG, "a\"b\\c\b\f\n\r\t\x01\x1f\x7f\xc3\xa9\xff", 16),
                        "\"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xc3\xa9\xff\"");
    json_text_release(&t);
    assert_string_equal(written(&t, JSON_ESC_PG, "x\0y", 3), "\"x\\u0000y\"");
    json_text_release(&t);
    assert_string_equal(written(&t, JSON_ESC_PG, "", 0), "\"\"");
    json_text_release(&t);
    for (int k = 0; k < 20000; k++) {
        size_t n = random_bytes(s, sizeof s);
        pg_escape_json(want, s, n);
        assert_string_equal(written(&t, JSON_ESC_PG, s, n), want);
        assert_int_equal(t.len, strlen(want));
        assert_false(t.failed);
        json_text_release(&t);
    }
}

static void test_strict_escape_as_jansson(void **state)
{
    json_text t;
    char s[64];
    int valid = 0;
    for (int c = 0; c < 0x80; c++) { /* every ASCII byte, jansson's way */
        char one = (char)c;
        json_t *j = json_stringn(&one, 1);
        char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
        assert_string_equal(written(&t, JSON_ESC_STRICT, &one, 1), want);
        free(want);
        json_decref(j);
        json_text_release(&t);
    }
    for (int k = 0; k < 20000; k++) {
        size_t n = k % 2 ? random_bytes(s, sizeof s) : random_text(s, sizeof s);
        json_t *j = json_stringn(s, n); /* NULL: not UTF-8 */
        written(&t, JSON_ESC_STRICT, s, n);
        if (!j) {
            assert_true(t.failed);
            assert_null(json_text_take(&t, &n));
            continue;
        }
        valid++;
        char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
        assert_false(t.failed);
        assert_string_equal(t.p, want);
        free(want);
        json_decref(j);
        json_text_release(&t);
    }
    assert_true(valid > 10000); /* the comparison did run on valid text */
}

static void test_strict_rejects_bad_utf8(void **state)
{
    static const char *const bad[] = {"\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "\xc3", "ok\xe2\x82", "\x80"};
    json_text t;
    size_t len;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        written(&t, JSON_ESC_STRICT, bad[i], strlen(bad[i]));
        assert_true(t.failed);
        json_text_put(&t, "more", 4); /* a failed text stays failed */
        assert_null(json_text_take(&t, &len));
        assert_int_equal(len, 0);
    }
    /* the character just fits at the end: read within n, not past it */
    char *four = malloc(4);
    memcpy(four, "\xf0\x9f\x98\x80", 4);
    assert_string_equal(written(&t, JSON_ESC_STRICT, four, 4), "\"\xf0\x9f\x98\x80\"");
    json_text_release(&t);
    written(&t, JSON_ESC_STRICT, four, 3);
    assert_true(t.failed);
    json_text_release(&t);
    free(four);
}

static void test_log_escape_as_before(void **state)
{
    char s[64];
    for (int k = 0; k < 50000; k++) {
        size_t n = random_bytes(s, sizeof s);
        s[n] = '\0'; /* the log writes C strings */
        size_t cap = 4 + next_rand() % 120, start = next_rand() % cap;
        char want[200], got[200];
        memset(want, 'x', sizeof want);
        memset(got, 'x', sizeof got);
        size_t wl = old_log_json_str(want, start, cap, s);
        json_text t;
        json_text_fixed(&t, got, cap, start);
        json_text_cstr(&t, s, JSON_ESC_LOG);
        assert_int_equal(t.len, wl);
        assert_memory_equal(got + start, want + start, wl - start);
        assert_true(t.len < cap);
        assert_int_equal(got[cap], 'x'); /* nothing past the buffer */
        if (wl - start >= 2)
            assert_int_equal(got[t.len - 1], '"');
    }
}

static void test_log_escape_whole_lines(void **state)
{
    json_text t;
    char buf[64];
    json_text_fixed(&t, buf, sizeof buf, 0);
    json_text_cstr(&t, "tab\there \xff \xc3\xa9 \x1b[0m", JSON_ESC_LOG);
    assert_string_equal(buf, "\"tab\\u0009here \\ufffd \xc3\xa9 \\u001b[0m\"");
    assert_false(t.failed);
    /* every line stays valid UTF-8 and JSON, whatever the bytes */
    char s[64];
    for (int k = 0; k < 20000; k++) {
        size_t n = random_bytes(s, sizeof s);
        char line[512];
        json_text_fixed(&t, line, sizeof line, 0);
        json_text_string(&t, s, n, JSON_ESC_LOG);
        json_error_t je;
        json_t *j = json_loadb(line, t.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        assert_non_null(j);
        json_decref(j);
    }
}

/* ---- numbers, members, growth ------------------------------------------------------ */

static void test_int_as_printf(void **state)
{
    static const long long edges[] = {0, 1, -1, 9, 10, -10, 99, 100, 4294967296LL, LLONG_MAX, LLONG_MIN,
                                      LLONG_MIN + 1};
    char want[32];
    for (size_t i = 0; i < sizeof edges / sizeof edges[0] + 2000; i++) {
        long long v = i < sizeof edges / sizeof edges[0]
                          ? edges[i]
                          : (long long)(((unsigned long long)next_rand() << 32) ^ next_rand() ^ (unsigned long long)i << 50);
        json_text t = {0};
        json_text_int(&t, v);
        snprintf(want, sizeof want, "%lld", v);
        assert_string_equal(t.p, want);
        json_text_release(&t);
    }
}

static void test_members(void **state)
{
    json_text t = {0};
    size_t len;
    JSON_TEXT_LIT(&t, "{");
    json_text_key(&t, "a");
    json_text_cstr(&t, NULL, JSON_ESC_PG);
    json_text_key(&t, "b");
    JSON_TEXT_LIT(&t, "[");
    json_text_comma(&t);
    json_text_int(&t, 1);
    json_text_comma(&t);
    json_text_raw(&t, "{}");
    json_text_comma(&t);
    json_text_raw(&t, NULL);
    JSON_TEXT_LIT(&t, "]");
    json_text_key(&t, "c");
    json_text_comma(&t); /* after a key: no comma */
    json_text_cstr(&t, "x", JSON_ESC_STRICT);
    JSON_TEXT_LIT(&t, "}");
    char *s = json_text_take(&t, &len);
    assert_string_equal(s, "{\"a\":null,\"b\":[1,{},null],\"c\":\"x\"}");
    assert_int_equal(len, strlen(s));
    assert_null(t.p);
    free(s);
    /* an empty text hands nothing over */
    assert_null(json_text_take(&t, &len));
    assert_int_equal(len, 0);
}

static void test_growth(void **state)
{
    json_text t = {0};
    char chunk[100];
    size_t len;
    memset(chunk, 'a', sizeof chunk);
    JSON_TEXT_LIT(&t, "[");
    for (int i = 0; i < 10000; i++) {
        json_text_comma(&t);
        json_text_string(&t, chunk, sizeof chunk, JSON_ESC_PG);
        assert_int_equal(t.p[t.len], '\0');
        assert_true(t.len < t.cap);
    }
    JSON_TEXT_LIT(&t, "]");
    assert_int_equal(t.len, 2 + 10000 * 102 + 9999);
    /* reserved room is used without moving the text */
    assert_true(json_text_reserve(&t, 5000));
    char *before = t.p;
    for (int i = 0; i < 50; i++)
        json_text_put(&t, chunk, sizeof chunk);
    assert_ptr_equal(t.p, before);
    char *s = json_text_take(&t, &len);
    assert_int_equal(len, strlen(s));
    free(s);
}

/* ---- the fixed buffer --------------------------------------------------------------- */

static void test_fixed_cuts(void **state)
{
    char buf[32];
    json_text t;
    memset(buf, 'x', sizeof buf);
    json_text_fixed(&t, buf, 16, 0);
    json_text_put(&t, "0123456789", 10);
    assert_false(t.failed);
    json_text_put(&t, "abcdef", 6); /* 16 with the NUL: does not fit, left out whole */
    assert_true(t.failed);
    assert_string_equal(buf, "0123456789");
    json_text_put(&t, "abcde", 5); /* still writes what fits */
    assert_string_equal(buf, "0123456789abcde");
    assert_int_equal(buf[16], 'x');
    /* a string with no room for its quotes is left out */
    json_text_fixed(&t, buf, 16, 14);
    json_text_cstr(&t, "a", JSON_ESC_LOG);
    assert_int_equal(t.len, 14);
    assert_true(t.failed);
    /* a string is cut at a character, never inside one, and closed */
    json_text_fixed(&t, buf, 16, 0);
    json_text_cstr(&t, "abcdef\xe2\x82\xac\xe2\x82\xac", JSON_ESC_LOG);
    assert_string_equal(buf, "\"abcdef\xe2\x82\xac\"");
    assert_true(t.failed);
    json_text_fixed(&t, buf, 16, 0);
    json_text_cstr(&t, "\n\n\n", JSON_ESC_LOG);
    assert_string_equal(buf, "\"\\u000a\\u000a\""); /* the third would leave < 8 bytes */
    /* a length past the buffer is brought back inside it */
    json_text_fixed(&t, buf, 16, 40);
    assert_int_equal(t.len, 15);
    assert_true(t.failed);
    json_text_cstr(&t, "a", JSON_ESC_LOG);
    assert_int_equal(t.len, 15);
    size_t len;
    assert_null(json_text_take(&t, &len)); /* a fixed text is the caller's */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_escape),
        cmocka_unit_test(test_strict_escape_as_jansson),
        cmocka_unit_test(test_strict_rejects_bad_utf8),
        cmocka_unit_test(test_log_escape_as_before),
        cmocka_unit_test(test_log_escape_whole_lines),
        cmocka_unit_test(test_int_as_printf),
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_fixed_cuts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
