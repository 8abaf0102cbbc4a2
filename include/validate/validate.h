/* Shared validation machinery: JSON body parsing, JSON Pointer tracking while walking
 * a document, the small format checks every dialect uses, and client text quoted in
 * messages. */
#ifndef SEGMENTD_VALIDATE_H
#define SEGMENTD_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* The position of the walker in the document, as a JSON Pointer (RFC 6901). */
typedef struct val_path {
    seg_error *err;
    size_t len;
    char ptr[ERR_POINTER_MAX];
} val_path;

void val_path_init(val_path *p, seg_error *err);
/* Push an object key (escaped per RFC 6901) or an array index; both return the old
 * length to hand back to val_path_pop. */
size_t val_path_push(val_path *p, const char *key);
size_t val_path_push_index(val_path *p, size_t index);
void val_path_pop(val_path *p, size_t old_len);
/* Record a problem at the current pointer (or at current pointer + "/key"). */
void val_fail(val_path *p, const char *fmt, ...) PRINTF_LIKE(2, 3);
void val_fail_at(val_path *p, const char *key, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Record a problem at the current pointer: the formatted lead, then "expected one of " and
 * as many of the n names (n < 100) as fit ERR_DETAIL_MAX, the rest counted ("and 3 more"). */
void val_fail_one_of(val_path *p, const char *const *names, size_t n, const char *fmt, ...)
    PRINTF_LIKE(4, 5);

/* Parses a request body (not NUL-terminated) into a JSON object. Duplicate keys,
 * NUL escapes, trailing data and non-objects are refused. On failure fills err with
 * 400 "malformed_json" naming line and column, and returns NULL. New reference. */
json_t *val_parse_body(const char *body, size_t len, seg_error *err) MUSTCHECK;

/* Name of a JSON value's type as an API user would say it ("string", "integer" …). */
const char *val_type_name(const json_t *v);

/* Number of Unicode code points in a valid UTF-8 string (jansson guarantees validity). */
size_t val_utf8_chars(const char *s, size_t bytes);

/* true when s is valid UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF). For text that has not been through jansson, such as query parameters. */
bool val_utf8_valid(const char *s);

/* true when every character is white space (or the string is empty). */
bool val_is_blank(const char *s);

/* Strict uuid check (36 chars, 8-4-4-4-12 hex). When it fails and why is not NULL,
 * *why points to a static sentence saying what is wrong. Accepts upper case. */
bool val_uuid(const char *s, size_t len, const char **why);

/* RFC 3339 date-time ("2023-11-07T05:31:56Z", fractions and offsets allowed).
 * On success stores microseconds since the Unix epoch in *us (may be NULL). */
bool val_rfc3339(const char *s, int64_t *us);

/* Largest depth of nested arrays/objects in v (a scalar has depth 0). */
int val_depth(const json_t *v);

/* true when v is an object nested at most max_depth levels (val_depth); otherwise records
 * why at p's pointer and returns false. For the free-form objects a body may carry. */
bool val_object_within(val_path *p, json_t *v, int max_depth) MUSTCHECK;

/* Client text quoted in a message is cut to VAL_EXCERPT_MAX bytes (at a character
 * boundary), so that two quotes plus the sentence always fit ERR_DETAIL_MAX and stay valid
 * UTF-8; VAL_EXCERPT_BUF holds the cut text, its escapes and "...". */
#define VAL_EXCERPT_MAX 40
#define VAL_EXCERPT_BUF (VAL_EXCERPT_MAX + 4)

/* Copies s into buf for quoting: at most VAL_EXCERPT_MAX bytes, '"' and '\\' escaped,
 * control characters shown as '?', "..." appended when cut. Returns buf. */
const char *val_excerpt(char buf[VAL_EXCERPT_BUF], const char *s);

#endif
