/* Evaluating a segment on either dialect: GET …/{id}/count, …/{id}/members,
 * …/{id}/members/{deviceId}, and POST …/preview (a body that is not stored). Counts, pages and
 * previews run in PostgreSQL on the compiled rule (store/evaluate.h); the membership check
 * reads the segment, the device and its explicit membership in one statement and matches in
 * process (eval/match.h). Members are (rule matches ∪ added) − removed. */
#include <stdlib.h>
#include <string.h>

#include "eval/match.h"
#include "handlers/common.h"
#include "handlers/evaluate.h"
#include "handlers/handlers.h"
#include "store/evaluate.h"
#include "validate/audience.h"
#include "validate/list_query.h"
#include "validate/v1_segment.h"

static void rule_release(void *r)
{
    ev_rule_free(r);
}

ev_rule *h_rule(http_request *rq, bool v1, const char *json, size_t len)
{
    ev_rule *r = h_keep(rq, sizeof *r, rule_release);
    if (!r || (v1 ? ev_rule_v1(json, len, r, &rq->err) : ev_rule_aud(json, len, r, &rq->err)))
        return NULL;
    return r;
}

void h_reply_text(http_request *rq, int status, json_text *o)
{
    size_t len;
    char *body = json_text_take(o, &len);
    if (!body) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return;
    }
    http_reply(rq, status, "application/json", body, len, free, body);
}

/* ?precision=exact|estimate. 0, or -1 with a 400. */
static int precision(http_request *rq, bool *estimate)
{
    bool bad = false;
    const char *p = http_query(rq, "precision", &bad);
    *estimate = p && !bad && strcmp(p, "estimate") == 0;
    if (!p || (!bad && (*estimate || strcmp(p, "exact") == 0)))
        return 0;
    h_bad_query(rq, "precision", "expected exact or estimate");
    return -1;
}

/* {"count", "precision", "margin" (estimates), "computed_at", "status", "sample" (previews)} */
static void reply_count(http_request *rq, const store_count *n, const char *status)
{
    json_text o = {0};
    JSON_TEXT_LIT(&o, "{");
    json_text_key(&o, "count");
    json_text_int(&o, n->count);
    json_text_key(&o, "precision");
    json_text_cstr(&o, n->estimate ? "estimate" : "exact", JSON_ESC_PG);
    if (n->estimate) {
        json_text_key(&o, "margin");
        json_text_int(&o, n->margin);
    }
    json_text_key(&o, "computed_at");
    json_text_cstr(&o, n->computed_at, JSON_ESC_PG);
    json_text_key(&o, "status");
    json_text_cstr(&o, status, JSON_ESC_PG);
    if (n->sample) {
        json_text_key(&o, "sample");
        json_text_raw(&o, n->sample);
    }
    JSON_TEXT_LIT(&o, "}");
    http_set_replica_lag(rq, n->replica_lag_ms);
    h_reply_text(rq, 200, &o);
}

/* The segment of the path: its id as stored, rule and status. NULL when answered (404, 500). */
static ev_rule *path_segment(http_request *rq, bool v1, store_conn **c, char buf[37],
                             const char **id, const char **status)
{
    store_seg_rule sr;
    *id = h_segment_id(rq, v1, buf);
    if (!(*c = h_store(rq)) ||
        h_missed(rq, store_eval_rule(*c, v1, rq->principal.tenant, *id, &sr, &rq->err)))
        return NULL;
    *status = sr.status;
    return h_rule(rq, v1, sr.rule, sr.len);
}

static void count(http_request *rq, bool v1)
{
    static const char *const allowed[] = {"precision", NULL};
    bool estimate;
    char buf[37];
    const char *id, *status;
    store_conn *c;
    store_count n;
    ev_rule *r;
    if (h_only_query(rq, allowed) || precision(rq, &estimate) ||
        !(r = path_segment(rq, v1, &c, buf, &id, &status)) ||
        store_eval_count(c, r, rq->principal.tenant, id, estimate, &n, &rq->err) ||
        store_eval_size(c, v1, rq->principal.tenant, id, &n, &rq->err))
        return;
    reply_count(rq, &n, status);
}

void h_aud_count(http_request *rq)
{
    count(rq, false);
}

void h_v1_count(http_request *rq)
{
    count(rq, true);
}

/* ?format=json|ndjson and ?fields=ids|all (only with ndjson). 0, or -1 with a 400. */
static int export_params(http_request *rq, bool *ndjson, bool *whole)
{
    bool fbad = false, wbad = false, b1 = false, b2 = false;
    const char *f = http_query(rq, "format", &fbad), *w = http_query(rq, "fields", &wbad);
    *ndjson = f && !fbad && strcmp(f, "ndjson") == 0;
    *whole = w && !wbad && strcmp(w, "all") == 0;
    if (f && (fbad || (!*ndjson && strcmp(f, "json") != 0)))
        h_bad_query(rq, "format", "expected json (a page) or ndjson (every member, streamed)");
    if (w && (wbad || (!*whole && strcmp(w, "ids") != 0)))
        h_bad_query(rq, "fields", "expected ids or all (whole devices)");
    else if (w && !*ndjson)
        h_bad_query(rq, "fields", "fields goes with format=ndjson; a page lists ids");
    if (*ndjson && (http_query(rq, "limit", &b1) || http_query(rq, "cursor", &b2)))
        h_bad_query(rq, http_query(rq, "limit", &b1) ? "limit" : "cursor",
                    "an export streams every member: leave out limit and cursor with format=ndjson");
    return rq->err.status ? -1 : 0;
}

static void members(http_request *rq, bool v1)
{
    static const char *const allowed[] = {"limit", "cursor", "format", "fields", NULL};
    char buf[37], cursor[VAL_CURSOR_MAX];
    const char *id, *status, *after;
    int limit;
    bool ndjson, whole;
    store_conn *c;
    store_ids page;
    ev_rule *r;
    if (h_only_query(rq, allowed) || export_params(rq, &ndjson, &whole) ||
        val_members_query(h_query, rq, &rq->arena, &limit, &after, &rq->err) ||
        !(r = path_segment(rq, v1, &c, buf, &id, &status)))
        return;
    if (ndjson) {
        (void)h_members_export(rq, r, id, whole);
        return;
    }
    if (store_eval_members(c, r, rq->principal.tenant, id, after, limit, &page, &rq->err))
        return;
    json_text o = {0};
    JSON_TEXT_LIT(&o, "{\"items\":[");
    for (int i = 0; i < page.n; i++) {
        json_text_comma(&o);
        json_text_cstr(&o, page.ids[i], JSON_ESC_PG);
    }
    JSON_TEXT_LIT(&o, "]");
    json_text_key(&o, "next_cursor");
    if (page.more) {
        val_cursor_encode('m', page.ids[page.n - 1], cursor);
        json_text_cstr(&o, cursor, JSON_ESC_PG);
    } else {
        JSON_TEXT_LIT(&o, "null");
    }
    JSON_TEXT_LIT(&o, "}");
    http_set_replica_lag(rq, page.replica_lag_ms);
    h_reply_text(rq, 200, &o);
}

void h_aud_members(http_request *rq)
{
    members(rq, false);
}

void h_v1_members(http_request *rq)
{
    members(rq, true);
}

static void device_release(void *d)
{
    ev_device_free(d);
}

static void check(http_request *rq, bool v1)
{
    char buf[37];
    store_check ck;
    store_conn *c;
    ev_rule *r;
    ev_device *d;
    const char *id = h_segment_id(rq, v1, buf);
    if (h_only_query(rq, (const char *const[]){NULL}) || !(c = h_store(rq)) ||
        store_eval_check(c, v1, rq->principal.tenant, id, rq->param2, &ck, &rq->err))
        return;
    if (!ck.segment_found || !ck.device_found) {
        err_set(&rq->err, 404, "not_found", "no %s with this id", ck.segment_found ? "device" : "segment");
        return;
    }
    if (!(r = h_rule(rq, v1, ck.rule, ck.rule_len)) || !(d = h_keep(rq, sizeof *d, device_release)) ||
        ev_device_read(d, ck.col, &rq->err))
        return;
    const char *reason;
    if (ck.added >= 0)
        reason = ck.added ? "added" : "removed";
    else if (r->kind == EV_RULE_NONE)
        reason = "no_rule";
    else
        reason = ev_match(r, d) ? "rule" : "no_match";
    bool member = !strcmp(reason, "added") || !strcmp(reason, "rule");
    json_text o = {0};
    JSON_TEXT_LIT(&o, "{");
    json_text_key(&o, "member");
    json_text_raw(&o, member ? "true" : "false");
    json_text_key(&o, "reason");
    json_text_cstr(&o, reason, JSON_ESC_PG);
    json_text_key(&o, "status");
    json_text_cstr(&o, ck.status, JSON_ESC_PG);
    JSON_TEXT_LIT(&o, "}");
    h_reply_text(rq, 200, &o);
}

void h_aud_member_check(http_request *rq)
{
    check(rq, false);
}

void h_v1_member_check(http_request *rq)
{
    check(rq, true);
}

/* ---- preview ------------------------------------------------------------------------------ */

static const char *body_status(const lifecycle_in *lc)
{
    return ev_status(lc->active, lc->has_start, lc->start_us, lc->has_end, lc->end_us, lc->extend,
                     ev_now_us());
}

static void preview(http_request *rq, bool v1, const char *rule, const lifecycle_in *lc)
{
    static const char *const allowed[] = {"precision", NULL};
    bool estimate;
    store_conn *c;
    store_count n;
    ev_rule *r;
    if (h_only_query(rq, allowed) || precision(rq, &estimate) ||
        !(r = h_rule(rq, v1, rule, strlen(rule))) || !(c = h_store(rq)) ||
        store_eval_count(c, r, rq->principal.tenant, NULL, estimate, &n, &rq->err))
        return;
    reply_count(rq, &n, body_status(lc));
}

static void aud_release(void *in)
{
    val_aud_release(in);
}

static void v1_release(void *in)
{
    val_v1_segment_release(in);
}

static void aud_preview(http_request *rq)
{
    json_t *root = h_body(rq);
    aud_segment_in *in = root ? h_keep(rq, sizeof *in, aud_release) : NULL;
    if (!in || val_aud_segment(root, AUD_CREATE, in, &rq->err))
        return;
    preview(rq, false, in->properties ? in->properties : "{}", &in->lc);
}

void h_aud_preview(http_request *rq)
{
    h_idempotent(rq, aud_preview);
}

static void v1_preview(http_request *rq)
{
    json_t *root = h_body(rq);
    v1_segment_in *in = root ? h_keep(rq, sizeof *in, v1_release) : NULL;
    if (!in || val_v1_segment(root, false, in, &rq->err))
        return;
    preview(rq, true, in->constraints_json, &in->lc);
}

void h_v1_preview(http_request *rq)
{
    h_idempotent(rq, v1_preview);
}
