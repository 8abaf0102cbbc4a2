/* The one JSON text writer: every piece of segmentd that writes JSON text without a
 * jansson tree (bulk records and envelopes, list pages, problems, log lines) writes it
 * with these functions, into a buffer that grows or, for a log line, a fixed one. */
#ifndef SEGMENTD_CORE_JSON_TEXT_H
#define SEGMENTD_CORE_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* A text being written. Zeroed ({0}) it is an empty growable text; json_text_fixed
 * makes it write into a caller's buffer. The text is NUL-terminated after every call
 * that wrote to it. */
typedef struct json_text {
    char *p;
    size_t len, cap;
    bool fixed;  /* p is the caller's buffer of cap bytes: cut short, never grown */
    bool failed; /* growable: out of memory, or a JSON_ESC_STRICT string was not UTF-8
                  * (the text is then good only to be released: it grows no more, and
                  * json_text_take gives NULL); fixed: something was cut short */
} json_text;

/* How a string's bytes are escaped. The three exist because each reproduces, byte for
 * byte, what readers of segmentd's answers and logs got before this writer. */
typedef enum json_escape {
    /* As PostgreSQL's escape_json: \" \\ \b \f \n \r \t, the other bytes below 0x20 as
     * \u00xx (lower-case hex), every other byte as it is (the caller's text is UTF-8:
     * jansson checked it when the request was parsed). Bulk records and answers, whose
     * values must read as json_build_object writes them. */
    JSON_ESC_PG,
    /* As jansson's json_dumps: the same but \u00XX in upper-case hex, and text that is
     * not UTF-8 fails the whole text (jansson refuses to encode it). Problems. */
    JSON_ESC_STRICT,
    /* Log lines: every byte below 0x20 as \u00xx (no short escapes), and bytes that are
     * not UTF-8 as \ufffd, so that a line is valid JSON whatever a client sent. */
    JSON_ESC_LOG,
} json_escape;

/* Writes into buf (cap bytes) from offset len: nothing past buf[cap - 1], the text
 * always NUL-terminated, a piece that does not fit left out (a string is cut at a
 * character and still closed), and t->failed set when anything was. */
void json_text_fixed(json_text *t, char *buf, size_t cap, size_t len);

/* Makes room for more bytes (besides the NUL) in a growable text, so that writing them
 * allocates nothing. false when memory ran out (t->failed is set then). */
bool json_text_reserve(json_text *t, size_t more);

/* The part of json_text_put that grows the text or cuts it short. */
void json_text_put_more(json_text *t, const char *s, size_t n);

/* n bytes as they are: JSON text the caller vouches for. Inline: the writers call it
 * for every piece, and most pieces fit (a list page puts each row and each comma). */
static inline void json_text_put(json_text *t, const char *s, size_t n)
{
    if (n < t->cap - t->len) { /* len < cap, or both 0 */
        memcpy(t->p + t->len, s, n);
        t->len += n;
        t->p[t->len] = '\0';
    } else {
        json_text_put_more(t, s, n);
    }
}
#define JSON_TEXT_LIT(t, lit) json_text_put((t), (lit), sizeof(lit) - 1)

/* s as they are, or null when s is NULL: a finished JSON value. */
void json_text_raw(json_text *t, const char *s);

/* A quoted string of n bytes, escaped as esc says. */
void json_text_string(json_text *t, const char *s, size_t n, json_escape esc);

/* The bytes of a string escaped as esc says, without the quotes: for a string written
 * in pieces (a fixed text keeps room for the closing quote). */
void json_text_escaped(json_text *t, const char *s, size_t n, json_escape esc);

/* A quoted NUL-terminated string, or null when s is NULL. */
void json_text_cstr(json_text *t, const char *s, json_escape esc);

/* A whole number in decimal, as printf's %lld writes it (LLONG_MIN included). */
void json_text_int(json_text *t, long long v);

/* ',' unless the text is empty or its last byte opened an object or array or ended a
 * key: what goes before every member or element but the first. */
void json_text_comma(json_text *t);

/* A member's key: the comma when one is due, then "key": (key is written as it is: a
 * name chosen in the code, with nothing to escape). */
void json_text_key(json_text *t, const char *key);

/* Hands a growable text over: the malloc'd NUL-terminated text (the caller frees it)
 * and its length in *len, or NULL (and everything freed) when the text failed or is
 * empty. t is zeroed either way. */
char *json_text_take(json_text *t, size_t *len);

/* Frees a growable text and zeroes it; nothing for a fixed one. */
void json_text_release(json_text *t);

#endif
