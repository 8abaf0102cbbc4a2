/* The list routes' query parameters: paging, keyset cursors and filters, checked before any SQL. */
#include "validate/list_query.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "validate/audience.h"
#include "validate/device.h"
#include "validate/validate.h"

#define V1_NAME_FILTER_MAX 255

void val_query_fail(seg_error *err, const char *name, const char *fmt, ...)
{
    char detail[ERR_DETAIL_MAX], ptr[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (!err->status)
        err_set(err, 400, "invalid_query_parameter", "a query parameter is not valid; see errors");
    snprintf(ptr, sizeof ptr, "/query/%.80s", name);
    err_add(err, ptr, "%s", detail);
}

void val_cursor_encode(char kind, const char *key, char out[VAL_CURSOR_MAX])
{
    char raw[VAL_CURSOR_KEY_MAX + 2];
    int n = snprintf(raw, sizeof raw, "%c:%s", kind, key);
    if (n >= (int)sizeof raw)
        n = (int)sizeof raw - 1;
    ids_b64url_encode((const unsigned char *)raw, (size_t)n, out);
}

int val_page_limit(const char *l, bool bad, seg_error *err)
{
    if (!l)
        return VAL_PAGE_DEFAULT;
    char *end = (char *)(uintptr_t)l;
    long v = l[0] >= '0' && l[0] <= '9' ? strtol(l, &end, 10) : -1; /* no sign, no space */
    if (!bad && v >= 1 && !*end && v <= VAL_PAGE_MAX)
        return (int)v;
    val_query_fail(err, "limit", "expected an integer from 1 to %d", VAL_PAGE_MAX);
    return VAL_PAGE_DEFAULT;
}

int val_list_paging(val_query_fn q, void *cls, char kind, int *limit, char before[24],
                    seg_error *err)
{
    bool lbad = false, cbad = false;
    const char *l = q(cls, "limit", &lbad);
    const char *c = q(cls, "cursor", &cbad);
    *limit = val_page_limit(l, lbad, err);
    before[0] = '\0';
    if (c) {
        unsigned char raw[40];
        int n = strlen(c) < 48 ? ids_b64url_decode(c, raw, sizeof raw - 1) : -1;
        bool ok = n > 2 && raw[0] == (unsigned char)kind && raw[1] == ':' && n - 2 <= 18; /* < 2^63 */
        for (int i = 2; ok && i < n; i++)
            ok = raw[i] >= '0' && raw[i] <= '9';
        if (cbad || !ok) {
            val_query_fail(err, "cursor", "not a cursor returned by this list: pass next_cursor as it came");
        } else {
            memcpy(before, raw + 2, (size_t)n - 2);
            before[n - 2] = '\0';
        }
    }
    return err->status ? -1 : 0;
}

/* A text the caller's arena keeps. */
static const char *kept(seg_arena *a, const char *s, seg_error *err)
{
    char *d = arena_strndup(a, s, strlen(s));
    if (!d)
        err_set(err, 500, "internal", "out of memory");
    return d;
}

/* {"code":["value"]} and, for a numeric value, {"code":[n]}: the jsonb containment
 * documents for the GIN index. name is the query parameter blamed on error. */
static void property_filter(seg_arena *a, const char *name, const char *code, size_t clen,
                            const char *value, aud_list_query *out, seg_error *err)
{
    char buf[AUD_MAX_CODE_CHARS * 4 + 1];
    json_t *j, *num;
    json_error_t je;
    char *text;
    if (clen == 0 || !*value) {
        val_query_fail(err, name, "expected code:value, like interest:sports");
        return;
    }
    if (clen >= sizeof buf || val_utf8_chars(code, clen) > AUD_MAX_CODE_CHARS) {
        val_query_fail(err, name, "the attribute code is longer than %d characters", AUD_MAX_CODE_CHARS);
        return;
    }
    memcpy(buf, code, clen);
    buf[clen] = '\0';
    j = json_pack("{s:[s]}", buf, value);
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        val_query_fail(err, name, "code and value must be UTF-8 text");
        return;
    }
    out->property = kept(a, text, err);
    free(text);
    num = json_loads(value, JSON_DECODE_ANY, &je);
    if (json_is_number(num)) {
        j = json_pack("{s:[O]}", buf, num);
        text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (text)
            out->property_num = kept(a, text, err);
        free(text);
    }
    json_decref(num);
}

/* property=code:value splits at the first ':'; codes that hold ':' themselves are
 * filtered with the unambiguous pair property_code + property_value. */
static void property_params(val_query_fn q, void *cls, seg_arena *a, aud_list_query *out,
                            seg_error *err)
{
    bool cbad = false, vbad = false, bad = false;
    const char *pc = q(cls, "property_code", &cbad), *pv = q(cls, "property_value", &vbad), *v;
    if ((v = q(cls, "property", &bad))) {
        const char *colon = strchr(v, ':');
        if (bad)
            val_query_fail(err, "property", "contains a NUL byte or is too long");
        else if (pc || pv)
            val_query_fail(err, "property", "use either property or property_code with property_value");
        else
            property_filter(a, "property", v, colon ? (size_t)(colon - v) : 0, colon ? colon + 1 : "",
                            out, err);
    } else if (pc || pv) {
        if (cbad || vbad)
            val_query_fail(err, cbad ? "property_code" : "property_value", "contains a NUL byte or is too long");
        else if (!pc || !pv)
            val_query_fail(err, pc ? "property_value" : "property_code",
                           "property_code and property_value go together");
        else
            property_filter(a, "property_code", pc, strlen(pc), pv, out, err);
    }
}

/* A name filter: 1 to max characters of UTF-8 text. */
static const char *name_filter(val_query_fn q, void *cls, seg_arena *a, size_t max, seg_error *err)
{
    bool bad = false;
    const char *v = q(cls, "name", &bad);
    if (!v)
        return NULL;
    if (bad || !*v || !val_utf8_valid(v) || val_utf8_chars(v, strlen(v)) > max) {
        val_query_fail(err, "name", "expected 1 to %zu characters of UTF-8 text", max);
        return NULL;
    }
    return kept(a, v, err);
}

/* status=active,scheduled: the statuses kept, as a text[] literal in a canonical order. */
static const char *status_filter(val_query_fn q, void *cls, seg_arena *a, seg_error *err)
{
    static const char *const names[] = {"active", "scheduled", "expired", "paused"};
    bool bad = false;
    unsigned kept_bits = 0;
    const char *v = q(cls, "status", &bad);
    char buf[64];
    size_t len = 0;
    if (!v)
        return NULL;
    for (const char *p = v; !bad;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int k;
        for (k = 0; k < 4; k++)
            if (strlen(names[k]) == n && !strncmp(p, names[k], n))
                break;
        if (k == 4)
            bad = true;
        else
            kept_bits |= 1u << k;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (bad || !kept_bits) {
        val_query_fail(err, "status", "expected one or more of active, scheduled, expired, paused, "
                       "separated by commas");
        return NULL;
    }
    buf[len++] = '{';
    for (int k = 0; k < 4; k++)
        if (kept_bits & (1u << k))
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", len > 1 ? "," : "", names[k]);
    snprintf(buf + len, sizeof buf - len, "}");
    return kept(a, buf, err);
}

/* active_at=<instant>: RFC 3339 (/audiences) or epoch milliseconds (/v1), as microseconds
 * since the epoch in decimal text. */
static const char *active_at_filter(val_query_fn q, void *cls, seg_arena *a, bool v1,
                                    seg_error *err)
{
    bool bad = false;
    const char *v = q(cls, "active_at", &bad);
    int64_t us = 0;
    char buf[24];
    if (!v)
        return NULL;
    if (!v1) {
        if (bad || !val_rfc3339(v, &us)) {
            val_query_fail(err, "active_at", "expected an RFC 3339 date-time like 2026-12-06T10:00:00Z");
            return NULL;
        }
    } else {
        char *end = (char *)(uintptr_t)v;
        bool digits = (v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1] >= '0' && v[1] <= '9');
        errno = 0;
        long long ms = digits ? strtoll(v, &end, 10) : 0;
        if (bad || !digits || *end || errno || ms < LC_MIN_US / 1000 || ms > LC_MAX_US / 1000) {
            val_query_fail(err, "active_at", "expected epoch milliseconds (an integer) in years 0001 to 9999");
            return NULL;
        }
        us = (int64_t)ms * 1000;
    }
    snprintf(buf, sizeof buf, "%lld", (long long)us);
    return kept(a, buf, err);
}

int val_aud_list_query(val_query_fn q, void *cls, seg_arena *a, aud_list_query *out,
                       seg_error *err)
{
    char before[24];
    bool bad = false;
    const char *v, *why;
    memset(out, 0, sizeof *out);
    (void)val_list_paging(q, cls, 'a', &out->limit, before, err);
    if (before[0])
        out->before_no = kept(a, before, err);
    if ((v = q(cls, "owner_id", &bad))) {
        if (bad || !val_uuid(v, strlen(v), &why)) {
            val_query_fail(err, "owner_id", "not a uuid: %s", bad ? "contains a NUL byte" : why);
        } else {
            char *owner = arena_strndup(a, v, 36);
            for (char *o = owner; o && *o; o++) /* upper-case uuids name the same owner */
                if (*o >= 'A' && *o <= 'F')
                    *o = (char)(*o + 32);
            if (!owner)
                err_set(err, 500, "internal", "out of memory");
            out->owner_id = owner;
        }
    }
    bad = false;
    if ((v = q(cls, "management_type", &bad))) {
        if (bad || (strcmp(v, "selfmanaged") && strcmp(v, "systemmanaged")))
            val_query_fail(err, "management_type", "expected selfmanaged or systemmanaged");
        else
            out->management_type = !strcmp(v, "selfmanaged") ? "selfmanaged" : "systemmanaged";
    }
    out->name = name_filter(q, cls, a, AUD_MAX_NAME_CHARS, err);
    bad = false;
    if ((v = q(cls, "updated_since", &bad))) {
        if (bad || !val_rfc3339(v, NULL))
            val_query_fail(err, "updated_since", "expected an RFC 3339 date-time like 2023-11-07T05:31:56Z");
        else
            out->updated_since = kept(a, v, err);
    }
    property_params(q, cls, a, out, err);
    out->statuses = status_filter(q, cls, a, err);
    out->active_at_us = active_at_filter(q, cls, a, false, err);
    return err->status ? -1 : 0;
}

/* The cursor of a device page: "d:<µs>:<id>", the key of the last device shown. */
static void device_cursor(const char *c, bool bad, seg_arena *a, device_list_query *out,
                          seg_error *err)
{
    unsigned char raw[VAL_CURSOR_KEY_MAX + 2];
    int n = !bad && strlen(c) < VAL_CURSOR_MAX ? ids_b64url_decode(c, raw, sizeof raw - 1) : -1;
    const char *colon = NULL;
    bool ok = n > 4 && raw[0] == 'd' && raw[1] == ':';
    if (ok) {
        raw[n] = '\0';
        colon = strchr((const char *)raw + 2, ':');
        ok = colon && colon > (const char *)raw + 2 && colon - ((const char *)raw + 2) <= 19 &&
             val_device_id(colon + 1);
        for (const char *p = (const char *)raw + 2 + (raw[2] == '-'); ok && p < colon; p++)
            ok = *p >= '0' && *p <= '9';
    }
    if (!ok) {
        val_query_fail(err, "cursor", "not a cursor returned by this list: pass next_cursor as it came");
        return;
    }
    out->after_us = arena_strndup(a, (const char *)raw + 2, (size_t)(colon - ((const char *)raw + 2)));
    out->after_id = kept(a, colon + 1, err);
    if (!out->after_us)
        err_set(err, 500, "internal", "out of memory");
}

int val_device_list_query(val_query_fn q, void *cls, seg_arena *a, device_list_query *out,
                          seg_error *err)
{
    bool lbad = false, cbad = false, ubad = false;
    const char *l = q(cls, "limit", &lbad), *c = q(cls, "cursor", &cbad), *u;
    memset(out, 0, sizeof *out);
    out->limit = val_page_limit(l, lbad, err);
    if (c)
        device_cursor(c, cbad, a, out, err);
    if ((u = q(cls, "updated_since", &ubad))) {
        char *end = (char *)(uintptr_t)u;
        errno = 0;
        long long ms = u[0] >= '0' && u[0] <= '9' ? strtoll(u, &end, 10) : -1;
        if (ubad || ms < 0 || *end || errno) {
            val_query_fail(err, "updated_since", "expected epoch milliseconds: an integer from 0");
        } else {
            char buf[24];
            if (ms > LC_MAX_US / 1000) /* after year 9999: no device changed then */
                ms = LC_MAX_US / 1000;
            snprintf(buf, sizeof buf, "%lld", ms * 1000);
            out->updated_since_us = kept(a, buf, err);
        }
    }
    return err->status ? -1 : 0;
}

int val_v1_list_query(val_query_fn q, void *cls, seg_arena *a, v1_list_query *out,
                      seg_error *err)
{
    char before[24];
    memset(out, 0, sizeof *out);
    (void)val_list_paging(q, cls, 'v', &out->limit, before, err);
    if (before[0])
        out->before_seq = kept(a, before, err);
    out->name = name_filter(q, cls, a, V1_NAME_FILTER_MAX, err);
    out->statuses = status_filter(q, cls, a, err);
    out->active_at_us = active_at_filter(q, cls, a, true, err);
    return err->status ? -1 : 0;
}

int val_members_query(val_query_fn q, void *cls, seg_arena *a, int *limit, const char **after,
                      seg_error *err)
{
    bool lbad = false, cbad = false;
    const char *l = q(cls, "limit", &lbad), *c = q(cls, "cursor", &cbad);
    *limit = val_page_limit(l, lbad, err);
    *after = "";
    if (c) {
        unsigned char raw[VAL_CURSOR_KEY_MAX + 2];
        int n = !cbad && strlen(c) < VAL_CURSOR_MAX ? ids_b64url_decode(c, raw, sizeof raw - 1) : -1;
        if (n > 2)
            raw[n] = '\0';
        if (n > 2 && raw[0] == 'm' && raw[1] == ':' && val_device_id((const char *)raw + 2))
            *after = kept(a, (const char *)raw + 2, err);
        else
            val_query_fail(err, "cursor", "not a cursor returned by this list: pass next_cursor as it came");
    }
    return err->status ? -1 : 0;
}
