/* Lifecycle members of both dialects' bodies → lifecycle_in, and the rules between them. */
#include "validate/lifecycle.h"

#include <string.h>

/* The members in one order for both dialects: the names differ, the rules do not. */
/* status and size are read-only: taken (a client may send back what it read) and ignored. */
enum { M_START, M_END, M_ACTIVE, M_EXTEND, M_EXTEND_DAYS, M_STATUS, M_SIZE, M__COUNT };

static const char *const aud_names[M__COUNT] = {"start_date", "end_date", "active", "extend",
                                                "extend_days", "status", "size"};
static const char *const v1_names[M__COUNT] = {"startDate", "endDate", "active", "extend",
                                               "extendDays", "status", "size"};
static const unsigned bits[M__COUNT] = {LC_SET_START, LC_SET_END, LC_SET_ACTIVE, LC_SET_EXTEND,
                                        LC_SET_EXTEND_DAYS, 0, 0};

bool val_lifecycle_key(const char *key, bool v1)
{
    const char *const *names = v1 ? v1_names : aud_names;
    for (int m = 0; m < M__COUNT; m++)
        if (!strcmp(key, names[m]))
            return true;
    return false;
}

const char *val_lifecycle_names(bool v1)
{
    return v1 ? "startDate, endDate, active, extend, extendDays" : "start_date, end_date, active, "
                                                                   "extend, extend_days";
}

static void defaults(lifecycle_in *out)
{
    memset(out, 0, sizeof *out);
    out->active = true;
    out->extend_days = LC_EXTEND_DAYS_DEFAULT;
}

/* A date member: an RFC 3339 string (aud) or epoch milliseconds (v1), or null. */
static void read_date(val_path *p, const char *key, json_t *v, bool v1, bool *has, int64_t *us)
{
    *has = false;
    if (json_is_null(v))
        return;
    if (!v1) {
        if (!json_is_string(v)) {
            val_fail_at(p, key, "expected an RFC 3339 date-time string or null, got %s", val_type_name(v));
        } else if (!val_rfc3339(json_string_value(v), us)) {
            char ex[VAL_EXCERPT_BUF];
            val_fail_at(p, key, "\"%s\" is not an RFC 3339 date-time like 2026-12-06T10:00:00Z in "
                        "years 0001 to 9999", val_excerpt(ex, json_string_value(v)));
        } else {
            *has = true;
        }
        return;
    }
    json_int_t ms = json_is_integer(v) ? json_integer_value(v) : 0;
    if (!json_is_integer(v))
        val_fail_at(p, key, "expected an integer of epoch milliseconds or null, got %s", val_type_name(v));
    else if (ms < LC_MIN_US / 1000 || ms > LC_MAX_US / 1000)
        val_fail_at(p, key, "%lld is out of range: epoch milliseconds in years 0001 to 9999 are "
                    "%lld to %lld", (long long)ms, LC_MIN_US / 1000, LC_MAX_US / 1000);
    else {
        *us = (int64_t)ms * 1000;
        *has = true;
    }
}

static void read_bool(val_path *p, const char *key, json_t *v, bool *out)
{
    if (!json_is_boolean(v))
        val_fail_at(p, key, "expected true or false, got %s", val_type_name(v));
    else
        *out = json_is_true(v);
}

void val_lifecycle(val_path *p, json_t *root, bool v1, bool complete, lifecycle_in *out)
{
    const char *const *names = v1 ? v1_names : aud_names;
    unsigned bad = 0; /* members refused: the rules between members skip those */
    defaults(out);
    for (int m = 0; m < M_STATUS; m++) {
        json_t *v = json_object_get(root, names[m]);
        if (!v)
            continue;
        int had = p->err->n_items;
        switch (m) {
        case M_START: read_date(p, names[m], v, v1, &out->has_start, &out->start_us); break;
        case M_END: read_date(p, names[m], v, v1, &out->has_end, &out->end_us); break;
        case M_ACTIVE: read_bool(p, names[m], v, &out->active); break;
        case M_EXTEND: read_bool(p, names[m], v, &out->extend); break;
        case M_EXTEND_DAYS:
            if (!json_is_integer(v))
                val_fail_at(p, names[m], "expected an integer from 1 to %d (days of one renewal), got %s",
                            LC_EXTEND_DAYS_MAX, val_type_name(v));
            else if (json_integer_value(v) < 1 || json_integer_value(v) > LC_EXTEND_DAYS_MAX)
                val_fail_at(p, names[m], "expected an integer from 1 to %d (days of one renewal), got %lld",
                            LC_EXTEND_DAYS_MAX, (long long)json_integer_value(v));
            else
                out->extend_days = (int)json_integer_value(v);
            break;
        }
        if (p->err->n_items == had && !p->err->truncated)
            out->set |= bits[m];
        else
            bad |= bits[m];
    }
    /* the rules, between the members known here (all of them when complete) and valid */
    bool start_known = (complete || (out->set & LC_SET_START)) && !(bad & LC_SET_START);
    bool end_known = (complete || (out->set & LC_SET_END)) && !(bad & LC_SET_END);
    bool extend_known = (complete || (out->set & LC_SET_EXTEND)) && !(bad & LC_SET_EXTEND);
    if (start_known && end_known && out->has_start && out->has_end && out->end_us <= out->start_us)
        val_fail_at(p, names[M_END], "the end date must be after the start date (%s)", names[M_START]);
    if (extend_known && end_known && out->extend && !out->has_end)
        val_fail_at(p, names[M_EXTEND], "a segment that renews itself needs an end date (%s)",
                    names[M_END]);
}

int val_end_date_body(json_t *root, bool v1, lifecycle_in *out, seg_error *err)
{
    const char *end = v1 ? "endDate" : "end_date";
    const char *key;
    json_t *v;
    val_path p;
    int before = err->n_items;
    val_path_init(&p, err);
    defaults(out);
    json_object_foreach(root, key, v) {
        if (strcmp(key, end) && strcmp(key, "extend")) {
            char ex[VAL_EXCERPT_BUF];
            val_fail_at(&p, key, "unknown field \"%s\": expected %s and optionally extend",
                        val_excerpt(ex, key), end);
        }
    }
    if (!json_object_get(root, end))
        val_fail_at(&p, end, "required field is missing: the new end date, or null for none");
    if (err->n_items == before) {
        val_lifecycle(&p, root, v1, false, out);
        out->set &= LC_SET_END | LC_SET_EXTEND;
    }
    return err->n_items != before || err->status ? -1 : 0;
}
