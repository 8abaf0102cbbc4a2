/* Evaluation as the handlers see it: a segment's rule and status, counts (exact or
 * estimated), member pages, the membership check, explicit membership and what the device →
 * segments lookup reads. Counts, pages and previews run on the evaluation sessions
 * (SEGMENTD_EVAL_CONCURRENCY of them, SEGMENTD_EVAL_TIMEOUT_MS each); the rest are prepared
 * statements of a request's handle. */
#ifndef SEGMENTD_STORE_EVALUATE_H
#define SEGMENTD_STORE_EVALUATE_H

#include <stdbool.h>

#include "eval/match.h"
#include "eval/rule.h"
#include "store/segments.h"

/* A segment's rule (JSON text: /v1 constraints or /audiences properties) and status now.
 * STORE_DONE, STORE_MISSING, or -1 with err. The texts live in c's arena. */
typedef struct store_seg_rule {
    const char *rule;
    size_t len;
    const char *status;
} store_seg_rule;
int store_eval_rule(store_conn *c, bool v1, const char *tenant, const char *id,
                    store_seg_rule *out, seg_error *err) MUSTCHECK;

/* How many devices of the tenant are members: of segment (rule ∪ added − removed), or, with
 * segment NULL (a preview), rule matches only, with sample: up to 10 matching ids as a JSON
 * array. estimate: from a sample of the table when it is large (out->estimate says whether
 * it was; margin is the half-width of the 95 % interval). */
typedef struct store_count {
    long long count, margin;
    bool estimate;
    const char *computed_at;   /* RFC 3339, in c's arena */
    const char *sample;        /* JSON array text, in c's arena (preview), else NULL */
    int replica_lag_ms;        /* counted on the read replica, this far behind; -1: the primary */
} store_count;
int store_eval_count(store_conn *c, const ev_rule *r, const char *tenant, const char *segment,
                     bool estimate, store_count *out, seg_error *err) MUSTCHECK;

/* Keeps a count of segment id as its size (the representations' read-only `size`), unless a
 * later one is kept already. 0, or -1 with err. */
int store_eval_size(store_conn *c, bool v1, const char *tenant, const char *id,
                    const store_count *n, seg_error *err) MUSTCHECK;

/* Up to limit member ids of segment after id `after` ("" for the first page), in id order;
 * more says whether others follow. Ids live in c's arena. */
typedef struct store_ids {
    int n;
    const char **ids;
    bool more;
    int replica_lag_ms;        /* read on the read replica, this far behind; -1: the primary */
} store_ids;
int store_eval_members(store_conn *c, const ev_rule *r, const char *tenant, const char *segment,
                       const char *after, int limit, store_ids *out, seg_error *err) MUSTCHECK;

/* Is device in segment: what to decide it with. */
typedef struct store_check {
    bool segment_found, device_found;
    const char *rule;
    size_t rule_len;
    const char *status;
    int added;                              /* 1 added, 0 removed, -1 neither */
    const char *col[EV_DEVICE_COLUMNS];     /* the device (eval/match.h's ev_device_read) */
} store_check;
int store_eval_check(store_conn *c, bool v1, const char *tenant, const char *segment,
                     const char *device, store_check *out, seg_error *err) MUSTCHECK;

/* The device → segments lookup's device: its columns and its explicit memberships, the
 * segments in byte order (strcmp). STORE_DONE, STORE_MISSING or -1. */
typedef struct store_device_eval {
    const char *col[EV_DEVICE_COLUMNS];
    size_t n_members;
    const char **member_segment;
    bool *member_added;
} store_device_eval;
int store_eval_device(store_conn *c, const char *tenant, const char *device,
                      store_device_eval *out, seg_error *err) MUSTCHECK;

/* Every segment of a tenant, both dialects, for the lookup's rule cache, and the tenant's
 * fingerprint read with them (store/segment_watch.h). */
typedef struct store_rule_entry {
    bool v1;
    const char *id;
    const char *rule;
    size_t rule_len;
    bool active, extend, has_start, has_end;
    long long start_us, end_us;
} store_rule_entry;
int store_eval_rules(store_conn *c, const char *tenant, store_rule_entry **out, size_t *n,
                     const char **fingerprint, seg_error *err) MUSTCHECK;

/* PATCH …/members: ids is a text[] literal of the request's ids (in its order). STORE_DONE
 * with the counts, STORE_MISSING (no segment: nothing changed), or -1. */
typedef struct store_members_applied {
    long long applied, unknown;
    const char *unknown_ids;   /* JSON array text: the first 100 unknown ids, in request order */
} store_members_applied;
int store_members_apply(store_conn *c, bool v1, const char *tenant, const char *segment, bool add,
                        const char *ids, store_members_applied *out, seg_error *err) MUSTCHECK;

#endif
