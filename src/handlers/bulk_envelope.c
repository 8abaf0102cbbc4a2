/* A bulk request's answer, seed 002's envelope {"data", "errors", "warnings"}, written
 * from the stored rows and the items' records and problems. */
#include "handlers/bulk_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/problem.h"
#include "handlers/common.h"

/* A timestamp the statement returned as microseconds since the epoch, written as
 * TS_JSON (store/statements.c) writes it: "YYYY-MM-DDTHH:MM:SS.ffffffZ" in UTC. The rows
 * of one request mostly share one instant (now()), so the last one is kept. */
typedef struct ts_text {
    char us[24];
    char text[48];
    size_t len;
} ts_text;

static void put_ts(json_text *o, const char *us, ts_text *last)
{
    if (strcmp(us, last->us) != 0) {
        long long v = strtoll(us, NULL, 10), sec = v / 1000000, frac = v % 1000000;
        if (frac < 0) {
            frac += 1000000;
            sec--;
        }
        time_t t = (time_t)sec;
        struct tm tm;
        if (strlen(us) >= sizeof last->us || !gmtime_r(&t, &tm)) {
            o->failed = true; /* not a timestamp PostgreSQL can hold: the answer fails */
            return;
        }
        long long year = (long long)tm.tm_year + 1900;
        if (year <= 0)
            year = 1 - year; /* to_char's YYYY: 1 BC is 0001 */
        last->len = (size_t)snprintf(last->text, sizeof last->text,
                                     "\"%04lld-%02d-%02dT%02d:%02d:%02d.%06lldZ\"", year, tm.tm_mon + 1,
                                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
        memcpy(last->us, us, strlen(us) + 1);
    }
    json_text_put(o, last->text, last->len);
}

/* A timestamp in microseconds as put_ts writes it, or null. */
static void put_ts_or_null(json_text *o, const char *us)
{
    ts_text t;
    memset(&t, 0, sizeof t);
    if (us)
        put_ts(o, us, &t);
    else
        JSON_TEXT_LIT(o, "null");
}

/* The lifecycle members as AUD_JSON writes them after updated_at. */
static void put_lifecycle(json_text *o, const bulk_row *row)
{
    JSON_TEXT_LIT(o, ", \"start_date\" : ");
    put_ts_or_null(o, row->start_us);
    JSON_TEXT_LIT(o, ", \"end_date\" : ");
    put_ts_or_null(o, row->end_us);
    JSON_TEXT_LIT(o, ", \"active\" : ");
    json_text_raw(o, row->active[0] == 't' ? "true" : "false");
    JSON_TEXT_LIT(o, ", \"extend\" : ");
    json_text_raw(o, row->extend[0] == 't' ? "true" : "false");
    JSON_TEXT_LIT(o, ", \"extend_days\" : ");
    json_text_raw(o, row->extend_days);
    JSON_TEXT_LIT(o, ", \"status\" : \"");
    json_text_raw(o, row->status);
    JSON_TEXT_LIT(o, "\", \"size\" : null"); /* never computed yet */
}

static void put_span(json_text *o, const char *record, bulk_span at)
{
    json_text_put(o, record + at.off, at.len);
}

/* Item i's representation, created as row, byte for byte as AUD_JSON writes it for the
 * single routes: its values are taken from its record (escaped as escape_json does),
 * and PostgreSQL returns only what it made (no, the two documents as jsonb's own text,
 * the timestamps), which spares it json_build_object and to_char over every row. */
static void aud_created(json_text *o, const bulk *b, size_t i, const bulk_row *row, ts_text last[2])
{
    const char *record = b->records[i];
    const bulk_span *at = b->spans[i];
    JSON_TEXT_LIT(o, "{\"id\" : \"");
    json_text_put(o, b->ids[i], strlen(b->ids[i]));
    JSON_TEXT_LIT(o, "\", \"management_type\" : ");
    put_span(o, record, at[SP_MANAGEMENT_TYPE]);
    JSON_TEXT_LIT(o, ", \"name\" : ");
    put_span(o, record, at[SP_NAME]);
    JSON_TEXT_LIT(o, ", \"no\" : ");
    json_text_put(o, row->no, row->no_len);
    JSON_TEXT_LIT(o, ", \"owner_id\" : ");
    put_span(o, record, at[SP_OWNER_ID]);
    JSON_TEXT_LIT(o, ", \"approximated_size\" : ");
    put_span(o, record, at[SP_SIZE]);
    JSON_TEXT_LIT(o, ", \"created_at\" : ");
    put_ts(o, row->created_us, &last[0]);
    JSON_TEXT_LIT(o, ", \"deprecated_properties\" : ");
    json_text_put(o, row->deprecated_properties, row->deprecated_properties_len);
    JSON_TEXT_LIT(o, ", \"description\" : ");
    put_span(o, record, at[SP_DESCRIPTION]);
    JSON_TEXT_LIT(o, ", \"properties\" : ");
    json_text_put(o, row->properties, row->properties_len);
    JSON_TEXT_LIT(o, ", \"updated_at\" : ");
    put_ts(o, row->updated_us, &last[1]);
    put_lifecycle(o, row);
    JSON_TEXT_LIT(o, "}");
}

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const bulk_row *)a)->id, ((const bulk_row *)b)->id);
}

static const bulk_row *find_row(const bulk_row *rows, size_t nrows, const char *id)
{
    for (size_t lo = 0, hi = nrows; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(id, rows[mid].id);
        if (c == 0)
            return &rows[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

char *h_bulk_envelope(bulk *b, bulk_row *rows, size_t nrows, size_t *len)
{
    bool written = !b->v1 && b->op == BULK_CREATE;
    const bulk_row **row_of = malloc((b->n + 1) * sizeof *row_of); /* item → its row, or NULL */
    json_text o = {0}, warnings = {0};
    ts_text last[2];
    size_t cap = 64;
    *len = 0;
    memset(last, 0, sizeof last);
    if (!row_of)
        return NULL;
    if (nrows)
        qsort(rows, nrows, sizeof *rows, cmp_row);
    if (b->warnings.len) /* the items not applied come first, then those of the stored ones */
        json_text_put(&warnings, b->warnings.p, b->warnings.len);
    for (size_t i = 0; i < b->n; i++) {
        const bulk_row *hit = b->records[i] ? find_row(rows, nrows, b->ids[i]) : NULL;
        row_of[i] = hit;
        if (!b->records[i])
            continue;
        if (!hit || hit->broken_rule) {
            if (!hit)
                h_bulk_problem(b, i, "not_found", "Not Found", "/id",
                               b->devices ? "no device with this id" : "no segment with this id");
            else
                h_bulk_problem(b, i, "validation_failed", "Invalid field",
                               h_rule_pointer(hit->broken_rule, b->v1), h_rule_detail(hit->broken_rule));
            row_of[i] = NULL;
            free(b->records[i]);
            b->records[i] = NULL;
            continue;
        }
        cap += written ? strlen(b->records[i]) + hit->properties_len + hit->deprecated_properties_len + 512
                       : hit->json_len + 1;
        h_put_warnings(&warnings, b->warns[i], (long)i, b->trace_id);
    }
    if (json_text_reserve(&o, cap + b->errors.len + warnings.len)) {
        JSON_TEXT_LIT(&o, "{\"data\":[");
        bool first = true;
        for (size_t i = 0; i < b->n; i++) {
            const bulk_row *hit = row_of[i];
            if (!hit)
                continue;
            if (!first)
                JSON_TEXT_LIT(&o, ",");
            first = false;
            if (written)
                aud_created(&o, b, i, hit, last);
            else
                json_text_put(&o, hit->json, hit->json_len);
        }
        JSON_TEXT_LIT(&o, "],\"errors\":[");
        json_text_put(&o, b->errors.p ? b->errors.p : "", b->errors.len);
        JSON_TEXT_LIT(&o, "],\"warnings\":[");
        json_text_put(&o, warnings.p ? warnings.p : "", warnings.len);
        JSON_TEXT_LIT(&o, "]}");
    }
    if (b->errors.failed || b->warnings.failed || warnings.failed)
        o.failed = true;
    free(row_of);
    json_text_release(&warnings);
    return json_text_take(&o, len);
}
