/* List items written as JSON text from the columns of STMT_AUD_LIST and STMT_V1_LIST. */
#include "store/list_json.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <libpq-fe.h>

/* The list statements return columns, not json_build_object text: callgrind, PostgreSQL's
 * backend, a page of 21 rows: 1.69M instructions with json_build_object and to_char per
 * row (type output lookups in the catalog cache for every value, escape_json), 0.63M for
 * the columns. Their order is the representation's, as in the field tables below
 * (AUD_COLUMNS, V1_COLUMNS in store/statements.c), then /v1's seq. */

/* store_rows are libpq results (store/slots.h). The columns are read here with libpq's
 * own accessors, a length and a value per column, NULL told apart only when empty: the
 * store_ wrappers cost 4 calls a column (callgrind: ~20k instructions a page of 21 rows). */
static const PGresult *res_of(const store_rows *r)
{
    return (const PGresult *)(uintptr_t)r;
}

/* A column of the row being written: its text and length, or NULL for SQL NULL. */
typedef struct col {
    const char *p;
    size_t n;
} col;

static col col_at(const PGresult *res, int row, int c)
{
    size_t n = (size_t)PQgetlength(res, row, c);
    if (!n && PQgetisnull(res, row, c))
        return (col){NULL, 0};
    return (col){PQgetvalue(res, row, c), n};
}

/* Where the next byte goes (the caller sized the buffer with store_list_item_max), and
 * the last timestamp written: a row's created_at and updated_at are often the same. */
typedef struct sink {
    char *p;
    char last_hex[16];
    char last_text[48];
    size_t last_len;
} sink;

static void put(sink *s, const char *p, size_t n)
{
    memcpy(s->p, p, n);
    s->p += n;
}

#define PUT_LIT(s, lit) put(s, lit, sizeof lit - 1)

/* How many of the n bytes at p go into a JSON string as they are (not a control
 * character, '"' or '\'): eight at a time while none of the eight needs escaping. The
 * test is the "has a byte less than" word trick: some byte of x below 0x20, or a zero
 * byte of x ^ '"' or of x ^ '\', leaves a high bit set in its check, and nothing else
 * does (a byte above 0x7f is masked out by the complement). */
static size_t plain_run(const unsigned char *p, size_t n)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = ones * 0x80;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, q, b;
        memcpy(&x, p + i, 8);
        q = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        if ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs)
            break;
    }
    while (i < n && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

static const char hex[] = "0123456789abcdef";

/* The control characters escape_json writes as \b, \f, \n, \r, \t; the others as \u00XX. */
static const char named[32] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};

/* The length of put_str's text for n bytes at p. */
static size_t str_len(const unsigned char *p, size_t n)
{
    size_t len = n + 2;
    for (;;) {
        size_t run = plain_run(p, n);
        if (run == n)
            return len;
        unsigned char c = p[run];
        len += c == '"' || c == '\\' || named[c] ? 1 : 5;
        p += run + 1;
        n -= run + 1;
    }
}

/* A text column as a JSON string escaped as PostgreSQL's escape_json escapes it, or null. */
static void put_str(sink *s, col v)
{
    if (!v.p) {
        PUT_LIT(s, "null");
        return;
    }
    const unsigned char *p = (const unsigned char *)v.p;
    size_t n = v.n;
    char *o = s->p;
    *o++ = '"';
    for (;;) {
        size_t run = plain_run(p, n);
        memcpy(o, p, run);
        o += run;
        if (run == n)
            break;
        unsigned char c = p[run];
        p += run + 1;
        n -= run + 1;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (named[c]) {
            *o++ = '\\';
            *o++ = named[c];
        } else {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        }
    }
    *o++ = '"';
    s->p = o;
}

/* A column whose text is already JSON (a number, a uuid to quote, jsonb's output), or null. */
static void put_raw(sink *s, col v, bool quoted)
{
    if (!v.p) {
        PUT_LIT(s, "null");
        return;
    }
    if (quoted)
        PUT_LIT(s, "\"");
    put(s, v.p, v.n);
    if (quoted)
        PUT_LIT(s, "\"");
}

/* A timestamptz sent as encode(timestamptz_send(t), 'hex'): microseconds since
 * 2000-01-01 UTC, 16 hex digits (kept from that epoch: PostgreSQL's last microsecond,
 * in 294276, is within 1e15 of INT64_MAX). false for infinity (or text of another shape). */
static bool ts_us(col v, int64_t *us)
{
    /* a hex digit's value + 1; 0 for any other byte */
    static const unsigned char hexval[256] = {
        ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
        ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16};
    const unsigned char *p = (const unsigned char *)v.p;
    uint64_t x = 0;
    if (!p || v.n != 16)
        return false;
    for (int i = 0; i < 16; i++) {
        unsigned d = hexval[p[i]];
        if (!d)
            return false;
        x = x << 4 | (d - 1);
    }
    if (x == (uint64_t)INT64_MAX || x == (uint64_t)INT64_MIN) /* 'infinity', '-infinity' */
        return false;
    *us = (int64_t)x;
    return true;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return q - (a % b < 0);
}

static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                            "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                            "8081828384858687888990919293949596979899";

/* v (0 to 99) as two digits. */
static char *two(char *o, int64_t v)
{
    memcpy(o, pairs + 2 * v, 2);
    return o + 2;
}

/* Unsigned decimal, at least width digits. Returns the end. */
static char *digits(char *o, int64_t v, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width)
        tmp[n++] = '0';
    while (n)
        *o++ = tmp[--n];
    return o;
}

/* The longest: "-294276-12-31T23:59:59.999999Z" with its quotes, or a bigint. */
#define TS_MAX 40

/* As TS_JSON's to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') writes it,
 * quoted; null where to_char gives NULL (infinity). Proleptic Gregorian, as PostgreSQL;
 * YYYY of a year BC is 1 - the astronomical year (1 BC is 0001). */
static void put_ts(sink *s, col v)
{
    int64_t us;
    if (v.n == 16 && s->last_len && !memcmp(v.p, s->last_hex, 16)) {
        put(s, s->last_text, s->last_len);
        return;
    }
    if (!ts_us(v, &us)) {
        PUT_LIT(s, "null");
        return;
    }
    int64_t days = floor_div(us, INT64_C(86400000000)), in_day = us - days * INT64_C(86400000000);
    /* days since 1970-01-01 (10957 before 2000-01-01) to a civil date (H. Hinnant's algorithm) */
    int64_t z = days + 10957 + 719468, era = floor_div(z, 146097), doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    int64_t secs = in_day / 1000000, frac = in_day % 1000000;
    char *o = s->p;
    *o++ = '"';
    if (y > 999 && y < 10000) {
        o = two(o, y / 100);
        o = two(o, y % 100);
    } else {
        o = digits(o, y <= 0 ? 1 - y : y, 4);
    }
    *o++ = '-';
    o = two(o, m);
    *o++ = '-';
    o = two(o, d);
    *o++ = 'T';
    o = two(o, secs / 3600);
    *o++ = ':';
    o = two(o, secs / 60 % 60);
    *o++ = ':';
    o = two(o, secs % 60);
    *o++ = '.';
    o = two(o, frac / 10000);
    o = two(o, frac / 100 % 100);
    o = two(o, frac % 100);
    *o++ = 'Z';
    *o++ = '"';
    s->last_len = (size_t)(o - s->p);
    memcpy(s->last_text, s->p, s->last_len);
    memcpy(s->last_hex, v.p, 16);
    s->p = o;
}

/* As MS_JSON's floor(extract(epoch FROM t) * 1000)::bigint writes it. */
static void put_ms(sink *s, col v)
{
    int64_t us;
    if (!ts_us(v, &us)) {
        PUT_LIT(s, "null");
        return;
    }
    int64_t ms = floor_div(us, 1000) + INT64_C(946684800000);
    if (ms < 0)
        *s->p++ = '-';
    s->p = digits(s->p, ms < 0 ? -ms : ms, 1);
}

/* A boolean column ("t" or "f") as true or false. */
static void put_bool(sink *s, col v)
{
    if (!v.p)
        PUT_LIT(s, "null");
    else if (v.p[0] == 't')
        PUT_LIT(s, "true");
    else
        PUT_LIT(s, "false");
}

/* How a column is written (QUOTED: text that needs no escaping, a uuid or a status). */
typedef enum how { STR, QUOTED, RAW, TS, MS, BOOL } how;

/* A representation as data: each field's key as json_build_object writes it (with what
 * goes before it: {"key" : value, "key" : value}), and how its column (the field's
 * place in the table) is written. */
typedef struct field {
    const char *key;
    size_t key_len;
    how how;
} field;

#define FIELD(key, how) {key, sizeof key - 1, how}

static const field aud_fields[] = {
    FIELD("{\"id\" : ", QUOTED), FIELD(", \"management_type\" : ", STR), FIELD(", \"name\" : ", STR),
    FIELD(", \"no\" : ", RAW), FIELD(", \"owner_id\" : ", QUOTED), FIELD(", \"approximated_size\" : ", RAW),
    FIELD(", \"created_at\" : ", TS), FIELD(", \"deprecated_properties\" : ", RAW),
    FIELD(", \"description\" : ", STR), FIELD(", \"properties\" : ", RAW), FIELD(", \"updated_at\" : ", TS),
    FIELD(", \"start_date\" : ", TS), FIELD(", \"end_date\" : ", TS), FIELD(", \"active\" : ", BOOL),
    FIELD(", \"extend\" : ", BOOL), FIELD(", \"extend_days\" : ", RAW), FIELD(", \"status\" : ", QUOTED),
    FIELD(", \"size\" : ", RAW),
};

static const field v1_fields[] = {
    FIELD("{\"id\" : ", STR), FIELD(", \"name\" : ", STR), FIELD(", \"description\" : ", STR),
    FIELD(", \"constraints\" : ", RAW), FIELD(", \"createdAt\" : ", MS), FIELD(", \"updatedAt\" : ", MS),
    FIELD(", \"startDate\" : ", MS), FIELD(", \"endDate\" : ", MS), FIELD(", \"active\" : ", BOOL),
    FIELD(", \"extend\" : ", BOOL), FIELD(", \"extendDays\" : ", RAW), FIELD(", \"status\" : ", QUOTED),
    FIELD(", \"size\" : ", RAW),
};

/* The paging key's column: no (a field), seq (after the fields). */
#define AUD_NO 3
#define V1_SEQ 13

static const field *fields_of(store_list_kind kind, int *n)
{
    *n = kind == STORE_LIST_V1 ? (int)(sizeof v1_fields / sizeof v1_fields[0])
                               : (int)(sizeof aud_fields / sizeof aud_fields[0]);
    return kind == STORE_LIST_V1 ? v1_fields : aud_fields;
}

/* Exact but for a timestamp, counted at its longest, so that a page's buffer is about the
 * size of its text. Sized from the lengths alone (each byte of text as if escaped, 6
 * bytes), the buffers were twice the text, and glibc gave the memory of a loop's arena
 * back and took it again more often (heap_trim: madvise and page faults; wrk, 64
 * connections, interleaved: segmentd 83 us of CPU a list request against 60 us). */
size_t store_list_item_max(const store_rows *rows, int row, store_list_kind kind)
{
    int n;
    const field *f = fields_of(kind, &n);
    const PGresult *res = res_of(rows);
    size_t len = 1; /* } */
    for (int c = 0; c < n; c++) {
        col v = col_at(res, row, c);
        len += f[c].key_len;
        if (!v.p)
            len += 4;
        else if (f[c].how == STR)
            len += str_len((const unsigned char *)v.p, v.n);
        else if (f[c].how == TS || f[c].how == MS)
            len += TS_MAX;
        else if (f[c].how == BOOL)
            len += 5;
        else
            len += v.n + (f[c].how == QUOTED ? 2 : 0);
    }
    return len;
}

size_t store_list_item_write(const store_rows *rows, int row, store_list_kind kind, char *out)
{
    int n;
    const field *f = fields_of(kind, &n);
    const PGresult *res = res_of(rows);
    sink s = {.p = out};
    for (int c = 0; c < n; c++) {
        col v = col_at(res, row, c);
        put(&s, f[c].key, f[c].key_len);
        switch (f[c].how) {
        case STR: put_str(&s, v); break;
        case QUOTED: put_raw(&s, v, true); break;
        case RAW: put_raw(&s, v, false); break;
        case TS: put_ts(&s, v); break;
        case MS: put_ms(&s, v); break;
        case BOOL: put_bool(&s, v); break;
        }
    }
    PUT_LIT(&s, "}");
    return (size_t)(s.p - out);
}

const char *store_list_key(const store_rows *rows, int row, store_list_kind kind)
{
    return PQgetvalue(res_of(rows), row, kind == STORE_LIST_V1 ? V1_SEQ : AUD_NO);
}
