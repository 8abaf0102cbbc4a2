/* GET /v1/devices/{id}/segments: the active segments of both dialects a device belongs to
 * now, the real-time targeting lookup. The tenant's segments are kept compiled in process
 * (eval/segment_cache.h) until they change: this process's writes drop them at once, other
 * processes' within STORE_WATCH_PERIOD_MS (store/segment_watch.h); each is matched against
 * the one device row in process. */
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "eval/match.h"
#include "eval/segment_cache.h"
#include "handlers/common.h"
#include "handlers/evaluate.h"
#include "handlers/handlers.h"
#include "store/evaluate.h"
#include "store/segment_watch.h"

static void set_release(void *s)
{
    ev_cache_release(s);
}

static void device_release(void *d)
{
    ev_device_free(d);
}

/* Compiles the rows of the tenant's segments; NULL with err (segs freed). */
static ev_segment *compile(const store_rule_entry *e, size_t n, seg_error *err)
{
    ev_segment *segs = calloc(n ? n : 1, sizeof *segs);
    size_t i = 0;
    for (; segs && i < n; i++) {
        ev_segment *s = &segs[i];
        s->v1 = e[i].v1;
        s->active = e[i].active;
        s->extend = e[i].extend;
        s->has_start = e[i].has_start;
        s->has_end = e[i].has_end;
        s->start_us = e[i].start_us;
        s->end_us = e[i].end_us;
        if (!(s->id = strdup(e[i].id)) ||
            (s->v1 ? ev_rule_v1(e[i].rule, e[i].rule_len, &s->rule, err)
                   : ev_rule_aud(e[i].rule, e[i].rule_len, &s->rule, err)))
            break;
    }
    if (segs && i == n)
        return segs;
    for (size_t j = 0; segs && j <= i && j < n; j++) {
        free(segs[j].id);
        ev_rule_free(&segs[j].rule);
    }
    free(segs);
    if (!err->status)
        err_set(err, 500, "internal", "out of memory");
    return NULL;
}

/* The tenant's compiled segments: kept ones, or loaded now. NULL with rq->err. */
static ev_segment_set *segments_of(http_request *rq, store_conn *c)
{
    uint64_t stamp;
    store_rule_entry *e;
    size_t n;
    ev_segment *segs;
    ev_segment_set *s = ev_cache_get(rq->principal.tenant, &stamp);
    if (!s) {
        const char *fingerprint;
        if (store_eval_rules(c, rq->principal.tenant, &e, &n, &fingerprint, &rq->err) ||
            !(segs = compile(e, n, &rq->err)))
            return NULL;
        if (!(s = ev_cache_put(rq->principal.tenant, stamp, fingerprint, segs, n))) {
            err_set(&rq->err, 500, "internal", "out of memory");
            return NULL;
        }
    }
    if (arena_defer(&rq->arena, set_release, s)) {
        ev_cache_release(s);
        err_set(&rq->err, 500, "internal", "out of memory");
        return NULL;
    }
    return s;
}

/* The device's explicit membership of segment id: 1 added, 0 removed, -1 none (a binary
 * search: the store gives them in byte order). */
static int explicit_of(const store_device_eval *dev, const char *id)
{
    size_t lo = 0, hi = dev->n_members;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(dev->member_segment[mid], id);
        if (c == 0)
            return dev->member_added[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* The first candidate from i on (cands NULL: every segment is one), or n. */
static size_t next_candidate(const uint64_t *cands, size_t i, size_t n)
{
    if (!cands || i >= n)
        return i < n ? i : n;
    size_t w = i / 64;
    uint64_t bits = cands[w] & (~0ull << (i % 64));
    while (!bits) {
        if (++w * 64 >= n)
            return n;
        bits = cands[w];
    }
    size_t next = w * 64 + (size_t)__builtin_ctzll(bits);
    return next < n ? next : n;
}

void h_device_segments(http_request *rq)
{
    store_conn *c;
    store_device_eval dev;
    ev_device *d;
    ev_segment_set *set;
    if (h_only_query(rq, (const char *const[]){NULL}) || !(c = h_store(rq)) ||
        h_missed_as(rq, store_eval_device(c, rq->principal.tenant, rq->param, &dev, &rq->err), "device") ||
        !(d = h_keep(rq, sizeof *d, device_release)) || ev_device_read(d, dev.col, &rq->err) ||
        !(set = segments_of(rq, c)))
        return;
    /* the device's values the set's rules test for equality, marked once, and the rules
     * worth matching: the index's candidates and the segments the device was added to */
    uint64_t *values = NULL, *cands = NULL;
    const ev_lookup_index *ix = set->index;
    size_t vw = ix ? ev_index_value_words(ix) : 0, rw = ix ? ev_index_rule_words(ix) : 0;
    if (ix && (values = arena_alloc(&rq->arena, (vw + rw) * sizeof *values))) {
        memset(values, 0, vw * sizeof *values);
        cands = values + vw;
        ev_index_device(ix, d, values, cands);
        for (size_t k = 0; k < dev.n_members; k++) {
            long i = dev.member_added[k] ? ev_set_find(set, dev.member_segment[k]) : -1;
            if (i >= 0)
                cands[i / 64] |= 1ull << (i % 64);
        }
    }
    int64_t now = ev_now_us();
    json_text o = {0};
    JSON_TEXT_LIT(&o, "{\"audiences\":[");
    bool in_v1 = false;
    for (size_t i = next_candidate(cands, 0, set->n); i < set->n; i = next_candidate(cands, i + 1, set->n)) {
        const ev_segment *s = &set->segs[i];
        if (s->v1 && !in_v1) { /* the set lists /audiences first */
            JSON_TEXT_LIT(&o, "],\"v1\":[");
            in_v1 = true;
        }
        if (!ev_active(s->active, s->has_start, s->start_us, s->has_end, s->end_us, s->extend, now))
            continue;
        int ex = explicit_of(&dev, s->id);
        if (ex == 0 || (ex < 0 && !ev_match_with(&s->rule, d, values)))
            continue;
        json_text_comma(&o);
        json_text_put(&o, s->id_json, s->id_json_len);
    }
    if (!in_v1)
        JSON_TEXT_LIT(&o, "],\"v1\":[");
    JSON_TEXT_LIT(&o, "]}");
    h_reply_text(rq, 200, &o);
}

static void lookup_metrics(metrics_out *o)
{
    unsigned long long hits, loads;
    ev_cache_stats(&hits, &loads);
    metrics_family(o, "segmentd_lookup_segment_sets_total", "counter",
                   "Device to segments lookups by where the tenant's compiled segments came from.");
    metrics_sample(o, "segmentd_lookup_segment_sets_total", "source=\"cache\"", hits);
    metrics_sample(o, "segmentd_lookup_segment_sets_total", "source=\"database\"", loads);
}

int h_lookup_start(const seg_config *cfg, seg_error *err)
{
    static const store_watch_fns fns = {ev_cache_tenants, ev_cache_seen, ev_cache_watching};
    static bool provided;
    if (!provided)
        metrics_provide(lookup_metrics);
    provided = true;
    store_on_segments_changed(ev_cache_changed);
    return store_watch_start(cfg, &fns, err);
}

void h_lookup_stop(void)
{
    store_watch_stop();
}
